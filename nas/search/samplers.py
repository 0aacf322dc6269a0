"""Optuna samplers by name (`SAMPLERS`: a `SamplerKind` each; other packages add theirs through the
`hwnas.samplers` entry points). NSGA-II is Optuna's own, with its generation bookkeeping made incremental.

Optuna's `BaseGASampler.get_trial_generation` scans every completed trial on each `ask()` and
`get_parent_population` lists every trial again, so a 20k-trial study spends O(n^2) time there (the
throughput fell from ~320 to ~200 trials/s within 3k trials on mbv3). `IncrementalNSGAIISampler` keeps the
same generation numbers, stored in the same trial system attributes and the same study-level parent cache,
but updates its index only with trials finished since the last call. Selection, crossover and mutation are
Optuna's, unchanged.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import NSGAIISampler, RandomSampler, TPESampler
from optuna.samplers.nsgaii import BaseCrossover, BaseMutation
from optuna.trial import FrozenTrial, TrialState

from search_spaces.registry import Registry

from nas.search.optuna_compat import storage_of, study_id_of, trial_id_of


class _GenerationIndex:
    def __init__(self) -> None:
        self.cursor = 0  # every trial before this index is finished and indexed
        self.seen: set[int] = set()
        self.members: dict[int, list[int]] = {}  # generation -> trial list positions (numbers)
        self.parents: dict[int, list[FrozenTrial]] = {}


class IncrementalNSGAIISampler(NSGAIISampler):
    """`optuna.samplers.NSGAIISampler` with O(new trials) generation bookkeeping per `ask()`.

    `search_space`: when every trial has the same parameters (the dense encodings), the relative search space is
    known in advance: Optuna's intersection of all completed trials' distributions is exactly it, but costs a
    deep copy per `ask()` (~10 % of a predicted trial on mbv3). Given, it is returned as the intersection would be
    (sorted by name, single-valued distributions left out, empty until a trial has completed)."""

    def __init__(self, search_space: dict[str, BaseDistribution] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._index: dict[tuple[int, int], _GenerationIndex] = {}
        self._fixed_space = None if search_space is None else {
            n: d for n, d in sorted(search_space.items()) if not d.single()}

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._fixed_space is None:
            return super().infer_relative_search_space(study, trial)
        ix, _ = self._sync(study)
        return self._fixed_space if any(ix.members.values()) else {}

    def _sync(self, study: optuna.Study) -> tuple[_GenerationIndex, list[FrozenTrial]]:
        key = (id(storage_of(study)), study_id_of(study))
        ix = self._index.setdefault(key, _GenerationIndex())
        trials = storage_of(study).get_all_trials(study_id_of(study), deepcopy=False)
        gkey = self._get_generation_key()
        new_cursor = None
        for i in range(ix.cursor, len(trials)):
            t = trials[i]
            if not t.state.is_finished():
                if new_cursor is None:
                    new_cursor = i
                continue
            if t.number in ix.seen:
                continue
            ix.seen.add(t.number)
            if t.state == TrialState.COMPLETE:
                g = t.system_attrs.get(gkey, -1)
                ix.members.setdefault(g, []).append(i)
        ix.cursor = len(trials) if new_cursor is None else new_cursor
        return ix, trials

    def get_trial_generation(self, study: optuna.Study, trial: FrozenTrial) -> int:
        generation = trial.system_attrs.get(self._get_generation_key(), None)
        if generation is not None:
            return generation
        ix, _ = self._sync(study)
        gens = [g for g, m in ix.members.items() if m]
        max_generation = max(gens) if gens else 0
        count = len(ix.members.get(max_generation, ())) if gens else 0
        assert self._population_size is not None
        generation = max_generation if count < self._population_size else max_generation + 1
        storage_of(study).set_trial_system_attr(trial_id_of(trial), self._get_generation_key(), generation)
        return generation

    def get_population(self, study: optuna.Study, generation: int) -> list[FrozenTrial]:
        ix, trials = self._sync(study)
        return [trials[i] for i in ix.members.get(generation, [])]

    def get_parent_population(self, study: optuna.Study, generation: int) -> list[FrozenTrial]:
        if generation == 0:
            return []
        ix, trials = self._sync(study)
        if generation in ix.parents:
            return ix.parents[generation]
        attrs = storage_of(study).get_study_system_attrs(study_id_of(study))
        cached = attrs.get(self._get_parent_cache_key_prefix() + str(generation))
        if cached is not None:
            ids = set(cached)
            parents = [t for t in trials if trial_id_of(t) in ids]
        else:
            parents = self.select_parent(study, generation)
            storage_of(study).set_study_system_attr(study_id_of(study), self._get_parent_cache_key_prefix() + str(generation),
                                                 [trial_id_of(t) for t in parents])
        ix.parents[generation] = parents
        return parents


@dataclass(frozen=True)
class SamplerOptions:
    """What the engine hands a sampler factory (a factory uses what applies to it)."""

    seed: int | None
    population_size: int = 50
    n_startup_trials: int | None = None
    mutation: BaseMutation | None = None  # nsga2: `operators.make_mutation` (None: Optuna's re-draw)
    mutation_prob: float | None = None
    crossover: BaseCrossover | None = None  # nsga2: `operators.make_crossover` (None: Optuna's uniform)
    search_space: dict[str, BaseDistribution] | None = None  # every trial's parameters, where that is fixed


@dataclass(frozen=True)
class SamplerKind:
    """A registered sampler: its factory, and what the engine must know about it to drive it.

    `default_encoding`: the encoding searched when none is asked for (`encoding.ENCODINGS`). `default_batch`:
    trials asked per batch (None: the population size). `light`: it reads no trial parameters while they are
    suggested, so the engine's cheap trial objects serve it (TPE reads them: False, Optuna's own `Trial`).
    `generational`: NSGA-II-like, a population per generation: the engine seeds its first generation
    (`SearchConfig.init`), its mutation / crossover apply, and the budget local search may follow it."""

    build: Callable[[SamplerOptions], optuna.samplers.BaseSampler]
    default_encoding: str
    default_batch: int | None = None
    light: bool = True
    generational: bool = False


def _check_kind(name: str, obj: Any) -> SamplerKind:
    if not isinstance(obj, SamplerKind):
        raise TypeError(f"{obj!r} is not a nas.search.samplers.SamplerKind")
    return obj


# listed in registration order: the default first
SAMPLERS: Registry[SamplerKind] = Registry("sampler", entry_points="hwnas.samplers", check=_check_kind, sort=False)


def _tpe(o: SamplerOptions) -> optuna.samplers.BaseSampler:
    """Multivariate, grouped: conditional parameters become their own groups."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TPESampler(seed=o.seed, multivariate=True, group=True, constant_liar=False,
                          n_startup_trials=o.n_startup_trials if o.n_startup_trials is not None else 100)


