"""Scaling of the joint search (issue 5).

    flock /tmp/hwnas-heavy.lock .venv/bin/python -m experiments.bench_search_scaling [--out runs/bench-search-scaling]

1. Measured evaluator, 1 vs 2 Ray worker actors sharing one journal study: every trial exports its subnet to ONNX,
   quantizes it per its policy and measures it with ONNX Runtime on this CPU (`latency_tables.measure_subnet`,
   backend ort-cpu); accuracy from a predictor. Wall time and speed-up.
2. Predicted evaluator with 0, 2 and 2 forced Ray workers (`--workers 2` runs it in this process: section 7 of
   experiments/results/search.md says why).
3. Memory: a 20k-trial predicted search (mbv3, NSGA-II) in this process; RSS sampled every 1,000 trials against
   the journal's size, so growth can be compared with what the stored trials themselves take.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measured_scaling(args, out: Path) -> dict:
    from experiments.bench_search import fit_synthetic_predictor
    from nas.search import SearchConfig, run_search
    from nas.ray_session import ensure_ray

    pred = fit_synthetic_predictor("mbv3-tiny", out / "predictor-mbv3-tiny-synthetic", n=400)
    import ray

    started = ensure_ray(None, num_cpus=2)
    rows = {}
    try:
        for w in (1, 2):
            d = out / f"measured-w{w}"
            shutil.rmtree(d, ignore_errors=True)
            cfg = SearchConfig(space="mbv3-tiny", out=str(d), predictor=str(pred), evaluator="measured",
                               backend="ort-cpu", sampler="nsga2", population_size=8, trials=args.measured_trials,
                               workers=w, seed=0, objectives=("accuracy", "latency"))
            t0 = time.perf_counter()
            res = run_search(cfg)
            wall = time.perf_counter() - t0
            rows[w] = {"trials": res.n_trials, "wall_s": wall, "trials_per_s": res.trials_per_second,
                       "search_s": res.summary["wall_seconds"], "lost_workers": res.summary["workers"].get("lost_workers")}
            print(f"measured evaluator, {w} worker(s): {res.n_trials} trials, search {res.summary['wall_seconds']:.1f} s "
                  f"({res.trials_per_second:.2f} trials/s)", flush=True)
    finally:
        if started:
            ray.shutdown()
    rows["speedup"] = rows[1]["search_s"] / rows[2]["search_s"]
    print(f"speed-up 2 vs 1 workers: {rows['speedup']:.2f}x", flush=True)
    return rows


def predicted_workers(args, out: Path) -> dict:
    """The predicted evaluator with `workers` 0, 2 (which runs in this process: `run_search`) and 2 forced onto
    Ray actors, on mbv3-tiny: trials/s and where the forced workers' time goes (Ray start, actors ready, each
    worker's evaluation / journal write / sync of the other's trials)."""
    from experiments.bench_search import fit_synthetic_predictor
    from nas.search import SearchConfig, run_search

    pred = fit_synthetic_predictor("mbv3-tiny", out / "predictor-mbv3-tiny-synthetic", n=400)
    rows = {}
    for name, kw in (("in-process", {"workers": 0}), ("workers 2", {"workers": 2}),
                     ("workers 2, forced", {"workers": 2, "force_workers": True})):
        d = out / f"predicted-{name.replace(' ', '').replace(',', '-')}"
        shutil.rmtree(d, ignore_errors=True)
        t0 = time.perf_counter()
        res = run_search(SearchConfig(space="mbv3-tiny", out=str(d), predictor=str(pred), table=args.tiny_table,
                                      trials=args.predicted_trials, seed=0, **kw))
        w = res.summary["workers"]
        rows[name] = {"trials": res.n_trials, "trials_per_s": res.trials_per_second, "wall_s": time.perf_counter() - t0,
                      "timings": w.get("timings"), "stats": w.get("stats"), "in_process": w.get("in_process")}
        print(f"predicted, {name}: {res.n_trials} trials, {res.trials_per_second:.0f} trials/s"
              + (f"; timings {w['timings']}" if w.get("timings") else "") + "; per worker: "
              + "; ".join(f"run {s['seconds']:.1f} s = eval {s['eval_seconds']:.1f} + write {s['flush_seconds']:.1f}"
                          f" + sync {s.get('sync_seconds', 0):.1f} + ask/tell" for s in w.get("stats") or []),
              flush=True)
    return rows


def memory_curve(args, out: Path) -> dict:
    from experiments.bench_search import fit_synthetic_predictor
    from nas.search import SearchConfig, run_search

    pred = args.predictor or str(fit_synthetic_predictor("mbv3", Path("runs/bench-search") /
                                                         "predictor-mbv3-synthetic-3000", n=3000))
    d = out / "memory"
    shutil.rmtree(d, ignore_errors=True)
    samples = []
    base = rss_mb()
    t0 = time.perf_counter()

    def progress(done: int, target: int) -> None:
        if done % 1000 == 0 or done == target:
            j = d / "study.journal"
            samples.append({"trials": done, "rss_mb": rss_mb(), "peak_rss_mb": hwm_mb(),
                            "journal_mb": j.stat().st_size / 1e6 if j.exists() else 0.0,
                            "seconds": time.perf_counter() - t0})

    res = run_search(SearchConfig(space="mbv3", out=str(d), predictor=pred, table=args.table, sampler="nsga2",
                                  trials=args.memory_trials, seed=0), progress=progress)
    # after the run, the front / summary step reads every trial back from the journal
    samples.append({"trials": res.n_trials, "rss_mb": rss_mb(), "peak_rss_mb": hwm_mb(), "after_output": True,
                    "journal_mb": (d / "study.journal").stat().st_size / 1e6,
                    "seconds": time.perf_counter() - t0})
    print(f"memory: {res.n_trials} trials at {res.trials_per_second:.0f} trials/s; RSS before {base:.0f} MB")
    print(f"{'trials':>7} | {'RSS MB':>7} | {'peak MB':>7} | {'journal MB':>10}")
    for s in samples:
        if s["trials"] % 2000 == 0 or s is samples[-1]:
            print(f"{s['trials']:>7} | {s['rss_mb']:>7.0f} | {s['peak_rss_mb']:>7.0f} | {s['journal_mb']:>10.1f}")
    print(f"after writing the outputs (every trial read back from the journal): RSS {samples[-1]['rss_mb']:.0f} MB, "
          f"peak {samples[-1]['peak_rss_mb']:.0f} MB")
    a, b = samples[len(samples) // 4], samples[-2]
    per_trial_kb = (b["rss_mb"] - a["rss_mb"]) * 1024 / max(1, b["trials"] - a["trials"])
    journal_kb = b["journal_mb"] * 1e3 / max(1, b["trials"])
    print(f"RSS growth {per_trial_kb:.1f} KB/trial (from {a['trials']} to {b['trials']} trials); "
          f"journal {journal_kb:.1f} KB/trial", flush=True)
    return {"samples": samples, "rss_before_mb": base, "rss_growth_kb_per_trial": per_trial_kb,
            "journal_kb_per_trial": journal_kb, "trials_per_s": res.trials_per_second}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/bench-search-scaling")
    ap.add_argument("--table", default="runs/bench-latency/mbv3-r224-ort-cpu.json")
    ap.add_argument("--predictor", default=None)
    ap.add_argument("--measured-trials", type=int, default=16)
    ap.add_argument("--memory-trials", type=int, default=20000)
    ap.add_argument("--skip-measured", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-predicted-workers", action="store_true")
    ap.add_argument("--tiny-table", default="runs/tables/mbv3-tiny-r32-ort-cpu.json",
                    help="mbv3-tiny latency table for the predicted-workers part")
    ap.add_argument("--predicted-trials", type=int, default=3000)
    args = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {}
    if not args.skip_memory:
        result["memory"] = memory_curve(args, out)
    if not args.skip_predicted_workers:
        result["predicted_workers"] = predicted_workers(args, out)
    if not args.skip_measured:
        result["measured"] = measured_scaling(args, out)
    (out / "bench_search_scaling.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {out / 'bench_search_scaling.json'}")


if __name__ == "__main__":
    main()
