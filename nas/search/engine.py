"""The search loop one process runs: batched ask/tell on an in-memory mirror of the shared study, with the
finished trials of each batch flushed to the shared storage in one write.

Why a mirror: a trial of the `block` encoding makes ~25 storage calls (ask, params, constraints, tell); on a
journal file each is a locked append + fsync, on an RDB a transaction. In memory they cost microseconds; the
shared study then receives each finished trial once (`Study.add_trials`, a single journal append per batch).
The shared study is a normal Optuna study (params, values, constraints, user attributes), so optuna-dashboard
shows it as it is, and every worker and every resumed run rebuilds its mirror (and its cache) from it.

A worker killed mid-run loses only its unflushed batch (one trial with the measured evaluator, whose batch is 1).
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search_spaces import HwnasError, InputError, SubnetConfig, get_space
from search_spaces.settings import carry_fields

from nas.budgets import Budgets
from nas.search.adaptive import AdaptiveLocalSearch, budget_local_search
from nas.search.config import SearchConfig
from nas.search.encoding import get_encoding
from nas.search.evaluators import Evaluator, Metrics
from nas.search.local import BudgetLocalSearch, feasible_spread
from nas.search.objectives import directions, objective_values
from nas.search.optuna_compat import (CONSTRAINTS_KEY, forget_cached_trials, storage_of, study_id_of,
                                     tell_with_warning, trial_id_of)
from nas.search.operators import make_crossover, make_mutation, spread_configs
from nas.search.samplers import SAMPLERS, make_sampler
from nas.search.storage import FastInMemoryStorage, describe_url, open_storage, write_finished_trials

WORKER_ATTR = "hwnas:worker"
UID_ATTR = "hwnas:uid"
RUN_ATTR = "hwnas:run"  # study user attribute: what the study searches (checked on resume)


@dataclass(frozen=True, kw_only=True)
@carry_fields(SearchConfig, "space", "objectives", "sampler", "encoding", "storage", "study", "seed", "evaluator",
              "predictor", "table", "backend", "supernet", "data", "quantize", "batch_size", "population_size", "init",
              "mutation", "mutation_prob", "crossover")
class RunSpec:
    """Everything a worker needs to rebuild the search in its own process (JSON-able): the resolved
    `SearchConfig` fields it names (encoding, storage, study and batch_size are set), and what the driver derived."""

    budgets: dict[str, float | None]
    sync_every_batch: bool = False
    resolutions: tuple[int, ...] | None = None  # searched resolutions (None: all the space's)
    # with a budget: trials of the study from which on the budget local search (`local.py`) proposes the
    # configs instead of the sampler (None: never)
    local_from: int | None = None
    keep: tuple[float, ...] | None = None  # searched keep ratios (None: all the space's; (1.0,): no pruning)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["objectives"] = list(self.objectives)
        d["resolutions"] = list(self.resolutions) if self.resolutions is not None else None
        d["keep"] = list(self.keep) if self.keep is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["objectives"] = tuple(d["objectives"])
        for k in ("resolutions", "keep"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    def study_identity(self) -> dict[str, Any]:
        """What must not change when a study is resumed: what is searched, and what scores it (a resume with
        another predictor or table would mix two scorers' trials into one front)."""
        return {"space": self.space, "objectives": list(self.objectives), "budgets": self.budgets,
                "encoding": self.encoding, "quantize": self.quantize,
                "resolutions": list(self.resolutions) if self.resolutions is not None else None,
                **({"keep": list(self.keep)} if self.keep is not None else {}),
                "scorers": scorer_identity(self)}


def scorer_identity(spec: RunSpec) -> dict[str, Any]:
    """The evaluator and the content (sha256) of the predictor, table and supernet it scores with: a file
    rewritten in place with other numbers is another scorer, one copied elsewhere is the same."""
    from pathlib import Path

    from search_spaces.files import sha256_file

    def content(path: str | None, inner: str | None = None) -> str | None:
        if path is None:
            return None
        p = Path(path) / inner if inner else Path(path)
        return "sha256:" + sha256_file(p) if p.is_file() else None

    return {"evaluator": spec.evaluator, "predictor": content(spec.predictor, "predictor.json"),
            "table": content(spec.table), "supernet": content(spec.supernet), "backend": spec.backend,
            "data": spec.data}


def build_evaluator(spec: RunSpec) -> Evaluator:
    from nas.search.loaders import load_predictor, load_table
    from nas.search.evaluators import MeasuredEvaluator, PredictedEvaluator

    space = get_space(spec.space)
    predictor = load_predictor(spec.predictor) if spec.predictor else None
    table = load_table(spec.table) if spec.table else None
    if spec.evaluator == "predicted":
        if predictor is None or table is None:
            raise InputError("evaluator predicted: needs `predictor` DIR and `table` FILE")
        return PredictedEvaluator(space, predictor, table)
    if spec.evaluator == "measured":
        return MeasuredEvaluator(space, predictor=predictor, table=table, backend=spec.backend,
                                 supernet=spec.supernet, data=spec.data)
    raise InputError(f"evaluator: got {spec.evaluator!r}, allowed: predicted, measured")


def open_study(spec: RunSpec, create: bool = False) -> optuna.Study:
    storage = open_storage(spec.storage)
    if create:
        study = optuna.create_study(study_name=spec.study, storage=storage, directions=directions(spec.objectives),
                                    load_if_exists=True)
        identity = spec.study_identity()
        have = study.user_attrs.get(RUN_ATTR)
        if have is None:
            study.set_user_attr(RUN_ATTR, identity)
        else:
            for k, v in identity.items():
                if k in have and json.dumps(have[k], sort_keys=True) != json.dumps(v, sort_keys=True):
                    raise InputError(f"study {spec.study}: {_difference(k, have[k], v)} in "
                                     f"{describe_url(spec.storage)}; allowed: the same {k}, or a new `study` name")
            if any(k not in have for k in identity):  # a study from before a key was recorded: record it now
                study.set_user_attr(RUN_ATTR, {**identity, **have})
        return study
    try:
        return optuna.load_study(study_name=spec.study, storage=storage)
    except KeyError:
        raise HwnasError(f"study {spec.study!r} not found in {describe_url(spec.storage)}") from None


def _difference(key: str, have: Any, got: Any) -> str:
    if isinstance(have, dict) and isinstance(got, dict):
        diff = [f"{key}.{k} is {have.get(k)!r:.80}, got {got.get(k)!r:.80}" for k in sorted({*have, *got})
                if have.get(k) != got.get(k)]
        return "; ".join(diff[:3])
    return f"{key} is {have!r:.120}, got {got!r:.120}"


def count_complete(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _seed_for(seed: int, worker: str, n_existing: int) -> int:
    h = hashlib.sha256(f"{seed}:{worker}:{n_existing}".encode()).digest()
    return int.from_bytes(h[:4], "little")


@dataclass
class EngineStats:
    completed: int = 0
    evaluated: int = 0  # configs evaluated (cache misses)
    cached: int = 0
    seconds: float = 0.0
    eval_seconds: float = 0.0
    flush_seconds: float = 0.0
    sync_seconds: float = 0.0  # reading other workers' trials from the shared storage
    extra: dict[str, Any] = field(default_factory=dict)


class _LightTrial:
    """What `optuna.Trial` does for a trial of the engine's mirror, without a storage round trip per parameter.

    The sampler is called exactly as `Trial` calls it -- `before_trial`, then `infer_relative_search_space` and
    `sample_relative` once, then `sample_independent` for every parameter outside the relative search space --
    and the parameters are written to the in-memory storage in one update. (`optuna.Trial` re-reads the trial
    and copies its parameter dicts on every suggest: O(params^2) per trial, ~60 % of a `block-dense` trial.)"""

    def __init__(self, study: optuna.Study, trial_id: int, fixed: dict[str, Any] | None = None,
                 sample: bool = True) -> None:
        self.study = study
        # a seeded trial's parameters: the sampler is still called, as Optuna does for an enqueued trial, unless
        # `sample` is False (the budget local search's proposals: every parameter is fixed, and NSGA-II must not
        # count them into its generations)
        self._fixed = fixed or {}
        self._trial_id = trial_id
        self._frozen = storage_of(study).get_trial(trial_id)
        self.number = self._frozen.number
        self._rel_space: dict[str, Any] = {}
        self._rel: dict[str, Any] = {}
        if sample:
            sampler = study.sampler
            sampler.before_trial(study, self._frozen)
            self._rel_space = sampler.infer_relative_search_space(study, self._frozen)
            self._rel = sampler.sample_relative(study, self._frozen, self._rel_space)
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {}

    def _suggest(self, name: str, dist: optuna.distributions.BaseDistribution) -> Any:
        if name in self.params:
            return self.params[name]
        rel = self._rel_space.get(name)
        if name in self._fixed:
            value = self._fixed[name]
        elif name in self._rel and rel is not None and (rel is dist or rel == dist):
            value = self._rel[name]
        else:
            value = self.study.sampler.sample_independent(self.study, self._frozen, name, dist)
        self.params[name] = value
        self.distributions[name] = dist
        return value

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        """The public form, which the spaces' own `suggest` (the `field` encoding) calls."""
        return self._suggest(name, optuna.distributions.CategoricalDistribution(list(choices)))

    def commit(self) -> None:
        storage_of(self.study).set_trial_params(self._trial_id, self.params, self.distributions)  # type: ignore[attr-defined]


class SearchEngine:
    """Runs `n` trials of one study from one process (the driver or a Ray worker actor)."""

    def __init__(self, spec: RunSpec, worker: str = "w0", evaluator: Evaluator | None = None,
                 study: optuna.Study | None = None) -> None:
        self.spec = spec
        self.worker = worker
        # searches only those resolutions and keep ratios
        self.space = get_space(spec.space, resolutions=spec.resolutions, keep=spec.keep)
        self.encoding = get_encoding(spec.encoding, self.space, spec.quantize)
        # what the shared study records: the space's own parameters
        self.stored = get_encoding("field", self.space, spec.quantize)
        self._stored_dists = self.stored.distributions()
        self.budgets = Budgets(**spec.budgets)
        self.evaluator = evaluator if evaluator is not None else build_evaluator(spec)
        self.study = study if study is not None else open_study(spec)
        self.cache: dict[SubnetConfig, dict[str, Any]] = {}
        self._synced: set[int] = set()
        self._uid = uuid.uuid4().hex[:8]
        n_existing = count_complete(self.study)
        sampler_seed = _seed_for(spec.seed, worker, n_existing)
        self._mirror_dists = self.encoding.distributions()
        # the budget phase (light samplers only: its trials bypass the sampler)
        self.local: BudgetLocalSearch | AdaptiveLocalSearch | None = None
        cost = getattr(self.evaluator, "evaluate_cost", None)
        kind = SAMPLERS.get(spec.sampler)
        if spec.local_from is not None and self.budgets.any() and kind.generational:
            self.local = budget_local_search(self.space, self.budgets, spec.quantize, sampler_seed ^ 0x5EED,
                                             cost=cost)
        self.mirror = optuna.create_study(
            directions=directions(spec.objectives), storage=FastInMemoryStorage(),
            sampler=make_sampler(spec.sampler, sampler_seed, spec.population_size,
                                 mutation=make_mutation(spec.mutation, self.encoding.radices),
                                 mutation_prob=spec.mutation_prob,
                                 crossover=make_crossover(spec.crossover, self.encoding.radices),
                                 search_space=self._mirror_dists if self.encoding.dense else None))
        # Optuna's own Trial for a sampler that reads the trial's params as they are suggested (TPE)
        self._light = kind.light
        self.sync()
        # NSGA-II's first generation on an empty study: see `operators.spread_configs` (each worker that starts on
        # an empty study seeds its own: the extremes repeat across workers -- answered from the cache --, the
        # spread between them follows the worker's seed)
        self._seeds: list[dict[str, Any]] = []
        if kind.generational and spec.init == "spread" and not self.mirror.get_trials(deepcopy=False):
            if self.budgets.any() and cost is not None:
                # a first generation that meets the latency/size budgets, spread from small to the boundary
                pool = spread_configs(self.space, 20 * spec.population_size, sampler_seed, spec.quantize)
                first = feasible_spread(self.space, pool, cost, self.budgets, spec.population_size)
            else:
                first = spread_configs(self.space, spec.population_size, sampler_seed, spec.quantize)
            self._seeds = [self.encoding.params_from_config(c) for c in first]

    # ---- the shared study -> mirror + cache ---------------------------------------------------------
    def sync(self) -> int:
        """Copy finished trials of the shared study not yet in the mirror (resume, other workers); how many."""
        new = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if t.number not in self._synced]
        mirrored = []
        mine = f"{self.worker}-{self._uid}-"  # trials this engine wrote are in its mirror already
        for t in new:
            self._synced.add(t.number)
            if str(t.system_attrs.get(UID_ATTR, "")).startswith(mine):
                continue
            config = self.stored.config_from_params(t.params)
            m = t.user_attrs.get("metrics")
            if m is not None and config not in self.cache:
                self.cache[config] = m
                if self.local is not None:
                    self.local.observe(config, m)
            params = self.encoding.params_from_config(config)
            mirrored.append(FrozenTrial(
                number=0, state=TrialState.COMPLETE, value=None, values=t.values, datetime_start=t.datetime_start,
                datetime_complete=t.datetime_complete, params=params,
                distributions={k: self._mirror_dists[k] for k in params}, user_attrs=dict(t.user_attrs),
                system_attrs=dict(t.system_attrs), intermediate_values={}, trial_id=0))
        if mirrored:
            self.mirror.add_trials(mirrored)
        return len(mirrored)

    # ---- the loop -----------------------------------------------------------------------------------
    def run(self, n: int, progress: Callable[[int], None] | None = None) -> EngineStats:
        stats = EngineStats()
        t_start = time.perf_counter()
        bs = max(1, int(self.spec.batch_size))
        while stats.completed < n:
            if self.spec.sync_every_batch:
                t0 = time.perf_counter()
                self.sync()
                stats.sync_seconds += time.perf_counter() - t0
            b = min(bs, n - stats.completed)
            trials, configs = self._ask(b)
            todo: dict[SubnetConfig, None] = {}
            for c in configs:
                if c not in self.cache:
                    todo.setdefault(c, None)
            if todo:
                t0 = time.perf_counter()
                batch = list(todo)
                metrics = self.evaluator.evaluate(batch)
                if len(metrics) != len(batch):
                    raise HwnasError(f"evaluator returned {len(metrics)} rows for {len(batch)} configs")
                self._store(batch, metrics)
                stats.eval_seconds += time.perf_counter() - t0
                stats.evaluated += len(batch)
            storage = storage_of(self.mirror)
            for t, c in zip(trials, configs):
                m = self.cache[c]
                # the list form (names in `Budgets.constraint_names()` order): what Optuna's samplers and
                # optuna-dashboard (which reads only this form) both understand
                storage.set_trial_system_attr(trial_id_of(t), CONSTRAINTS_KEY,
                                              list(self.budgets.constraints(m).values()))
                storage.set_trial_user_attr(trial_id_of(t), "metrics", m)
                if c not in todo:
                    storage.set_trial_user_attr(trial_id_of(t), "cached", True)
                    stats.cached += 1
                # what `Study.tell` does, minus the deep copy of the trial it returns (~8 % of a predicted trial)
                tell_with_warning(study=self.mirror, trial=t.number if self._light else t,
                                   value_or_values=objective_values(self.spec.objectives, m), state=None,
                                   skip_if_finished=False)
            t0 = time.perf_counter()
            self._flush(trials, configs)
            stats.flush_seconds += time.perf_counter() - t0
            stats.completed += b
            if progress is not None:
                progress(b)
        stats.seconds = time.perf_counter() - t_start
        return stats

    def _ask(self, b: int) -> tuple[list[Any], list[SubnetConfig]]:
        if self.local is not None and self.spec.local_from is not None and self._n_mirror() >= self.spec.local_from:
            return self._ask_fixed(self.local.propose(b, self.cache))
        if not self._light:
            trials = [self.mirror.ask() for _ in range(b)]
            return trials, [self.encoding.suggest(t) for t in trials]
        trials, configs = [], []
        storage, sid = storage_of(self.mirror), study_id_of(self.mirror)
        for _ in range(b):
            forget_cached_trials(self.mirror)  # as `Study.ask` does
            t = _LightTrial(self.mirror, storage.create_new_trial(sid), self._seeds.pop(0) if self._seeds else None)
            configs.append(self.encoding.suggest(t))
            t.commit()
            trials.append(t)
        return trials, configs

    def _n_mirror(self) -> int:
        return len(storage_of(self.mirror).get_all_trials(study_id_of(self.mirror), deepcopy=False))

    def _ask_fixed(self, configs: list[SubnetConfig]) -> tuple[list[Any], list[SubnetConfig]]:
        """Trials of the mirror with these configs, not drawn by the sampler."""
        trials = []
        storage, sid = storage_of(self.mirror), study_id_of(self.mirror)
        for c in configs:
            forget_cached_trials(self.mirror)
            params = self.encoding.params_from_config(c)
            t = _LightTrial(self.mirror, storage.create_new_trial(sid), params, sample=False)
            # what `encoding.suggest` would record, without asking for each parameter
            t.params, t.distributions = params, {k: self._mirror_dists[k] for k in params}
            t.commit()
            trials.append(t)
        return trials, list(configs)

    def _store(self, configs: list[SubnetConfig], metrics: Metrics) -> None:
        for i, c in enumerate(configs):
            row = self.cache[c] = metrics.row(i)
            if self.local is not None:
                self.local.observe(c, row)

    def _flush(self, trials: list[optuna.Trial], configs: list[SubnetConfig]) -> None:
        """Write the batch's finished trials to the shared study, spelled with the space's own parameters."""
        all_trials = storage_of(self.mirror).get_all_trials(study_id_of(self.mirror), deepcopy=False)
        out = []
        for t, c in zip(trials, configs):
            ft = all_trials[t.number]
            params = self.stored.params_from_config(c)
            sa = dict(ft.system_attrs)
            sa[WORKER_ATTR] = self.worker
            sa[UID_ATTR] = f"{self.worker}-{self._uid}-{t.number}"
            out.append(FrozenTrial(
                number=0, state=ft.state, value=None, values=ft.values, datetime_start=ft.datetime_start,
                datetime_complete=ft.datetime_complete, params=params,
                distributions={k: self._stored_dists[k] for k in params}, user_attrs=ft.user_attrs,
                system_attrs=sa, intermediate_values={}, trial_id=0))
        write_finished_trials(storage_of(self.study), study_id_of(self.study), out)
