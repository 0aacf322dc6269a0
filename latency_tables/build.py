"""Build a latency table: enumerate every distinct block the space can produce at the chosen resolutions,
measure each on the device (warm-up, interleaved repeated runs, robust statistic), then measure the
per-inference overhead and a few whole subnets to fit the calibration.

Resumable: the table file is rewritten atomically after every chunk of blocks, and a build pointed at an
existing table of the same space, backend and device measures only what is missing.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latency_tables import device_tasks
from latency_tables.backends.base import BACKENDS, device_tag_from_fingerprint
from latency_tables.calibration import AUTO, Calibration, select
from latency_tables.executor import LocalExecutor, RayExecutor
from latency_tables.models import reference_model_spec
from latency_tables.protocol import Protocol
from latency_tables.sampling import policy_of, sample_configs
from latency_tables.table import LatencyTable
from latency_tables.table_config import TableConfig
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
        raise InputError("device_tag: missing, allowed: the TAG of the Ray resource device:TAG that marks the "
                         "nodes to measure on (required with `ray_address`)")
    return RayExecutor(ray_address, device_tag)


def _check_resume(table: LatencyTable, space: str, backend: str, fp: dict[str, Any], protocol: Protocol,
                  out: Path) -> None:
    if table.space != space or table.backend != backend:
        raise InputError(f"out: {out} holds a table for {table.space} / {table.backend}, this build is {space} / "
                         f"{backend}; choose another `out` or delete it")
    for k in BACKENDS.get(backend).same_device_keys():  # each backend says which of its facts must match
        if table.fingerprint.get(k) != fp.get(k):
            raise InputError(f"out: {out} was measured with {k}={table.fingerprint.get(k)!r}, this build has "
                             f"{k}={fp.get(k)!r}; choose another `out` or delete it")
    if table.protocol != protocol.to_dict():
        raise InputError(f"out: {out} was measured with protocol {table.protocol}, this build uses "
                         f"{protocol.to_dict()}; choose another `out` or delete it")


def build_table(config: TableConfig) -> LatencyTable:
    """Measure (or finish measuring) the table at `config.out` and return it: every block key of the space at
    its resolutions (`config.keys`: only these), then the per-inference overhead, then the calibration
    (`calibrate_table`: `calibrate` random whole subnets spread over bit-width policies and sizes, or
    `calibration_configs`; `calibration_method` auto picks by cross-validation)."""
    config.validate()
    sp = get_space(config.space) if isinstance(config.space, str) else config.space
    res, keys = _keys_to_measure(sp, config)
    ex = _executor(config.ray_address, config.device_tag)
    started = time.perf_counter()
    fp = ex.call(device_tasks.device_fingerprint, config.backend, config.backend_args())
    out = Path(config.out)
    table = _open_table(sp, config, res, fp, out)
    table.expected_keys = max(len(set(keys) | set(table.entries) | set(table.unsupported)), table.expected_keys or 0)
    base_seconds = table.build_seconds

    def save() -> None:
        table.build_seconds = base_seconds + time.perf_counter() - started
        table.save(out)

    save()
    _measure_blocks(table, sp, keys, ex, config, save)
    if table.overhead is None:
        table.set_overhead(ex.call(device_tasks.measure_overhead, config.backend, config.backend_args(),
                                   config.protocol.to_dict(), table.reference_model))
        save()
    if config.calibrate or config.calibration_configs:
        calibrate_table(table, config.calibrate, method=config.calibration_method, executor=ex,
                        configs=config.calibration_configs, progress=config.progress)
        save()
    return table


def _keys_to_measure(sp: SearchSpace, config: TableConfig) -> tuple[list[int], list[str]]:
    """The resolutions (the space's when none are given) and the block keys the table should hold."""
    res = sorted(set(config.resolutions)) if config.resolutions else list(sp.spec.resolutions)
    all_keys = table_keys(sp, res, config.quantize)
    if config.keys is None:
        return res, all_keys
    unknown = sorted(set(config.keys) - set(all_keys))
    if unknown:
        raise bad_value("keys", unknown[0], f"block keys of {sp.name} at resolutions {res}")
    return res, sorted(set(config.keys))


def _open_table(sp: SearchSpace, config: TableConfig, res: list[int], fp: dict[str, Any], out: Path) -> LatencyTable:
    """The table at `out` to continue (same space, backend, device and protocol), or a new empty one."""
    if out.exists():
        table = LatencyTable.load(out)
        _check_resume(table, sp.name, config.backend, fp, config.protocol, out)
        table.resolutions = sorted(set(table.resolutions) | set(res))
        return table
    return LatencyTable(sp.name, config.device_tag or device_tag_from_fingerprint(fp), config.backend, fp,
                        config.protocol.to_dict(), res,
                        reference_model=reference_model_spec(sp, res) if config.protocol.reference else None)


def _measure_blocks(table: LatencyTable, sp: SearchSpace, keys: list[str], ex: LocalExecutor | RayExecutor,
                    config: TableConfig, save: Callable[[], None]) -> None:
    """Measure the keys the table lacks, `protocol.interleave` at a time, saving after each chunk."""
    from tqdm import tqdm

    todo = [k for k in keys if k not in table.entries and k not in table.unsupported]
    step = config.protocol.interleave
    args, protocol = config.backend_args(), config.protocol.to_dict()
    calls = [(sp.name, todo[i : i + step], config.backend, args, protocol, table.reference_model)
             for i in range(0, len(todo), step)]
    bar = tqdm(total=len(todo), unit="block", desc=f"{sp.name} on {table.device_tag}",
               disable=not config.progress or None)
    try:
        for _, result in ex.map(device_tasks.measure_blocks, calls):
            for key, r in result.items():
                if "measurement" in r:
                    table.set_entry(key, **r["measurement"])
                else:
                    table.mark_unsupported(key, r["unsupported"])
            save()
            bar.update(len(result))
            if config.on_chunk is not None:
                config.on_chunk(len(table.entries) + len(table.unsupported), table.expected_keys)
    finally:
        bar.close()


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
                 force=None if method == AUTO else method, n_blocks=table.block_counts(cfgs),
                 weights_m=table.weights_m(cfgs))
    table.calibration = cal
    return cal
