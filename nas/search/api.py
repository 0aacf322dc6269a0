"""`run_search(SearchConfig(...)) -> SearchResult`: the Python API behind `hwnas search`."""
from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import TrialState

from search_spaces import HwnasError, InputError, SubnetConfig, get_space

from nas.budgets import Budgets
from nas.front import FrontEntry, with_lower_bounds
from nas.ray_session import ray_session
from nas.search.config import SearchConfig
from nas.search.engine import RunSpec, SearchEngine, count_complete, open_study
from nas.search.evaluators import Evaluator, MeasuredEvaluator, PredictedEvaluator
from nas.search.loaders import load_predictor, load_table
from nas.search.objectives import objective_values
from nas.search.output import CONFIG_FILE, FRONT_FILE, PLOT_FILE, SUMMARY_FILE, front_json, plot_front, write_json
from nas.search.pareto import Normalizer, hypervolume, pareto_mask
from nas.search.storage import describe_url

# why `workers` is ignored for the predicted evaluator unless forced: measured in experiments/results/search.md
PREDICTED_IN_PROCESS = ("the predicted evaluator ran in this process: Ray workers cost more than they save on "
                        "cheap evaluations (start-up, and every worker replaying the others' trials); they are "
                        "kept for the measured evaluator (force them with force_workers / --force-workers)")


@dataclass(frozen=True)
class TrialRecord:
    trial: int
    config: SubnetConfig
    metrics: dict[str, Any]
    feasible: bool


@dataclass
class SearchResult:
    n_trials: int  # complete trials in the study
    n_new: int  # trials this run added
    n_pareto: int
    hypervolume: float
    trials_per_second: float
    best: dict[str, dict[str, Any] | None]
    front: list[FrontEntry]
    study: str
    storage: str
    out: str
    summary: dict[str, Any] = field(default_factory=dict)
    device_tag: str | None = None
    device_fingerprint: dict[str, Any] | None = None
    predictor: str | None = None
    predictor_info: dict[str, Any] | None = None
    config: SearchConfig | None = None
    # every complete trial of the study, in trial order: its config and its metrics (`Metrics.row`) plus
    # `trial` (its number) and `feasible` (meets every budget of the run)
    trials: list[TrialRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"n_trials": self.n_trials, "n_new": self.n_new, "n_pareto": self.n_pareto,
                "hypervolume": self.hypervolume, "trials_per_second": self.trials_per_second, "best": self.best,
                "study": self.study, "storage": describe_url(self.storage), "out": self.out}


