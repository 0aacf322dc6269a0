"""`Budgets`: the deployment limits a subnet must meet (latency ms <=, size MB = 10^6 bytes <=, accuracy % >=).

One definition for the search (Optuna constraints, <= 0 feasible), the pipeline's baselines and the store query,
so a subnet is within budget by the same arithmetic everywhere. Kept outside `nas.search` so that answering a query
does not import the search (Optuna).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from search_spaces.errors import bad_value
from search_spaces.settings import setting


def _check_budget(field: str, value: float | None, upper: float | None = None) -> float | None:
    """A budget value: positive, or with an `upper` bound (accuracy) anything in [0, upper]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or (value == 0 and upper is None) or (upper is not None and value > upper):
        raise bad_value(field, value, "a positive number" if upper is None else f"a number in [0, {upper:g}]")
    return float(value)


@dataclass(frozen=True)
class BudgetSettings:
    """The three budget settings, defined once: `SearchConfig`, `QueryConfig` and an experiment file's `budgets:`
    take them from here, and `Budgets` checks them."""

    latency_ms: float | None = setting(help="Latency budget, ms (<=).")
    size_mb: float | None = setting(help="Size budget, MB = 10^6 bytes (<=).")
    min_accuracy: float | None = setting(help="Accuracy floor, percent (>=).")


def budget_values(settings: Any) -> dict[str, float | None]:
    """{field: value} of the `BudgetSettings` fields of `settings`: what hands budgets from one config to another."""
    return {f.name: getattr(settings, f.name) for f in fields(BudgetSettings)}


@dataclass(frozen=True)
class Budgets(BudgetSettings):
    """Checked budgets and their arithmetic."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "latency_ms", _check_budget("latency_ms", self.latency_ms))
        object.__setattr__(self, "size_mb", _check_budget("size_mb", self.size_mb))
        object.__setattr__(self, "min_accuracy", _check_budget("min_accuracy", self.min_accuracy, 100.0))

    @classmethod
    def of(cls, settings: Any) -> Budgets:
        """The checked budgets of anything that has the `BudgetSettings` fields (a search config, a query, an
        experiment file's budget), read by their names."""
        return cls(**budget_values(settings))

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)

    def constraints(self, m: dict[str, Any]) -> dict[str, float]:
        """Constraint values (<= 0 feasible) of one metrics row (`Metrics.row`)."""
        c: dict[str, float] = {"supported": 0.0 if m["supported"] else 1.0}
        if self.latency_ms is not None:
            c["latency_ms"] = m["latency_ms"] - self.latency_ms
        if self.size_mb is not None:
            c["size_mb"] = m["size_bytes"] / 1e6 - self.size_mb
        if self.min_accuracy is not None:
            c["accuracy"] = self.min_accuracy - m["accuracy"]
        return c

    def constraint_names(self) -> list[str]:
        """Names of the trial's constraint values, in the order they are stored."""
        return list(self.constraints({"supported": True, "latency_ms": 0.0, "size_bytes": 0, "accuracy": 0.0}))

    def feasible(self, m: dict[str, Any]) -> bool:
        return all(v <= 0 for v in self.constraints(m).values())

    def mask(self, accuracy: Any, latency_ms: Any, size_bytes: Any) -> np.ndarray:
        """Which rows meet every budget: `feasible` for whole columns (the same comparisons as `constraints`),
        without the `supported` check, which the caller ands in where it has one."""
        ok = np.ones(np.shape(accuracy), dtype=bool)
        if self.latency_ms is not None:
            ok &= np.asarray(latency_ms) - self.latency_ms <= 0
        if self.size_mb is not None:
            ok &= np.asarray(size_bytes) / 1e6 - self.size_mb <= 0
        if self.min_accuracy is not None:
            ok &= self.min_accuracy - np.asarray(accuracy) <= 0
        return ok

    def any(self) -> bool:
        """Whether any budget is set."""
        return self.latency_ms is not None or self.size_mb is not None or self.min_accuracy is not None

    def describe(self) -> str:
        parts = [f"latency <= {self.latency_ms:g} ms" if self.latency_ms is not None else "",
                 f"size <= {self.size_mb:g} MB" if self.size_mb is not None else "",
                 f"accuracy >= {self.min_accuracy:g} %" if self.min_accuracy is not None else ""]
        return ", ".join(p for p in parts if p) or "none"


__all__ = ["Budgets"]
