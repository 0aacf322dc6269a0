"""A budget local search of the joint space and of its float subspace side by side, sharing the evaluations by
which pays: the budget phase of a constrained search (`engine`) and the per-budget refinement (`refine`) both
use it.

Why: the joint space (architecture x keep ratio x bits) contains the float, unpruned one, yet a joint local search
spends most of its mutations on bits and keep ratios. Where those do not pay -- a device whose int8 is slow, a
predictor that rates quantized subnets low -- it fell short of a float-only search with the same evaluations (mbv3
at 224 px on an ort-cpu table: 96.742-96.761 against 96.761 on every seed; experiments/results/search.md).

How: each batch goes to the search ("arm") whose last ADAPTIVE_WINDOW batches put the most subnets among the
ADAPTIVE_ELITE most accurate feasible ones seen (a denser signal than raising the best, which few batches do).
The float arm starts from the float versions of the best subnets seen (a joint front holds few float, unpruned
subnets, and those are not its best), and after its first batch takes part only while that pays: one of its
subnets is in the elite, or its recent batches put one there. Where quantized subnets win by points (the
quickstart), it costs one batch. A taking-part arm left out for ADAPTIVE_EXPLORE batches gets the next: its score
is stale. Every arm observes what falls in its space, whoever proposed it.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from search_spaces import SearchSpace, SubnetConfig, get_space

from nas.budgets import Budgets
from nas.search.local import BudgetLocalSearch, CostFn

ADAPTIVE_WINDOW = 3
ADAPTIVE_ELITE = 10
ADAPTIVE_EXPLORE = 4


def is_float_unpruned(config: SubnetConfig) -> bool:
    """Whether every block of `config` is float (32/32 bits) and unpruned (keep 1.0)."""
    return all(k == 1.0 for k in config.keep) and all(b >= 32 for b in (*config.weight_bits, *config.act_bits))


def float_projection(config: SubnetConfig) -> SubnetConfig:
    """`config` with every block float and unpruned (its architecture unchanged)."""
    n = len(config.keep)
    return replace(config, keep=(1.0,) * n, weight_bits=(32,) * n, act_bits=(32,) * n)


def projected_seeds(space: SearchSpace, seen: Mapping[SubnetConfig, dict[str, Any]], budgets: Budgets,
                    cost: CostFn | None, n: int) -> list[SubnetConfig]:
    """Float projections of the most accurate subnets seen that the cost model says still meet the budgets and
    that were not evaluated: a float search's warm start where the start holds few float subnets."""
    order = sorted((c for c, m in seen.items() if m["supported"]), key=lambda c: -seen[c]["accuracy"])
    out: list[SubnetConfig] = []
    for c in order:
        p = float_projection(c)
        if p not in seen and p not in out:
            out.append(p)
        if len(out) >= 4 * n:
            break
    if not out or cost is None:
        return out[:n]
    lat, size, sup = cost(space.to_indices(out))
    cb = Budgets(latency_ms=budgets.latency_ms, size_mb=budgets.size_mb)
    ok = sup & cb.mask(lat * 0, lat, size)
    return [c for c, good in zip(out, ok) if good][:n]


def has_float_subspace(space: SearchSpace, quantize: bool) -> bool:
    """Whether `space` (searched with bits when `quantize`) is larger than its float, unpruned subspace."""
    return quantize or tuple(getattr(space, "keep_choices", ())) != (1.0,)


def float_subspace(space: SearchSpace) -> SearchSpace:
    return get_space(space.name, resolutions=space.resolutions, keep=(1.0,))


@dataclass
class _Arm:
    local: BudgetLocalSearch
    accepts: Callable[[SubnetConfig], bool] | None = None  # what it may observe (None: everything)
    warm_start: bool = False  # its first proposals: float projections of the best seen when the search starts
    first: list[SubnetConfig] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    best: float = -math.inf  # the most accurate feasible subnet seen in its space
    last: int = 0  # the batch it last proposed


