"""The sampler registry (`SAMPLERS`: a `SamplerKind` each; other packages add theirs through the `hwnas.samplers`
entry points). Its factories import Optuna when they build a sampler, not before: listing and checking names
(`hwnas search --help`, `SearchConfig.validate`) costs no Optuna import."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search_spaces.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.samplers.nsgaii import BaseCrossover, BaseMutation


@dataclass(frozen=True)
class SamplerOptions:
    """What the engine hands a sampler factory (a factory uses what applies to it)."""

    seed: int | None
    population_size: int  # `SearchConfig.population_size`: the one default
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

    import optuna
    from optuna.samplers import TPESampler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TPESampler(seed=o.seed, multivariate=True, group=True, constant_liar=False,
                          n_startup_trials=o.n_startup_trials if o.n_startup_trials is not None else 100)


# nsga2: per-field genes reach 98 % of the reference hypervolume at 4,250 evaluations on mbv3 (`block-dense` with
# the field-wise operators at 6,000), at the same engine throughput since the search space is static
# (experiments/results/search.md)
def _nsga2(o: SamplerOptions) -> optuna.samplers.BaseSampler:
    from nas.search.samplers import IncrementalNSGAIISampler

    return IncrementalNSGAIISampler(population_size=o.population_size, seed=o.seed, mutation=o.mutation,
                                    mutation_prob=o.mutation_prob, crossover=o.crossover, search_space=o.search_space)


def _random(o: SamplerOptions) -> optuna.samplers.BaseSampler:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=o.seed)


SAMPLERS.register("nsga2", SamplerKind(_nsga2, default_encoding="field-dense", generational=True))
SAMPLERS.register("tpe", SamplerKind(_tpe, default_encoding="field", default_batch=32, light=False))
SAMPLERS.register("random", SamplerKind(_random, default_encoding="block", default_batch=500))


def make_sampler(name: str, seed: int | None, population_size: int, n_startup_trials: int | None = None,
                 mutation: BaseMutation | None = None, mutation_prob: float | None = None,
                 crossover: BaseCrossover | None = None,
                 search_space: dict[str, BaseDistribution] | None = None) -> optuna.samplers.BaseSampler:
    """The registered sampler `name` (`SAMPLERS`), built with these options."""
    return SAMPLERS.get(name).build(SamplerOptions(seed, population_size, n_startup_trials, mutation, mutation_prob,
                                                   crossover, search_space))
