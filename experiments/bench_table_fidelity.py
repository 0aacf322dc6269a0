"""Does a latency table hold when a user times the model? Build a table (resumable), then export N held-out
subnets (float, w8a8, w4a8 and mixed in turn, never a calibration subnet) and time each the way a user would:
a plain `onnxruntime.InferenceSession` with default options at the table's thread count, 20 warm-up runs, the
median of 120 runs taken in interleaved rounds -- no reference model, no load normalisation. Two such timing
rounds, `--gap-min` minutes apart, show how the table holds over time and whether the table's load reference
moves with whole models (it is timed in the same rounds).

    flock /tmp/hwnas-heavy.lock .venv/bin/python -m experiments.bench_table_fidelity --space mbv3 --resolution 160 --n 30

Prints, per timing round: within 5 % / 10 %, MAPE and median signed error (predicted / measured - 1) of the
calibrated and uncalibrated prediction, per policy; the calibration the table chose with every candidate's
cross-validated error; and the drift between rounds of whole models, the table's reference subnet and the old
reference block. Writes a JSON summary to --out-dir.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from latency_tables import LatencyTable, TableConfig, build_table
from latency_tables.models import LEGACY_REFERENCE, export_reference_model, export_subnet
from latency_tables.sampling import policy_of, sample_configs
from latency_tables.validate import calibration_summary
from search_spaces import config_from_dict
from search_spaces.files import atomic_write_json

HELD_OUT_SEED = 7


def plain_timing(models: list[tuple[Path, tuple[int, ...]]], threads: int, warmup: int = 20, runs: int = 120,
                 rounds: int = 6, companions: list[tuple[Path, tuple[int, ...]]] = ()) -> dict[str, np.ndarray]:
    """Each model as a user times it: default session options but the thread count, `warmup` untimed runs, then
    `rounds` round-robin passes of `runs / rounds` timed runs each; medians in ms. `wall` is what the user sees;
    `cpu`, from the same runs, the calling thread's CPU time (what the runs take on a core of their own; equal to
    wall on a quiet machine). Each companion (the table's reference subnet, the old reference block) is timed
    for a quarter as many runs right after every model's runs: `companion_wall[i, j]` is companion j's median
    next to model i, to see whether it moves as that model does."""
    import onnxruntime as ort

    def session(path: Path, shape: tuple[int, ...]):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {s.get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        return lambda: s.run(None, feed)

    def timed(run, n: int, wall: list[float], cpu: list[float]) -> None:
        for _ in range(n):
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            run()
            c1, t1 = time.thread_time_ns(), time.perf_counter_ns()
            wall.append((t1 - t0) / 1e6)
            cpu.append((c1 - c0) / 1e6)

    runs_m = [session(*m) for m in models]
    runs_c = [session(*m) for m in companions]
    for run in runs_m + runs_c:
        for _ in range(warmup):
            run()
    per_round = max(1, runs // rounds)
    w = [[] for _ in runs_m]
    c = [[] for _ in runs_m]
    cw = [[[] for _ in runs_c] for _ in runs_m]
    cc = [[[] for _ in runs_c] for _ in runs_m]
    for _ in range(rounds):
        for i, run in enumerate(runs_m):
            timed(run, per_round, w[i], c[i])
            for j, comp in enumerate(runs_c):
                timed(comp, max(1, per_round // 4), cw[i][j], cc[i][j])
    def medians(per_model: list) -> np.ndarray:
        return np.array([np.median(t, axis=-1) for t in per_model]).reshape(len(runs_m), -1)

    return {"wall": medians(w)[:, 0], "cpu": medians(c)[:, 0], "companion_wall": medians(cw),
            "companion_cpu": medians(cc)}


def stats(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    signed = pred / meas - 1
    rel = np.abs(signed)
    return {"n": int(meas.size), "within_5pct": float(np.mean(rel <= 0.05)),
            "within_10pct": float(np.mean(rel <= 0.10)), "mape": float(rel.mean()),
            "signed_median": float(np.median(signed))}


def load_average() -> float:
    return float(os.getloadavg()[0])


def run(space: str, resolution: int, n: int, calibrate: int, out_dir: Path, gap_min: float, runs: int,
        rounds: int, table_path: Path | None = None) -> dict[str, Any]:
    """`table_path`: time that ort-cpu table (its file's modification time counts as its build time) instead of
    building one -- e.g. a `make demo` run's, to see how it holds hours later."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if table_path is not None:
        path = table_path
        table = LatencyTable.load(path)
        if table.backend != "ort-cpu":
            raise SystemExit(f"--table: {path} is a {table.backend} table; this benchmark times with onnxruntime "
                             "on the CPU (ort-cpu)")
        built_at = path.stat().st_mtime
        space, resolution = table.space, table.resolutions[0]
    else:
        path = out_dir / f"{space}-r{resolution}-ort-cpu.json"
        table = build_table(TableConfig(space=space, backend="ort-cpu", out=path, resolutions=[resolution],
                                        calibrate=calibrate, progress=True))
        built_at = time.time()
    sp = table.search_space
    exclude = {config_from_dict(m["config"]).to_json() for m in table.calibration_measurements}
    configs = sample_configs(sp, n, HELD_OUT_SEED, table.resolutions, exclude=exclude, supported=table.supported,
                             quantize=table.quantized)
    pred = table.predict(configs)
    raw = table.predict(configs, calibrated=False)
    pols = [policy_of(c) for c in configs]
    summary: dict[str, Any] = {"space": space, "resolution": resolution, "table": str(path),
                               "build_s": table.build_seconds, "calibration": calibration_summary(table),
                               "reference_model": table.reference_model, "reference_ms": table.reference_ms,
                               "timing": {"warmup": 20, "runs": runs, "rounds": rounds, "threads":
                                          table.backend_args["threads"]}, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="hwnas-fidelity-") as tmp:
        models = [export_subnet(sp, c, tmp) for c in configs]
        ref_dir, legacy_dir = Path(tmp) / "ref", Path(tmp) / "legacy"
        ref_dir.mkdir()
        legacy_dir.mkdir()
        companions = [export_reference_model(ref_dir, 1, table.reference_model),
                      export_reference_model(legacy_dir, 1, LEGACY_REFERENCE)]
        for r in range(2):
            if r:
                wait = gap_min * 60 - (time.time() - summary["rounds"][0]["at"])
                if wait > 0:
                    print(f"waiting {wait / 60:.1f} min before the second timing round", flush=True)
                    time.sleep(wait)
            load = load_average()
            t = plain_timing(models, table.backend_args["threads"], runs=runs, rounds=rounds, companions=companions)
            y, yc = t["wall"], t["cpu"]
            masks = {p: np.array([q == p for q in pols]) for p in dict.fromkeys(pols)}
            by_policy = {p: stats(pred[m], y[m]) for p, m in masks.items()}
            by_policy_cpu = {p: {"calibrated": stats(pred[m], yc[m]), "uncalibrated": stats(raw[m], yc[m])}
                             for p, m in masks.items()}
            summary["rounds"].append({"at": time.time(), "minutes_after_build": (time.time() - built_at) / 60,
                                      "load_average": load, "calibrated": stats(pred, y),
                                      "uncalibrated": stats(raw, y), "by_policy": by_policy,
                                      "calibrated_vs_cpu_time": stats(pred, yc), "by_policy_cpu": by_policy_cpu,
                                      "uncalibrated_vs_cpu_time": stats(raw, yc),
                                      "wall_over_cpu_median": float(np.median(y / yc)),
                                      "measured_ms": y.tolist(), "measured_cpu_ms": yc.tolist(),
                                      "companions_ms": t["companion_wall"].tolist(),
                                      "companions_cpu_ms": t["companion_cpu"].tolist()})
            print(markdown_round(summary, r), flush=True)
    a, b = summary["rounds"]
    summary["drift"] = {"minutes": (b["at"] - a["at"]) / 60}
    for clock, key, comp in (("wall", "measured_ms", "companions_ms"), ("cpu", "measured_cpu_ms", "companions_cpu_ms")):
        model = np.array(b[key]) / np.array(a[key])  # per subnet: how much it moved between the rounds
        near = np.array(b[comp]) / np.array(a[comp])  # the companions timed next to it, same rounds
        summary["drift"][clock] = {
            "whole_models": float(np.median(model)) - 1,
            **{name: {"moved": float(np.median(near[:, j])) - 1,
                      "tracking_error": float(np.median(np.abs(near[:, j] / model - 1)))}
               for j, name in enumerate(("reference_subnet", "legacy_reference_block"))}}
    summary["subnets"] = [{"config": c.to_dict(), "policy": p, "predicted_ms": float(q), "uncalibrated_ms": float(u)}
                          for c, p, q, u in zip(configs, pols, pred, raw)]
    summary["total_s"] = time.time() - t0
    atomic_write_json(out_dir / f"{space}-r{resolution}-fidelity.json", summary)
    return summary


def markdown_round(s: dict[str, Any], r: int) -> str:
    rd = s["rounds"][r]
    lines = [f"\n{s['space']} @ {s['resolution']} px, timing round {r + 1}: {rd['minutes_after_build']:.0f} min after "
             f"the build, load average {rd['load_average']:.1f}",
             "| prediction | n | within ±5 % | within ±10 % | MAPE | median signed error |", "|---|---|---|---|---|---|"]
    rows = [("calibrated (table default)", rd["calibrated"]), ("uncalibrated", rd["uncalibrated"])]
    rows += [(f"calibrated, {p}", v) for p, v in rd["by_policy"].items()]
    rows += [(f"calibrated vs the same runs' CPU time (wall / CPU {rd['wall_over_cpu_median']:.2f})",
              rd["calibrated_vs_cpu_time"]), ("uncalibrated vs CPU time", rd["uncalibrated_vs_cpu_time"])]
    rows += [(f"{kind} vs CPU time, {p}", v[kind]) for p, v in rd["by_policy_cpu"].items()
             for kind in ("calibrated", "uncalibrated")]
    for label, v in rows:
        lines.append(f"| {label} | {v['n']} | {v['within_5pct']:.0%} | {v['within_10pct']:.0%} | {v['mape']:.1%} | "
                     f"{v['signed_median']:+.1%} |")
    return "\n".join(lines)


def markdown_summary(s: dict[str, Any]) -> str:
    c = s["calibration"] or {}
    cv = ", ".join(f"{m} {v:.1%}" for m, v in (c.get("cv_mape") or {}).items())
    d = s["drift"]
    lines = [f"\n{s['space']} @ {s['resolution']}: calibration **{c.get('method')}** "
             f"({'applied' if c.get('applied') else 'skipped'}), leave-one-out MAPE on {c.get('n')} calibration "
             f"subnets: {cv}", f"drift between the rounds ({d['minutes']:.0f} min apart), median over subnets; "
             "tracking error = median |companion's move / the subnet's move - 1|:"]
    for clock in ("wall", "cpu"):
        x = d[clock]
        lines.append(f"  {clock}: whole models {x['whole_models']:+.1%}; reference subnet "
                     f"{x['reference_subnet']['moved']:+.1%} (tracking error {x['reference_subnet']['tracking_error']:.1%}); "
                     f"old reference block {x['legacy_reference_block']['moved']:+.1%} "
                     f"(tracking error {x['legacy_reference_block']['tracking_error']:.1%})")
    return ("\n".join(lines) +
            f"\nbuild {s['build_s'] / 60:.1f} min, benchmark {s['total_s'] / 60:.1f} min")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="mbv3")
    ap.add_argument("--resolution", type=int, default=160)
    ap.add_argument("--n", type=int, default=30, help="held-out subnets timed")
    ap.add_argument("--calibrate", type=int, default=12, help="calibration subnets measured by the build")
    ap.add_argument("--gap-min", type=float, default=0.0, help="minutes between the starts of the two rounds")
    ap.add_argument("--runs", type=int, default=120, help="timed runs per subnet and round (median)")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved passes the runs are split into")
    ap.add_argument("--out-dir", default="runs/bench-fidelity")
    ap.add_argument("--table", type=Path, help="an existing ort-cpu table to time (no build; --space, --resolution "
                                                "and --calibrate are then the table's)")
    a = ap.parse_args()
    s = run(a.space, a.resolution, a.n, a.calibrate, Path(a.out_dir), a.gap_min, a.runs, a.rounds, a.table)
    print(markdown_summary(s))


if __name__ == "__main__":
    main()
