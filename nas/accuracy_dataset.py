"""Accuracy data sets for predictors: evaluate sampled subnets of a trained supernet on the holdout split and
append one JSON object per line, so an interrupted collection resumes where it stopped.

Line schema (the predictors read exactly this):
    {"config": SubnetConfig.to_dict(), "accuracy": top-1 percent, "accuracy_halves": [top-1 on the even images,
     on the odd images] (how noisy the labels are: `predictors.label_reliability`), "quantized": config.is_quantized,
     "split": "holdout", "data": data set name, "supernet": "sha256:<hex>" of the checkpoint, "seconds": eval time,
     "max_images": the first N images of the split it was measured on (null: all), "images": how many that was}

Whole lines only: each record is written with its newline in one `write`, flushed and fsynced; on resume a torn
last line (no newline, or not JSON) is cut off, configs already present are skipped. The configs are a fixed
seeded sequence (`sample_configs`), so asking for more later extends the same sequence.
Evaluation runs here, or as Ray tasks (`workers > 1` or `ray_address`), each task a chunk of configs. The checkpoint
is put into the object store once and every task gets that one reference (a worker process loads it once and keeps
it); on GPUs each task asks Ray for `gpus_per_task` (a fraction lets several evaluations share one GPU).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import HwnasError, InputError, SearchSpace, SubnetConfig, config_from_dict, get_space
from search_spaces.errors import bad_value
from search_spaces.files import sha256_file

from nas.collect_config import CollectConfig

RECORD_KEYS = ("config", "accuracy", "quantized", "split", "data", "supernet", "seconds")


def checkpoint_id(path: str | os.PathLike[str]) -> str:
    """'sha256:<hex>' of the checkpoint file's bytes: the same weights give the same id wherever they lie."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"supernet: got {str(path)!r}, allowed: an existing checkpoint file")
    return "sha256:" + sha256_file(p)


