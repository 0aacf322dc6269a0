"""`IndexSchema`: what each column of a family's index matrix means.

A family encodes a batch of configs as an `(n, n_columns)` int16 matrix of choice indices (`to_indices`), -1 where
a column is inert (its position lies beyond its group's depth). Latency tables, predictors and their features,
search encodings, operators and baselines read a column's meaning from the schema -- its field, its choices, its
position, whether it is a bit-width -- and never recompute the layout, so a family with another layout (a
transformer: one depth, per-layer heads and MLP ratio) works with all of them.

Layout rules every schema obeys (checked on construction): the global columns (never inert) come first; then one
run of columns per elastic position, every position with the same fields in the same order; each position belongs
to one depth group and is active when its slot in the group is below the group's depth.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces.errors import bad_value


@dataclass(frozen=True)
class Column:
    """One index column. `name` is also the Optuna parameter name of the choice."""

    name: str
    field: str  # the config field it indexes: "resolution", "depth", "kernel", "heads", ...
    choices: tuple[Any, ...]
    position: int | None = None  # elastic position; None for a global column (never inert)
    quant: bool = False  # a bit-width column (float-only feature layouts leave it out)


@dataclass(frozen=True)
class DepthGroup:
    """Positions whose activity one depth column decides: `positions[i]` is active when i < depth."""

    depth_column: int
    positions: tuple[int, ...]


class IndexSchema:
    """Columns of a family's index matrix plus the depth groups that make per-position columns inert."""

    def __init__(self, columns: Sequence[Column], groups: Sequence[DepthGroup]) -> None:
        self.columns: tuple[Column, ...] = tuple(columns)
        self.groups: tuple[DepthGroup, ...] = tuple(groups)
        self.names: list[str] = [c.name for c in self.columns]
        if len(set(self.names)) != len(self.names):
            raise bad_value("schema columns", self.names, "unique names")
        self.n_global = next((i for i, c in enumerate(self.columns) if c.position is not None), len(self.columns))
        per_pos = self.columns[self.n_global:]
        if any(c.position is None for c in per_pos):
            raise bad_value("schema columns", self.names, "global columns first, then per-position ones")
        self.position_fields: tuple[str, ...] = tuple(c.field for c in per_pos if c.position == 0)
        nf = len(self.position_fields)
        self.n_positions = len(per_pos) // nf if nf else 0
        expect = [(p, f) for p in range(self.n_positions) for f in self.position_fields]
        if [(c.position, c.field) for c in per_pos] != expect:
            raise bad_value("schema columns", self.names, "every position with the same fields in the same order")
        # (positions, fields) index columns
        self.position_columns = (self.n_global + np.arange(self.n_positions * nf)).reshape(self.n_positions, nf)
        self._by_field = {f: self.columns[self.position_columns[0, k]].choices
                          for k, f in enumerate(self.position_fields)} if self.n_positions else {}
        self._by_field.update({c.field: c.choices for c in self.columns[: self.n_global]})
        self._index = {(c.field, c.position): i for i, c in enumerate(self.columns)}
        seen = sorted(p for g in self.groups for p in g.positions)
        if seen != list(range(self.n_positions)):
            raise bad_value("schema depth groups", [g.positions for g in self.groups], "each position in one group")
        self.group_of = np.zeros(self.n_positions, dtype=np.int64)
        self.slot_of = np.zeros(self.n_positions, dtype=np.int64)
        for gi, g in enumerate(self.groups):
            for slot, p in enumerate(g.positions):
                self.group_of[p], self.slot_of[p] = gi, slot
        self.col_max = np.asarray([len(c.choices) - 1 for c in self.columns], dtype=np.int64)

    # ---- what a column is ------------------------------------------------------------------------------
    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def choices(self, field: str) -> tuple[Any, ...]:
        try:
            return self._by_field[field]
        except KeyError:
            raise bad_value("schema field", field, ", ".join(self._by_field)) from None

    def column(self, field: str, position: int | None = None) -> int:
        """The index of `field`'s column (at `position` for a per-position field)."""
        try:
            return self._index[(field, position)]
        except KeyError:
            raise bad_value("schema column", f"{field}@{position}", ", ".join(self.names)) from None

    def field_columns(self, field: str) -> np.ndarray:
        """(n_positions,) the column of per-position `field` at each position."""
        return self.position_columns[:, self.position_fields.index(field)]

    def position_label(self, position: int) -> str:
        """The suffix a position's parameter names share (mbv3: `s1b2`, vit: `l3`)."""
        col = self.columns[self.position_columns[position, 0]]
        return col.name[len(col.field) + 1:]

    def depth_values(self, group: int) -> tuple[Any, ...]:
        return self.columns[self.groups[group].depth_column].choices

    # ---- reading a matrix --------------------------------------------------------------------------------
    def per_position(self, idx: np.ndarray) -> np.ndarray:
        """(n, n_positions, n_fields) view of the per-position columns, fields in `position_fields` order."""
        return idx[:, self.position_columns]

    def field(self, idx: np.ndarray, field: str) -> np.ndarray:
        """(n, n_positions) choice indices of per-position `field`, -1 where inert."""
        return idx[:, self.field_columns(field)]

    def active(self, idx: np.ndarray) -> np.ndarray:
        """(n, n_positions) bool: positions within their group's depth, read from the depth columns."""
        idx = np.asarray(idx)
        depth = np.stack([np.asarray(self.depth_values(gi))[idx[:, g.depth_column]]
                          for gi, g in enumerate(self.groups)], axis=1) if self.groups else np.zeros((len(idx), 0))
        # C order: numpy keeps an operand's memory order, and a sum over an F-ordered product rounds differently
        return np.ascontiguousarray(self.slot_of[None, :] < depth[:, self.group_of])

    def inert(self, idx: np.ndarray) -> np.ndarray:
        """(n, n_columns) bool: the columns that mean nothing for each row's depths (they hold -1)."""
        out = np.zeros((len(idx), self.n_columns), dtype=bool)
        out[:, self.position_columns] = ~self.active(idx)[:, :, None]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [[c.name, c.field, list(c.choices), c.position, c.quant] for c in self.columns],
                "groups": [[g.depth_column, list(g.positions)] for g in self.groups]}
