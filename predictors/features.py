"""`FeatureLayout`: the one-hot feature columns of `SearchSpace.encode`, computed straight from the compact
`to_indices` matrix (the form the search keeps candidates in), without materialising the dense one-hot matrix.

A predictor's first layer is a sum of the weight rows of the active features, so `ids(indices)` -- one feature id
per index column, `n_features` (a zero "padding" row) where a position is inactive -- is all it needs.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from search_spaces import FamilyConfig, InputError, SearchSpace, SubnetConfig
from search_spaces.errors import bad_value

ConfigsOrIndices = Sequence[SubnetConfig] | SubnetConfig | np.ndarray


class FeatureLayout:
    """The feature columns of `space.encode(..., quant=quant)`, in the same order."""

    def __init__(self, space: SearchSpace, quant: bool) -> None:
        self.space = space
        self.quant = bool(quant)
        self.schema = sc = space.schema
        # one feature group per index column the layout uses (bit-width columns only with `quant`)
        cols = [c for c, col in enumerate(sc.columns) if self.quant or not col.quant]
        self.columns = np.asarray(cols, dtype=np.int64)        # (n_groups,) index column of each group
        self.sizes = np.asarray([len(sc.columns[c].choices) for c in cols], dtype=np.int64)  # choices per group
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.n_features = int(self.sizes.sum())
        self.names = [f"{sc.columns[c].name}={v}" for c in cols for v in sc.columns[c].choices]
        self._field_of = [sc.columns[c] for c in cols for _ in sc.columns[c].choices]
        if self.n_features != space.n_features(self.quant):  # the layout must be encode's, column for column
            raise AssertionError(f"feature layout {self.n_features} != space.n_features {space.n_features(self.quant)}")
        self._col_max = sc.col_max  # per index column: largest allowed index (to validate indices matrices)

    def shared_classes(self) -> tuple[list[str], np.ndarray]:
        """Names of the position-independent classes ("kernel=5", "weight_bits=4", ...) and, per feature, its
        class (-1 for global columns: resolution, depth). A model may tie the weights of one class across
        positions."""
        names: list[str] = []
        cls = np.full(self.n_features, -1, dtype=np.int64)
        for i, (full, col) in enumerate(zip(self.names, self._field_of)):
            if col.position is None:
                continue
            name = f"{col.field}={full.rsplit('=', 1)[1]}"
            if name not in names:
                names.append(name)
            cls[i] = names.index(name)
        return names, cls

    @property
    def n_groups(self) -> int:
        return len(self.columns)

    def fingerprint(self) -> str:
        """A short hash of the feature names: a saved predictor only loads onto the same layout."""
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space.name, "quant": self.quant, "n_features": self.n_features,
                "fingerprint": self.fingerprint()}

    # ---- inputs --------------------------------------------------------------------------------------
    def as_indices(self, x: ConfigsOrIndices) -> np.ndarray:
        """The `to_indices` matrix of configs, a config, an indices matrix or a dense feature matrix of this
        layout; validated (shape, ranges, space)."""
        sp = self.space
        if isinstance(x, FamilyConfig):
            return sp.to_indices([x])
        if isinstance(x, np.ndarray):
            if x.ndim != 2:
                raise bad_value("configs_or_indices shape", x.shape, f"(n, {sp.n_index_columns}) indices")
            if np.issubdtype(x.dtype, np.integer):
                if x.shape[1] != sp.n_index_columns:
                    raise bad_value("indices shape", x.shape,
                                    f"(n, {sp.n_index_columns}) (space {sp.name}'s to_indices matrix)")
                self._check_range(x)
                return x
            if np.issubdtype(x.dtype, np.floating) and x.shape[1] == self.n_features:
                return self.decode(x)
            raise bad_value("configs_or_indices", f"{x.dtype} array of shape {x.shape}",
                            f"an integer (n, {sp.n_index_columns}) to_indices matrix, a float (n, "
                            f"{self.n_features}) encode matrix or a list of SubnetConfig of space {sp.name}")
        if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
            raise bad_value("configs_or_indices", type(x).__name__, "a list of SubnetConfig or an indices matrix")
        return sp.to_indices(x)

    def _check_range(self, idx: np.ndarray) -> None:
        if idx.shape[0] == 0:
            return
        hi = idx.max(axis=0)
        lo = idx.min(axis=0)
        fixed = np.arange(len(lo)) < self.schema.n_global  # global columns are never inert
        bad = np.flatnonzero((hi > self._col_max) | (lo < -1) | ((lo < 0) & fixed))
        if bad.size:
            c = int(bad[0])
            name = self.schema.names[c]
            value = int(hi[c]) if hi[c] > self._col_max[c] else int(lo[c])
            lo_allowed = 0 if c < self.schema.n_global else -1
            raise bad_value(f"indices column {name!r}", value, f"{lo_allowed}..{int(self._col_max[c])}")

    def decode(self, x: np.ndarray) -> np.ndarray:
        """Indices matrix from a dense one-hot matrix of this layout (bits taken as 32 when the layout has none)."""
        sc = self.schema
        idx = np.full((x.shape[0], sc.n_columns), -1, dtype=np.int16)
        for g in range(self.n_groups):
            o, m, c = self.offsets[g], self.sizes[g], self.columns[g]
            block = x[:, o : o + m]
            v = block.argmax(axis=1).astype(np.int16)
            v[block.max(axis=1) <= 0.5] = -1
            idx[:, c] = v
        if not self.quant:  # float layout: every active position's bit columns say 32
            active = sc.active(idx)
            for c, col in enumerate(sc.columns):
                if col.quant:
                    idx[:, c] = np.where(active[:, col.position], col.choices.index(32), -1)
        return idx

    # ---- features ------------------------------------------------------------------------------------
    def ids(self, idx: np.ndarray) -> np.ndarray:
        """(n, n_groups) int32 feature ids of the active one-hot features; `n_features` marks an inactive group."""
        sub = idx[:, self.columns].astype(np.int32)
        ids = sub + self.offsets.astype(np.int32)
        ids[sub < 0] = self.n_features
        return ids

    # ---- joint groups: the fast inference path ------------------------------------------------------------
    def joint_groups(self) -> list[np.ndarray]:
        """Feature groups fused for inference: the global columns (resolution, depths) together, then each elastic
        position's fields (kernel, expand, keep[, bits]) together. Each is an array of layout group numbers."""
        pos = np.asarray([self.schema.columns[c].position for c in self.columns], dtype=object)
        glob = np.flatnonzero(pos == None)  # noqa: E711 -- elementwise over an object array
        return [glob] + [np.flatnonzero(pos == p) for p in range(self.schema.n_positions)]

    def _joint_spec(self) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        if not hasattr(self, "_joint_cache"):
            groups = self.joint_groups()
            radices = []
            rows = []
            for j, g in enumerate(groups):
                sizes = self.sizes[g]
                radices.append(np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64))
                rows.append(int(np.prod(sizes)) + (0 if j == 0 else 1))  # elastic positions: one row for inactive
            self._joint_cache = (groups, radices, np.concatenate([[0], np.cumsum(rows)]).astype(np.int64))
        return self._joint_cache

    @property
    def n_joint_rows(self) -> int:
        return int(self._joint_spec()[2][-1])

    def joint_ids(self, idx: np.ndarray) -> np.ndarray:
        """(n, n_joint_groups) int32 row of each fused group in `joint_table`."""
        groups, radices, starts = self._joint_spec()
        out = np.empty((idx.shape[0], len(groups)), dtype=np.int32)
        for j, (g, r) in enumerate(zip(groups, radices)):
            vals = idx[:, self.columns[g]].astype(np.int32)
            code = vals @ r.astype(np.int32)
            if j == 0:
                out[:, j] = starts[j] + code
            else:  # a position is active in all its fields or in none
                out[:, j] = np.where(vals[:, 0] < 0, starts[j], starts[j] + 1 + code)
        return out

    def joint_table(self, weights: np.ndarray) -> np.ndarray:
        """Sum the per-feature rows of `weights` (n_features [+ 1], d) for every combination of each fused group,
        so that `joint_table[joint_ids].sum(1) == onehot @ weights[:n_features]` exactly."""
        groups, radices, starts = self._joint_spec()
        table = np.zeros((int(starts[-1]), weights.shape[1]), dtype=weights.dtype)
        for j, g in enumerate(groups):
            sizes = self.sizes[g]
            combos = np.indices(tuple(sizes)).reshape(len(g), -1).T  # row-major = the mixed-radix order
            rows = sum(weights[self.offsets[gi] + combos[:, i]] for i, gi in enumerate(g))
            first = starts[j] + (0 if j == 0 else 1)
            table[first : first + len(combos)] = rows
        return table

    def onehot(self, idx: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """The dense one-hot matrix (equal to `space.encode(idx, quant)`), for models that need it."""
        ids = self.ids(idx)
        out = np.zeros((idx.shape[0], self.n_features + 1), dtype=dtype)
        np.put_along_axis(out, ids, 1, axis=1)
        return out[:, : self.n_features]

    def transfer_map(self, source: FeatureLayout) -> np.ndarray:
        """For each feature of `source`, its column in this layout (a float layout inside a quantized one)."""
        pos = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in source.names if n not in pos]
        if missing or source.space.name != self.space.name:
            raise InputError(f"feature {missing[0] if missing else source.space.name!r}: not in the target layout "
                             f"(space {self.space.name}, quant={self.quant})")
        return np.asarray([pos[n] for n in source.names], dtype=np.int64)