# nsga2: per-field genes reach 98 % of the reference hypervolume at 4,250 evaluations on mbv3 (`block-dense` with
# the field-wise operators at 6,000), at the same engine throughput since the search space is static
# (experiments/results/search.md)
SAMPLERS.register("nsga2", SamplerKind(
    lambda o: IncrementalNSGAIISampler(population_size=o.population_size, seed=o.seed, mutation=o.mutation,
                                       mutation_prob=o.mutation_prob, crossover=o.crossover,
                                       search_space=o.search_space),
    default_encoding="field-dense", generational=True))
SAMPLERS.register("tpe", SamplerKind(_tpe, default_encoding="field", default_batch=32, light=False))
SAMPLERS.register("random", SamplerKind(lambda o: RandomSampler(seed=o.seed), default_encoding="block",
                                        default_batch=500))


def make_sampler(name: str, seed: int | None, population_size: int = 50, n_startup_trials: int | None = None,
                 mutation: BaseMutation | None = None, mutation_prob: float | None = None,
                 crossover: BaseCrossover | None = None,
                 search_space: dict[str, BaseDistribution] | None = None) -> optuna.samplers.BaseSampler:
    """The registered sampler `name` (`SAMPLERS`), built with these options."""
    return SAMPLERS.get(name).build(SamplerOptions(seed, population_size, n_startup_trials, mutation, mutation_prob,
                                                   crossover, search_space))
