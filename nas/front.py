"""`FrontEntry`: one subnet on a Pareto front with the metrics it was chosen by -- the unit that search
writes, the results store keeps, query returns and export starts from.

Units, everywhere in hwnas: accuracy is top-1 in percent (0-100), latency in milliseconds, size in bytes
(budgets in MB = 10^6 bytes).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from search_spaces import SubnetConfig

OBJECTIVES = {"accuracy": "maximize", "latency": "minimize", "size": "minimize"}


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontEntry:
        d = dict(d)
        d["config"] = SubnetConfig.from_dict(d["config"])
        return cls(**d)
