"""`FrontEntry`: one subnet on a Pareto front with the metrics it was chosen by -- the unit that search
writes, the results store keeps, query returns and export starts from.

Units, everywhere in hwnas: accuracy is top-1 in percent (0-100), latency in milliseconds, size in bytes
(budgets in MB = 10^6 bytes).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from search_spaces import SubnetConfig, config_from_dict

Objective = Literal["accuracy", "latency", "size"]
OBJECTIVES: dict[str, str] = {"accuracy": "maximize", "latency": "minimize", "size": "minimize"}  # per `Objective`
# the confidence of `FrontEntry.accuracy_lower`: a `min_accuracy` budget is met when the lower bound meets it
CONFIDENCE = 0.9


@dataclass(frozen=True)
class FrontEntry:
    config: SubnetConfig
    accuracy: float  # predicted top-1, percent
    latency_ms: float  # predicted on the table's device
    size_bytes: int
    macs: int
    feasible: bool = True
    trial: int | None = None
    measured: dict[str, float] = field(default_factory=dict)  # e.g. {"accuracy": .., "latency_ms": ..}
    accuracy_lower: float | None = None  # reached with probability >= CONFIDENCE (predictors.uncertainty)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontEntry:
        d = dict(d)
        d["config"] = config_from_dict(d["config"])
        return cls(**d)

    @classmethod
    def from_metrics(cls, config: SubnetConfig, m: dict[str, Any], feasible: bool = True,
                     trial: int | None = None) -> FrontEntry:
        """An entry from an evaluator's metrics row (`Metrics.row`)."""
        return cls(config=config, accuracy=float(m["accuracy"]), latency_ms=float(m["latency_ms"]),
                   size_bytes=int(m["size_bytes"]), macs=int(m["macs"]), feasible=bool(feasible), trial=trial)

    @property
    def accuracy_for_budget(self) -> float:
        """What a `min_accuracy` budget is checked against: the lower bound where there is one."""
        return self.accuracy if self.accuracy_lower is None else self.accuracy_lower


def with_lower_bounds(entries: list[FrontEntry], predictor: Any) -> list[FrontEntry]:
    """`entries` with `accuracy_lower` at `CONFIDENCE` from `predictor.lower_bound`, where the predictor records
    held-out residuals (an `AccuracyPredictor` fitted by `fit_predictor`); unchanged otherwise. Too few residuals
    to promise the confidence give 0: no `min_accuracy` budget is then met on the prediction's word."""
    if not entries or getattr(predictor, "margins", None) is None:
        return entries
    lower = predictor.lower_bound([e.config for e in entries], CONFIDENCE)
    return [replace(e, accuracy_lower=round(max(float(lo), 0.0), 4) if math.isfinite(lo) else 0.0)
            for e, lo in zip(entries, lower)]
