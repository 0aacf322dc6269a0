"""Data-parallel supernet training on Ray Train (`hwnas supernet train --workers N [--use-gpu] [--ray-address]`).

Ray Train's `TorchTrainer` starts N workers and their process group (NCCL on GPUs, gloo on CPUs). Each worker runs
`nas.train.train_supernet` on its `DistributedSampler` shard of every epoch. The sandwich rule's subnets come from a
stream seeded by (seed, epoch) and advanced once per step, so every worker trains the same subnets in the same
step; after a step's backward passes (largest, smallest and random subnets) the gradients are averaged over the
process group in one coalesced all-reduce -- what DistributedDataParallel does, done by hand because DDP's reducer
expects one forward and one backward per step, and a sandwich step has several.

Rank 0 writes the checkpoint and hands it to Ray Train (`ray.train.report`), which keeps the latest under
`OUT.raytrain/` (on a cluster, `storage_path` must be shared by the nodes: give `--out` on shared storage). A rerun
with `--resume` continues from Ray Train's latest checkpoint there (Ray Train restores it by run name), or from
`OUT` itself when it was trained elsewhere. When the run ends, the latest checkpoint is copied to `OUT`, which is then
the same kind of file a one-process run writes.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from nas.train import TrainConfig, TrainResult
from search_spaces import HwnasError, InputError
from search_spaces.errors import bad_value
from search_spaces.files import atomic_path

CKPT_NAME = "supernet.pt"


def ray_storage(out: Path) -> Path:
    return out.parent.resolve() / f"{out.name}.raytrain"


def average_gradients(net: Any) -> None:
    """Mean of every parameter's gradient over the process group (missing gradients count as zero), coalesced
    into one buffer so a step costs one all-reduce."""
    import torch
    import torch.distributed as dist

    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(dist.get_world_size())
    for g, new in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(new.view_as(g))


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: its shard of every epoch; rank 0 reports the checkpoint."""
    import ray
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    from nas.checkpoint import read_checkpoint
    from nas.device import Runtime, resolve_amp
    from nas.train import Shard, train_supernet

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    runtime = Runtime(device, resolve_amp(config["amp"], device))
    cfg = TrainConfig.from_dict(config["train_config"])
    local = Path(tempfile.mkdtemp(prefix=f"hwnas-rank{rank}-"))
    payload = None
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:  # Ray Train restored the run's latest checkpoint
        with ckpt.as_directory() as d:
            payload = read_checkpoint(Path(d) / CKPT_NAME)
    elif config.get("resume_bytes") is not None:  # --resume from an OUT trained elsewhere
        p = local / "resume.pt"
        p.write_bytes(ray.get(config["resume_bytes"]))
        payload = read_checkpoint(p)
        p.unlink()  # the folder is what rank 0 reports as its checkpoint

    def report(path: Path, record: dict[str, Any], write: Any) -> None:
        digests: list[Any] = [None] * world  # the sandwich subnets each worker trained this epoch must agree
        dist.all_gather_object(digests, record.get("subnets_sha256"))
        if len(set(digests)) != 1:
            raise HwnasError(f"epoch {record['epoch']}: the workers trained different subnets ({digests})")
        record["subnets_same_on_all_workers"] = True
        metrics = {k: v for k, v in record.items() if isinstance(v, (int, float, str))}
        if rank == 0:
            write()
            (path.parent / "epoch.json").write_text(json.dumps({"epoch": record["epoch"]}))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(path.parent)))
        else:
            ray.train.report(metrics, checkpoint=None)

    shard = Shard(rank, world, average_gradients, report)
    try:
        train_supernet(cfg, local / CKPT_NAME, progress=config["progress"] and rank == 0,
                       threads=config["threads"], runtime=runtime, data_workers=config["data_workers"],
                       init_from=config.get("init_from"), shard=shard, resume_payload=payload)
    finally:
        if dist.is_initialized():
            dist.barrier()
        shutil.rmtree(local, ignore_errors=True)


def train_distributed(cfg: TrainConfig, out: str | os.PathLike[str], workers: int, use_gpu: bool = False,
                      ray_address: str | None = None, resume: bool = False, overwrite: bool = False,
                      amp: str | None = None, data_workers: int = 0, init_from: str | None = None,
                      threads: int | None = None, progress: bool = True) -> TrainResult:
    """Train `cfg` on `workers` Ray Train workers (GPUs with `use_gpu`); the result lands in `out`."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from nas.checkpoint import read_checkpoint
    from nas.ray_session import ray_session

    if not isinstance(workers, int) or workers < 1:
        raise bad_value("workers", workers, "an integer >= 1")
    out = Path(out)
    if out.is_dir():
        raise InputError(f"out: {out} is a directory, allowed: a checkpoint file path")
    storage = ray_storage(out)
    if (out.exists() or storage.exists()) and not (resume or overwrite):
        raise InputError(f"out: {out} exists, allowed: a new path, or `resume` to continue it")
    if overwrite and not resume:
        shutil.rmtree(storage, ignore_errors=True)
    resume_from_out = resume and out.exists() and not (storage / "run").exists()
    if init_from is not None:
        init_from = str(Path(init_from).resolve())
    with ray_session(ray_address, num_cpus=None if ray_address else workers):
        config = {"train_config": cfg.to_dict(), "amp": amp, "data_workers": data_workers, "init_from": init_from,
                  "threads": threads or 1, "progress": progress,
                  "resume_bytes": ray.put(out.read_bytes()) if resume_from_out else None}
        trainer = TorchTrainer(
            _worker_loop, train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": 1, **({"GPU": 1} if use_gpu else {})}),
            run_config=RunConfig(name="run", storage_path=str(storage),
                                 checkpoint_config=CheckpointConfig(num_to_keep=1),
                                 failure_config=FailureConfig(max_failures=0)))
        try:
            result = trainer.fit()
        except Exception as e:
            raise HwnasError(f"Ray Train with {workers} workers failed "
                             f"({type(e).__name__}: {_first_line(e)})") from None
    if result.checkpoint is None:
        raise HwnasError(f"Ray Train with {workers} workers reported no checkpoint")
    with result.checkpoint.as_directory() as d, atomic_path(out) as tmp:
        shutil.copyfile(Path(d) / CKPT_NAME, tmp)
    state = read_checkpoint(out)["train_state"]
    return TrainResult(out, int(state["epoch"]), list(state["history"]), float(state["seconds"]))


def _first_line(e: BaseException) -> str:
    """The innermost hwnas message when a worker failed with one, else the exception's first line."""
    text = str(e)
    for line in text.splitlines():
        for marker in ("InputError: ", "HwnasError: "):
            if marker in line:
                return line.split(marker, 1)[1]
    return text.splitlines()[0] if text else ""


__all__ = ["average_gradients", "ray_storage", "train_distributed"]
