"""Calibration: a small, explainable correction from the sum of isolated blocks to the whole model.

Summing isolated block latencies misses what the runtime does across block boundaries (fusion, memory reuse)
and counts the per-inference overhead (session call, input copy) once per block instead of once per model.
So each block's contribution is its median minus the measured per-call overhead, and the correction is fitted
on a few end-to-end measurements:

  scale:     ms = b * x                          x = sum over blocks of (median - overhead)
  affine:    ms = a + b * x
  per-bits:  ms = a + b_fp * x_fp + b_8 * x_8 + b_4 * x_4   (x split by the blocks' weight bits)

`scale` (the default) takes b as the median of measured / x: one parameter, robust to one bad measurement. On
this machine `affine` fitted negative intercepts (-0.06 ms at 32 px, -1.3 ms at 224 px) -- noise, not physics --
and validated slightly worse (experiments/results/latency.md). The others are
fitted by least squares on the *relative* error (what validation reports), so small and large models count
alike. `a` absorbs the per-model overhead, `b` the cross-block effects.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search_spaces.errors import bad_value

METHODS = ("affine", "scale", "per-bits")
GROUPS = ("fp", "w8", "w4")  # per-bits feature groups, by a block's weight bits


def group_of(weight_bits: int) -> int:
    return {32: 0, 8: 1, 4: 2}[int(weight_bits)]


@dataclass
class Calibration:
    method: str
    params: dict[str, float]
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise bad_value("calibration.method", self.method, f"one of {', '.join(METHODS)}")

    @property
    def formula(self) -> str:
        if self.method == "affine":
            return "ms = a + b * sum(block median_ms - overhead_ms)"
        if self.method == "scale":
            return "ms = b * sum(block median_ms - overhead_ms)"
        return "ms = a + b_fp * x_fp + b_w8 * x_w8 + b_w4 * x_w4, x_g = sum over blocks with weight bits g of (median_ms - overhead_ms)"

    def apply(self, x_groups: np.ndarray) -> np.ndarray:
        """x_groups: (n, 3) overhead-corrected block sums per group (fp, w8, w4)."""
        p = self.params
        if self.method in ("affine", "scale"):
            return p.get("a", 0.0) + p["b"] * x_groups.sum(axis=1)
        return p["a"] + x_groups @ np.array([p["b_fp"], p["b_w8"], p["b_w4"]])

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "formula": self.formula, "params": self.params, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        if not isinstance(d, Mapping) or "method" not in d or not isinstance(d.get("params"), Mapping):
            raise bad_value("calibration", d, "an object with method and params")
        params = {str(k): float(v) for k, v in d["params"].items()}
        need = {"affine": ("a", "b"), "scale": ("b",)}.get(d["method"], ("a", "b_fp", "b_w8", "b_w4"))
        for k in need:
            if k not in params or not np.isfinite(params[k]):
                raise bad_value(f"calibration.params.{k}", params.get(k), "a finite number")
            if k.startswith("b") and params[k] <= 0:  # a slope <= 0 makes bigger models faster (or negative)
                raise bad_value(f"calibration.params.{k}", params[k], "a positive slope")
        return cls(str(d["method"]), params, dict(d.get("fitted_on", {})))

    @classmethod
    def fit(cls, x_groups: np.ndarray, measured_ms: np.ndarray, method: str = "affine",
            fitted_on: Mapping[str, Any] | None = None) -> Calibration:
        """Least squares on relative error. Groups with no block in any calibration model keep slope 1 (the
        table as measured); with too few models for `per-bits`, fall back to `affine`."""
        x = np.asarray(x_groups, dtype=np.float64)
        y = np.asarray(measured_ms, dtype=np.float64)
        if method not in METHODS:
            raise bad_value("calibration method", method, f"one of {', '.join(METHODS)}")
        if y.size < (1 if method == "scale" else 2):
            raise bad_value("calibration measurements", int(y.size), "at least 2 end-to-end measurements "
                            "(1 for the scale method)")
        info = dict(fitted_on or {})
        present = [g for g in range(3) if np.any(x[:, g] > 0)]
        if method == "per-bits" and y.size < len(present) + 3:
            method, info["note"] = "affine", f"per-bits needs >= {len(present) + 3} models; fitted affine"
        if method == "scale":
            cal = cls(method, {"b": float(np.median(y / x.sum(axis=1)))}, info)
            cal.fitted_on.update({"n": int(y.size), "fit": "median of measured / block sum",
                                  "mape_after": float(np.mean(np.abs(cal.apply(x) - y) / y))})
            return cal
        if method == "affine":
            feats = np.column_stack([np.ones_like(y), x.sum(axis=1)])
        else:
            feats = np.column_stack([np.ones_like(y)] + [x[:, g] for g in present])
        w = 1.0 / y
        theta, *_ = np.linalg.lstsq(feats * w[:, None], y * w, rcond=None)
        if method == "affine":
            params = {"a": float(theta[0]), "b": float(theta[1])}
        else:
            params = {"a": float(theta[0]), "b_fp": 1.0, "b_w8": 1.0, "b_w4": 1.0}
            for j, g in enumerate(present):
                params[f"b_{GROUPS[g]}"] = float(theta[1 + j])
        if any(v <= 0 for k, v in params.items() if k.startswith("b")):  # noise, not physics: loading refuses it
            info["note"] = f"{method} fitted a slope <= 0 ({params}); fitted scale"
            return cls.fit(x, y, "scale", info)
        cal = cls(method, params, info)
        after = np.abs(cal.apply(x) - y) / y
        cal.fitted_on.update({"n": int(y.size), "fit": "least squares on relative error",
                              "mape_after": float(after.mean())})
        return cal
