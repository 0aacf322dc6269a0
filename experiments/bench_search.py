"""Benchmark of the search against honest baselines, at equal evaluation counts (issue 15).

    .venv/bin/python -m experiments.bench_search --space mbv3-tiny --table TABLE.json \
        [--predictor DIR] [--counts 1000,5000,20000] [--seeds 0,1,2] [--out runs/bench-search]

Every method searches the same space with the same predicted evaluator (`PredictedEvaluator`: accuracy
predictor + latency table + exact size):

- `hwnas`: `run_search` as `hwnas search` runs it (NSGA-II, its defaults, journal storage, bookkeeping included);
- `random`: the same engine with Optuna's random sampler;
- `optuna-nsga2`, `optuna-tpe`: Optuna's own samplers on a plain in-memory study, `SearchSpace.suggest`'s
  parameters, one ask/evaluate/tell per trial (each capped at --optuna-time-cap seconds per run);
- `pymoo-nsga2`: pymoo's NSGA-II on integer genes as its documentation runs integer problems (integer random
  sampling, SBX and polynomial mutation with rounding repair, duplicates eliminated), population 50;
- `ofa-evolution`: Once-for-All's own `EvolutionFinder` from the `ofa` package (`experiments/ofa_baseline.py`),
  once per latency budget; `ofa-reimpl`: hwnas's numpy re-implementation of it (`nas.search.evolution`).

Tables (median over --seeds, spread = max - min):
1. hypervolume (accuracy, latency, size) at each count: the fraction of the reference box dominated, on one fixed
   normalisation (ideal and nadir of the union of every method's points and --reference-samples random subnets,
   reference point 1.1; never above 1), and that as a fraction of the union's own hypervolume;
2. best predicted accuracy under 3 latency budgets (the 25th, 50th and 75th percentiles of random subnets'
   latency) at --budget-evals evaluations *per budget*: hwnas with `--latency-ms B`
   on the joint space and on float subnets with keep 1.0, OFA's EvolutionFinder, the re-implementation, and what
   each multi-objective run found under B with its whole --budget-evals;
3. wall time to reach 98 % of the union's hypervolume;
4. throughput.

Without --predictor the accuracy is `predictors.synthetic.synthetic_accuracy` without noise
(`experiments/synthetic_predictor.py`: a fitted predictor clips at its training range and ties every good subnet).
Needs the `bench` extra (`pip install -e '.[bench]'`: ofa, pymoo, moocore).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

OBJECTIVES = ("accuracy", "latency", "size")


def fit_synthetic_predictor(space_name: str, out: Path, n: int = 4000, seed: int = 0) -> Path:
    """An MLP fitted on `n` `synthetic_accuracy` labels, saved to `out` (reused when there): a real predictor
    directory for runs that rebuild their evaluator from files (Ray workers, `bench_search_scaling`)."""
    from predictors.bundle import FitConfig, fit_predictor
    from predictors.synthetic import synthetic_dataset
    from search_spaces import get_space

    if (out / "predictor.json").is_file():
        return out
    _, report = fit_predictor(FitConfig(dataset=synthetic_dataset(get_space(space_name), n, seed), kind="mlp",
                                        seed=seed, out=out))
    (out / "fit_report.json").write_text(json.dumps(report, indent=1, default=str))
    return out


def values_of(m: Any) -> np.ndarray:
    return np.stack([m.accuracy, m.latency_ms, m.size_bytes / 1e6], axis=1)


# ---- the methods: each returns {"values": (n, 3), "t": (n,) seconds since its start, "wall": s} ------------
def hwnas_run(ev: Any, args: Any, n: int, seed: int, out: Path, sampler: str = "nsga2",
              **kw: Any) -> dict[str, Any]:
    import optuna

    from nas.search import SearchConfig, run_search
    from nas.search.storage import open_storage

    d = out / f"{sampler}-{seed}-{'-'.join(f'{k}{v}' for k, v in kw.items())}"
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.perf_counter()
    counted = CountingEvaluator(ev)
    res = run_search(SearchConfig(space=args.space, out=str(d), predictor=args.predictor_dir, table=args.table,
                                  sampler=sampler, trials=n, seed=seed, **kw), evaluator=counted)
    wall = time.perf_counter() - t0
    trials = optuna.load_study(study_name=res.study, storage=open_storage(str(d / "study.journal"))).get_trials(
        deepcopy=False)
    start = trials[0].datetime_start
    vals = np.array([[t.metrics["accuracy"], t.metrics["latency_ms"], t.metrics["size_bytes"] / 1e6]
                     for t in res.trials])
    sup = np.array([t.metrics["supported"] for t in res.trials])
    return {"values": vals, "supported": sup, "t": np.array([(t.datetime_complete - start).total_seconds()
                                                             for t in trials]),
            "wall": wall, "evaluations": counted.n, "engine_tps": res.summary["workers"]["stats"][0]["completed"] / max(
                res.summary["workers"]["stats"][0]["seconds"], 1e-9), "best": res.best}


class CountingEvaluator:
    """Counts every configuration `evaluate` / `evaluate_indices` scores (the cost model, free, is not counted)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.n = inner, 0

    def evaluate(self, configs: Any) -> Any:
        self.n += len(configs)
        return self.inner.evaluate(configs)

    def evaluate_indices(self, idx: np.ndarray) -> Any:
        self.n += len(idx)
        return self.inner.evaluate_indices(idx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def hwnas_front_refine(ev: Any, args: Any, space: Any, n: int, budgets: list[float], seed: int, out: Path,
                       front_fraction: float, float_only: bool = False, **refine_kw: Any) -> list[float]:
    """The pipeline's way of serving many budgets: one unconstrained front, then `refine_for_budget` per budget.
    Each budget's answer is charged every evaluation it rests on: the whole front's plus its own refinement's,
    `n` in all (the front is shared between the budgets, but counted in full for each)."""
    from nas.budgets import Budgets
    from nas.search import SearchConfig, run_search
    from nas.search.refine import refine_for_budget
    from search_spaces import get_space

    restrict = {"quantize": False, "pruning": False} if float_only else {}
    d = out / f"front-refine-{seed}-{'float' if float_only else 'joint'}"
    shutil.rmtree(d, ignore_errors=True)
    counted = CountingEvaluator(ev)
    res = run_search(SearchConfig(space=args.space, out=str(d), predictor=args.predictor_dir, table=args.table,
                                  trials=int(round(front_fraction * n)), seed=seed, **restrict), evaluator=counted)
    n_front = counted.n
    start = [(t.config, t.metrics) for t in res.trials]
    space_r = get_space(args.space, resolutions=space.resolutions, keep=(1.0,)) if float_only else space
    row = []
    for i, b in enumerate(budgets):
        counted.n = n_front
        best, _ = refine_for_budget(space_r, counted, Budgets(latency_ms=b), start, n - n_front,
                                    seed=seed + 101 + i, quantize=not float_only, **refine_kw)
        assert counted.n == n, (counted.n, n)  # exactly the evaluations OFA gets for this budget
        row.append(best[0].accuracy if best else float("nan"))
    return row


def optuna_run(ev: Any, space: Any, n: int, seed: int, sampler: str, cap_s: float) -> dict[str, Any]:
    import optuna

    from nas.search.objectives import directions

    if sampler == "nsga2":
        s = optuna.samplers.NSGAIISampler(population_size=50, seed=seed)
    else:
        s = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    study = optuna.create_study(directions=directions(OBJECTIVES), sampler=s)
    vals, ts, sups = [], [], []
    t0 = time.perf_counter()
    for _ in range(n):
        if time.perf_counter() - t0 > cap_s:
            break
        trial = study.ask()
        m = ev.evaluate([space.suggest(trial)])
        v = values_of(m)[0]
        study.tell(trial, v.tolist())
        vals.append(v)
        sups.append(bool(m.supported[0]))
        ts.append(time.perf_counter() - t0)
    return {"values": np.array(vals), "supported": np.array(sups), "t": np.array(ts),
            "wall": time.perf_counter() - t0}


def pymoo_run(ev: Any, space: Any, n: int, seed: int) -> dict[str, Any]:
    """pymoo's NSGA-II on integer genes, configured as pymoo's documentation does for integer variables."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    from nas.search.genes import Genes

    genes = Genes(space)
    rec: dict[str, list[Any]] = {"values": [], "supported": [], "t": []}
    t0 = time.perf_counter()

    class Subnets(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=genes.n_genes, n_obj=3, xl=0, xu=genes.n_choices - 1, vtype=int)

        def _evaluate(self, x: np.ndarray, out: dict[str, Any], *a: Any, **k: Any) -> None:
            g = np.clip(np.round(x).astype(np.int64), 0, genes.n_choices - 1)
            m = ev.evaluate_indices(genes.to_indices(g))
            v = values_of(m)
            rec["values"].append(v)
            rec["supported"].append(m.supported)
            rec["t"].append(np.full(len(v), time.perf_counter() - t0))
            out["F"] = np.column_stack([-v[:, 0], v[:, 1], v[:, 2]])

    algo = NSGA2(pop_size=50, sampling=IntegerRandomSampling(),
                 crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
                 mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()), eliminate_duplicates=True)
    minimize(Subnets(), algo, ("n_evals", n), seed=seed, verbose=False)
    out = {k: np.concatenate(v)[:n] for k, v in rec.items()}
    out["wall"] = time.perf_counter() - t0
    return out


def ofa_runs(ev: Any, space: Any, n: int, budgets: list[float], seed: int, package: bool) -> dict[str, Any]:
    """OFA's evolution once per latency budget, `n` evaluations split evenly (the package's or hwnas's)."""
    from nas.search.evolution import concat_metrics, evolve_once

    per = [n // len(budgets) + (1 if i < n % len(budgets) else 0) for i in range(len(budgets))]
    ms = []
    t0 = time.perf_counter()
    for i, (b, k) in enumerate(zip(budgets, per)):
        if package:
            from experiments.ofa_baseline import run_evolution_finder

            _, m, _ = run_evolution_finder(space, ev, k, b, seed * 1000 + i)
        else:
            _, m = evolve_once(space, ev, k, b, seed * 1000 + i)
        ms.append(m)
    m = concat_metrics(ms)
    return {"values": values_of(m), "supported": m.supported, "wall": time.perf_counter() - t0}


# ---- helpers -------------------------------------------------------------------------------------------
def best_under(r: dict[str, Any], budget: float, n: int | None = None) -> float:
    v, sup = r["values"][:n], r["supported"][:n]
    ok = sup & (v[:, 1] <= budget)
    return float(v[ok, 0].max()) if ok.any() else float("nan")


def med(xs: list[float]) -> str:
    xs = [x for x in xs if x == x]
    if not xs:
        return "–"
    return f"{np.median(xs):.3f} ± {(max(xs) - min(xs)) / 2:.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="mbv3-tiny")
    ap.add_argument("--table", required=True)
    ap.add_argument("--predictor", default=None, help="predictor directory (default: the noise-free synthetic one)")
    ap.add_argument("--out", default="runs/bench-search")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--counts", default="1000,5000,20000")
    ap.add_argument("--budget-evals", type=int, default=5000, help="evaluations per budget (table 2; 0: no table 2)")
    ap.add_argument("--reference-samples", type=int, default=50_000)
    ap.add_argument("--optuna-time-cap", type=float, default=90.0, help="seconds per Optuna NSGA-II / TPE run")
    ap.add_argument("--budgets", default=None,
                    help="latency budgets in ms, comma-separated (default: the 25/50/75th percentiles of random subnets)")
    ap.add_argument("--front-fraction", type=float, default=0.3,
                    help="front + refinement rows: the share of --budget-evals spent on the shared front")
    ap.add_argument("--methods", default="hwnas,random,pymoo-nsga2,optuna-nsga2,optuna-tpe,ofa-evolution,ofa-reimpl")
    args = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from nas.search import Normalizer, PredictedEvaluator, hypervolume
    from nas.search.api import table_resolutions
    from nas.search.genes import Genes
    from nas.search.loaders import load_predictor, load_table
    from search_spaces import get_space

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space_full = get_space(args.space)
    table = load_table(args.table)
    space = get_space(args.space, resolutions=table_resolutions(space_full, table))
    if args.predictor:
        predictor, note = load_predictor(args.predictor), f"given: {args.predictor}"
        args.predictor_dir = args.predictor
    else:
        from experiments.synthetic_predictor import SyntheticPredictor
        from predictors.bundle import FitConfig, fit_predictor
        from predictors.synthetic import synthetic_dataset

        predictor, note = SyntheticPredictor(space_full), "synthetic_accuracy (seed 0, no noise)"
        # `run_search` wants a predictor directory (its run config records it); the search uses `ev` below
        args.predictor_dir = str(out / "predictor-placeholder")
        if not (out / "predictor-placeholder" / "predictor.json").is_file():
            fit_predictor(FitConfig(dataset=synthetic_dataset(space_full, 200, 0), kind="ridge", seed=0,
                                    out=args.predictor_dir))
    ev = PredictedEvaluator(space_full, predictor, table)
    seeds = [int(s) for s in args.seeds.split(",")]
    counts = [int(c) for c in args.counts.split(",")]
    N = max(counts)
    methods = args.methods.split(",")
    print(f"space {args.space} at {list(space.resolutions)}, table {args.table} ({table.device_tag}), accuracy: {note}; "
          f"seeds {seeds}, counts {counts}", flush=True)

    genes = Genes(space)
    rng = np.random.default_rng(12345)
    ref = []
    for lo in range(0, args.reference_samples, 20000):
        m = ev.evaluate_indices(genes.to_indices(genes.random(rng, min(20000, args.reference_samples - lo))))
        ref.append(values_of(m)[m.supported])
    ref_random = np.concatenate(ref)
    # the latency budgets: the 25th, 50th and 75th percentiles of random (supported) subnets' latency
    budgets = [float(b) for b in args.budgets.split(",")] if args.budgets else \
        [float(b) for b in np.quantile(ref_random[:, 1], [0.25, 0.5, 0.75])]

    # 1. the multi-objective runs, at the largest count (smaller counts are their prefixes)
    runs: dict[str, list[dict[str, Any]]] = {}
    for meth in [m for m in methods if m in ("hwnas", "random", "pymoo-nsga2", "optuna-nsga2", "optuna-tpe")]:
        for seed in seeds:
            if meth == "hwnas":
                r = hwnas_run(ev, args, N, seed, out)
            elif meth == "random":
                r = hwnas_run(ev, args, N, seed, out, sampler="random")
            elif meth == "pymoo-nsga2":
                r = pymoo_run(ev, space, N, seed)
            else:
                r = optuna_run(ev, space, N, seed, meth.split("-")[1], args.optuna_time_cap)
            runs.setdefault(meth, []).append(r)
            print(f"{meth} seed {seed}: {len(r['values'])} evaluations in {r['wall']:.1f} s", flush=True)

    pool = np.concatenate([ref_random] + [r["values"][r["supported"]] for rs in runs.values() for r in rs])
    top = pool[np.argmax(pool[:, 0]), 1]
    print(f"latency budgets (ms): {[round(b, 4) for b in budgets]}; the most accurate subnet found runs in "
          f"{top:.4f} ms", flush=True)
    ofa: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for meth in [m for m in methods if m in ("ofa-evolution", "ofa-reimpl")]:
        for n in counts:
            for seed in seeds:
                ofa.setdefault(meth, {}).setdefault(n, []).append(
                    ofa_runs(ev, space, n, budgets, seed, package=meth == "ofa-evolution"))
            print(f"{meth} at {n}: {np.median([r['wall'] for r in ofa[meth][n]]):.1f} s", flush=True)

    # 2. per budget, --budget-evals each
    B = args.budget_evals
    per_budget: dict[str, list[list[float]]] = {}
    budget_seeds = seeds if B else []  # --budget-evals 0: no table 2
    for seed in budget_seeds:
        for name, kw in (("hwnas --latency-ms B (joint)", {}),
                         ("hwnas --latency-ms B (float, keep 1.0)", {"quantize": False, "pruning": False})):
            per_budget.setdefault(name, []).append(
                [best_under(hwnas_run(ev, args, B, seed, out, latency_ms=b, **kw), b) for b in budgets])
        for name, kw in (("hwnas front + refine (joint)", {}),
                         ("hwnas front + refine (joint, float first 0.2 + 100 projections)",
                          {"float_first": 0.2, "project": 100}),
                         ("hwnas front + refine (float, keep 1.0)", {"float_only": True})):
            per_budget.setdefault(name, []).append(
                hwnas_front_refine(ev, args, space, B, budgets, seed, out, args.front_fraction, **kw))
        if "ofa-evolution" in methods:
            from experiments.ofa_baseline import run_evolution_finder
            from nas.search.evolution import evolve_once

            row, row_r = [], []
            for i, b in enumerate(budgets):
                _, m, _ = run_evolution_finder(space, ev, B, b, seed * 1000 + i)
                row.append(best_under({"values": values_of(m), "supported": m.supported}, b))
                _, m = evolve_once(space, ev, B, b, seed * 1000 + i)
                row_r.append(best_under({"values": values_of(m), "supported": m.supported}, b))
            per_budget.setdefault("OFA EvolutionFinder (package)", []).append(row)
            per_budget.setdefault("OFA evolution (hwnas re-implementation)", []).append(row_r)
        print(f"per-budget seed {seed}: " + "; ".join(f"{k}: {np.round(v[-1], 3).tolist()}"
                                                     for k, v in per_budget.items()), flush=True)
    if budget_seeds:
        for meth, rs in runs.items():
            per_budget[f"{meth}, unconstrained, whole run of {B}"] = [[best_under(r, b, B) for b in budgets]
                                                                      for r in rs]

    # reference and hypervolumes
    allv = [ref_random] + [r["values"][r["supported"]] for rs in runs.values() for r in rs] + \
        [r["values"][r["supported"]] for d in ofa.values() for rs in d.values() for r in rs]
    union = np.concatenate(allv)
    norm = Normalizer.from_values(OBJECTIVES, union)
    hv_ref = hypervolume(union, norm)

    def hv(r: dict[str, Any], n: int | None = None) -> float:
        return hypervolume(r["values"][:n][r["supported"][:n]], norm)

    lines = [f"space `{args.space}` at {list(space.resolutions)} px, table `{args.table}` ({table.device_tag}), "
             f"accuracy: {note}; seeds {seeds}; union reference hypervolume {hv_ref:.4f} "
             f"({args.reference_samples} random subnets + every run).", "",
             "hypervolume (fraction of the reference box; median ± half the spread over seeds) and, in brackets, "
             "as a fraction of the union's:", "",
             "| evaluations | " + " | ".join(list(runs) + list(ofa)) + " |", "|---" * (1 + len(runs) + len(ofa)) + "|"]
    hv_table: dict[str, dict[int, list[float]]] = {}
    for n in counts:
        cells = []
        for meth, rs in runs.items():
            xs = [hv(r, n) for r in rs if len(r["values"]) >= n]
            hv_table.setdefault(meth, {})[n] = xs
            cells.append(f"{med(xs)} [{np.median(xs) / hv_ref:.3f}]" if xs else "– (time cap)")
        for meth, d in ofa.items():
            xs = [hv(r) for r in d[n]]
            hv_table.setdefault(meth, {})[n] = xs
            cells.append(f"{med(xs)} [{np.median(xs) / hv_ref:.3f}]")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    if per_budget:
        lines += ["", f"best predicted accuracy (%) under each latency budget, {B:,} evaluations per budget:", "",
                  "| method | " + " | ".join(f"≤ {b:.3f} ms" for b in budgets) + " |",
                  "|---" * (1 + len(budgets)) + "|"]
    for name, rows in per_budget.items():
        arr = np.array(rows)
        lines.append(f"| {name} | " + " | ".join(med(list(arr[:, j])) for j in range(len(budgets))) + " |")

    def reach(r: dict[str, Any]) -> float | None:
        goal = 0.98 * hv_ref
        for n in range(250, len(r["values"]) + 1, 250):
            if hv(r, n) >= goal:
                return float(r["t"][n - 1])
        return None

    lines += ["", "wall seconds to 98 % of the union's hypervolume (median over seeds; this run, this machine):", ""]
    for meth, rs in runs.items():
        ts = [reach(r) for r in rs]
        got = [t for t in ts if t is not None]
        lines.append(f"- {meth}: " + (f"{np.median(got):.1f} s ({len(got)}/{len(ts)} seeds reach it)" if got
                                      else f"not reached in {max(len(r['values']) for r in rs):,} evaluations"))
    for meth, d in ofa.items():
        ok = [n for n in counts if np.median([hv(r) for r in d[n]]) >= 0.98 * hv_ref]
        lines.append(f"- {meth}: " + (f"at {ok[0]:,} evaluations, {np.median([r['wall'] for r in d[ok[0]]]):.1f} s"
                                      if ok else f"not reached at {max(counts):,}"))
    lines += ["", "throughput (evaluations / wall second of the whole run):", ""]
    for meth, rs in runs.items():
        lines.append(f"- {meth}: {np.median([len(r['values']) / r['wall'] for r in rs]):,.0f}/s"
                     + (f" (engine loop {np.median([r['engine_tps'] for r in rs]):,.0f}/s)" if "engine_tps" in rs[0]
                        else ""))
    text = "\n".join(lines)
    print("\n" + text)
    (out / "bench_search.md").write_text(text + "\n")
    (out / "bench_search.json").write_text(json.dumps(
        {"budgets_ms": budgets, "hv_reference": hv_ref, "normalizer": norm.to_dict(), "hv": hv_table,
         "per_budget": per_budget, "counts": counts, "seeds": seeds}, indent=1, default=float))
    print(f"\nwrote {out / 'bench_search.md'}")


if __name__ == "__main__":
    main()
