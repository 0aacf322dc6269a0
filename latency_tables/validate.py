"""Validation: how close is the table's prediction to what the device really does with the whole model?
Random subnets (never those used for calibration), float, uniformly quantized (w8a8, w4a8) and mixed in turn,
are exported whole, quantized per policy, measured end to end with the table's backend and protocol, and
compared to the prediction before and after calibration, overall and per policy."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from latency_tables import device_tasks
from latency_tables.backends.base import BACKENDS
from latency_tables.executor import LocalExecutor, RayExecutor
from latency_tables.protocol import Protocol
from latency_tables.sampling import policy_of, sample_configs
from latency_tables.table import LatencyTable
from search_spaces import SubnetConfig, config_from_dict
from search_spaces.errors import HwnasError, bad_value


def error_stats(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """within_5pct / within_10pct (fractions), mape (fraction), rmse_ms."""
    rel = np.abs(predicted - measured) / measured
    return {"within_5pct": float(np.mean(rel <= 0.05)), "within_10pct": float(np.mean(rel <= 0.10)),
            "mape": float(rel.mean()), "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2)))}


def calibration_summary(table: LatencyTable) -> dict[str, Any] | None:
    """Which calibration the table applies and the cross-validated MAPE of every candidate (None: none fitted)."""
    cal = table.calibration
    if cal is None:
        return None
    sel = cal.fitted_on.get("selection") or {}
    return {"method": cal.method, "applied": cal.applied, "params": cal.params, "cv_mape": sel.get("cv_mape"),
            "chosen_by": "forced" if sel.get("forced") else "cross-validation" if sel else "fixed when built",
            "n": cal.fitted_on.get("n"), "policies": cal.fitted_on.get("policies")}


def table_executor(table: LatencyTable, ray_address: str | None = None) -> LocalExecutor | RayExecutor:
    """Where whole subnets are timed for `table`: Ray tasks on its device's nodes (`ray_address`), else this
    process, which must be the table's device (one line saying why not)."""
    if ray_address is not None:
        return RayExecutor(ray_address, table.device_tag)
    cls = BACKENDS.get(table.backend)
    ok, reason = cls.available()
    if not ok:
        raise HwnasError(f"backend {table.backend!r} is not available here: {reason}")
    here = cls(**table.backend_args).fingerprint()
    if here.get("device") != table.fingerprint.get("device"):
        raise HwnasError(f"table was measured on {table.fingerprint.get('device')!r} but this machine is "
                         f"{here.get('device')!r}; time subnets on the table's device (or with `ray_address`)")
    return LocalExecutor()


def measure_configs(ex: LocalExecutor | RayExecutor, table: LatencyTable, configs: Sequence[SubnetConfig],
                    desc: str, progress: bool = True) -> list[dict[str, Any]]:
    """Whole subnets measured end to end on the table's device with the table's settings, a protocol's
    `interleave` at a time (each chunk one device task); one measurement dict per config, in order."""
    from tqdm import tqdm

    step = Protocol.from_dict(table.protocol).interleave
    out: list[dict[str, Any]] = []
    with tqdm(total=len(configs), unit="subnet", desc=desc, disable=not progress or None) as bar:
        for i in range(0, len(configs), step):
            part = configs[i : i + step]
            out += ex.call(device_tasks.measure_subnets, table.search_space.name, [c.to_dict() for c in part],
                           table.backend, table.backend_args, table.protocol, table.reference_model)
            bar.update(len(part))
    return out


def validate_table(table: LatencyTable, n: int, seed: int = 0, ray_address: str | None = None,
                   configs: Sequence[SubnetConfig] | None = None, progress: bool = True) -> dict[str, Any]:
    """Measure `n` random held-out subnets end to end and report prediction errors, calibrated and not.
    Returns {n, within_5pct, within_10pct, mape, rmse_ms, uncalibrated: {...}, calibrated: bool,
    calibration: the table's choice and its cross-validated errors, by_policy: {policy: stats}, subnets}."""
    if not isinstance(n, int) or n < 1:
        raise bad_value("n", n, "an integer >= 1")
    sp = table.search_space
    ex = table_executor(table, ray_address)
    exclude = {config_from_dict(m["config"]).to_json() for m in table.calibration_measurements}
    if configs is None:
        configs = sample_configs(sp, n, seed, table.resolutions, exclude=exclude, supported=table.supported,
                                 quantize=table.quantized)
    else:
        configs = [c for c in configs if c.to_json() not in exclude][:n]
    if not configs:
        raise HwnasError("validate: no held-out subnet to measure")
    measured = measure_configs(ex, table, configs, "validate", progress)
    y = np.array([table.latency_ms(m) for m in measured])
    y_raw = np.array([m["median_ms"] for m in measured])
    raw = table.predict(configs, calibrated=False)
    # the table's own figures: a correction around a search's picks is for what a search selects (`correction.py`)
    cal = table.predict(configs, calibrated=True, corrected=False)
    pols = [policy_of(c) for c in configs]
    by_policy = {p: {"n": pols.count(p), **error_stats(cal[m], y[m]), "uncalibrated": error_stats(raw[m], y[m])}
                 for p in dict.fromkeys(pols) for m in [np.array([q == p for q in pols])]}
    report: dict[str, Any] = {"n": len(configs), **error_stats(cal, y), "uncalibrated": error_stats(raw, y),
                              "calibrated": table.calibration is not None and table.calibration.applied,
                              "calibration": calibration_summary(table), "by_policy": by_policy,
                              "load_normalized": table.normalized,
                              "space": table.space, "device_tag": table.device_tag, "backend": table.backend,
                              "seed": seed}
    if table.correction is not None:  # what the correction does to random subnets: shifts them by its mean
        report["corrected"] = error_stats(table.predict(configs), y)
    if table.normalized:  # the same predictions against the plain medians, load swings included
        report["raw_medians"] = {"calibrated": error_stats(cal, y_raw), "uncalibrated": error_stats(raw, y_raw)}
    report["subnets"] = [{"config": c.to_dict(), "policy": policy_of(c), "measured_ms": float(v),
                          "median_ms": m["median_ms"],
                          "p90_ms": m["p90_ms"], "ref_ms": m.get("ref_ms"), "predicted_ms": float(p),
                          "predicted_uncalibrated_ms": float(r)}
                         for c, v, m, p, r in zip(configs, y, measured, cal, raw)]
    return report


def measure_subnet(space: Any, config: SubnetConfig, backend: Any, protocol: Protocol | None = None):
    """One subnet end to end on `backend` (a `Backend` or a name): extracted from a random-init supernet,
    exported whole, quantized per its policy, measured. Returns a `Measurement`."""
    import tempfile

    from latency_tables.backends import get_backend
    from latency_tables.models import export_subnet
    from search_spaces import get_space

    sp = get_space(space) if isinstance(space, str) else space
    be = get_backend(backend) if isinstance(backend, str) else backend
    with tempfile.TemporaryDirectory(prefix="hwnas-lt-") as tmp:
        path, shape = export_subnet(sp, config, tmp, batch=be.batch_size)
        return be.measure(path, shape, protocol)


__all__ = ["calibration_summary", "error_stats", "measure_configs", "measure_subnet", "table_executor",
           "validate_table"]
