"""Build a latency table: enumerate every distinct block the space can produce at the chosen resolutions,
measure each on the device (warm-up, interleaved repeated runs, robust statistic), then measure the
per-inference overhead and a few whole subnets to fit the calibration.

Resumable: the table file is rewritten atomically after every chunk of blocks, and a build pointed at an
existing table of the same space, backend and device measures only what is missing.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latency_tables import device_tasks
from latency_tables.backends.base import BACKENDS, device_tag_from_fingerprint
from latency_tables.calibration import AUTO, METHODS, Calibration, select
from latency_tables.executor import LocalExecutor, RayExecutor
from latency_tables.models import reference_model_spec
from latency_tables.protocol import Protocol
from latency_tables.sampling import policy_of, sample_configs
from latency_tables.table import LatencyTable
from latency_tables.validate import measure_configs
from search_spaces import SearchSpace, SubnetConfig, config_from_dict, get_space
from search_spaces.errors import InputError, bad_value

CALIBRATION_SEED = 1_000_003  # validation samples with other seeds and excludes these configs anyway


def table_keys(space: SearchSpace, resolutions: Iterable[int] | None = None, quantize: bool = True) -> list[str]:
    """Every distinct block key the space can produce at these resolutions (sorted)."""
    return [b.key for b in space.all_block_specs(resolutions, quantize=quantize)]


def _executor(ray_address: str | None, device_tag: str | None) -> LocalExecutor | RayExecutor:
    if ray_address is None:
        return LocalExecutor()
    if not device_tag:
        raise InputError("--device-tag: missing, allowed: the TAG of the Ray resource device:TAG that marks the "
                         "nodes to measure on (required with --ray-address)")
    return RayExecutor(ray_address, device_tag)


def _check_resume(table: LatencyTable, space: str, backend: str, fp: dict[str, Any], protocol: Protocol,
                  out: Path) -> None:
    if table.space != space or table.backend != backend:
        raise InputError(f"--out: {out} holds a table for {table.space} / {table.backend}, this build is {space} / "
                         f"{backend}; choose another --out or delete it")
    for k in BACKENDS.get(backend).same_device_keys():  # each backend says which of its facts must match
        if table.fingerprint.get(k) != fp.get(k):
            raise InputError(f"--out: {out} was measured with {k}={table.fingerprint.get(k)!r}, this build has "
                             f"{k}={fp.get(k)!r}; choose another --out or delete it")
    if table.protocol != protocol.to_dict():
        raise InputError(f"--out: {out} was measured with protocol {table.protocol}, this build uses "
                         f"{protocol.to_dict()}; choose another --out or delete it")


def build_table(space: str | SearchSpace, backend: str, out: str | os.PathLike[str],
                resolutions: Sequence[int] | None = None, threads: int = 1, batch_size: int = 1,
                protocol: Protocol | None = None, device_tag: str | None = None, ray_address: str | None = None,
                calibrate: int = 12, calibration_method: str = AUTO, quantize: bool = True,
                keys: Sequence[str] | None = None, calibration_configs: Sequence[SubnetConfig] | None = None,
                progress: bool = True, on_chunk: Callable[[int, int], None] | None = None,
                precision: str = "fp32") -> LatencyTable:
    """Measure (or finish measuring) the table at `out` and return it.

    keys: measure only these block keys (tests, partial tables); default every key of the space at
    `resolutions` (default: all of the space's). calibrate: how many random whole subnets to measure for the
    calibration (0: none), spread over bit-width policies and sizes (`sampling.sample_configs`).
    calibration_configs: measure these instead. calibration_method: `auto` (the candidate with the lowest
    cross-validated error, `calibration.select`) or one of `calibration.METHODS` to force it.
    """
    sp = get_space(space) if isinstance(space, str) else space
    BACKENDS.get(backend).check_precision(precision)  # unknown names fail here, listing the known ones
    if calibration_method != AUTO and calibration_method not in METHODS:
        raise bad_value("calibration_method", calibration_method, f"one of {AUTO}, {', '.join(METHODS)}")
    if not isinstance(calibrate, int) or calibrate < 0:
        raise bad_value("calibrate", calibrate, "an integer >= 0")
    protocol = protocol or Protocol()
    res = sorted(set(resolutions)) if resolutions else list(sp.spec.resolutions)
    all_keys = table_keys(sp, res, quantize)
    if keys is not None:
        unknown = sorted(set(keys) - set(all_keys))
        if unknown:
            raise bad_value("keys", unknown[0], f"block keys of {sp.name} at resolutions {res}")
        all_keys = sorted(set(keys))
    args = {"threads": threads, "batch_size": batch_size}
    if precision != "fp32":  # fp32 tables keep the arguments (and cache keys) they had before precisions
        args["precision"] = precision
    ex = _executor(ray_address, device_tag)
    started = time.perf_counter()
    fp = ex.call(device_tasks.device_fingerprint, backend, args)
    out = Path(out)
    if out.exists():
        table = LatencyTable.load(out)
        _check_resume(table, sp.name, backend, fp, protocol, out)
        table.resolutions = sorted(set(table.resolutions) | set(res))
    else:
        table = LatencyTable(sp.name, device_tag or device_tag_from_fingerprint(fp), backend, fp,
                             protocol.to_dict(), res,
                             reference_model=reference_model_spec(sp, res) if protocol.reference else None)
    table.expected_keys = max(len(set(all_keys) | set(table.entries) | set(table.unsupported)),
                              table.expected_keys or 0)
    todo = [k for k in all_keys if k not in table.entries and k not in table.unsupported]
    base_seconds = table.build_seconds

    def save() -> None:
        table.build_seconds = base_seconds + time.perf_counter() - started
        table.save(out)

    save()
    chunks = [todo[i : i + protocol.interleave] for i in range(0, len(todo), protocol.interleave)]
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="block", desc=f"{sp.name} on {table.device_tag}", disable=not progress or None)
    try:
        calls = [(sp.name, c, backend, args, protocol.to_dict(), table.reference_model) for c in chunks]
        for _, result in ex.map(device_tasks.measure_blocks, calls):
            for key, r in result.items():
                if "measurement" in r:
                    table.set_entry(key, **r["measurement"])
                else:
                    table.mark_unsupported(key, r["unsupported"])
            save()
            bar.update(len(result))
            if on_chunk is not None:
                on_chunk(len(table.entries) + len(table.unsupported), table.expected_keys)
    finally:
        bar.close()
    if table.overhead is None:
        table.set_overhead(ex.call(device_tasks.measure_overhead, backend, args, protocol.to_dict(),
                                   table.reference_model))
        save()
    if calibrate or calibration_configs:
        calibrate_table(table, calibrate, method=calibration_method, executor=ex, configs=calibration_configs,
                        progress=progress)
        save()
    return table


def calibrate_table(table: LatencyTable, n: int, method: str = AUTO, seed: int = CALIBRATION_SEED,
                    executor: LocalExecutor | RayExecutor | None = None,
                    configs: Sequence[SubnetConfig] | None = None, progress: bool = True) -> Calibration:
    """Measure whole subnets end to end (reusing any already stored) and choose the table's calibration by
    cross-validation on them (`calibration.select`; `method` other than `auto` forces one, its rivals' errors
    still recorded). Random subnets are spread over the policies and over the table's own size range."""
    sp = table.search_space
    ex = executor or LocalExecutor()
    sampled = configs is None
    if configs is None:
        configs = sample_configs(sp, n, seed, table.resolutions, supported=table.supported,
                                 quantize=table.quantized, spread_by=lambda cs: table.predict(cs, calibrated=False))
    have = {config_from_dict(m["config"]).to_json() for m in table.calibration_measurements}
    todo = [c for c in configs if c.to_json() not in have]
    for c, m in zip(todo, measure_configs(ex, table, todo, "calibration", progress)):
        table.calibration_measurements.append({"config": c.to_dict(), **m})
    wanted = {c.to_json() for c in configs}
    used = [m for m in table.calibration_measurements if config_from_dict(m["config"]).to_json() in wanted]
    cfgs = [config_from_dict(m["config"]) for m in used]
    y = np.array([table.latency_ms(m) for m in used])
    before = np.abs(table.predict(cfgs, calibrated=False) - y) / y
    info = {"seed": seed if sampled else None, "overhead_ms": table.overhead_ms, "mape_before": float(before.mean()),
            "policies": sorted({policy_of(c) for c in cfgs})}
    cal = select(table.block_sums(cfgs), y, table.overhead_ms, fitted_on=info,
                 force=None if method == AUTO else method)
    table.calibration = cal
    return cal
