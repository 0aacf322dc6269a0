"""What a cheap model gets wrong around a few measured subnets, as a Gaussian process on their one-hot encodings
(`Family.encode`): the correction both halves of a prediction add where a search chose.

A search ends where its models are most optimistic -- the accuracy predictor over-predicts the subnets it ranks
best, the latency table under-predicts the subnets it lets fit a budget -- so the measurements that matter most
are of the chosen subnets, and their residuals r (measured minus the model's figure) are modelled directly:

    correction(x) = k(x, X) @ alpha,    k(a, b) = s * exp(-|a - b|^2 / (2 l^2)) [+ c]

with X the measured subnets' encodings (|a - b|^2 is twice the number of choices in which two subnets differ),
alpha = (K + diag(v) + n I)^-1 r, v each measurement's own variance where it is known, and scale s, length l and
extra noise n fitted by scikit-learn's `GaussianProcessRegressor` (marginal likelihood). Far from every measured
subnet the correction fades to zero and the model's figure stands; at a measured one it is its residual shrunk
towards its neighbours' by the measurement's noise. With an `offset`, the kernel's constant c lets the residuals
share a mean, estimated with its uncertainty, which is where the correction fades to instead: for residuals that
selection makes all alike in sign (a search's picks), not for ones that differ by subnet. It lives beside the
space because its distance is the space's: `predictors.residual_gp` and `latency_tables.correction` use it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

# the length at most 3: two subnets d choices apart correlate exp(-d / 9), so a correction reaches a search's
# neighbouring picks (d of 1-4: 0.9-0.64) but not random subnets (d ~ 30: 0.04) -- a longer one, which a few
# equal residuals would choose, shifts every subnet alike and changes no ranking
LENGTH_BOUNDS = (0.5, 3.0)


@dataclass(frozen=True)
class KernelResiduals:
    """A fitted correction: the measured encodings `x`, the weights `alpha` and the kernel's scale and length
    (`noise`: the fitted extra noise, for the record)."""

    x: np.ndarray
    alpha: np.ndarray
    scale: float
    length: float
    noise: float = 0.0
    offset: float = 0.0  # the constant's variance c (0: none)

    @classmethod
    def fit(cls, x: np.ndarray, residuals: np.ndarray, variance: np.ndarray | None = None, seed: int = 0,
            offset: bool = False) -> KernelResiduals:
        """Fit on encodings `x` (n, features) and `residuals` (n,); `variance`: each residual's own (None:
        unknown, one noise fitted for all, starting at 1 and free to grow); `offset`: with the constant c."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(residuals, dtype=np.float64).ravel()
        # with the variances known, the fitted noise is only what they leave unexplained
        if variance is None:
            label_var, white = 1e-10, WhiteKernel(1.0, (0.05, 1e3))
        else:
            label_var = np.maximum(np.asarray(variance, dtype=np.float64).ravel(), 1e-12)
            white = WhiteKernel(0.1, (1e-3, 1e3))
        kernel = ConstantKernel(float(np.var(y)) + 1.0, (1e-2, 1e4)) * RBF(2.0, LENGTH_BOUNDS)
        if offset:
            kernel = kernel + ConstantKernel(float(np.mean(y) ** 2) + 1.0, (1e-4, 1e4))
        kernel = kernel + white
        with warnings.catch_warnings():  # a bound reached (few measurements, little noise) is a fit, not a fault
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = GaussianProcessRegressor(kernel, alpha=label_var, normalize_y=False, n_restarts_optimizer=3,
                                          random_state=seed).fit(x, y)
        k = gp.kernel_
        rbf, c = (k.k1.k1, float(k.k1.k2.constant_value)) if offset else (k.k1, 0.0)
        return cls(x, np.asarray(gp.alpha_, dtype=np.float64).ravel(), float(rbf.k1.constant_value),
                   float(rbf.k2.length_scale), float(k.k2.noise_level), c)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The correction at encodings `x` (n, features)."""
        x = np.asarray(x, dtype=np.float64)
        if not len(self.alpha):
            return np.zeros(len(x))
        d2 = (x * x).sum(1)[:, None] + (self.x * self.x).sum(1)[None, :] - 2.0 * x @ self.x.T
        k = self.scale * np.exp(-np.maximum(d2, 0.0) / (2.0 * self.length * self.length)) + self.offset
        return k @ self.alpha

    def info(self) -> dict[str, float]:
        out = {"scale": round(self.scale, 4), "length": round(self.length, 4), "noise": round(self.noise, 4)}
        if self.offset:
            out["mean"] = round(float(self.offset * self.alpha.sum()), 4)  # where the correction fades to
        return out
