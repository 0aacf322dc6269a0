"""Objectives and budgets.

Objectives are Optuna study directions over natural units: accuracy (percent, maximize), latency (ms,
minimize), size (MB = 10^6 bytes, minimize). Budgets are Optuna constraints (`Trial.set_constraint`, value
<= 0 is feasible), so NSGA-II and TPE keep infeasible trials and rank them by violation instead of seeing a
penalised objective. A config the target device cannot run (bits its backend lacks) gets the constraint
``supported = 1``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from search_spaces import InputError
from search_spaces.errors import bad_value

from nas.front import OBJECTIVES

METRIC_OF = {"accuracy": "accuracy", "latency": "latency_ms", "size": "size_mb"}


def parse_objectives(text: str | Sequence[str]) -> tuple[str, ...]:
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t).strip() for t in text]
    items = [t for t in items if t]
    allowed = ", ".join(OBJECTIVES)
    if len(items) < 2:
        raise bad_value("--objectives", ",".join(items), f"two or more of {allowed}, comma separated")
    for t in items:
        if t not in OBJECTIVES:
            raise bad_value("--objectives", t, allowed)
    if len(set(items)) != len(items):
        raise bad_value("--objectives", ",".join(items), f"distinct names among {allowed}")
    return tuple(items)


def directions(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[o] for o in objectives]


def _check_budget(field: str, value: float | None, upper: float | None = None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0 \
            or (upper is not None and value > upper):
        allowed = "a positive number" + (f" <= {upper:g}" if upper is not None else "")
        raise bad_value(field, value, allowed)
    return float(value)


@dataclass(frozen=True)
class Budgets:
    latency_ms: float | None = None
    size_mb: float | None = None
    min_accuracy: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "latency_ms", _check_budget("--latency-ms", self.latency_ms))
        object.__setattr__(self, "size_mb", _check_budget("--size-mb", self.size_mb))
        object.__setattr__(self, "min_accuracy", _check_budget("--min-accuracy", self.min_accuracy, 100.0))

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

    def describe(self) -> str:
        parts = [f"latency <= {self.latency_ms:g} ms" if self.latency_ms is not None else "",
                 f"size <= {self.size_mb:g} MB" if self.size_mb is not None else "",
                 f"accuracy >= {self.min_accuracy:g} %" if self.min_accuracy is not None else ""]
        return ", ".join(p for p in parts if p) or "none"


def objective_values(objectives: Sequence[str], m: dict[str, Any]) -> list[float]:
    out = []
    for o in objectives:
        if o == "accuracy":
            out.append(float(m["accuracy"]))
        elif o == "latency":
            out.append(float(m["latency_ms"]))
        elif o == "size":
            out.append(float(m["size_bytes"]) / 1e6)
        else:  # pragma: no cover - parse_objectives guards
            raise InputError(f"objective {o!r}")
    return out
