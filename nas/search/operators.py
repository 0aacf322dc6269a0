"""NSGA-II's first generation and mutation, informed by how the space is ordered.

Why: hypervolume is dominated by the front's extremes and its spread, and a uniform random first generation
holds neither (the mean of ~20 block choices concentrates near the middle of the size range). And Optuna's
default mutation re-draws a mutated parameter at random: with the packed ``block-dense`` encoding that re-draws
a block's kernel, expand, keep *and* bits at once. Here:

- `spread_configs`: the smallest and the largest subnet at every bit pair the space allows, then subnets drawn
  along two stratified "size knobs" (one for the architecture fields, one for the bits): each field's choice
  index ~ Binomial(choices - 1, knob), so the first generation covers the small-to-large range evenly.
- `BlockFieldCrossover`: a child takes each field of a packed block option from either parent (Optuna's
  uniform crossover swaps whole blocks): the per-field recombination of the ``field-dense`` encoding at the
  ``block-dense`` encoding's throughput.
- `BlockFieldMutation`: mutates one field (kernel, expand, keep or bit pair) of a packed block option to
  another choice (`field`, the default) or a neighbouring one (`field-step`), so a mutated child stays next to
  its parent.

Measured on mbv3 (experiments/results/search.md): with the dense encodings' inert genes repeating the stage's
last block (`encoding.py`), these lift NSGA-II at 5,000 evaluations from 0.91 to >= 0.98 of the reference
hypervolume at the same throughput.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import optuna
from optuna.samplers.nsgaii import BaseCrossover, BaseMutation

from search_spaces import SearchSpace, SubnetConfig
from search_spaces.errors import bad_value

INITS = ("spread", "random")
MUTATIONS = ("field-step", "field", "redraw")
CROSSOVERS = ("field", "uniform")
T = TypeVar("T")


def _knob_index(rng: np.random.Generator, n_choices: int, knob: float, size: int | None = None) -> np.ndarray:
    return rng.binomial(n_choices - 1, knob, size=size)


def spread_configs(space: SearchSpace, n: int, seed: int, quantize: bool = True) -> list[SubnetConfig]:
    """`n` distinct valid configs spanning the space from its smallest to its largest subnet (see module doc),
    at the space's searched resolutions."""
    sc = space.schema
    depth_choices = sc.depth_values(0)
    if any(sc.depth_values(g) != depth_choices for g in range(sc.n_groups)):
        raise bad_value("schema depth groups", [sc.depth_values(g) for g in range(sc.n_groups)], "one depth choice set")
    # the global choices in schema order (mbv3: the searched resolutions), then the architecture fields
    global_choices = [(sc.columns[c].field, sorted(space.searched(sc.columns[c].field)))
                      for c in space.context_columns()]
    arch_choices = [list(space.searched(f)) for f in sc.position_fields[:-2]]
    pairs = list(space.bit_pairs) if quantize else [(32, 32)]
    out: list[SubnetConfig] = []
    seen: set[SubnetConfig] = set()

    def add(c: SubnetConfig) -> None:
        if c not in seen and len(out) < n:
            space.check(c)
            seen.add(c)
            out.append(c)

    for w, a in pairs:
        add(space.smallest(weight_bits=w, act_bits=a))  # at the lowest searched resolution
        add(space.largest(weight_bits=w, act_bits=a))
    rng = np.random.default_rng(seed)
    m = max(1, n - len(out))
    # a 2-D Latin hypercube over (architecture knob, bits knob)
    ta = (rng.permutation(m) + rng.random(m)) / m
    tb = (rng.permutation(m) + rng.random(m)) / m
    for tries in range(20 * m):
        if len(out) >= n:
            break
        i = tries % m
        t, u = float(ta[i]), float(tb[i])
        depths = tuple(int(depth_choices[j]) for j in _knob_index(rng, len(depth_choices), t, sc.n_groups))
        nb = sum(depths)
        pix = _knob_index(rng, len(pairs), u, nb)
        values = {field: choices[int(_knob_index(rng, len(choices), t))] for field, choices in global_choices}
        arch = [[choices[j] for j in _knob_index(rng, len(choices), t, nb)] for choices in arch_choices]
        add(space.assemble(values, depths, [(*a, *pairs[j]) for a, j in zip(zip(*arch), pix)]))
    return out


