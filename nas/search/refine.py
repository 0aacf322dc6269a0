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
from nas.search.local import BudgetLocalSearch


def refine_for_budget(space: SearchSpace, evaluator: Any, budgets: Budgets,
                      start: Iterable[tuple[SubnetConfig, dict[str, Any]]], n: int, seed: int, quantize: bool,
                      keep: int = 10, batch: int = 50) -> tuple[list[FrontEntry], int]:
    """The `keep` most accurate subnets meeting `budgets` (best first) after `n` more evaluations by `evaluator`
    (a `PredictedEvaluator` or anything with `evaluate(configs) -> Metrics`; `evaluate_cost` where it has one)
    around the best of `start` (configs with their `Metrics.row`s, e.g. a search's trials); and how many new
    evaluations were made."""
    local = BudgetLocalSearch(space, budgets, quantize, seed, cost=getattr(evaluator, "evaluate_cost", None))
    seen: dict[SubnetConfig, dict[str, Any]] = {}
    for config, m in start:
        if config not in seen:
            seen[config] = m
            local.observe(config, m)
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
    ok = [(c, m) for c, m in seen.items() if m["supported"] and budgets.feasible(m)]
    ok.sort(key=lambda cm: (-cm[1]["accuracy"], cm[1]["latency_ms"], cm[1]["size_bytes"]))
    return [FrontEntry.from_metrics(c, m) for c, m in ok[:keep]], done
