"""Benchmark of the joint search on `mbv3` (issue 5).

    flock /tmp/hwnas-heavy.lock .venv/bin/python -m experiments.bench_search \
        --table runs/bench-latency/mbv3-r224-ort-cpu.json [--predictor DIR] [--out runs/bench-search]

Prints, at equal evaluation counts (1k, 5k, 20k), the hypervolume (accuracy, latency, size; normalised by the
reference front's ideal and nadir, reference point 1.1) of NSGA-II, TPE and random search (Optuna, through
`hwnas search`'s engine and storage: the journal file, bookkeeping included) and of the Once-for-All-style
evolutionary baseline (population 100, parent ratio 0.25, mutation 0.1, one run per latency budget), as a fraction
of the reference front's hypervolume (200k random samples + every search); the predicted evaluator's throughput;
and the wall time each method needs to reach 98 % of the reference (the OFA-style runs continue up to
--ofa-max-evals for it). `nsga2-before` is NSGA-II with Optuna's own operators on the packed `block-dense`
encoding (the default before `nas/search/operators.py`), `nsga2:block-dense` the packed encoding with the new
operators, both run beside the default (`field-dense`) against the same reference.

Without --predictor it fits an MLP predictor (hwnas's own `predictors`) on 4,000 configs labelled by
`predictors.synthetic.synthetic_accuracy` (no ImageNet supernet can be trained here) and says so.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

# `nsga2-before`: NSGA-II as it was before the informed first generation, the field-wise mutation and crossover and
# the per-field default encoding (Optuna's random first generation, uniform crossover and re-draw mutation of
# packed block options), run beside the default on the same reference
BEFORE = {"init": "random", "mutation": "redraw", "crossover": "uniform", "encoding": "block-dense"}


def fit_synthetic_predictor(space_name: str, out: Path, n: int = 4000, seed: int = 0) -> Path:
    from predictors.bundle import fit_predictor
    from predictors.synthetic import synthetic_dataset
    from search_spaces import get_space

    if (out / "predictor.json").is_file():
        return out
    pred, report = fit_predictor(synthetic_dataset(get_space(space_name), n, seed), kind="mlp", seed=seed)
    pred.save(out)
    (out / "fit_report.json").write_text(json.dumps(report, indent=1, default=str))
    return out


def optuna_run(sampler: str, n: int, args, out: Path, time_cap: float) -> dict:
    """One search through the engine (journal storage, in-process); per-trial values and completion times."""
    import optuna

    from nas.search import SearchConfig
    from nas.search.api import run_search
    from nas.search.storage import open_storage

    label = sampler
    sampler, _, encoding = sampler.partition(":")
    d = out / label.replace(":", "-")
    if d.exists():
        import shutil

        shutil.rmtree(d)
    extra = BEFORE if sampler == "nsga2-before" else {}
    sampler = "nsga2" if sampler == "nsga2-before" else sampler
    cfg = SearchConfig(space=args.space, out=str(d), predictor=args.predictor, table=args.table, sampler=sampler,
                       trials=n, seed=args.seed, objectives=("accuracy", "latency", "size"),
                       **{"encoding": encoding or None, **extra})
    # run in chunks so a slow sampler (TPE) stops at the time cap with the trials it has
    t0 = time.perf_counter()
    done, chunks, res = 0, [], None
    step = 1000 if sampler == "tpe" else n
    while done < n and time.perf_counter() - t0 < time_cap:
        done = min(n, done + step)
        c0 = time.perf_counter()
        res = run_search(SearchConfig(**{**cfg.__dict__, "trials": done}))
        chunks.append((done, time.perf_counter() - c0))
    wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=res.study, storage=open_storage(str(d / "study.journal")))
    trials = study.get_trials(deepcopy=False)
    values = np.array([t.values for t in trials], dtype=float)
    t_complete = np.array([(t.datetime_complete - trials[0].datetime_start).total_seconds() for t in trials])
    return {"values": values, "t": t_complete, "n": len(trials), "wall": wall, "tps": len(trials) / wall,
            "chunks": chunks, "summary_tps": res.trials_per_second}


def ofa_run(ev, n: int, budgets: list[float], seed: int, space) -> dict:
    from nas.search.evolution import evolution_search

    t0 = time.perf_counter()
    idx, m = evolution_search(space, ev, n, budgets, seed=seed)
    wall = time.perf_counter() - t0
    values = np.stack([m.accuracy, m.latency_ms, m.size_bytes / 1e6], axis=1)
    return {"values": values, "n": len(values), "wall": wall, "tps": len(values) / wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="mbv3")
    ap.add_argument("--table", default="runs/bench-latency/mbv3-r224-ort-cpu.json")
    ap.add_argument("--predictor", default=None)
    ap.add_argument("--out", default="runs/bench-search")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--counts", default="1000,5000,20000")
    ap.add_argument("--reference-samples", type=int, default=200_000)
    ap.add_argument("--tpe-time-cap", type=float, default=300.0)
    ap.add_argument("--ofa-max-evals", type=int, default=200_000,
                    help="OFA-style runs continue past the counts (steps of x1.3-2) up to this, for its time to 98 %%")
    ap.add_argument("--samplers", default="nsga2,nsga2:block-dense,nsga2-before,random,tpe",
                    help="sampler[:encoding], comma separated")
    ap.add_argument("--fit-samples", type=int, default=4000, help="synthetic labels for the fitted predictor")
    args = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from nas.search import Normalizer, PredictedEvaluator, hypervolume
    from nas.search.api import table_resolutions
    from nas.search.evolution import _Genes
    from nas.search.loaders import load_predictor, load_table
    from search_spaces import get_space

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    note = "given"
    if args.predictor is None:
        args.predictor = str(fit_synthetic_predictor(args.space, out / f"predictor-{args.space}-synthetic-{args.fit_samples}",
                                                     n=args.fit_samples))
        note = f"MLP fitted on {args.fit_samples} synthetic_accuracy labels (seed 0)"
    space = get_space(args.space)
    table = load_table(args.table)
    ev = PredictedEvaluator(space, load_predictor(args.predictor), table)
    res = table_resolutions(space, table)
    counts = [int(c) for c in args.counts.split(",")]
    N = max(counts)
    print(f"space {args.space}, table {args.table} ({table.device_tag}, resolutions {res or 'all'}), "
          f"predictor: {note}", flush=True)

    # uniform random configs over the searched resolutions (the same gene sampler the baseline uses)
    space_r = get_space(args.space, resolutions=res)
    genes = _Genes(space_r)

    def random_values(n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        g = genes.random(rng, n)
        vals = []
        for lo in range(0, n, 20000):
            m = ev.evaluate_indices(genes.to_indices(g[lo:lo + 20000]))
            vals.append(np.stack([m.accuracy, m.latency_ms, m.size_bytes / 1e6], axis=1))
        return np.concatenate(vals)

    t0 = time.perf_counter()
    ref_random = random_values(args.reference_samples, 12345)
    t_ref = time.perf_counter() - t0
    print(f"reference: {args.reference_samples} random samples evaluated in {t_ref:.1f} s "
          f"({args.reference_samples / t_ref:.0f} evals/s, vectorised, no Optuna)", flush=True)

    runs: dict[str, dict] = {}
    for s in args.samplers.split(","):
        cap = args.tpe_time_cap if s == "tpe" else 1e9
        r = optuna_run(s, N, args, out, cap)
        runs[s] = r
        print(f"{s}: {r['n']} trials in {r['wall']:.1f} s = {r['tps']:.0f} trials/s (engine-reported "
              f"{r['summary_tps']:.0f}/s)", flush=True)

    # OFA-style baseline, one run per evaluation count; latency budgets = 5 quantiles of random latencies
    lat_q = np.quantile(ref_random[:, 1], [0.1, 0.3, 0.5, 0.7, 0.9]).tolist()
    ofa: dict[int, dict] = {}
    grid = [1000, 2000, 5000, 10000, 15000, 20000, 30000, 40000, 50000, 70000, 100000, 140000, 200000, 300000, 400000]
    for n in sorted(set(counts + [c for c in grid if c <= args.ofa_max_evals])):
        ofa[n] = ofa_run(ev, n, lat_q, args.seed, space_r)
        print(f"ofa-evolution {n}: {ofa[n]['wall']:.1f} s ({ofa[n]['tps']:.0f} evals/s)", flush=True)

    # reference front and normaliser
    allv = [ref_random] + [r["values"] for r in runs.values()] + [o["values"] for o in ofa.values()]
    norm = Normalizer.from_values(("accuracy", "latency", "size"), np.concatenate(allv))
    hv_ref = hypervolume(np.concatenate(allv), norm)
    hv = lambda v: hypervolume(v, norm) / hv_ref  # noqa: E731
    table_rows = []
    header = ["evals"] + [f"{s}" for s in runs] + ["ofa-evolution"]
    for n in counts:
        row = [n] + [hv(r["values"][:n]) if r["n"] >= n else None for r in runs.values()] + [hv(ofa[n]["values"])]
        table_rows.append(row)
    print("\nhypervolume / reference hypervolume (accuracy, latency, size):")
    print(" | ".join(f"{h:>14}" for h in header))
    for row in table_rows:
        print(" | ".join(f"{x:>14}" if isinstance(x, int) else (f"{x:>14.4f}" if x is not None else f"{'-':>14}")
                         for x in row))

    # time to reach 98 % of the reference
    def first_reach(r: dict) -> tuple[int | None, float | None]:
        grid = sorted(set(list(range(250, r["n"] + 1, 250)) + [r["n"]]))
        for n in grid:
            if hv(r["values"][:n]) >= 0.98:
                return n, float(r["t"][n - 1])
        return None, None

    reach = {s: first_reach(r) for s, r in runs.items()}
    ofa_reach = next(((n, o["wall"]) for n, o in sorted(ofa.items()) if hv(o["values"]) >= 0.98), (None, None))
    print("\ntime to reach 98 % of the reference hypervolume (wall seconds, this run; Optuna searches: from the "
          "first trial's start to the completion of the trial that reaches it):")
    for s, (n, t) in reach.items():
        print(f"  {s:>18}: " + (f"{n} evals, {t:.1f} s" if n else f"not reached in {runs[s]['n']} evals"))
    print(f"  {'ofa-evolution':>18}: " + (f"{ofa_reach[0]} evals, {ofa_reach[1]:.1f} s (one run of that size)"
                                          if ofa_reach[0] else f"not reached in {max(ofa)} evals (best "
                                          f"{max(hv(o['values']) for o in ofa.values()):.4f})"))
    print("\nofa-evolution beyond the counts: " + ", ".join(f"{n}: {hv(o['values']):.4f} ({o['wall']:.1f} s)"
                                                         for n, o in sorted(ofa.items()) if n not in counts))
    result = {
        "space": args.space, "table": args.table, "device": table.device_tag, "resolutions": res,
        "predictor": args.predictor, "predictor_note": note, "reference_samples": args.reference_samples,
        "hv_reference": hv_ref, "normalizer": norm.to_dict(), "counts": counts,
        "hv_fraction": {h: [row[i] for row in table_rows] for i, h in enumerate(header) if i > 0},
        "throughput": {s: {"trials": r["n"], "wall_s": r["wall"], "trials_per_s": r["tps"],
                           "engine_trials_per_s": r["summary_tps"]} for s, r in runs.items()},
        "ofa": {n: {"wall_s": o["wall"], "evals_per_s": o["tps"], "hv_fraction": hv(o["values"])}
                for n, o in ofa.items()},
        "ofa_latency_budgets_ms": lat_q,
        "nsga2_before": BEFORE, "reach_grid": 250,
        "reach_98": {**{s: {"evals": n, "seconds": t} for s, (n, t) in reach.items()},
                     "ofa-evolution": {"evals": ofa_reach[0], "seconds": ofa_reach[1]}},
    }
    (out / "bench_search.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {out / 'bench_search.json'}")


if __name__ == "__main__":
    main()
