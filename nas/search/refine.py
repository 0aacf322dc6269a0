"""One search serving many budgets: the front's trials, then a budget local search per budget that starts there.

Why: a multi-objective front spreads its trials over every trade-off, while the best subnet under one latency or
size budget lies at that budget's boundary. Once-for-All's evolution spends all its evaluations on one budget, and
beat the front's picks on the quickstart by 1-4 points of predicted accuracy. A fresh budgeted search per budget
starts from nothing; this one starts from every trial the front already evaluated (the most accurate feasible ones
are its parents) and spends its `n` evaluations on children that the cost model says meet the budget
(`local.BudgetLocalSearch`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from search_spaces import SearchSpace, SubnetConfig, get_space

from nas.budgets import Budgets
from nas.front import FrontEntry
from nas.search.local import BudgetLocalSearch


def is_float_unpruned(config: SubnetConfig) -> bool:
    """Whether every block of `config` is float (32/32 bits) and unpruned (keep 1.0)."""
    return all(k == 1.0 for k in config.keep) and all(b >= 32 for b in (*config.weight_bits, *config.act_bits))


def float_projection(config: SubnetConfig) -> SubnetConfig:
    """`config` with every block float and unpruned (its architecture unchanged)."""
    n = len(config.keep)
    return replace(config, keep=(1.0,) * n, weight_bits=(32,) * n, act_bits=(32,) * n)


def _projected_seeds(space: SearchSpace, seen: dict[SubnetConfig, dict[str, Any]], budgets: Budgets, cost: Any,
                     n: int) -> list[SubnetConfig]:
    """Float projections of the most accurate subnets seen that the cost model says still meet the budgets and
    that were not evaluated: the float phase's warm start where the start holds few float subnets."""
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

    `adaptive` (without `float_first`): the float subspace's local search and the joint one run side by side, and
    each batch goes to the one whose recent batches put more subnets among the best feasible ones
    (`_spend_adaptive`): where bits and keep ratios do not pay (a device whose int8 is slow, a predictor that rates
    them low), the float search gets the evaluations; where they pay, the joint one, and the float search costs
    one batch. On mbv3 at 224 px (synthetic predictor, 5 seeds) it reaches the float search's optimum under the
    tightest budget on every seed, where the joint search alone fell short on 3 of 5; on the quickstart's budgets
    the medians equal the joint search's (experiments/results/search.md)."""
    cost = getattr(evaluator, "evaluate_cost", None)
    seen: dict[SubnetConfig, dict[str, Any]] = {}
    for config, m in start:
        seen.setdefault(config, m)
    n_float = int(round(float_first * n)) if quantize or tuple(getattr(space, "keep_choices", ())) != (1.0,) else 0
    done = 0
    if n_float:
        float_space = get_space(space.name, resolutions=space.resolutions, keep=(1.0,))
        local = BudgetLocalSearch(float_space, budgets, False, seed ^ 0xF1, cost=cost, n_parents=n_parents,
                                  **local_options)
        for c, m in seen.items():
            if is_float_unpruned(c):
                local.observe(c, m)
        if project:
            seeds = _projected_seeds(float_space, seen, budgets, cost, min(project, n_float))
            if seeds:
                metrics = evaluator.evaluate(seeds)
                for i, c in enumerate(seeds):
                    seen[c] = metrics.row(i)
                    local.observe(c, seen[c])
                done = len(seeds)
        done += _spend(local, evaluator, seen, n_float - done, batch)
    local = BudgetLocalSearch(space, budgets, quantize, seed, cost=cost, n_parents=n_parents, **local_options)
    for c, m in seen.items():
        local.observe(c, m)
    if adaptive and n_float == 0 and (quantize or tuple(getattr(space, "keep_choices", ())) != (1.0,)):
        float_space = get_space(space.name, resolutions=space.resolutions, keep=(1.0,))
        floats = BudgetLocalSearch(float_space, budgets, False, seed ^ 0xF1, cost=cost, n_parents=n_parents,
                                   **local_options)
        for c, m in seen.items():
            if is_float_unpruned(c):
                floats.observe(c, m)
        # the float arm starts from the float versions of the best subnets seen: a front of the joint space holds
        # few float, unpruned subnets, and those are not its best
        first = _projected_seeds(float_space, seen, budgets, cost, min(batch, n - done))
        done += _spend_adaptive([_Arm(local), _Arm(floats, is_float_unpruned, first)], evaluator, seen, budgets,
                                n - done, batch)
    else:
        done += _spend(local, evaluator, seen, n - done, batch)
    ok = [(c, m) for c, m in seen.items() if m["supported"] and budgets.feasible(m)]
    ok.sort(key=lambda cm: (-cm[1]["accuracy"], cm[1]["latency_ms"], cm[1]["size_bytes"]))
    return [FrontEntry.from_metrics(c, m) for c, m in ok[:keep]], done


