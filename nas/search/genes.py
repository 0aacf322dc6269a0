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

class Genes:
    """The gene layout of one space (at its searched choices; `quantize=False`: float blocks only), from its schema:
    the global genes (mbv3: resolution; vit: resolution, embedding dim), one depth gene per depth group, then per
    position its architecture fields (every per-position field but the bits) and one bit-pair gene."""

    def __init__(self, space: SearchSpace, quantize: bool = True) -> None:
        sc = space.schema
        self.space = space
        self.quantize = quantize
        self.pairs = tuple(space.bit_pairs) if quantize else ((32, 32),)
        self.arch = sc.position_fields[:-2]  # the schema puts weight_bits, act_bits last (checked by the encodings)
        self.F = len(self.arch) + 1  # genes per position
        # global genes index the searched choices (e.g. the resolutions a latency table has) -> the schema's
        self.global_cols = space.context_columns()
        self.global_ix = [np.array([sc.columns[c].choices.index(v) for v in space.searched(sc.columns[c].field)])
                          for c in self.global_cols]
        self.arch_ix = [np.array([sc.choices(f).index(v) for v in space.searched(f)]) for f in self.arch]
        self.G, self.S, self.P = len(self.global_cols), len(sc.groups), sc.n_positions
        self.block_base = self.G + self.S
        self.n_choices = np.array([len(ix) for ix in self.global_ix]
                                  + [len(sc.depth_values(gi)) for gi in range(self.S)]
                                  + ([len(ix) for ix in self.arch_ix] + [len(self.pairs)]) * self.P)
        w_ix = {w: i for i, w in enumerate(sc.choices("weight_bits"))}
        a_ix = {a: i for i, a in enumerate(sc.choices("act_bits"))}
        self.pair_w = np.array([w_ix[w] for w, _ in self.pairs])
        self.pair_a = np.array([a_ix[a] for _, a in self.pairs])
        self._pair_of = {(w_ix[w], a_ix[a]): i for i, (w, a) in enumerate(self.pairs)}
        self.depth_vals = [np.array(sc.depth_values(gi)) for gi in range(self.S)]
        self.pos_stage, self.pos_i = sc.group_of, sc.slot_of
        self.depth_columns = [g.depth_column for g in sc.groups]

    @property
    def n_genes(self) -> int:
        return len(self.n_choices)

    def _depths(self, g: np.ndarray) -> np.ndarray:
        """(n, S) depth of each group."""
        return np.stack([self.depth_vals[i][g[:, self.G + i]] for i in range(self.S)], axis=1)

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
        blk_active = self.pos_i[None, :] < self._depths(g)[:, self.pos_stage]  # (n, P)
        out = np.ones((n, self.n_genes), bool)
        out[:, self.block_base:] = np.repeat(blk_active, self.F, axis=1)
        return out

    def to_indices(self, g: np.ndarray) -> np.ndarray:
        n = len(g)
        sc = self.space.schema
        idx = np.full((n, sc.n_columns), -1, dtype=np.int16)
        for i, (c, ix) in enumerate(zip(self.global_cols, self.global_ix)):
            idx[:, c] = ix[g[:, i]]
        idx[:, self.depth_columns] = g[:, self.G:self.block_base]
        blk = g[:, self.block_base:].reshape(n, self.P, self.F)
        active = self.pos_i[None, :] < self._depths(g)[:, self.pos_stage]
        out = np.stack([ix[blk[:, :, j]] for j, ix in enumerate(self.arch_ix)]
                       + [self.pair_w[blk[:, :, -1]], self.pair_a[blk[:, :, -1]]], axis=2)
        out = np.where(active[:, :, None], out, -1)
        idx[:, sc.position_columns] = out  # fields in the schema's order: architecture fields, w bits, a bits
        return idx

    def to_configs(self, g: np.ndarray) -> list[SubnetConfig]:
        return self.space.from_indices(self.to_indices(g))

    def from_configs(self, configs: Sequence[SubnetConfig]) -> np.ndarray:
        """Gene vectors of `configs` (inert positions repeat the group's last active block)."""
        sc = self.space.schema
        idx = self.space.to_indices(configs).astype(np.int64)
        n = len(idx)
        g = np.zeros((n, self.n_genes), np.int64)
        for i, (c, ix) in enumerate(zip(self.global_cols, self.global_ix)):
            pos = {int(v): j for j, v in enumerate(ix)}
            g[:, i] = [pos[int(v)] for v in idx[:, c]]
        g[:, self.G:self.block_base] = idx[:, self.depth_columns]
        blk = sc.per_position(idx)
        arch_pos = [{int(v): j for j, v in enumerate(ix)} for ix in self.arch_ix]
        for row in range(n):
            for p in range(self.P):
                group = sc.groups[self.pos_stage[p]]
                depth = int(self.depth_vals[self.pos_stage[p]][idx[row, group.depth_column]])
                src = blk[row, p] if blk[row, p, 0] >= 0 else blk[row, group.positions[depth - 1]]
                *arch, w, a = (int(x) for x in src)
                o = self.block_base + p * self.F
                g[row, o:o + self.F] = (*[m[v] for m, v in zip(arch_pos, arch)], self._pair_of[(w, a)])
        return g