def run_search(config: SearchConfig, progress: Callable[[int, int], None] | None = None,
               evaluator: Evaluator | None = None) -> SearchResult:
    """Run (or continue) the search; `progress(done, target)` is called as trials complete. `evaluator`
    replaces the one built from `config` (in-process runs only: workers rebuild theirs from the config).

    The predicted evaluator runs in this process whatever `workers` says, unless `force_workers`: its trials cost
    well under a millisecond, less than sharing them between workers does, and Ray's start-up alone outlasts a
    whole predicted search (experiments/results/search.md); the summary's `workers` says so."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config.validate()
    space = get_space(config.space)
    table = load_table(config.table) if config.table else None
    if table is not None and config.backend is not None and table.backend != config.backend:
        raise InputError(f"backend: got {config.backend!r}, but the latency table was measured with "
                         f"{table.backend!r}; allowed: {table.backend!r} (or a table of {config.backend!r})")
    predictor = load_predictor(config.predictor) if config.predictor else None
    cfg = config.resolved(getattr(table, "device_tag", None))
    worker_info: dict[str, Any] = {"workers": cfg.workers}
    if cfg.evaluator == "predicted" and cfg.workers and not cfg.force_workers:
        worker_info.update(requested=cfg.workers, workers=0, in_process=PREDICTED_IN_PROCESS)
        cfg = replace(cfg, workers=0)
    spec = cfg.run_spec(table_resolutions(space, table))
    if evaluator is None:
        if cfg.evaluator == "predicted":
            evaluator = PredictedEvaluator(space, predictor, table)
        else:
            evaluator = MeasuredEvaluator(space, predictor=predictor, table=table, backend=cfg.backend,
                                          supernet=cfg.supernet, data=cfg.data)
    elif cfg.workers:
        raise InputError("evaluator: a custom evaluator runs in this process only (use `workers` 0)")
    study = open_study(spec, create=True)
    before = count_complete(study)
    _check_settings(study, cfg, before)
    target = cfg.trials
    shared_ray = bool(cfg.workers and cfg.verify_top and before < target)  # both use Ray: start it once, not twice
    with ray_session(cfg.ray_address) if shared_ray else contextlib.nullcontext(None) as started:
        if started is not None:
            worker_info["ray_started"] = started
        return _run_and_finish(cfg, spec, study, space, evaluator, predictor, table, before, target, progress,
                               worker_info)


def _run_and_finish(cfg: SearchConfig, spec: RunSpec, study: Any, space: Any, evaluator: Evaluator,
                    predictor: Any, table: Any, before: int, target: int,
                    progress: Callable[[int, int], None] | None, worker_info: dict[str, Any]) -> SearchResult:
    t0 = time.perf_counter()
    if before < target:
        if cfg.workers == 0:
            engine = SearchEngine(spec, worker="driver", evaluator=evaluator, study=study)
            done = [before]

            def step(b: int) -> None:
                done[0] += b
                if progress is not None:
                    progress(done[0], target)

            stats = engine.run(target - before, progress=step)
            worker_info["stats"] = [asdict(stats)]
        else:
            from nas.search.workers import run_workers

            def wprog(p: Any) -> None:
                if progress is not None:
                    progress(p.complete, target)

            rep = run_workers(spec, target, cfg.workers, cfg.ray_address, progress=wprog, study=study)
            worker_info.update(rounds=rep.rounds, lost_workers=rep.lost_workers, stats=rep.stats,
                               ray_address=rep.ray_address, timings=rep.timings)
            worker_info.setdefault("ray_started", rep.ray_started)
    wall = time.perf_counter() - t0
    # `study` re-reads the storage on each query (a journal replays only what was appended since): every worker's
    # writes are visible without re-opening (and re-parsing) the whole journal
    return _finish(cfg, spec, study, space, evaluator, predictor, table, before, wall, worker_info)


def table_resolutions(space: Any, table: Any) -> tuple[int, ...] | None:
    """The resolutions the search may use: those the latency table was measured at (None: all the space's)."""
    res = getattr(table, "resolutions", None) if table is not None else None
    if not res:
        return None
    allowed = tuple(r for r in space.spec.resolutions if r in {int(x) for x in res})
    if not allowed:
        raise InputError(f"table: measured at resolutions {list(res)}, none of which is in space {space.name} "
                         f"({list(space.spec.resolutions)})")
    return None if allowed == tuple(space.spec.resolutions) else allowed


def _trial_rows(study: Any, space: Any) -> tuple[list[Any], list[SubnetConfig], list[dict[str, Any]]]:
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.user_attrs.get("metrics") is not None]
    configs = [space.config_from_params(t.params) for t in trials]
    return trials, configs, [t.user_attrs["metrics"] for t in trials]


def space_normalizer(space: Any, evaluator: Evaluator, objectives: tuple[str, ...],
                     quantize: bool = True, n_random: int = 2000) -> Normalizer:
    """Ideal and nadir of the Pareto front of a fixed set of subnets under `evaluator`: the smallest and the largest
    subnet (at the space's searched resolutions) at every bit policy the device supports, plus `n_random` uniform
    random subnets (seed 0). Fixed per (space, evaluator), so the hypervolumes of runs on the same table and
    predictor compare; the nadir is the front's (not the slowest subnet's, which would squeeze every front into a
    corner of the box), and `hypervolume` clips points beyond the ideal, so the value stays in [0, 1]."""
    cands = []
    for w, a in (space.bit_pairs if quantize else ((32, 32),)):
        cands.append(space.smallest(weight_bits=w, act_bits=a))
        cands.append(space.largest(weight_bits=w, act_bits=a))
    cands += space.sample_many(n_random, seed=0, quantize=quantize)
    m = evaluator.evaluate(cands)
    rows = [m.row(i) for i in range(len(cands)) if m.supported[i]]
    if not rows:
        raise HwnasError("the device supports none of the space's subnets: cannot normalise")
    v = np.array([objective_values(objectives, r) for r in rows])
    return Normalizer.from_values(objectives, v) if len(v) > 1 else Normalizer(objectives, v[0], v[0])


# what a rerun into the same study must repeat, unless it asks for `resume` (the study identity -- space,
# objectives, budgets, encoding, bits, keep ratios -- must match even then: `engine.open_study`)
SETTINGS_FIELDS = ("sampler", "seed", "population_size", "init", "mutation", "mutation_prob", "crossover",
                   "local_fraction", "batch_size", "evaluator", "predictor", "table", "backend", "supernet", "data")
SETTINGS_ATTR = "hwnas:settings"