class AdaptiveLocalSearch:
    """`BudgetLocalSearch`'s interface (`observe`, `propose`) over a joint and a float arm (module docstring)."""

    def __init__(self, space: SearchSpace, budgets: Budgets, quantize: bool, seed: int, cost: CostFn | None = None,
                 **options: Any) -> None:
        self.space, self.budgets, self.cost = space, budgets, cost
        self.float_space = float_subspace(space)
        self.arms = [_Arm(BudgetLocalSearch(space, budgets, quantize, seed, cost=cost, **options)),
                     _Arm(BudgetLocalSearch(self.float_space, budgets, False, seed ^ 0xF1, cost=cost, **options),
                          is_float_unpruned, warm_start=True)]
        self._elite: list[float] = []  # a min-heap of the ADAPTIVE_ELITE best feasible accuracies
        self._t = 0
        self._pending: tuple[_Arm, set[SubnetConfig], int] | None = None  # the last batch: arm, unseen, size
        self._entered = 0

    def _ok(self, m: Mapping[str, Any]) -> bool:
        return bool(m["supported"]) and self.budgets.feasible(m)

    def observe(self, config: SubnetConfig, m: dict[str, Any]) -> None:
        ok = self._ok(m)
        for arm in self.arms:
            if arm.accepts is None or arm.accepts(config):
                arm.local.observe(config, m)
                if ok:
                    arm.best = max(arm.best, float(m["accuracy"]))
        entered = ok and (len(self._elite) < ADAPTIVE_ELITE or m["accuracy"] > self._elite[0])
        if entered:
            (heapq.heappush if len(self._elite) < ADAPTIVE_ELITE else heapq.heapreplace)(self._elite,
                                                                                      float(m["accuracy"]))
        if self._pending is not None and config in self._pending[1]:
            self._pending[1].discard(config)
            self._entered += bool(entered)

    def _pays(self, arm: _Arm) -> bool:
        return (arm.accepts is None or not arm.rewards or sum(arm.rewards[-ADAPTIVE_WINDOW:]) > 0
                or len(self._elite) < ADAPTIVE_ELITE or arm.best >= self._elite[0])

    def propose(self, n: int, evaluated: Mapping[SubnetConfig, dict[str, Any]]) -> list[SubnetConfig]:
        """`n` children from the arm that pays best now (the previous batch's reward is booked first)."""
        if self._pending is not None:
            arm, _, size = self._pending
            arm.rewards.append(self._entered / max(1, size))
        if self._t == 0:  # the warm starts come from what was seen before the first batch
            for arm in self.arms:
                if arm.warm_start:
                    arm.first = projected_seeds(self.float_space, evaluated, self.budgets, self.cost, n)
        self._t += 1
        active = [a for a in self.arms if self._pays(a)]
        forced = [a for a in active if not a.rewards or self._t - a.last > ADAPTIVE_EXPLORE]
        arm = (min(forced, key=lambda a: (len(a.rewards), a.last)) if forced else
               max(active, key=lambda a: (sum(a.rewards[-ADAPTIVE_WINDOW:]), -len(a.rewards))))
        arm.last = self._t
        configs = [c for c in arm.first[:n] if c not in evaluated]
        arm.first = arm.first[n:]
        if len(configs) < n:
            configs += arm.local.propose(n - len(configs), evaluated)
        self._pending, self._entered = (arm, {c for c in configs if c not in evaluated}, len(configs)), 0
        return configs


def budget_local_search(space: SearchSpace, budgets: Budgets, quantize: bool, seed: int,
                        cost: CostFn | None = None, adaptive: bool = True,
                        **options: Any) -> BudgetLocalSearch | AdaptiveLocalSearch:
    """The budget local search of `space`: the adaptive one where `space` is larger than its float, unpruned
    subspace (bits searched, or keep ratios other than 1.0), else the plain one."""
    if adaptive and has_float_subspace(space, quantize):
        return AdaptiveLocalSearch(space, budgets, quantize, seed, cost=cost, **options)
    return BudgetLocalSearch(space, budgets, quantize, seed, cost=cost, **options)
