"""The Once-for-All-style evolutionary search, as a baseline (ofa/nas/search_algorithm/evolution.py).

Single objective (accuracy) under one latency constraint, as its authors run it: population 100, parent ratio
0.25, mutation probability 0.1, mutation ratio 0.5 (half the children by mutation, half by crossover);
candidates violating the constraint are re-drawn, and every drawn candidate costs one evaluation. To get a
front from it, `evolution_search` runs it once per latency budget (budgets spread over the space's latency
range) and splits the evaluation count evenly, as one would with OFA.

Genes are OFA's padded encoding extended with keep ratio and bits: resolution, depth per stage, and per block
position (kernel, expand, keep, bit pair). Everything works on `to_indices` matrices, so the predicted
evaluator scores a generation in one call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search_spaces import SearchSpace

from nas.search.evaluators import Metrics, PredictedEvaluator


@dataclass(frozen=True)
class EvolutionConfig:
    population_size: int = 100
    parent_ratio: float = 0.25
    mutation_prob: float = 0.1
    mutation_ratio: float = 0.5
    max_redraws: int = 50


class _Genes:
    def __init__(self, space: SearchSpace, quantize: bool = True) -> None:
        s = space.spec
        self.space = space
        pairs = space.bit_pairs if quantize else ((32, 32),)
        # the resolution gene indexes the searched resolutions (e.g. those the latency table has)
        self.res_ix = np.array([s.resolutions.index(r) for r in space.resolutions])
        self.S, self.P = s.n_stages, s.n_positions
        self.n_choices = np.array([len(self.res_ix)] + [len(s.depth_choices)] * self.S
                                  + [len(s.kernel_choices), len(s.expand_choices), len(s.keep_choices),
                                     len(pairs)] * self.P)
        w_ix = {w: i for i, w in enumerate(s.weight_bit_choices)}
        a_ix = {a: i for i, a in enumerate(s.act_bit_choices)}
        self.pair_w = np.array([w_ix[w] for w, _ in pairs])
        self.pair_a = np.array([a_ix[a] for _, a in pairs])
        self.depths = np.array(s.depth_choices)
        self.max_depth = s.max_depth

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return (rng.random((n, len(self.n_choices))) * self.n_choices).astype(np.int64)

    def mutate(self, rng: np.random.Generator, g: np.ndarray, prob: float) -> np.ndarray:
        mask = rng.random(g.shape) < prob
        return np.where(mask, self.random(rng, len(g)), g)

    def crossover(self, rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(rng.random(a.shape) < 0.5, a, b)

    def to_indices(self, g: np.ndarray) -> np.ndarray:
        n = len(g)
        idx = np.full((n, self.space.n_index_columns), -1, dtype=np.int16)
        idx[:, 0] = self.res_ix[g[:, 0]]
        idx[:, 1:1 + self.S] = g[:, 1:1 + self.S]
        depth = self.depths[g[:, 1:1 + self.S]]  # (n, S)
        blk = g[:, 1 + self.S:].reshape(n, self.P, 4)
        pos_stage, pos_i = np.divmod(np.arange(self.P), self.max_depth)
        active = pos_i[None, :] < depth[:, pos_stage]
        out = np.stack([blk[:, :, 0], blk[:, :, 1], blk[:, :, 2], self.pair_w[blk[:, :, 3]],
                        self.pair_a[blk[:, :, 3]]], axis=2)
        out = np.where(active[:, :, None], out, -1)
        idx[:, 1 + self.S:] = out.reshape(n, -1)
        return idx


class _Counter:
    def __init__(self, evaluator: PredictedEvaluator, genes: _Genes, limit: int) -> None:
        self.evaluator, self.genes, self.limit = evaluator, genes, limit
        self.indices: list[np.ndarray] = []
        self.metrics: list[Metrics] = []
        self.used = 0

    def left(self) -> int:
        return self.limit - self.used

    def __call__(self, g: np.ndarray) -> Metrics:
        idx = self.genes.to_indices(g)
        m = self.evaluator.evaluate_indices(idx)
        self.indices.append(idx)
        self.metrics.append(m)
        self.used += len(g)
        return m


def _draw_feasible(rng: np.random.Generator, make: callable, count: _Counter, n: int, budget: float,  # type: ignore[valid-type]
                   max_redraws: int) -> tuple[np.ndarray, Metrics | None]:
    """n candidates satisfying latency <= budget; every drawn candidate (accepted or not) is evaluated."""
    kept: list[np.ndarray] = []
    acc: list[np.ndarray] = []
    for _ in range(max_redraws):
        need = n - sum(len(k) for k in kept)
        if need <= 0 or count.left() <= 0:
            break
        g = make(min(need, count.left()))
        m = count(g)
        ok = (m.latency_ms <= budget) & m.supported
        kept.append(g[ok])
        acc.append(m.accuracy[ok])
    if not kept:
        return np.zeros((0, len(count.genes.n_choices)), np.int64), None
    return np.concatenate(kept)[:n], Metrics(np.concatenate(acc)[:n], np.zeros(0), np.zeros(0, np.int64),
                                              np.zeros(0, np.int64), np.zeros(0, bool))


def evolve_once(space: SearchSpace, evaluator: PredictedEvaluator, n_evals: int, latency_budget: float, seed: int,
                cfg: EvolutionConfig = EvolutionConfig(), quantize: bool = True) -> tuple[np.ndarray, Metrics]:
    """One OFA evolution under `latency <= latency_budget`; returns every evaluated config (indices) and metrics."""
    genes = _Genes(space, quantize)
    rng = np.random.default_rng(seed)
    count = _Counter(evaluator, genes, n_evals)
    P = cfg.population_size
    n_parents = int(round(cfg.parent_ratio * P))
    n_mut = int(round(cfg.mutation_ratio * P))
    pop, pm = _draw_feasible(rng, lambda k: genes.random(rng, k), count, P, latency_budget, cfg.max_redraws)
    pop_acc = pm.accuracy if pm is not None else np.zeros(0)
    while count.left() > 0 and len(pop):
        order = np.argsort(-pop_acc)[:n_parents]
        parents, parents_acc = pop[order], pop_acc[order]

        def mutate(k: int) -> np.ndarray:
            return genes.mutate(rng, parents[rng.integers(0, len(parents), k)], cfg.mutation_prob)

        def cross(k: int) -> np.ndarray:
            return genes.crossover(rng, parents[rng.integers(0, len(parents), k)],
                                   parents[rng.integers(0, len(parents), k)])

        kids_m, km = _draw_feasible(rng, mutate, count, n_mut, latency_budget, cfg.max_redraws)
        kids_c, kc = _draw_feasible(rng, cross, count, P - n_mut, latency_budget, cfg.max_redraws)
        pop = np.concatenate([parents, kids_m, kids_c])
        pop_acc = np.concatenate([parents_acc, km.accuracy if km is not None else np.zeros(0),
                                  kc.accuracy if kc is not None else np.zeros(0)])
    idx = np.concatenate(count.indices) if count.indices else np.zeros((0, space.n_index_columns), np.int16)
    m = count.metrics
    return idx, Metrics(*(np.concatenate([getattr(x, f) for x in m]) for f in
                          ("accuracy", "latency_ms", "size_bytes", "macs", "supported")))


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
    return np.concatenate(idx), Metrics(*(np.concatenate([getattr(x, f) for x in ms]) for f in
                                          ("accuracy", "latency_ms", "size_bytes", "macs", "supported")))
