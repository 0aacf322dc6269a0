"""One search serving many budgets: the front's trials, then a budget local search per budget that starts there.

Why: a multi-objective front spreads its trials over every trade-off, while the best subnet under one latency or
size budget lies at that budget's boundary. Once-for-All's evolution spends all its evaluations on one budget, and
beat the front's picks on the quickstart by 1-4 points of predicted accuracy. A fresh budgeted search per budget
starts from nothing; this one starts from every trial the front already evaluated (the most accurate feasible ones
are its parents) and spends its `n` evaluations on children that the cost model says meet the budget
(`local.BudgetLocalSearch`).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from search_spaces import SearchSpace, SubnetConfig

from nas.budgets import Budgets
from nas.front import FrontEntry
from nas.search.adaptive import (AdaptiveLocalSearch, budget_local_search, float_subspace, has_float_subspace,
                                 is_float_unpruned, projected_seeds)
from nas.search.local import BudgetLocalSearch

# what `refine_for_budget` does by default, for the cache keys of results made with it (`nas.pipeline.stages`)
REFINE_VERSION = "adaptive-1"


def refine_for_budget(space: SearchSpace, evaluator: Any, budgets: Budgets,
                      start: Iterable[tuple[SubnetConfig, dict[str, Any]]], n: int, seed: int, quantize: bool,
                      keep: int = 10, batch: int = 50, float_first: float = 0.0, project: int = 0,
                      n_parents: int = 10, adaptive: bool = True,
                      **local_options: Any) -> tuple[list[FrontEntry], int]:
    """The `keep` most accurate subnets meeting `budgets` (best first) after `n` more evaluations by `evaluator`
    (a `PredictedEvaluator` or anything with `evaluate(configs) -> Metrics`; `evaluate_cost` where it has one)
    around the best of `start` (configs with their `Metrics.row`s, e.g. a search's trials); and how many new
    evaluations were made.

    `n_parents` 10, not the budget phase's 25: the refinement starts from a whole front, so it needs exploration
    less than exploitation of the few best feasible subnets (on the quickstart's 0.3 / 0.45 ms budgets with 1,000
    evaluations, 5 seeds: medians 86.70 / 87.50 against 86.38 / 87.41 with 25; experiments/results/search.md).

    `float_first`: the fraction of `n` first spent on float, unpruned subnets only (a local search of that
    subspace, from the float ones of `start`), before the joint search starts from everything seen: the joint
    space contains the float one, and this finds its optimum before bits and keep ratios are mixed in.

    `adaptive` (without `float_first`): the joint search and one of its float subspace side by side, sharing the
    evaluations by which pays (`nas.search.adaptive`). On mbv3 at 224 px (synthetic predictor, 5 seeds) it reaches
    the float search's optimum under the tightest budget on every seed, where the joint search alone fell short on
    3 of 5; on the quickstart's budgets the medians equal the joint search's (experiments/results/search.md)."""
    cost = getattr(evaluator, "evaluate_cost", None)
    seen: dict[SubnetConfig, dict[str, Any]] = {}
    for config, m in start:
        seen.setdefault(config, m)
    n_float = int(round(float_first * n)) if has_float_subspace(space, quantize) else 0
    done = 0
    if n_float:
        float_space = float_subspace(space)
        local = BudgetLocalSearch(float_space, budgets, False, seed ^ 0xF1, cost=cost, n_parents=n_parents,
                                  **local_options)
        for c, m in seen.items():
            if is_float_unpruned(c):
                local.observe(c, m)
        if project:
            seeds = projected_seeds(float_space, seen, budgets, cost, min(project, n_float))
            if seeds:
                metrics = evaluator.evaluate(seeds)
                for i, c in enumerate(seeds):
                    seen[c] = metrics.row(i)
                    local.observe(c, seen[c])
                done = len(seeds)
        done += _spend(local, evaluator, seen, n_float - done, batch)
    joint = budget_local_search(space, budgets, quantize, seed, cost=cost, adaptive=adaptive and not n_float,
                                n_parents=n_parents, **local_options)
    for c, m in seen.items():
        joint.observe(c, m)
    done += _spend(joint, evaluator, seen, n - done, batch)
    ok = [(c, m) for c, m in seen.items() if m["supported"] and budgets.feasible(m)]
    ok.sort(key=lambda cm: (-cm[1]["accuracy"], cm[1]["latency_ms"], cm[1]["size_bytes"]))
    return [FrontEntry.from_metrics(c, m) for c, m in ok[:keep]], done


def _spend(local: BudgetLocalSearch | AdaptiveLocalSearch, evaluator: Any,
           seen: dict[SubnetConfig, dict[str, Any]], n: int, batch: int) -> int:
    """`n` evaluations of `local`'s proposals, recorded in `seen` and fed back to `local`."""
    done = 0
    while done < n:
        configs = local.propose(min(batch, n - done), seen)
        metrics = evaluator.evaluate(configs)
        for i, c in enumerate(configs):
            row = metrics.row(i)
            if c not in seen:
                seen[c] = row
                local.observe(c, row)
        done += len(configs)
    return done