def sample_configs(space: SearchSpace, n: int, seed: int = 0, quantized_fraction: float = 0.5,
                   uniform_fraction: float = 0.0) -> list[SubnetConfig]:
    """`n` distinct configs; each is quantized with probability `quantized_fraction`, else float. A quantized one
    has one random bit-width pair in every block with probability `uniform_fraction`, else random per-block bits:
    random per-block bits almost never quantize most blocks to 4 bits, which is where a size budget ends, and the
    accuracy cost of quantization compounds there. The first k of the list do not depend on n (a longer
    collection extends a shorter one)."""
    for name, v in (("quantized_fraction", quantized_fraction), ("uniform_fraction", uniform_fraction)):
        if not 0.0 <= v <= 1.0:
            raise bad_value(name, v, "a fraction in [0, 1]")
    uniform = [p for p in space.bit_pairs if p != (32, 32)]
    if n < 0:
        raise bad_value("n", n, "an integer >= 0")
    rng = np.random.default_rng(seed)
    out: list[SubnetConfig] = []
    seen: set[SubnetConfig] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise InputError(f"n: got {n}, allowed: at most the number of distinct configs the space can sample")
        quantize = bool(rng.random() < quantized_fraction)
        if quantize and uniform_fraction and uniform and rng.random() < uniform_fraction:
            c = space.sample(rng, quantize=False).with_bits(*uniform[int(rng.integers(len(uniform)))])
        else:
            c = space.sample(rng, quantize=quantize)
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def _config_key(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def read_records(path: str | os.PathLike[str], repair: bool = False) -> list[dict[str, Any]]:
    """The records of a JSON-lines file. A torn last line (an interrupted write: no newline yet) is ignored, and
    with `repair` cut off the file; any other bad line, the last one included, is an error naming its number."""
    p = Path(path)
    if not p.exists():
        return []
    raw = p.read_bytes()
    records: list[dict[str, Any]] = []
    good_end = 0
    pos = 0
    lineno = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        end = len(raw) if nl < 0 else nl + 1
        line = raw[pos:end]
        lineno += 1
        try:
            rec = json.loads(line) if line.strip() else None
            if rec is not None and (not isinstance(rec, dict) or any(k not in rec for k in RECORD_KEYS)):
                raise ValueError("missing keys")
            if nl < 0 and rec is not None:
                raise ValueError("no newline")
        except ValueError:
            if nl < 0:
                break  # torn tail: an append interrupted before its newline (whole lines end with one)
            raise HwnasError(f"{p}: line {lineno} is not an accuracy record (expected keys {', '.join(RECORD_KEYS)})")
        if rec is not None:
            records.append(rec)
        good_end = end
        pos = end
    if repair and good_end < len(raw):
        with p.open("r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())
    return records


def append_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Append whole lines (one write each), flushed and fsynced."""
    with path.open("ab") as f:
        for r in records:
            f.write((json.dumps(r, separators=(",", ":")) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


# ---- evaluation, here or in a Ray worker ----------------------------------------------------------------------
_WORKER_CACHE: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}


def _load(ckpt_path: str | None, ckpt_bytes: bytes | None, ckpt_id: str, data_name: str,
          data_seed: int, runtime: Any) -> tuple[Any, Any]:
    key = (ckpt_id, data_name, data_seed, str(runtime))
    if key not in _WORKER_CACHE:
        from nas.train import load_for_eval

        if ckpt_bytes is not None:  # a worker on another node: the checkpoint travels through the object store
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "supernet.pt"
                p.write_bytes(ckpt_bytes)
                net, data, _ = load_for_eval(p, data_name, data_seed=data_seed, runtime=runtime)
        else:
            net, data, _ = load_for_eval(ckpt_path, data_name, data_seed=data_seed,  # type: ignore[arg-type]
                                         runtime=runtime)
        _WORKER_CACHE.clear()
        _WORKER_CACHE[key] = (net, data)
    return _WORKER_CACHE[key]


def evaluate_chunk(ckpt_path: str | None, ckpt_bytes: bytes | None, ckpt_id: str, data_name: str, data_seed: int,
                   configs: list[dict[str, Any]], split: str, calib_batches: int,
                   threads: int | None, device: str = "cpu", amp: str | None = None,
                   max_images: int | None = None) -> list[dict[str, Any]]:
    """Records for `configs` (dicts); the supernet and data are loaded once per process, on `device`."""
    from nas.device import Runtime
    from nas.train import evaluate_detailed, set_threads

    set_threads(threads)
    runtime = Runtime.from_options(device, amp)
    net, data = _load(ckpt_path, ckpt_bytes, ckpt_id, data_name, data_seed, runtime)
    out = []
    for d in configs:
        c = config_from_dict(d)
        t0 = time.perf_counter()
        ev = evaluate_detailed(net, c, data, split, calib_batches=calib_batches, runtime=runtime,
                               max_images=max_images)
        out.append({"config": c.to_dict(), "accuracy": round(ev["accuracy"], 4),
                    "accuracy_halves": [round(a, 4) for a in ev["accuracy_halves"]], "quantized": c.is_quantized,
                    "split": split, "data": data_name, "supernet": ckpt_id,
                    "seconds": round(time.perf_counter() - t0, 4), "max_images": max_images,
                    "images": ev["n_images"]})
    return out


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def collect(config: CollectConfig) -> dict[str, Any]:
    """Evaluate `config.n` sampled subnets of its supernet and append their records to `config.out` (resuming:
    configs already there are skipped); here, or as Ray tasks (`workers > 1` or `ray_address`; on GPUs each asks
    for `gpus_per_task`, default 1 when the device here is CUDA).
    Returns {"out", "n", "existing", "new", "seconds", "mean_accuracy", "supernet"}."""
    from nas.checkpoint import read_checkpoint
    from nas.device import resolve_device

    c = config
    c.validate()
    out = Path(c.out)
    if out.is_dir():
        raise InputError(f"out: {out} is a directory, allowed: a .jsonl file path")
    ckpt_id = checkpoint_id(c.supernet)
    payload = read_checkpoint(c.supernet)
    meta = payload.get("meta", {})
    data_name = c.data_name or meta.get("data")
    if not data_name:
        raise InputError(f"data_name: {c.supernet} does not record its data set, allowed: a data set NAME")
    data_seed = int(meta.get("data_seed", 0))
    space = get_space(payload["space"], num_classes=payload["num_classes"], in_channels=payload["in_channels"],
                      resolutions=c.resolutions)
    del payload
    existing = _existing_records(out, ckpt_id, data_name, c)
    done = {_config_key(r["config"]) for r in existing}
    todo = [d for d in (x.to_dict() for x in sample_configs(space, c.n, c.seed, c.quantized_fraction,
                                                                        c.uniform_fraction))
            if _config_key(d) not in done]
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(exist_ok=True)
    bar = None
    if c.progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="subnets", dynamic_ncols=True)
    accs: list[float] = []

    def write(records: list[dict[str, Any]]) -> None:
        append_records(out, records)
        accs.extend(r["accuracy"] for r in records)
        if bar is not None:
            bar.update(len(records))
            bar.set_postfix(acc=f"{np.mean(accs):.2f}")

    if todo and (c.workers > 1 or c.ray_address):
        gpus = c.gpus_per_task
        if gpus is None and resolve_device(c.device).type == "cuda":
            gpus = 1.0
        _collect_ray(c.supernet, ckpt_id, data_name, data_seed, todo, c.split, c.calib_batches, c.chunk_size,
                     c.workers, c.ray_address, write, gpus or 0.0, c.amp, c.device, c.max_images)
    else:
        for chunk in _chunks(todo, c.chunk_size):
            write(evaluate_chunk(str(c.supernet), None, ckpt_id, data_name, data_seed, chunk, c.split,
                                 c.calib_batches, c.threads, c.device, c.amp, c.max_images))
    if bar is not None:
        bar.close()
    return {"out": str(out), "n": len(existing) + len(accs), "existing": len(existing), "new": len(accs),
            "seconds": round(time.perf_counter() - t0, 2),
            "mean_accuracy": round(float(np.mean(accs)), 3) if accs else None, "supernet": ckpt_id}


def _existing_records(out: Path, ckpt_id: str, data_name: str, c: CollectConfig) -> list[dict[str, Any]]:
    """The records already in `out` (a torn last line cut off), all of this supernet, data, split and image count."""
    existing = read_records(out, repair=True)
    for i, r in enumerate(existing):
        if r.get("supernet") != ckpt_id or r.get("data") != data_name or r.get("split") != c.split \
                or r.get("max_images") != c.max_images:
            raise InputError(f"out: {out} line {i + 1} is for supernet {r.get('supernet')}, data {r.get('data')!r}, "
                             f"split {r.get('split')!r}, max_images {r.get('max_images')}; allowed: records of "
                             f"{ckpt_id}, {data_name!r}, {c.split!r}, max_images {c.max_images} (use another "
                             "`out`)")
    return existing


def _collect_ray(supernet: str | os.PathLike[str], ckpt_id: str, data_name: str, data_seed: int,
                 todo: list[dict[str, Any]], split: str, calib_batches: int, chunk_size: int, workers: int,
                 ray_address: str | None, write: Callable[[list[dict[str, Any]]], None], gpus_per_task: float = 0.0,
                 amp: str | None = None, device: str = "auto", max_images: int | None = None) -> None:
    import ray

    from nas.ray_session import ray_session, remote_once

    with ray_session(ray_address, num_cpus=workers):
        remote = remote_once(evaluate_chunk, num_cpus=1)
        if gpus_per_task:  # Ray sets CUDA_VISIBLE_DEVICES for the task: its cuda is the GPU it was given
            remote, device = remote.options(num_gpus=gpus_per_task), "cuda"
        elif device.startswith("cuda"):
            device = "cpu"  # tasks without GPUs see none
        blob = ray.put(Path(supernet).read_bytes())  # once: every task gets this reference
        pending = [remote.remote(None, blob, ckpt_id, data_name, data_seed, chunk, split, calib_batches, 1, device,
                                 amp, max_images) for chunk in _chunks(todo, chunk_size)]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                write(ray.get(ref))


__all__ = ["RECORD_KEYS", "CollectConfig", "append_records", "checkpoint_id", "collect", "evaluate_chunk", "read_records",
           "sample_configs"]
