"""A subnet as a fixed-length integer gene vector, for the numpy-side searches (the budget local search and the
Once-for-All evolution baseline): whole generations are mutated, crossed and turned into `to_indices` matrices
at once, so a predicted evaluator scores them in one call.

Genes are Once-for-All's padded encoding extended with keep ratio and bits: the resolution (an index into the
searched resolutions), the depth per stage, and per block position (kernel, expand, keep, bit pair), each as a
choice index. Positions beyond a stage's depth are inert genes; `from_configs` sets them to the stage's last
active block, so a child that inherits a deeper stage repeats that block (as the dense Optuna encodings do).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search_spaces import SearchSpace, SubnetConfig

# per block position, in this order
BLOCK_FIELDS = ("kernel", "expand", "keep", "bits")


class Genes:
    """The gene layout of one space (at its searched resolutions; `quantize=False`: float blocks only)."""

    def __init__(self, space: SearchSpace, quantize: bool = True) -> None:
        s = space.spec
        self.space = space
        self.quantize = quantize
        self.pairs = tuple(space.bit_pairs) if quantize else ((32, 32),)
        # the resolution gene indexes the searched resolutions (e.g. those the latency table has)
        self.res_ix = np.array([s.resolutions.index(r) for r in space.resolutions])
        self.keep_ix = np.array([s.keep_choices.index(k) for k in space.keep_choices])  # searched keep -> spec's
        self.S, self.P = s.n_stages, s.n_positions
        self.block_base = 1 + self.S
        self.n_choices = np.array([len(self.res_ix)] + [len(s.depth_choices)] * self.S
                                  + [len(s.kernel_choices), len(s.expand_choices), len(space.keep_choices),
                                     len(self.pairs)] * self.P)
        w_ix = {w: i for i, w in enumerate(s.weight_bit_choices)}
        a_ix = {a: i for i, a in enumerate(s.act_bit_choices)}
        self.pair_w = np.array([w_ix[w] for w, _ in self.pairs])
        self.pair_a = np.array([a_ix[a] for _, a in self.pairs])
        self._pair_of = {(w_ix[w], a_ix[a]): i for i, (w, a) in enumerate(self.pairs)}
        self.depths = np.array(s.depth_choices)
        self.max_depth = s.max_depth
        self.pos_stage, self.pos_i = space.schema.group_of, space.schema.slot_of
        self.depth_columns = [g.depth_column for g in space.schema.groups]

    @property
    def n_genes(self) -> int:
        return len(self.n_choices)

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` uniformly random gene vectors (every gene drawn, inert ones included, as OFA does)."""
        return (rng.random((n, self.n_genes)) * self.n_choices).astype(np.int64)

    def redraw(self, rng: np.random.Generator, g: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """`g` with the genes under `mask` re-drawn uniformly (possibly to the same value: OFA's mutation)."""
        return np.where(mask, self.random(rng, len(g)), g)

    def mutate_fields(self, rng: np.random.Generator, g: np.ndarray, prob: float) -> np.ndarray:
        """Each active gene moves to another choice with probability `prob`, and at least one active gene of every
        row moves: a child always differs from its parent, and inert genes (which change nothing) are left."""
        active = self.active_genes(g)
        mask = (rng.random(g.shape) < prob) & active & (self.n_choices > 1)
        none = ~mask.any(1)
        if none.any():  # force one move in rows that drew none
            w = (active & (self.n_choices > 1))[none].astype(float)
            w /= w.sum(1, keepdims=True)
            pick = (rng.random((int(none.sum()), 1)) > np.cumsum(w, 1)).sum(1)
            mask[np.flatnonzero(none), pick] = True
        step = 1 + (rng.random(g.shape) * np.maximum(self.n_choices - 1, 1)).astype(np.int64)
        return np.where(mask, (g + step) % self.n_choices, g)

    def crossover(self, rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Uniform crossover gene by gene (OFA's, per list element)."""
        return np.where(rng.random(a.shape) < 0.5, a, b)

    def active_genes(self, g: np.ndarray) -> np.ndarray:
        """(n, n_genes) bool: the genes that change the subnet (resolution, depths, active blocks' fields)."""
        n = len(g)
        depth = self.depths[g[:, 1:1 + self.S]]
        blk_active = self.pos_i[None, :] < depth[:, self.pos_stage]  # (n, P)
        out = np.ones((n, self.n_genes), bool)
        out[:, self.block_base:] = np.repeat(blk_active, len(BLOCK_FIELDS), axis=1)
        return out

    def to_indices(self, g: np.ndarray) -> np.ndarray:
        n = len(g)
        sc = self.space.schema
        idx = np.full((n, sc.n_columns), -1, dtype=np.int16)
        idx[:, sc.column("resolution")] = self.res_ix[g[:, 0]]
        idx[:, self.depth_columns] = g[:, 1:1 + self.S]
        depth = self.depths[g[:, 1:1 + self.S]]  # (n, S)
        blk = g[:, self.block_base:].reshape(n, self.P, len(BLOCK_FIELDS))
        active = self.pos_i[None, :] < depth[:, self.pos_stage]
        out = np.stack([blk[:, :, 0], blk[:, :, 1], self.keep_ix[blk[:, :, 2]], self.pair_w[blk[:, :, 3]],
                        self.pair_a[blk[:, :, 3]]], axis=2)
        out = np.where(active[:, :, None], out, -1)
        idx[:, sc.position_columns] = out  # fields in the schema's order: kernel, expand, keep, w bits, a bits
        return idx

    def to_configs(self, g: np.ndarray) -> list[SubnetConfig]:
        return self.space.from_indices(self.to_indices(g))

    def from_configs(self, configs: Sequence[SubnetConfig]) -> np.ndarray:
        """Gene vectors of `configs` (inert positions repeat the stage's last active block)."""
        idx = self.space.to_indices(configs).astype(np.int64)
        n = len(idx)
        g = np.zeros((n, self.n_genes), np.int64)
        res_pos = {int(r): i for i, r in enumerate(self.res_ix)}
        keep_pos = {int(k): i for i, k in enumerate(self.keep_ix)}
        sc = self.space.schema
        g[:, 0] = [res_pos[int(r)] for r in idx[:, sc.column("resolution")]]
        g[:, 1:1 + self.S] = idx[:, self.depth_columns]
        blk = sc.per_position(idx)
        for row in range(n):
            for p in range(self.P):
                st = self.pos_stage[p]
                group = sc.groups[st]
                src = blk[row, p] if blk[row, p, 0] >= 0 else blk[row, group.positions[int(
                    self.depths[idx[row, group.depth_column]]) - 1]]
                k, e, kp, w, a = (int(x) for x in src)
                o = self.block_base + p * len(BLOCK_FIELDS)
                g[row, o:o + 4] = (k, e, keep_pos[kp], self._pair_of[(w, a)])
        return g