def _check_settings(study: Any, cfg: SearchConfig, n_complete: int) -> None:
    d = cfg.to_dict()
    want = {k: d[k] for k in SETTINGS_FIELDS}
    have = study.user_attrs.get(SETTINGS_ATTR)
    if have is not None and n_complete:
        diff = [k for k in SETTINGS_FIELDS if json.dumps(have.get(k)) != json.dumps(want[k])]
        if diff and not cfg.resume:
            shown = ", ".join(f"{k}={have.get(k)!r} (got {want[k]!r})" for k in diff)
            raise InputError(f"out {cfg.out}: its study {cfg.study!r} holds {n_complete} trials searched with "
                             f"{shown}; allowed: the same settings, `resume` to continue it with these, or a new "
                             "`out` / `study`")
        if not diff:
            return
    study.set_user_attr(SETTINGS_ATTR, want)


def _normalizer(cfg: SearchConfig, spec: RunSpec, space: Any, evaluator: Evaluator, predictor: Any, table: Any,
                values: np.ndarray) -> tuple[Normalizer | None, str]:
    """The hypervolume's normaliser, from the evaluator the run searched with: a cheap one scores the fixed
    reference set (`space_normalizer`); measured metrics have no such set, so their own front bounds them."""
    searched = get_space(cfg.space, resolutions=spec.resolutions, keep=spec.keep)
    if isinstance(evaluator, MeasuredEvaluator):
        if not len(values):
            return None, "none"
        return Normalizer.from_values(cfg.objectives, values), "this run's measured front"
    if isinstance(evaluator, Evaluator):
        return space_normalizer(searched, evaluator, cfg.objectives, cfg.quantize), \
            f"space extremes + 2,000 random subnets under the searched evaluator ({evaluator.name})"
    if predictor is not None and table is not None:  # a duck-typed evaluator: the run's predictor and table
        return space_normalizer(searched, PredictedEvaluator(space, predictor, table), cfg.objectives, cfg.quantize), \
            "space extremes + 2,000 random subnets under the run's predictor and table"
    if not len(values):
        return None, "none"
    return Normalizer.from_values(cfg.objectives, values), "this run's front"


def _finish(cfg: SearchConfig, spec: RunSpec, study: Any, space: Any, evaluator: Evaluator, predictor: Any,
            table: Any, before: int, wall: float, worker_info: dict[str, Any]) -> SearchResult:
    budgets = Budgets.of(cfg)
    trials, configs, metrics = _trial_rows(study, space)
    n = len(trials)
    values = np.array([objective_values(cfg.objectives, m) for m in metrics], dtype=float).reshape(n, -1)
    feasible = np.array([budgets.feasible(m) for m in metrics], dtype=bool)
    front_idx = np.flatnonzero(feasible)[pareto_mask(values[feasible], cfg.objectives)] if feasible.any() else []
    # one entry per distinct config (a cached re-proposal is the same subnet)
    seen: set[SubnetConfig] = set()
    front: list[FrontEntry] = []
    for i in sorted(front_idx, key=lambda i: -metrics[i]["accuracy"]):
        if configs[i] in seen:
            continue
        seen.add(configs[i])
        front.append(FrontEntry.from_metrics(configs[i], metrics[i], True, trials[i].number))
    front = with_lower_bounds(front, predictor)
    norm, norm_basis = _normalizer(cfg, spec, space, evaluator, predictor, table, values)
    hv = hypervolume(values[feasible], norm) if norm is not None and feasible.any() else 0.0
    if cfg.verify_top and front:
        front = _verify(cfg, space, front)
    best = best_per_budget(budgets, configs, metrics, trials)
    n_new = n - before
    tps = n_new / wall if wall > 0 and n_new > 0 else 0.0
    n_fail = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    summary = {
        "study": cfg.study, "storage": describe_url(cfg.storage), "space": cfg.space, "sampler": cfg.sampler,
        "encoding": cfg.encoding, "evaluator": evaluator.describe(), "objectives": list(cfg.objectives),
        "budgets": budgets.to_dict(), "constraint_names": budgets.constraint_names(), "n_trials": n, "n_new": n_new, "n_failed": n_fail,
        "n_feasible": int(feasible.sum()), "n_distinct_configs": len(set(configs)),
        "n_pareto": len(front), "hypervolume": hv,
        "hypervolume_normalization": {**norm.to_dict(), "basis": norm_basis} if norm else None,
        "wall_seconds": wall, "trials_per_second": tps, "workers": _jsonable(worker_info), "best": best,
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out, CONFIG_FILE, {"command": "hwnas search", **cfg.to_dict(), "run_spec": spec.to_dict() | {
        "storage": describe_url(spec.storage)}})
    write_json(out, FRONT_FILE, front_json(front, {"space": cfg.space, "study": cfg.study,
                                                  "objectives": list(cfg.objectives), "budgets": budgets.to_dict(),
                                                  "device": getattr(table, "device_tag", None)}))
    write_json(out, SUMMARY_FILE, summary)
    fv = np.array([objective_values(cfg.objectives, asdict_entry(e)) for e in front]).reshape(len(front), len(cfg.objectives))
    sup = np.array([bool(m["supported"]) for m in metrics], dtype=bool)
    hidden = f"\n{int((~sup).sum())} trials the device cannot run are not shown" if (~sup).any() else ""
    plot_front(out / PLOT_FILE, values[sup], feasible[sup], fv, cfg.objectives,
               f"{cfg.space} · {cfg.sampler} · {n} trials · {budgets.describe()}{hidden}", budgets.to_dict())
    return SearchResult(n_trials=n, n_new=n_new, n_pareto=len(front), hypervolume=hv, trials_per_second=tps,
                        best=best, front=front, study=cfg.study or "", storage=cfg.storage or "", out=str(out),
                        summary=summary, device_tag=getattr(table, "device_tag", None),
                        device_fingerprint=dict(getattr(table, "fingerprint", {}) or {}) or None,
                        predictor=cfg.predictor, predictor_info=dict(getattr(predictor, "info", {}) or {}), config=cfg,
                        trials=[TrialRecord(t.number, c, m, bool(f))
                                for t, c, m, f in zip(trials, configs, metrics, feasible)])


