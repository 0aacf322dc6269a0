"""`Measurement`: one model's latency as a robust statistic plus its spread, and how timings become it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from latency_tables.protocol import Protocol


@dataclass(frozen=True)
class Measurement:
    """median_ms is the protocol's statistic (the median unless the protocol says otherwise); std_ms the spread
    of the timed runs; count how many runs were timed; p10/p90 for judging noise."""

    median_ms: float
    std_ms: float
    count: int
    p10_ms: float
    p90_ms: float
    ref_ms: float | None = None  # the reference model's statistic in the same call (protocol.reference)
    ref_ratio: float | None = None  # median over rounds of (this model's round median / the reference's)

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items() if v is not None}

    def with_reference(self, rounds_ms: list[list[float]], ref_rounds_ms: list[list[float]]) -> Measurement:
        """Attach the reference: `ref_rounds_ms[r]` are the reference runs interleaved with round r's runs."""
        ratios = [np.median(a) / np.median(b) for a, b in zip(rounds_ms, ref_rounds_ms)]
        ref_ms = float(np.median(np.concatenate([np.asarray(r) for r in ref_rounds_ms])))
        return replace(self, ref_ms=ref_ms, ref_ratio=float(np.median(ratios)))

    @classmethod
    def from_timings(cls, rounds_ms: list[list[float]], protocol: Protocol) -> Measurement:
        """`rounds_ms[r]` are the timings (ms) of round r."""
        allv = np.concatenate([np.asarray(r, dtype=np.float64) for r in rounds_ms])
        if protocol.statistic == "median":
            stat = float(np.median(allv))
        elif protocol.statistic == "trimmed_mean":
            lo, hi = np.quantile(allv, [0.1, 0.9])
            stat = float(allv[(allv >= lo) & (allv <= hi)].mean())
        else:  # min_of_round_medians
            stat = float(min(np.median(r) for r in rounds_ms))
        p10, p90 = np.quantile(allv, [0.1, 0.9])
        return cls(stat, float(allv.std()), int(allv.size), float(p10), float(p90))
