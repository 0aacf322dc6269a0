"""`residual-gp`: what a predictor gets wrong around the subnets a search chose -- the correction an
`AccuracyPredictor` adds (`with_correction`), a Gaussian process on their residuals (`search_spaces.kernel_residuals`)
over the quantization-aware layout's one-hot features.

A search ends where its predictor is most optimistic, so the labels that matter most are of the subnets it chose,
and one refit of a global model on a few of them among hundreds barely moves its prediction there (measured on the
quickstart: the fast budget's picks 14 points over their labels, 6 after a refit with them). Each label's variance
(`fit`'s `sample_weight` = 1 / v: a label on N images has the binomial p(1 - p) / N) lets the correction shrink
the luckiest of near-equal picks towards the others -- a search keeps the picks whose labels came out high. Saved
as three arrays: X, alpha and (s, l).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces import SearchSpace
from search_spaces.kernel_residuals import KernelResiduals

from predictors.base import PREDICTORS, Predictor


@PREDICTORS.register("residual-gp")
class ResidualGP(Predictor):
    """A zero-mean GP on residuals (labels minus a base predictor's figures); predicts the correction."""

    kind = "residual-gp"
    full_precision = False  # never an fp kind of its own: it corrects one

    def __init__(self, space: str | SearchSpace, *, quant: bool = True, seed: int = 0) -> None:
        super().__init__(space, quant=quant, seed=seed)
        self._x = np.zeros((0, self.layout.n_features))
        self._alpha = np.zeros(0)
        self._kernel = np.array([0.0, 1.0])  # scale s, length l

    def _label_range(self, y: np.ndarray) -> None:  # type: ignore[override]
        """No clip to a percent range: a correction is signed, and a kernel-weighted sum of residuals is bounded."""
        return None

    def _fit(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        """`weight`: each residual's precision, 1 / its label's variance in percent^2 (None: unknown: the noise
        starts below a label's binomial spread, ~1.4 points at 600 images, and may grow far past it)."""
        variance = None if weight is None else 1.0 / np.maximum(weight, 1e-12)
        fit = KernelResiduals.fit(self.layout.onehot(idx, dtype=np.float64), y, variance, seed=self.seed)
        self._x, self._alpha = fit.x, fit.alpha
        self._kernel = np.array([fit.scale, fit.length], dtype=np.float64)
        self.train_info = fit.info()

    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, length = self._kernel
        fit = KernelResiduals(self._x, self._alpha, float(s), float(length))
        return fit.predict(self.layout.onehot(idx, dtype=np.float64)), np.zeros(len(idx))

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"x": self._x, "alpha": self._alpha, "kernel": self._kernel}, {}

    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        x, alpha, kernel = (np.asarray(tensors[k], dtype=np.float64) for k in ("x", "alpha", "kernel"))
        if x.ndim != 2 or x.shape[1] != self.layout.n_features or alpha.shape != (x.shape[0],) or kernel.shape != (2,):
            raise ValueError(f"residual-gp arrays: x {x.shape}, alpha {alpha.shape}, kernel {kernel.shape}; expected "
                             f"(n, {self.layout.n_features}), (n,), (2,)")
        self._x, self._alpha, self._kernel = x, alpha, kernel
