"""Optuna samplers by name (`SAMPLERS`: a `SamplerKind` each; other packages add theirs through the
`hwnas.samplers` entry points). NSGA-II is Optuna's own, with its generation bookkeeping made incremental.

Optuna's `BaseGASampler.get_trial_generation` scans every completed trial on each `ask()` and
`get_parent_population` lists every trial again, so a 20k-trial study spends O(n^2) time there (the
throughput fell from ~320 to ~200 trials/s within 3k trials on mbv3). `IncrementalNSGAIISampler` keeps the
same generation numbers, stored in the same trial system attributes and the same study-level parent cache,
but updates its index only with trials finished since the last call. Selection, crossover and mutation are
Optuna's, unchanged.

The registry itself (`SAMPLERS`, `SamplerKind`) lives in `nas.search.sampler_kinds`, which imports no Optuna, so
listing the samplers (`hwnas search --help`) stays cheap; it is re-exported here.
"""
from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import NSGAIISampler
from optuna.trial import FrozenTrial, TrialState

from nas.search.optuna_compat import storage_of, study_id_of, trial_id_of
from nas.search.sampler_kinds import SAMPLERS, SamplerKind, SamplerOptions, make_sampler

__all__ = ["SAMPLERS", "IncrementalNSGAIISampler", "SamplerKind", "SamplerOptions", "make_sampler"]


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
