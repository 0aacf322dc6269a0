"""Options of the per-budget refinement (`nas.search.refine.refine_for_budget`) measured against each other and
against Once-for-All's own `EvolutionFinder`, at equal evaluations per budget (issue 15's ablations).

    .venv/bin/python -m experiments.bench_refine_options --table TABLE.json [--predictor DIR] [--space mbv3-tiny] \
        [--n 5000] [--front 1500] [--seeds 0,1,2] [--budgets 0.3,0.45] [--variants ofa,refine,...] \
        [--options '{"n_parents": 10}']

Variants (each prints its best predicted accuracy under every budget, per seed, then median / min / max):
- `ofa`: the `ofa` package's EvolutionFinder with `--n` evaluations (experiments/ofa_baseline.py);
- `reimpl`: hwnas's re-implementation of it (`nas.search.evolution.evolve_once`), which runs under budgets where
  the package's `random_valid_sample` never completes;
- `budgeted`: `run_search` with `latency_ms=B` and `--n` trials;
- `refine`: an unconstrained front of `--front` trials (one per seed, shared by the budgets, as the pipeline), then `refine_for_budget(**--options)` with what is left
  of `--n` (every evaluation counted, the front's included);
- `refine-float`: the same on float subnets with keep 1.0 only.
Without --budgets: the 25th/50th/75th percentiles of 50,000 random subnets' latency (as bench_search).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="mbv3-tiny")
    ap.add_argument("--table", required=True)
    ap.add_argument("--predictor", default=None, help="predictor directory (default: noise-free synthetic)")
    ap.add_argument("--n", type=int, default=5000, help="evaluations per budget")
    ap.add_argument("--front", type=int, default=1500, help="trials of the front the refinement starts from")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default=None)
    ap.add_argument("--variants", default="ofa,refine")
    ap.add_argument("--options", default="{}", help="JSON keyword arguments of refine_for_budget")
    ap.add_argument("--out", default="runs/bench-refine-options")
    a = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from experiments.bench_search import CountingEvaluator, hwnas_front_refine
    from nas.search import PredictedEvaluator, SearchConfig, run_search
    from nas.search.api import table_resolutions
    from nas.search.genes import Genes
    from nas.search.loaders import load_predictor, load_table
    from search_spaces import get_space

    out = Path(a.out)
    full, table = get_space(a.space), load_table(a.table)
    space = get_space(a.space, resolutions=table_resolutions(full, table))
    predictor_dir = a.predictor
    if a.predictor:
        pred = load_predictor(a.predictor)
    else:
        from experiments.synthetic_predictor import SyntheticPredictor
        from predictors.bundle import FitConfig, fit_predictor
        from predictors.synthetic import synthetic_dataset

        pred = SyntheticPredictor(full)
        predictor_dir = str(out / "predictor-placeholder")  # run_search records one; `ev` is what it searches with
        if not (out / "predictor-placeholder" / "predictor.json").is_file():
            fit_predictor(FitConfig(dataset=synthetic_dataset(full, 200, 0), kind="ridge", seed=0, out=predictor_dir))
    ev = PredictedEvaluator(full, pred, table)
    m = ev.evaluate_indices(Genes(space).to_indices(Genes(space).random(np.random.default_rng(12345), 50000)))
    lat = m.latency_ms[m.supported]
    budgets = [float(x) for x in a.budgets.split(",")] if a.budgets else \
        [float(b) for b in np.quantile(lat, [0.25, 0.5, 0.75])]
    print(f"budgets {[round(b, 4) for b in budgets]} ms; random subnets under them: "
          f"{[float((lat <= b).mean()) for b in budgets]}", flush=True)
    options = json.loads(a.options)

    def best(ms, b: float) -> float:  # type: ignore[no-untyped-def]
        ok = ms.supported & (ms.latency_ms <= b)
        return float(ms.accuracy[ok].max()) if ok.any() else float("nan")

    def one_budget(var: str, seed: int, i: int, b: float) -> float:
        if var == "ofa":
            from experiments.ofa_baseline import run_evolution_finder

            return best(run_evolution_finder(space, ev, a.n, b, seed * 1000 + i)[1], b)
        if var == "reimpl":
            from nas.search.evolution import evolve_once

            return best(evolve_once(space, ev, a.n, b, seed * 1000 + i)[1], b)
        c = CountingEvaluator(ev)
        d = out / f"{var}-{seed}-{i}"
        shutil.rmtree(d, ignore_errors=True)
        r = run_search(SearchConfig(space=a.space, out=str(d), predictor=predictor_dir, table=a.table,
                                    trials=a.n, seed=seed, workers=0, latency_ms=b), evaluator=c)
        assert c.n <= a.n, (c.n, a.n)
        return max((t.metrics["accuracy"] for t in r.trials if t.metrics["supported"]
                    and t.metrics["latency_ms"] <= b), default=float("nan"))

    variants = a.variants.split(",")
    unknown = set(variants) - {"ofa", "reimpl", "budgeted", "refine", "refine-float"}
    if unknown:
        raise SystemExit(f"unknown variant {sorted(unknown)[0]!r}: ofa, reimpl, budgeted, refine, refine-float")
    res: dict[str, list[list[float]]] = {}
    for seed in [int(s) for s in a.seeds.split(",")]:
        for var in variants:
            t0 = time.perf_counter()
            if var in ("refine", "refine-float"):  # one front per seed, serving every budget (as the pipeline)
                paths = argparse.Namespace(space=a.space, predictor_dir=predictor_dir, table=a.table)
                row = hwnas_front_refine(ev, paths, space, a.n, budgets, seed, out, a.front / a.n,
                                         float_only=var == "refine-float", **options)
            else:
                row = [one_budget(var, seed, i, b) for i, b in enumerate(budgets)]
            res.setdefault(var, []).append(row)
            print(f"seed {seed} {var}: {np.round(row, 3).tolist()} ({time.perf_counter() - t0:.1f} s)", flush=True)
    for var, rows in res.items():
        arr = np.array(rows)
        print(f"{var}: median {np.round(np.median(arr, 0), 3).tolist()} min {np.round(arr.min(0), 3).tolist()} "
              f"max {np.round(arr.max(0), 3).tolist()}")


if __name__ == "__main__":
    main()
