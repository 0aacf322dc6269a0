"""Calibration: a small, explainable correction from the sum of isolated blocks to the whole model, applied only
when it predicts held-out whole models better than the plain sum.

Summing isolated block latencies misses what the runtime does across block boundaries (fusion, memory reuse)
and counts the per-inference overhead (session call, input copy) once per block instead of once per model.
So each block's contribution is its median minus the measured per-call overhead (x below), and the candidates are

  none:      ms = o + x                          o = the measured per-call overhead, paid once per model
  scale:     ms = b * x                          x = sum over blocks of (median - overhead)
  affine:    ms = a + b * x
  per-block: ms = a + x + c * n                  n = the number of blocks
  per-bits:  ms = a + b_fp * x_fp + b_8 * x_8 + b_4 * x_4   (x split by the blocks' weight bits)
  weights:   ms = a + b * x + d * w               w = the subnet's parameters, millions

`per-block`: where a block costs inside a whole graph a fixed amount other than the standalone per-call overhead
(on an Intel Xeon host only 22-51 % of that overhead went away in whole subnets: the error then grows with the
number of blocks, not with their size; experiments/results/latency.md).

`weights`: a block timed alone runs again and again with its weights in the core's caches; a whole model reads all
of its weights once per inference. So whole subnets of the same block sum run slower the more parameters they hold
(on an Intel Xeon host, mbv3-tiny at 32 px, whole / block sum correlated 0.53 with the parameter count over 72
subnets, and the exports of a demo run missed by -12 % to +16 % under `per-block`, by -5 % to +7 % with this term).

`scale` takes b as the median of measured / x (one parameter, robust to one bad measurement); the others are
fitted by least squares on the *relative* error (what validation reports), so small and large models count
alike. A few end-to-end measurements fit any of them, but a fit that matches its own calibration subnets can
still predict other subnets worse than the plain sum (fitting noise: negative intercepts, slopes chasing one
outlier). So `select` (the default, `auto`) cross-validates every candidate on the calibration subnets
(leave-one-out) and keeps the one with the lowest held-out relative error, preferring the simpler one on a
near-tie; `none` wins unless a correction really lowers the held-out error. The table records all candidates'
errors (`fitted_on["selection"]`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search_spaces.errors import bad_value

# simplest first: the order near-ties are broken in
METHODS = ("none", "scale", "affine", "per-block", "weights", "per-bits")
AUTO = "auto"
GROUPS = ("fp", "w8", "w4")  # per-bits feature groups, by a block's weight bits
# a more complex candidate must lower the cross-validated MAPE by more than this (relative, plus absolute) to win
NEAR_TIE_REL, NEAR_TIE_ABS = 0.05, 0.001
_NEEDS = {"none": ("a",), "scale": ("b",), "affine": ("a", "b"), "per-block": ("a", "c"),
          "per-bits": ("a", "b_fp", "b_w8", "b_w4"), "weights": ("a", "b", "d")}


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
        x = "sum(block median_ms - overhead_ms)"
        return {"none": f"ms = overhead_ms + {x}", "affine": f"ms = a + b * {x}", "scale": f"ms = b * {x}",
                "per-block": f"ms = a + {x} + c * n_blocks",
                "per-bits": "ms = a + b_fp * x_fp + b_w8 * x_w8 + b_w4 * x_w4, x_g = sum over blocks with weight "
                            "bits g of (median_ms - overhead_ms)",
                "weights": f"ms = a + b * {x} + d * weights_m (the subnet's parameters, millions)"}[self.method]

    @property
    def applied(self) -> bool:
        """False when the selection kept the plain (overhead-corrected) block sum."""
        return self.method != "none"

    def apply(self, x_groups: np.ndarray, n_blocks: np.ndarray | None = None,
              weights_m: np.ndarray | None = None) -> np.ndarray:
        """x_groups: (n, 3) overhead-corrected block sums per group (fp, w8, w4); n_blocks: (n,) block counts
        (`per-block` needs them); weights_m: (n,) parameters in millions (`weights` needs them)."""
        p = self.params
        if self.method == "weights":
            if weights_m is None:
                raise ValueError("the weights calibration needs the subnets' parameter counts")
            return p["a"] + p["b"] * x_groups.sum(axis=1) + p["d"] * np.asarray(weights_m, dtype=np.float64)
        if self.method == "per-block":
            if n_blocks is None:
                raise ValueError("the per-block calibration needs the subnets' block counts")
            return p["a"] + x_groups.sum(axis=1) + p["c"] * np.asarray(n_blocks, dtype=np.float64)
        if self.method == "none":
            return p["a"] + x_groups.sum(axis=1)
        if self.method in ("affine", "scale"):
            return p.get("a", 0.0) + p["b"] * x_groups.sum(axis=1)
        return p["a"] + x_groups @ np.array([p["b_fp"], p["b_w8"], p["b_w4"]])

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "formula": self.formula, "params": self.params, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        if not isinstance(d, Mapping) or "method" not in d or not isinstance(d.get("params"), Mapping):
            raise bad_value("calibration", d, "an object with method and params")
        if d["method"] not in METHODS:
            raise bad_value("calibration.method", d["method"], f"one of {', '.join(METHODS)}")
        params = {str(k): float(v) for k, v in d["params"].items()}
        for k in _NEEDS[d["method"]]:
            if k not in params or not np.isfinite(params[k]):
                raise bad_value(f"calibration.params.{k}", params.get(k), "a finite number")
            if k.startswith("b") and params[k] <= 0:  # a slope <= 0 makes bigger models faster (or negative)
                raise bad_value(f"calibration.params.{k}", params[k], "a positive slope")
            if k == "d" and params[k] < 0:  # reading more weights never makes a model faster
                raise bad_value(f"calibration.params.{k}", params[k], "a slope >= 0")
        return cls(str(d["method"]), params, dict(d.get("fitted_on", {})))

    @classmethod
    def fit(cls, x_groups: np.ndarray, measured_ms: np.ndarray, method: str = "affine",
            fitted_on: Mapping[str, Any] | None = None, overhead_ms: float = 0.0,
            n_blocks: np.ndarray | None = None, weights_m: np.ndarray | None = None) -> Calibration:
        """Least squares on relative error. Groups with no block in any calibration model keep slope 1 (the
        table as measured); with too few models for `per-bits`, fall back to `affine`; `weights` fitting a
        negative weight slope falls back to `affine` too. `none` fits nothing: `overhead_ms` is its intercept."""
        x = np.asarray(x_groups, dtype=np.float64)
        y = np.asarray(measured_ms, dtype=np.float64)
        if method not in METHODS:
            raise bad_value("calibration method", method, f"one of {', '.join(METHODS)}")
        if y.size < (1 if method in ("none", "scale") else 2):
            raise bad_value("calibration measurements", int(y.size), "at least 2 end-to-end measurements "
                            "(1 for the scale method)")
        info = dict(fitted_on or {})
        present = [g for g in range(3) if np.any(x[:, g] > 0)]
        if method == "per-bits" and y.size < len(present) + 3:
            method, info["note"] = "affine", f"per-bits needs >= {len(present) + 3} models; fitted affine"
        if method == "none":
            cal, how = cls(method, {"a": float(overhead_ms)}, info), "nothing fitted: the overhead-corrected sum"
        elif method == "per-block":
            if n_blocks is None:
                raise bad_value("calibration n_blocks", None, "the block counts of the calibration subnets")
            nb = np.asarray(n_blocks, dtype=np.float64)
            w = 1.0 / y
            feats = np.column_stack([np.ones_like(y), nb])
            theta, *_ = np.linalg.lstsq(feats * w[:, None], (y - x.sum(axis=1)) * w, rcond=None)
            cal, how = cls(method, {"a": float(theta[0]), "c": float(theta[1])}, info), \
                "least squares on relative error, slope 1"
        elif method == "scale":
            cal, how = cls(method, {"b": float(np.median(y / x.sum(axis=1)))}, info), "median of measured / block sum"
        else:
            if method == "weights":
                if weights_m is None:
                    raise bad_value("calibration weights_m", None, "the parameter counts of the calibration subnets")
                feats = np.column_stack([np.ones_like(y), x.sum(axis=1), np.asarray(weights_m, dtype=np.float64)])
            elif method == "affine":
                feats = np.column_stack([np.ones_like(y), x.sum(axis=1)])
            else:
                feats = np.column_stack([np.ones_like(y)] + [x[:, g] for g in present])
            w = 1.0 / y
            theta, *_ = np.linalg.lstsq(feats * w[:, None], y * w, rcond=None)
            if method == "affine":
                params = {"a": float(theta[0]), "b": float(theta[1])}
            elif method == "weights":
                params = {"a": float(theta[0]), "b": float(theta[1]), "d": float(theta[2])}
                if params["d"] < 0:  # noise: more weights never run faster
                    info["note"] = f"weights fitted d < 0 ({params}); fitted affine"
                    return cls.fit(x, y, "affine", info, overhead_ms, n_blocks, weights_m)
            else:
                params = {"a": float(theta[0]), "b_fp": 1.0, "b_w8": 1.0, "b_w4": 1.0}
                for j, g in enumerate(present):
                    params[f"b_{GROUPS[g]}"] = float(theta[1 + j])
            if any(v <= 0 for k, v in params.items() if k.startswith("b")):  # noise, not physics: loading refuses it
                info["note"] = f"{method} fitted a slope <= 0 ({params}); fitted scale"
                return cls.fit(x, y, "scale", info, overhead_ms, n_blocks, weights_m)
            cal, how = cls(method, params, info), "least squares on relative error"
        cal.fitted_on.update({"n": int(y.size), "fit": how,
                              "mape_after": float(np.mean(np.abs(cal.apply(x, n_blocks, weights_m) - y) / y))})
        return cal


def cross_validated_mape(x_groups: np.ndarray, measured_ms: np.ndarray, method: str,
                         overhead_ms: float = 0.0, n_blocks: np.ndarray | None = None,
                         weights_m: np.ndarray | None = None) -> float:
    """Leave-one-out mean relative error of `method`: each subnet predicted by a fit on all the others."""
    x = np.asarray(x_groups, dtype=np.float64)
    y = np.asarray(measured_ms, dtype=np.float64)
    extra = [None if a is None else np.asarray(a, dtype=np.float64) for a in (n_blocks, weights_m)]

    def rows(sel: Any) -> list[np.ndarray | None]:  # the optional per-subnet features of the selected subnets
        return [None if a is None else a[sel] for a in extra]

    errs = []
    for i in range(y.size):
        keep = np.arange(y.size) != i
        nb, wm = rows(keep)
        cal = Calibration.fit(x[keep], y[keep], method, overhead_ms=overhead_ms, n_blocks=nb, weights_m=wm)
        one = cal.apply(x[i : i + 1], *rows(slice(i, i + 1)))
        errs.append(abs(float(one[0]) - y[i]) / y[i])
    return float(np.mean(errs))


def select(x_groups: np.ndarray, measured_ms: np.ndarray, overhead_ms: float,
           candidates: tuple[str, ...] = METHODS, fitted_on: Mapping[str, Any] | None = None,
           force: str | None = None, n_blocks: np.ndarray | None = None,
           weights_m: np.ndarray | None = None) -> Calibration:
    """The candidate with the lowest leave-one-out relative error, fitted on all measurements. A candidate
    replaces a simpler one only when it beats it by more than a near-tie (5 % of the error + 0.1 point), so
    `none` -- the plain overhead-corrected sum -- stays unless a correction clearly helps held-out subnets.
    `force`: fit that method whatever the cross-validation says (the errors are recorded all the same).
    `n_blocks`: the subnets' block counts; without them `per-block` is not a candidate. `weights_m`: their
    parameters (millions); without them `weights` is not a candidate."""
    if force is not None and force not in METHODS:
        raise bad_value("calibration method", force, f"one of {', '.join(METHODS)}")
    y = np.asarray(measured_ms, dtype=np.float64)
    unknown = [c for c in candidates if c not in METHODS]
    if unknown or not candidates:
        raise bad_value("calibration candidates", unknown or list(candidates), f"some of {', '.join(METHODS)}")
    order = [m for m in METHODS if m in candidates]
    groups = int(np.sum(np.any(np.asarray(x_groups) > 0, axis=0)))
    # enough subnets that every leave-one-out fit has more measurements than parameters (and per-block: counts)
    needs = {"none": 1, "scale": 2, "affine": 4, "per-block": 4 if n_blocks is not None else np.inf,
             "weights": 5 if weights_m is not None else np.inf, "per-bits": groups + 4}
    usable = [m for m in order if y.size >= needs[m]]
    cv = {m: cross_validated_mape(x_groups, y, m, overhead_ms, n_blocks, weights_m) for m in usable if y.size >= 2}
    chosen = usable[0] if usable else "none"
    for m in usable[1:]:
        if m in cv and cv[m] < cv[chosen] * (1 - NEAR_TIE_REL) - NEAR_TIE_ABS:
            chosen = m
    info = dict(fitted_on or {})
    info["selection"] = {"cv": "leave-one-out", "cv_mape": cv, "chosen": chosen, "candidates": order,
                         "forced": force,
                         "rule": f"lowest cross-validated MAPE; a more complex candidate must beat the chosen one "
                                 f"by > {NEAR_TIE_REL:.0%} of its error + {NEAR_TIE_ABS:.1%}"}
    return Calibration.fit(x_groups, y, force or chosen, fitted_on=info, overhead_ms=overhead_ms, n_blocks=n_blocks,
                           weights_m=weights_m)