def add_to_store(result: SearchResult, url: str, dataset: str | None = None) -> int:
    """Add the run's front to the results store at `url` (`nas.store.ResultsStore.add_front`)."""
    from nas.store import ResultsStore

    if not result.front:
        raise HwnasError("store: the search found no feasible subnet, nothing to add")
    if dataset is None:
        ds = (result.predictor_info or {}).get("dataset", {})
        found = (ds.get("name") or ds.get("data")) if isinstance(ds, dict) else None
        if isinstance(found, list):  # the data sets the predictor's records came from
            found = found[0] if len(found) == 1 else None
        dataset = found if isinstance(found, str) else None
    if not dataset:
        raise InputError("dataset: missing, allowed: the data set name the predictor's accuracies come from "
                         "(the predictor does not record it)")
    with ResultsStore(url) as store:
        return store.add_front(result.front, space=result.summary["space"], device_tag=result.device_tag or "unknown",
                               device_fingerprint=result.device_fingerprint or {"device": result.device_tag},
                               dataset=str(dataset), predictor=str(result.predictor),
                               table_fingerprint=result.device_fingerprint,
                               source={"command": "hwnas search", "study": result.study,
                                       "storage": describe_url(result.storage), "sampler": result.summary["sampler"],
                                       "n_trials": result.n_trials, "seed": result.config.seed if result.config else None})


def asdict_entry(e: FrontEntry) -> dict[str, Any]:
    return {"accuracy": e.accuracy, "latency_ms": e.latency_ms, "size_bytes": e.size_bytes}


def best_per_budget(budgets: Budgets, configs: list[SubnetConfig], metrics: list[dict[str, Any]],
                    trials: list[Any]) -> dict[str, dict[str, Any] | None]:
    """The most accurate supported trial under all the run's budgets together and under each one alone."""
    checks: dict[str, Budgets] = {}
    if budgets.latency_ms is not None:
        checks[f"latency_ms<={budgets.latency_ms:g}"] = Budgets(latency_ms=budgets.latency_ms)
    if budgets.size_mb is not None:
        checks[f"size_mb<={budgets.size_mb:g}"] = Budgets(size_mb=budgets.size_mb)
    if budgets.min_accuracy is not None:
        checks[f"accuracy>={budgets.min_accuracy:g}"] = Budgets(min_accuracy=budgets.min_accuracy)
    out: dict[str, dict[str, Any] | None] = {}
    keys = [("all", budgets)] + (list(checks.items()) if len(checks) > 1 else [])
    if not checks:
        keys = [("unconstrained", budgets)]
    for key, b in keys:
        ok = [i for i, m in enumerate(metrics) if b.feasible(m)]
        if not ok:
            out[key] = None
            continue
        i = max(ok, key=lambda i: (metrics[i]["accuracy"], -metrics[i]["latency_ms"], -metrics[i]["size_bytes"]))
        out[key] = FrontEntry.from_metrics(configs[i], metrics[i], True, trials[i].number).to_dict()
    return out


def _verify(cfg: SearchConfig, space: Any, front: list[FrontEntry]) -> list[FrontEntry]:
    """Re-score the `verify_top` most accurate front entries with the measured evaluator (Ray tasks)."""
    from nas.search.verify import measure_many

    top = front[: cfg.verify_top]
    measured = measure_many(cfg, [e.config for e in top])
    out = []
    for i, e in enumerate(front):
        if i < len(top):
            m = {k: v for k, v in measured[i].items() if k in ("accuracy", "latency_ms")}
            e = replace(e, measured=m)
        out.append(e)
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return x

