"""The table's figures corrected around subnets timed whole (`LatencyTable.with_correction`).

A search under a latency budget keeps the most accurate subnet the table says fits, which is, by selection, one
the table under-predicts: on the quickstart, the latency budgets' picks ran 5-18 % over the table while random
subnets were within 3 % on average (experiments/results/latency.md). So the pipeline times its picks end to end
and corrects the table there: the residual 100 * ln(measured / predicted), about the percent error, is modelled
by `search_spaces.kernel_residuals` on the space's one-hot encodings, with an offset. Near a timed subnet the
prediction moves to its timing (shrunk towards its neighbours' by the timing's noise); far from all of them it
moves by the timed subnets' mean residual, estimated with its uncertainty. That mean is selection's, not the
table's: a corrected table is for what a search selects -- its front, a budget's answer, each the subnet the
table says is fastest for what it gives -- whose next picks it predicts without bias (on the quickstart's timed
picks, each round's predicted from the rounds before: mean error -0.8 %, against +3.2 % with the local correction
alone and +5.5 % uncorrected), and it over-predicts random subnets by about that mean (+5 % there). The table
itself, which `validate` checks on random subnets, is never changed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces import SearchSpace, config_from_dict
from search_spaces.errors import bad_value
from search_spaces.kernel_residuals import KernelResiduals

# one sigma of a whole model's median re-timed under a table's protocol, in percent (the same export re-timed:
# 0-4 % apart); the GP fits whatever noise the timings show beyond it
TIMING_SD_PCT = 2.0


@dataclass(frozen=True)
class LatencyCorrection:
    """The kernel correction and what it was fitted on: per timed subnet its config, the time measured (ms at
    the table's speed) and the table's prediction without the correction. A timed subnet is predicted by the
    kernel too, its timing shrunk towards its neighbours', not taken at its word: a search keeps, of near-equal
    picks, the one whose timing came out lowest (on the quickstart, taking timings at their word, a budget's
    answer timed at 0.280 ms ran 0.310 ms when exported; with the shrinkage, the answers' exports were within
    -6..+8 % of prediction at the table's speed)."""

    kernel: KernelResiduals
    timed: tuple[dict[str, Any], ...]

    @classmethod
    def fit(cls, space: SearchSpace, configs: Sequence[Any], measured_ms: Sequence[float],
            predicted_ms: Sequence[float], seed: int = 0) -> LatencyCorrection:
        measured = np.asarray(measured_ms, dtype=np.float64).ravel()
        predicted = np.asarray(predicted_ms, dtype=np.float64).ravel()
        if len(measured) != len(configs) or len(predicted) != len(configs) or not len(configs):
            raise bad_value("measured_ms", f"{len(measured)} values for {len(configs)} configs",
                            "one timing per config, at least one")
        ok = np.isfinite(measured) & (measured > 0) & np.isfinite(predicted) & (predicted > 0)
        if not ok.all():
            i = int(np.argmin(ok))
            raise bad_value(f"measured_ms[{i}]", float(measured[i]), "a positive finite timing of a subnet the table "
                            f"can run (its prediction: {predicted[i]:.4g} ms)")
        residual = 100.0 * np.log(measured / predicted)
        kernel = KernelResiduals.fit(space.encode(configs), residual, np.full(len(residual), TIMING_SD_PCT ** 2),
                                     seed=seed, offset=True)
        timed = tuple({"config": c.to_dict(), "measured_ms": round(float(m), 6), "predicted_ms": round(float(p), 6)}
                      for c, m, p in zip(configs, measured, predicted))
        return cls(kernel, timed)

    def factor(self, space: SearchSpace, configs: Sequence[Any] | np.ndarray) -> np.ndarray:
        """What the table's figure for each config is multiplied by (far from every timed subnet: by their mean
        residual)."""
        return np.exp(self.kernel.predict(space.encode(configs)) / 100.0)

    def to_dict(self) -> dict[str, Any]:
        k = self.kernel
        return {"model": "kernel-residuals", "residual": "100 ln(measured / predicted)",
                "timing_sd_pct": TIMING_SD_PCT, "scale": k.scale, "length": k.length, "noise": k.noise,
                "offset": k.offset,
                "x": [np.flatnonzero(row).tolist() for row in k.x], "alpha": k.alpha.tolist(),
                "timed": list(self.timed)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], space: SearchSpace) -> LatencyCorrection:
        """Read what `to_dict` wrote; a shape that does not fit `space` is a ValueError (the table's reader turns
        it into one line)."""
        n = space.n_features()
        x = np.zeros((len(d["x"]), n))
        for i, cols in enumerate(d["x"]):
            if any(not 0 <= int(c) < n for c in cols):
                raise ValueError(f"correction.x[{i}]: feature indices outside 0..{n - 1} ({space.name})")
            x[i, [int(c) for c in cols]] = 1.0
        alpha = np.asarray(d["alpha"], dtype=np.float64)
        if alpha.shape != (len(x),):
            raise ValueError(f"correction.alpha: {alpha.shape[0] if alpha.ndim else 0} values for {len(x)} subnets")
        timed = tuple(dict(t) for t in d["timed"])
        for i, t in enumerate(timed):
            config_from_dict(t["config"])
            if not (float(t["measured_ms"]) > 0 and float(t["predicted_ms"]) > 0):  # NaN fails too
                raise ValueError(f"correction.timed[{i}]: measured_ms {t['measured_ms']!r} and predicted_ms "
                                 f"{t['predicted_ms']!r}, allowed: positive numbers")
        return cls(KernelResiduals(x, alpha, float(d["scale"]), float(d["length"]), float(d.get("noise", 0.0)),
                                   float(d.get("offset", 0.0))), timed)

    def summary(self) -> dict[str, Any]:
        """How many subnets it was fitted on and their errors against the table before it."""
        err = [100 * (t["measured_ms"] / t["predicted_ms"] - 1) for t in self.timed]
        return {"timed": len(err), "mean_error_pct": round(float(np.mean(err)), 2),
                "max_abs_error_pct": round(float(np.max(np.abs(err))), 2), **self.kernel.info()}
