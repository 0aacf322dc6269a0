"""Objectives (budgets: `nas.budgets`).

Objectives are Optuna study directions over natural units: accuracy (percent, maximize), latency (ms,
minimize), size (MB = 10^6 bytes, minimize). Budgets are Optuna constraints (`Trial.set_constraint`, value
<= 0 is feasible), so NSGA-II and TPE keep infeasible trials and rank them by violation instead of seeing a
penalised objective. A config the target device cannot run (bits its backend lacks) gets the constraint
``supported = 1``.
"""
from __future__ import annotations

from collections.abc import Sequence
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
        raise bad_value("objectives", ",".join(items), f"two or more of {allowed}, comma separated")
    for t in items:
        if t not in OBJECTIVES:
            raise bad_value("objectives", t, allowed)
    if len(set(items)) != len(items):
        raise bad_value("objectives", ",".join(items), f"distinct names among {allowed}")
    return tuple(items)


def directions(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[o] for o in objectives]


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
