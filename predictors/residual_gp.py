"""`residual-gp`: what a predictor gets wrong around the subnets a search chose, as a Gaussian process on their
residuals -- the correction an `AccuracyPredictor` adds (`with_correction`).

A search ends where its predictor is most optimistic, so the labels that matter most are of the subnets it chose,
and one refit of a global model on a few of them among hundreds barely moves its prediction there (measured on the
quickstart: the fast budget's picks 14 points over their labels, 6 after a refit with them). The residuals
r = label - base prediction of the chosen subnets are modelled directly:

    corrected(x) = base(x) + k(x, X) @ alpha,    k(a, b) = s * exp(-|a - b|^2 / (2 l^2))

on the one-hot features of the quantization-aware layout (|a - b|^2 is twice the number of choices in which two
subnets differ), X the chosen subnets, alpha = (K + diag(v) + n I)^-1 r, with v each label's own variance where
it is known (`fit`'s `sample_weight` = 1 / v: a label on N images has the binomial p(1 - p) / N) and scale s,
length l and extra noise n fitted by scikit-learn's `GaussianProcessRegressor` (marginal likelihood). Far from
every chosen subnet the correction fades to zero and the base predictor's figure stands; at a chosen subnet it is
its label shrunk towards its neighbours' by the label's noise -- which matters because a search keeps the picks
whose labels came out high: the best of three checks of near-equal subnets is their luckiest. Saved as three
arrays: X, alpha and (s, l).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from search_spaces import SearchSpace

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
        """`weight`: each residual's precision, 1 / its label's variance in percent^2 (None: unknown)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        x = self.layout.onehot(idx, dtype=np.float64)
        # the length at most 3: two subnets d choices apart correlate exp(-d / 9), so a correction reaches a
        # search's neighbouring picks (d of 1-4: 0.9-0.64) but not random subnets (d ~ 30: 0.04) -- a longer
        # one, which a few equal residuals would choose, shifts every subnet alike and changes no ranking. With
        # the labels' variances known, the fitted noise is only what they leave unexplained; without, it starts
        # below a label's binomial spread (~1.4 points at 600 images) and may grow far past it.
        if weight is None:
            label_var, white = 1e-10, WhiteKernel(1.0, (0.05, 1e3))
        else:
            label_var = 1.0 / np.maximum(weight, 1e-12)
            white = WhiteKernel(0.1, (1e-3, 1e3))
        kernel = ConstantKernel(float(np.var(y)) + 1.0, (1e-2, 1e4)) * RBF(2.0, (0.5, 3.0)) + white
        with warnings.catch_warnings():  # a bound reached (few labels, little noise) is a fit, not a fault
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = GaussianProcessRegressor(kernel, alpha=label_var, normalize_y=False, n_restarts_optimizer=3,
                                          random_state=self.seed).fit(x, y)
        k = gp.kernel_
        self._x = x
        self._alpha = np.asarray(gp.alpha_, dtype=np.float64).ravel()
        self._kernel = np.array([k.k1.k1.constant_value, k.k1.k2.length_scale], dtype=np.float64)
        self.train_info = {"scale": round(float(self._kernel[0]), 4), "length": round(float(self._kernel[1]), 4),
                           "noise": round(float(k.k2.noise_level), 4)}

    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.layout.onehot(idx, dtype=np.float64)
        d2 = (x * x).sum(1)[:, None] + (self._x * self._x).sum(1)[None, :] - 2.0 * x @ self._x.T
        s, length = self._kernel
        k = s * np.exp(-np.maximum(d2, 0.0) / (2.0 * length * length))
        return k @ self._alpha, np.zeros(len(x))

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"x": self._x, "alpha": self._alpha, "kernel": self._kernel}, {}

    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        x, alpha, kernel = (np.asarray(tensors[k], dtype=np.float64) for k in ("x", "alpha", "kernel"))
        if x.ndim != 2 or x.shape[1] != self.layout.n_features or alpha.shape != (x.shape[0],) or kernel.shape != (2,):
            raise ValueError(f"residual-gp arrays: x {x.shape}, alpha {alpha.shape}, kernel {kernel.shape}; expected "
                             f"(n, {self.layout.n_features}), (n,), (2,)")
        self._x, self._alpha, self._kernel = x, alpha, kernel
