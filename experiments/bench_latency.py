"""Benchmark of latency tables on this machine (`ort-cpu` by default, 1 thread): build the table of `mbv3-tiny`
(32 px) and of `mbv3` (224 px), validate each on held-out subnets measured end to end, and time the vectorised
prediction. Prints a markdown table and writes a JSON summary.

    flock /tmp/hwnas-heavy.lock .venv/bin/python -m experiments.bench_latency --n 50 --calibrate 10
    # both CPU runtimes, mbv3 at 160 px:
    .venv/bin/python -m experiments.bench_latency --backends ort-cpu,openvino-cpu --resolutions mbv3=160 --n 40

Builds resume: rerunning reuses the tables already measured in --out-dir.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from latency_tables import LatencyTable, TableConfig, build_table, calibrate_table, error_stats, validate_table
from latency_tables.calibration import METHODS
from search_spaces import config_from_dict
from search_spaces.files import atomic_write_json

CASES = {"mbv3-tiny": 32, "mbv3": 224}


def predict_rate(table: LatencyTable, n: int = 100_000, seed: int = 0) -> float:
    """Configs per second predicted from the `to_indices` matrix (after the one-time dense precompute)."""
    sp = table.search_space
    cfgs = [c.replace(resolution=table.resolutions[0]) for c in sp.sample_many(1000, seed)]
    idx = np.tile(sp.to_indices(cfgs), (n // 1000, 1))
    table.predict(idx[:10])  # builds the dense arrays once
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        table.predict(idx)
        best = min(best, time.perf_counter() - t0)
    return n / best


def run_case(space: str, resolution: int, out_dir: Path, n: int, calibrate: int, seed: int,
             backend: str = "ort-cpu", precision: str = "fp32") -> dict:
    suffix = backend if precision == "fp32" else f"{backend}-{precision}"
    path = out_dir / f"{space}-r{resolution}-{suffix}.json"
    table = build_table(TableConfig(space=space, backend=backend, out=path, resolutions=[resolution],
                                    calibrate=calibrate, progress=True, precision=precision))
    report = validate_table(table, n, seed=seed, progress=True)
    y = np.array([s["measured_ms"] for s in report["subnets"]])
    cfgs = [config_from_dict(s["config"]) for s in report["subnets"]]
    methods = {table.calibration.method: {k: report[k] for k in ("within_5pct", "within_10pct", "mape", "rmse_ms")}}
    for method in METHODS[1:]:  # every correction, refit on the stored calibration measurements: no new runs
        if method not in methods:
            alt = LatencyTable.from_dict(table.to_dict())
            calibrate_table(alt, calibrate, method=method, progress=False)
            methods[method] = error_stats(alt.predict(cfgs), y)
    row = {"space": space, "resolution": resolution, "backend": suffix, "table": str(path), "keys": len(table.entries),
            "unsupported": len(table.unsupported), "build_s": table.build_seconds, "calibration_n": calibrate,
            "calibration": table.calibration.to_dict(), "overhead_ms": table.overhead_ms,
            "predict_configs_per_s": predict_rate(table), "validation": report, "by_method": methods,
            "measured_ms_range": [float(y.min()), float(y.max())], "load_normalized": table.normalized,
            "reference_ms": table.reference_ms}
    atomic_write_json(out_dir / f"{space}-r{resolution}-{suffix}-validation.json", row)
    return row


def markdown(rows: list[dict]) -> str:
    head = ("| backend | space | res | keys | build | predict (configs/s) | calib. | n | within ±5 % | within ±10 % | "
            "MAPE | RMSE ms | measured ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        v = r["validation"]
        stats = [("none", v["uncalibrated"]), *r["by_method"].items()]
        if "raw_medians" in v:  # the same predictions against plain medians (load swings not cancelled)
            cal = v["raw_medians"]
            stats += [("none, raw medians", cal["uncalibrated"]), (f"{r['calibration']['method']}, raw medians",
                                                                  cal["calibrated"])]
        for label, s in stats:
            lines.append(f"| {r.get('backend', 'ort-cpu')} | {r['space']} | {r['resolution']} | {r['keys']} | {r['build_s'] / 60:.1f} min | "
                         f"{r['predict_configs_per_s']:,.0f} | {label} | {v['n']} | {s['within_5pct']:.0%} | "
                         f"{s['within_10pct']:.0%} | {s['mape']:.1%} | {s['rmse_ms']:.3f} | "
                         f"{r['measured_ms_range'][0]:.2f}–{r['measured_ms_range'][1]:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default="runs/bench-latency")
    ap.add_argument("--n", type=int, default=50, help="held-out subnets validated per space")
    ap.add_argument("--calibrate", type=int, default=10, help="subnets measured to fit the calibration")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spaces", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--backends", default="ort-cpu",
                    help="comma-separated backends, each optionally :PRECISION (e.g. ort-cpu,openvino-cpu:bf16)")
    ap.add_argument("--resolutions", default="", help="SPACE=RES overrides, e.g. mbv3=160")
    a = ap.parse_args()
    out_dir = Path(a.out_dir)
    cases = dict(CASES)
    for item in filter(None, a.resolutions.split(",")):
        space, _, res = item.partition("=")
        cases[space] = int(res)
    rows = []
    for backend in a.backends.split(","):
        name, _, precision = backend.partition(":")
        for space in a.spaces.split(","):
            rows.append(run_case(space, cases[space], out_dir, a.n, a.calibrate, a.seed, name, precision or "fp32"))
            print(markdown(rows[-1:]), flush=True)
    print(markdown(rows))
    atomic_write_json(out_dir / "summary.json", rows)


if __name__ == "__main__":
    main()