def _spend(local: BudgetLocalSearch, evaluator: Any, seen: dict[SubnetConfig, dict[str, Any]], n: int,
           batch: int) -> int:
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


@dataclass
class _Arm:
    """One local search of `_spend_adaptive`: `accepts` what it may observe (None: everything), `first` its first
    proposals (e.g. projections into its subspace)."""

    local: BudgetLocalSearch
    accepts: Callable[[SubnetConfig], bool] | None = None
    first: list[SubnetConfig] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    best: float = -math.inf  # the most accurate feasible subnet seen in its space
    last: int = 0  # the batch it last proposed


# an arm's score: the share of its last ADAPTIVE_WINDOW batches' subnets that entered the ADAPTIVE_ELITE most accurate
# feasible ones seen (a denser signal than raising the best, which few batches do). An arm of a subspace takes part
# after its first batch only while that pays: one of its subnets is in the elite, or its recent batches put one
# there -- float subnets 4 points behind the quantized ones (the quickstart) cost one batch. One taking part that was
# left out for ADAPTIVE_EXPLORE batches in a row gets the next (its score is stale).
ADAPTIVE_WINDOW = 3
ADAPTIVE_ELITE = 10
ADAPTIVE_EXPLORE = 4


def _spend_adaptive(arms: list[_Arm], evaluator: Any, seen: dict[SubnetConfig, dict[str, Any]], budgets: Budgets,
                    n: int, batch: int) -> int:
    """`n` evaluations shared by local searches of nested spaces: each batch is proposed by the arm whose own recent
    batches put the most subnets among the most accurate feasible ones, and every arm observes what falls in its
    space."""
    import heapq

    def ok(m: dict[str, Any]) -> bool:
        return bool(m["supported"]) and budgets.feasible(m)

    elite = heapq.nlargest(ADAPTIVE_ELITE, (m["accuracy"] for m in seen.values() if ok(m)))
    heapq.heapify(elite)  # a min-heap of the ADAPTIVE_ELITE best accuracies
    for arm in arms:
        arm.best = max((m["accuracy"] for c, m in seen.items() if ok(m) and (arm.accepts is None or arm.accepts(c))),
                       default=-math.inf)

    def pays(arm: _Arm) -> bool:
        return (arm.accepts is None or not arm.rewards or sum(arm.rewards[-ADAPTIVE_WINDOW:]) > 0
                or len(elite) < ADAPTIVE_ELITE or arm.best >= elite[0])

    done = t = 0
    while done < n:
        t += 1
        active = [a for a in arms if pays(a)]
        forced = [a for a in active if not a.rewards or t - a.last > ADAPTIVE_EXPLORE]
        arm = (min(forced, key=lambda a: (len(a.rewards), a.last)) if forced else
               max(active, key=lambda a: (sum(a.rewards[-ADAPTIVE_WINDOW:]), -len(a.rewards))))
        arm.last = t
        k = min(batch, n - done)
        configs, arm.first = arm.first[:k], arm.first[k:]
        configs += arm.local.propose(k - len(configs), seen) if len(configs) < k else []
        metrics = evaluator.evaluate(configs)
        entered = 0
        for i, c in enumerate(configs):
            if c in seen:
                continue
            seen[c] = m = metrics.row(i)
            for other in arms:
                if other.accepts is None or other.accepts(c):
                    other.local.observe(c, m)
                    if ok(m):
                        other.best = max(other.best, m["accuracy"])
            if ok(m) and (len(elite) < ADAPTIVE_ELITE or m["accuracy"] > elite[0]):
                (heapq.heappush if len(elite) < ADAPTIVE_ELITE else heapq.heapreplace)(elite, m["accuracy"])
                entered += 1
        arm.rewards.append(entered / max(1, len(configs)))
        done += len(configs)
    return done
