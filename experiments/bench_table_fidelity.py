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

from latency_tables import LatencyTable, build_table
from latency_tables.models import LEGACY_REFERENCE, export_reference_model, export_subnet
from latency_tables.sampling import policy_of, sample_configs
from latency_tables.validate import calibration_summary
from search_spaces import SubnetConfig
from search_spaces.files import atomic_write_json

HELD_OUT_SEED = 7


def plain_timing(models: list[tuple[Path, tuple[int, ...]]], threads: int, warmup: int = 20, runs: int = 120,
                 rounds: int = 6) -> tuple[list[float], list[float]]:
    """Median ms of each model as a user times it: default session options but the thread count, `warmup`
    untimed runs, then `rounds` round-robin passes of `runs / rounds` timed runs each. Returns the wall-clock
    medians (what the user sees) and, from the same runs, the calling thread's CPU-time medians (what the runs
    would take on a core of their own; equal to wall on a quiet machine)."""
    import onnxruntime as ort

    sessions = []
    for path, shape in models:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {s.get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        sessions.append((s, feed))
    for s, feed in sessions:
        for _ in range(warmup):
            s.run(None, feed)
    wall: list[list[float]] = [[] for _ in sessions]
    cpu: list[list[float]] = [[] for _ in sessions]
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for i, (s, feed) in enumerate(sessions):
            for _ in range(per_round):
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                s.run(None, feed)
                c1, t1 = time.thread_time_ns(), time.perf_counter_ns()
                wall[i].append((t1 - t0) / 1e6)
                cpu[i].append((c1 - c0) / 1e6)
    return [float(np.median(t)) for t in wall], [float(np.median(t)) for t in cpu]


def stats(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    signed = pred / meas - 1
    rel = np.abs(signed)
    return {"n": int(meas.size), "within_5pct": float(np.mean(rel <= 0.05)),
            "within_10pct": float(np.mean(rel <= 0.10)), "mape": float(rel.mean()),
            "signed_median": float(np.median(signed))}


def load_average() -> float:
    return float(os.getloadavg()[0])


def run(space: str, resolution: int, n: int, calibrate: int, out_dir: Path, gap_min: float, runs: int,
        rounds: int) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{space}-r{resolution}-ort-cpu.json"
    t0 = time.time()
    table = build_table(space, "ort-cpu", path, resolutions=[resolution], calibrate=calibrate, progress=True)
    built_at = time.time()
    sp = table.search_space
    exclude = {SubnetConfig.from_dict(m["config"]).to_json() for m in table.calibration_measurements}
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
        models.append(export_reference_model(ref_dir, 1, table.reference_model))
        models.append(export_reference_model(legacy_dir, 1, LEGACY_REFERENCE))
        for r in range(2):
            if r:
                wait = gap_min * 60 - (time.time() - summary["rounds"][0]["at"])
                if wait > 0:
                    print(f"waiting {wait / 60:.1f} min before the second timing round", flush=True)
                    time.sleep(wait)
            load = load_average()
            meas, cpu = plain_timing(models, table.backend_args["threads"], runs=runs, rounds=rounds)
            y, ref_ms, legacy_ms = np.array(meas[:-2]), meas[-2], meas[-1]
            yc = np.array(cpu[:-2])
            by_policy = {p: stats(pred[m], y[m]) for p in dict.fromkeys(pols)
                         for m in [np.array([q == p for q in pols])]}
            summary["rounds"].append({"at": time.time(), "minutes_after_build": (time.time() - built_at) / 60,
                                      "load_average": load, "calibrated": stats(pred, y),
                                      "uncalibrated": stats(raw, y), "by_policy": by_policy,
                                      "calibrated_vs_cpu_time": stats(pred, yc),
                                      "wall_over_cpu_median": float(np.median(y / yc)),
                                      "reference_subnet_ms": ref_ms, "legacy_reference_block_ms": legacy_ms,
                                      "reference_subnet_cpu_ms": cpu[-2], "legacy_reference_block_cpu_ms": cpu[-1],
                                      "measured_ms": y.tolist(), "measured_cpu_ms": yc.tolist()})
            print(markdown_round(summary, r), flush=True)
    a, b = summary["rounds"]
    ya, yb = np.array(a["measured_ms"]), np.array(b["measured_ms"])
    summary["drift"] = {"minutes": (b["at"] - a["at"]) / 60, "whole_models": float(np.median(yb / ya)) - 1,
                        "reference_subnet": b["reference_subnet_ms"] / a["reference_subnet_ms"] - 1,
                        "legacy_reference_block": b["legacy_reference_block_ms"] / a["legacy_reference_block_ms"] - 1}
    ca, cb = np.array(a["measured_cpu_ms"]), np.array(b["measured_cpu_ms"])
    summary["drift_cpu"] = {"whole_models": float(np.median(cb / ca)) - 1,
                            "reference_subnet": b["reference_subnet_cpu_ms"] / a["reference_subnet_cpu_ms"] - 1,
                            "legacy_reference_block": b["legacy_reference_block_cpu_ms"]
                            / a["legacy_reference_block_cpu_ms"] - 1}
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
              rd["calibrated_vs_cpu_time"])]
    for label, v in rows:
        lines.append(f"| {label} | {v['n']} | {v['within_5pct']:.0%} | {v['within_10pct']:.0%} | {v['mape']:.1%} | "
                     f"{v['signed_median']:+.1%} |")
    return "\n".join(lines)


def markdown_summary(s: dict[str, Any]) -> str:
    c = s["calibration"] or {}
    cv = ", ".join(f"{m} {v:.1%}" for m, v in (c.get("cv_mape") or {}).items())
    d, dc = s["drift"], s["drift_cpu"]
    return (f"\n{s['space']} @ {s['resolution']}: calibration **{c.get('method')}** "
            f"({'applied' if c.get('applied') else 'skipped'}), leave-one-out MAPE on {c.get('n')} calibration "
            f"subnets: {cv}\ndrift over {d['minutes']:.0f} min, wall: whole models {d['whole_models']:+.1%} (median), "
            f"reference subnet {d['reference_subnet']:+.1%}, old reference block {d['legacy_reference_block']:+.1%}"
            f"\n  CPU time: whole models {dc['whole_models']:+.1%}, reference subnet {dc['reference_subnet']:+.1%}, "
            f"old reference block {dc['legacy_reference_block']:+.1%}"
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
    a = ap.parse_args()
    s = run(a.space, a.resolution, a.n, a.calibrate, Path(a.out_dir), a.gap_min, a.runs, a.rounds)
    print(markdown_summary(s))


if __name__ == "__main__":
    main()
