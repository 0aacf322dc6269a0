"""The budget phase of a constrained search: a local evolution that maximises accuracy inside the budgets.

Why: NSGA-II spreads its trials over the whole (feasible) front, but a user who gives `--latency-ms B` wants the
most accurate subnet under B, which lies near the budget's boundary. Once-for-All's evolution, which spends every
evaluation on that one question, found higher accuracy under each budget than the multi-objective search
(experiments/results/search.md). So after NSGA-II has found a feasible front, a budgeted search spends its
remaining trials here:

- parents: the `n_parents` most accurate feasible subnets evaluated so far (by this process or, through the
  shared study, any other), or the least infeasible ones while none is feasible;
- children: half by mutating one parent (each active gene moves with probability `mutation_prob`, at least one
  always does), half by uniform crossover of two parents;
- a child is checked against the latency and size budgets with the evaluator's cheap cost model (the latency
  table and the exact size; `PredictedEvaluator.evaluate_cost`) and re-drawn if it misses them or was evaluated
  before, so no evaluation is spent on a subnet that cannot be the answer. Without a cost model (the measured
  evaluator) every child is evaluated.

Where the space has a float, unpruned subspace smaller than itself, two of these run side by side, one per space
(`nas.search.adaptive`).
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Container
from typing import Any

import numpy as np

from search_spaces import SearchSpace, SubnetConfig

from nas.budgets import Budgets
from nas.search.genes import Genes

CostFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


class BudgetLocalSearch:
    def __init__(self, space: SearchSpace, budgets: Budgets, quantize: bool, seed: int, cost: CostFn | None = None,
                 n_parents: int = 25, mutation_ratio: float = 0.5, mutation_prob: float | None = None,
                 max_rounds: int = 30) -> None:
        self.genes = Genes(space, quantize)
        self.budgets = budgets
        self.cost_budgets = Budgets(latency_ms=budgets.latency_ms, size_mb=budgets.size_mb)
        self.cost = cost
        self.rng = np.random.default_rng(seed)
        self.n_parents = n_parents
        self.mutation_ratio = mutation_ratio
        self.mutation_prob = mutation_prob if mutation_prob is not None else 1.0 / self.genes.n_genes
        self.max_rounds = max_rounds
        # best first: (-accuracy, latency, tiebreak, config) of feasible ones; (violation, ...) of infeasible ones
        self._feasible: list[tuple[float, float, int, SubnetConfig]] = []
        self._infeasible: list[tuple[float, float, int, SubnetConfig]] = []
        self._n = 0
        self.proposed_checked = 0  # candidates checked with the cost model (free)

    # ---- what has been evaluated -------------------------------------------------------------------
    def observe(self, config: SubnetConfig, m: dict[str, Any]) -> None:
        self._n += 1
        if not m["supported"]:
            return
        if self.budgets.feasible(m):
            key = (-float(m["accuracy"]), float(m["latency_ms"]), self._n, config)
            _push(self._feasible, key, self.n_parents)
        elif not self._feasible:
            c = self.budgets.constraints(m)
            scale = {"latency_ms": self.budgets.latency_ms, "size_mb": self.budgets.size_mb,
                     "accuracy": self.budgets.min_accuracy}
            v = sum(max(0.0, val) / (scale[k] or 1.0) for k, val in c.items() if k != "supported")
            _push(self._infeasible, (v, -float(m["accuracy"]), self._n, config), self.n_parents)

    def parents(self) -> list[SubnetConfig]:
        return [k[3] for k in (self._feasible or self._infeasible)]

    # ---- proposals ----------------------------------------------------------------------------------
    def propose(self, n: int, evaluated: Container[SubnetConfig]) -> list[SubnetConfig]:
        """`n` distinct new children of the current parents that meet the latency/size budgets (as far as the
        cost model says; fewer checks pass, more are drawn)."""
        parents = self.parents()
        if not parents:
            return [self.genes.to_configs(self.genes.random(self.rng, 1))[0] for _ in range(n)]
        pg = self.genes.from_configs(parents)
        out: list[SubnetConfig] = []
        taken: set[SubnetConfig] = set()
        spare: list[SubnetConfig] = []  # novel but over budget: used only if nothing better turns up
        for _ in range(self.max_rounds):
            need = n - len(out)
            if need <= 0:
                break
            k = 2 * need + 8
            kids = self._children(pg, k)
            configs = self.genes.to_configs(kids)
            ok = np.ones(len(configs), bool)
            if self.cost is not None:
                lat, size, sup = self.cost(self.genes.to_indices(kids))
                self.proposed_checked += len(kids)
                ok = sup & self.cost_budgets.mask(np.zeros(len(kids)), lat, size)
            for c, good in zip(configs, ok):
                if c in taken or c in evaluated:
                    continue
                if good:
                    taken.add(c)
                    out.append(c)
                    if len(out) >= n:
                        break
                elif len(spare) < n:
                    spare.append(c)
        for c in spare:
            if len(out) >= n:
                break
            if c not in taken:
                taken.add(c)
                out.append(c)
        while len(out) < n:  # a converged population: repeat a parent (answered from the cache)
            out.append(parents[len(out) % len(parents)])
        return out

    def _children(self, pg: np.ndarray, k: int) -> np.ndarray:
        rng = self.rng
        n_mut = int(round(self.mutation_ratio * k))
        a = pg[rng.integers(0, len(pg), k)]
        b = pg[rng.integers(0, len(pg), k)]
        mut = self.genes.mutate_fields(rng, a[:n_mut], self.mutation_prob)
        cross = self.genes.crossover(rng, a[n_mut:], b[n_mut:])
        return np.concatenate([mut, cross])


def _push(heap: list[tuple[float, float, int, SubnetConfig]], key: tuple[float, float, int, SubnetConfig],
          cap: int) -> None:
    """Keep `heap` the sorted `cap` smallest keys with distinct configs."""
    if len(heap) >= cap and key[:3] >= heap[-1][:3]:
        return
    if any(h[3] == key[3] for h in heap):
        return
    bisect.insort(heap, key, key=lambda t: t[:3])
    if len(heap) > cap:
        heap.pop()


def feasible_spread(space: SearchSpace, pool: list[SubnetConfig], cost: CostFn, budgets: Budgets,
                    n: int) -> list[SubnetConfig]:
    """`n` configs of `pool` that meet the latency and size budgets by the cost model, spread evenly over the
    feasible range of the tightest budget (its largest, nearest the boundary, always in); topped up with the
    least-violating others when fewer are feasible."""
    if not pool:
        return []
    lat, size, sup = cost(space.to_indices(pool))
    slack = np.zeros(len(pool))  # 1 = at the boundary of the tightest budget, lower = further inside
    if budgets.latency_ms is not None:
        slack = np.maximum(slack, lat / budgets.latency_ms)
    if budgets.size_mb is not None:
        slack = np.maximum(slack, size / 1e6 / budgets.size_mb)
    ok = sup & (slack <= 1.0) if (budgets.latency_ms is not None or budgets.size_mb is not None) else sup
    feas = np.flatnonzero(ok)
    feas = feas[np.argsort(slack[feas], kind="stable")]
    if len(feas) > n:
        pick = np.unique(np.round(np.linspace(len(feas) - 1, 0, n)).astype(int))
        chosen = list(feas[pick])
    else:
        chosen = list(feas)
    rest = np.flatnonzero(~ok & sup)
    rest = rest[np.argsort(slack[rest], kind="stable")]
    chosen += list(rest[: max(0, n - len(chosen))])
    return [pool[i] for i in chosen]
