"""Once-for-All's evolutionary search (`ofa.nas.search_algorithm.EvolutionFinder`), re-implemented on numpy genes
as a baseline the pipeline can run without the `ofa` package. `experiments/bench_search.py` runs the package's own
code beside it through adapters (`experiments/ofa_baseline.py`).

What OFA does, and so this: single objective (accuracy) under one efficiency constraint; population 100, parent
ratio 0.25, mutation ratio 0.5 (half the children by mutation, half by crossover). The first population is
`random_valid_sample`'s: random subnets re-drawn until they meet the constraint. A mutated child re-draws the
resolution with probability 0.5 and each block's (kernel, expand) and each stage's depth with probability 0.1;
a crossover child takes every gene from either parent. Children that miss the constraint are re-drawn. Only
accuracy evaluations count: the constraint is checked with the efficiency predictor (here: the latency table and
the exact size), which OFA treats as free. Each generation evaluates `population_size` children.

The extension to hwnas's joint space: keep ratio and bit pair are per-block genes re-drawn together, with the same
probability as (kernel, expand) and independently of them. `evolution_search` runs it once per latency budget and
splits the evaluation count evenly, as one would with OFA to get a front.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search_spaces import SearchSpace

from nas.search.evaluators import Metrics, PredictedEvaluator
from nas.search.genes import Genes

METRIC_FIELDS = ("accuracy", "latency_ms", "size_bytes", "macs", "supported")


@dataclass(frozen=True)
class EvolutionConfig:
    population_size: int = 100
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    arch_mutate_prob: float = 0.1
    resolution_mutate_prob: float = 0.5
    max_redraws: int = 1000  # per child; OFA loops until feasible (this stops a hopeless budget)


def concat_metrics(ms: list[Metrics]) -> Metrics:
    if not ms:
        return Metrics(np.zeros(0), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
    return Metrics(*(np.concatenate([getattr(m, f) for m in ms]) for f in METRIC_FIELDS))


def ofa_mutate(genes: Genes, rng: np.random.Generator, g: np.ndarray, cfg: EvolutionConfig) -> np.ndarray:
    n = len(g)
    mask = np.zeros(g.shape, bool)
    # the global genes (mbv3: resolution) with OFA's resolution probability, the depths with the architecture one
    mask[:, :genes.G] = rng.random((n, genes.G)) < cfg.resolution_mutate_prob
    mask[:, genes.G:genes.block_base] = rng.random((n, genes.S)) < cfg.arch_mutate_prob
    ke = rng.random((n, genes.P)) < cfg.arch_mutate_prob  # the architecture fields (kernel, expand) together, as OFA
    kb = rng.random((n, genes.P)) < cfg.arch_mutate_prob  # (keep, bits) together: the joint space's extension
    n_ke = genes.F - 2  # every architecture field before keep
    blk = np.concatenate([np.repeat(ke[:, :, None], n_ke, axis=2), np.repeat(kb[:, :, None], 2, axis=2)],
                         axis=2).reshape(n, genes.P * genes.F)
    mask[:, genes.block_base:] = blk
    return genes.redraw(rng, g, mask)


class _Feasible:
    """Re-draws candidates until they meet `latency <= budget` (and run on the device): free, as in OFA."""

    def __init__(self, evaluator: PredictedEvaluator, genes: Genes, budget: float, max_redraws: int) -> None:
        self.evaluator, self.genes, self.budget, self.max_redraws = evaluator, genes, budget, max_redraws
        self.checked = 0

    def draw(self, make, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
        kept: list[np.ndarray] = []
        have = 0
        for _ in range(self.max_redraws):
            if have >= n:
                break
            g = make(n - have)
            lat, _, sup = self.evaluator.evaluate_cost(self.genes.to_indices(g))
            self.checked += len(g)
            ok = sup & (lat <= self.budget)
            kept.append(g[ok])
            have += int(ok.sum())
        return np.concatenate(kept)[:n] if kept else np.zeros((0, self.genes.n_genes), np.int64)


def evolve_once(space: SearchSpace, evaluator: PredictedEvaluator, n_evals: int, latency_budget: float, seed: int,
                cfg: EvolutionConfig = EvolutionConfig(), quantize: bool = True) -> tuple[np.ndarray, Metrics]:
    """One OFA evolution under `latency <= latency_budget` with `n_evals` accuracy evaluations (the first
    population and then whole generations; the last one truncated); every evaluated config (indices) and its
    metrics."""
    genes = Genes(space, quantize)
    rng = np.random.default_rng(seed)
    feas = _Feasible(evaluator, genes, latency_budget, cfg.max_redraws)
    P = cfg.population_size
    n_parents = int(round(cfg.parent_ratio * P))
    n_mut = int(round(cfg.mutation_ratio * P))
    idx_all: list[np.ndarray] = []
    m_all: list[Metrics] = []

    def evaluate(g: np.ndarray) -> np.ndarray:
        idx = genes.to_indices(g)
        m = evaluator.evaluate_indices(idx)
        idx_all.append(idx)
        m_all.append(m)
        return m.accuracy

    left = n_evals
    pop = feas.draw(lambda k: genes.random(rng, k), min(P, left))
    pop_acc = evaluate(pop) if len(pop) else np.zeros(0)
    left -= len(pop)
    while left > 0 and len(pop):
        order = np.argsort(-pop_acc, kind="stable")[:n_parents]
        parents, parents_acc = pop[order], pop_acc[order]
        k_mut = min(n_mut, left)
        kids_m = feas.draw(lambda k: ofa_mutate(genes, rng, parents[rng.integers(0, len(parents), k)], cfg), k_mut)
        k_cross = min(P - n_mut, left - len(kids_m))
        kids_c = feas.draw(lambda k: genes.crossover(rng, parents[rng.integers(0, len(parents), k)],
                                                     parents[rng.integers(0, len(parents), k)]), k_cross)
        kids = np.concatenate([kids_m, kids_c])
        if not len(kids):
            break
        acc = evaluate(kids)
        left -= len(kids)
        pop = np.concatenate([parents, kids])
        pop_acc = np.concatenate([parents_acc, acc])
    idx = np.concatenate(idx_all) if idx_all else np.zeros((0, space.n_index_columns), np.int16)
    return idx, concat_metrics(m_all)


def evolution_search(space: SearchSpace, evaluator: PredictedEvaluator, n_evals: int, latency_budgets: list[float],
                     seed: int = 0, cfg: EvolutionConfig = EvolutionConfig(),
                     quantize: bool = True) -> tuple[np.ndarray, Metrics]:
    """OFA's evolution once per latency budget, `n_evals` split evenly, over `space.resolutions`; every evaluated
    config and its metrics."""
    per = [n_evals // len(latency_budgets) + (1 if i < n_evals % len(latency_budgets) else 0)
           for i in range(len(latency_budgets))]
    idx, ms = [], []
    for i, (b, n) in enumerate(zip(latency_budgets, per)):
        x, m = evolve_once(space, evaluator, n, b, seed * 1000 + i, cfg, quantize)
        idx.append(x)
        ms.append(m)
    return np.concatenate(idx), concat_metrics(ms)