def _decode(v: np.ndarray, radices: Sequence[int]) -> list[np.ndarray]:
    """Option number(s) -> one digit (array) per field, most significant first."""
    out = []
    for r in reversed(radices):
        out.append(v % r)
        v = v // r
    return out[::-1]


def _encode(digits: Sequence[np.ndarray] | Sequence[int], radices: Sequence[int]) -> np.ndarray:
    """The inverse of `_decode`."""
    v = np.zeros_like(np.asarray(digits[0]), dtype=np.int64)
    for r, d in zip(radices, digits):
        v = v * r + d
    return v


class BlockFieldMutation(BaseMutation):
    """Mutation of a packed block option (`BlockEncoding`: mixed radix, kernel most significant, bit pair least).

    One field, chosen at random, moves to a neighbouring choice (`field-step`: +-1, reflected at the ends) or to
    any other choice (`field`). An integer parameter whose range is not a block option's is re-drawn uniformly."""

    def __init__(self, radices: Sequence[int], step: bool = True) -> None:
        self.radices = tuple(int(r) for r in radices)
        self.n = int(np.prod(self.radices))
        self.step = step

    def mutation(self, param: float, rng: np.random.RandomState, study: optuna.Study,
                 search_space_bounds: np.ndarray) -> float:
        lo, hi = float(search_space_bounds[0]), float(search_space_bounds[1])
        low = int(round(lo + 0.5))
        if int(round(hi - 0.5)) - low + 1 != self.n:
            return float(rng.randint(low, int(round(hi - 0.5)) + 1))
        digits = [int(d) for d in _decode(np.int64(int(round(param)) - low), self.radices)]
        movable = [i for i, r in enumerate(self.radices) if r > 1]
        if not movable:
            return param
        f = movable[rng.randint(len(movable))]
        r, d = self.radices[f], digits[f]
        if self.step:
            d = d + 1 if d == 0 else d - 1 if d == r - 1 else d + (1 if rng.rand() < 0.5 else -1)
        else:
            d = (d + rng.randint(1, r)) % r
        digits[f] = d
        v = int(_encode(digits, self.radices))
        return float(v + low)


def make_mutation(name: str, radices: Sequence[int] | None) -> BaseMutation | None:
    """`redraw` (Optuna's default: None) or a `BlockFieldMutation` over `radices`."""
    if name == "redraw" or radices is None:
        return None
    return _quietly(lambda: BlockFieldMutation(radices, step=name == "field-step"))


class BlockFieldCrossover(BaseCrossover):
    """Uniform crossover per field of packed block options (see the module doc); other numerical parameters
    are swapped whole with probability `swapping_prob`, as Optuna's `UniformCrossover` does."""

    n_parents = 2

    def __init__(self, radices: Sequence[int], swapping_prob: float = 0.5) -> None:
        self.radices = tuple(int(r) for r in radices)
        self.n = int(np.prod(self.radices))
        self.swapping_prob = swapping_prob

    def crossover(self, parents_params: np.ndarray, rng: np.random.RandomState, study: optuna.Study,
                  search_space_bounds: np.ndarray) -> np.ndarray:
        a, b = parents_params[0], parents_params[1]
        child = np.where(rng.rand(len(a)) >= self.swapping_prob, a, b)
        lo = np.rint(search_space_bounds[:, 0] + 0.5).astype(np.int64)
        hi = np.rint(search_space_bounds[:, 1] - 0.5).astype(np.int64)
        blk = (hi - lo + 1) == self.n
        if blk.any():
            da = _decode(np.rint(a[blk]).astype(np.int64) - lo[blk], self.radices)
            db = _decode(np.rint(b[blk]).astype(np.int64) - lo[blk], self.radices)
            picked = [np.where(rng.rand(len(x)) >= self.swapping_prob, x, y) for x, y in zip(da, db)]
            child[blk] = _encode(picked, self.radices) + lo[blk]
        return child


def make_crossover(name: str, radices: Sequence[int] | None) -> BaseCrossover | None:
    """`uniform` (Optuna's default: None) or a `BlockFieldCrossover` over `radices`."""
    if name == "uniform" or radices is None:
        return None
    return _quietly(lambda: BlockFieldCrossover(radices))


def _quietly(make: Callable[[], T]) -> T:
    """Optuna marks custom NSGA-II operators experimental; the warning says nothing to a user of `hwnas search`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return make()
