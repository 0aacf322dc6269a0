"""`ridge`: a varying-coefficient linear model -- each one-hot feature's effect is a polynomial in the input
resolution -- fitted by ridge regression with the strength chosen by efficient leave-one-out.

Why this form: on real supernet labels the effect of a choice depends on the resolution it runs at. Measured on the
generated-shapes supernet (1,034 float subnets), a larger kernel *lowers* accuracy at 16 px (Kendall tau -0.24
within that resolution) and raises it at 32 px (+0.39). With 1,000 training subnets a constant-effect linear model
(`degree=0`) ranks held-out subnets at tau 0.764, trees at 0.836, this model at 0.858 (degree 1 / 3 / 4: 0.860 /
0.851 / 0.848; at 100 samples degree 2 leads, 0.695 vs 0.417 / 0.425 / 0.604 / 0.658). A polynomial in the
(standardised) resolution shares strength across neighbouring resolutions, where a model per resolution would not.

    accuracy = b[resolution] + sum over active features f of (a_f + b_f r + c_f r^2),   r = standardised resolution

Fitted coefficients are folded into one table per resolution, so prediction is a gather and a sum straight from the
`to_indices` matrix: no dense one-hot matrix at inference, and nothing to unpickle (two arrays).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces import SearchSpace
from search_spaces.errors import bad_value

from predictors.base import PREDICTORS, Predictor

ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 25))


@PREDICTORS.register("ridge")
class RidgePredictor(Predictor):
    """Ridge regression on one-hot features x powers of the resolution (`degree`), LOO-chosen strength."""

    kind = "ridge"

    def __init__(self, space: str | SearchSpace, *, quant: bool = False, seed: int = 0, degree: int = 2) -> None:
        super().__init__(space, quant=quant, seed=seed)
        if not isinstance(degree, int) or isinstance(degree, bool) or degree < 0:
            raise bad_value("degree", degree, "an integer >= 0 (0: the same effect at every resolution)")
        self.degree = degree
        self._bias = np.zeros(0)   # (n_resolutions,) intercept per resolution
        self._table = np.zeros(0)  # (n_resolutions, n_features + 1) effect of each feature at each resolution
        self.alpha: float | None = None

    @property
    def _n_res(self) -> int:
        return int(self.layout.sizes[0])  # layout group 0 is the resolution

    def _powers(self) -> np.ndarray:
        """(n_resolutions, degree + 1) powers of the standardised resolution; the degree is capped at what the
        number of resolutions can identify (one resolution: degree 0)."""
        res = np.asarray(self.search_space.spec.resolutions, dtype=np.float64)
        r = (res - res.mean()) / res.std() if res.std() > 0 else np.zeros_like(res)
        degree = min(self.degree, len(res) - 1)
        return r[:, None] ** np.arange(degree + 1)[None, :]

    def _design(self, idx: np.ndarray) -> np.ndarray:
        """[resolution one-hot | features x r^0 | features x r^1 | ...] (the resolution's own one-hot aside)."""
        onehot = self.layout.onehot(idx, dtype=np.float64)
        n_res = self._n_res
        powers = self._powers()[idx[:, 0]]  # (n, degree + 1)
        rest = onehot[:, n_res:]
        return np.hstack([onehot[:, :n_res]] + [rest * powers[:, [k]] for k in range(powers.shape[1])])

    def _fit(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=ALPHAS, fit_intercept=True).fit(self._design(idx), y, sample_weight=weight)
        n_res, nf = self._n_res, self.layout.n_features
        powers = self._powers()
        coef = np.asarray(model.coef_, dtype=np.float64)
        per_power = coef[n_res:].reshape(powers.shape[1], nf - n_res)  # (degree + 1, non-resolution features)
        self._bias = float(model.intercept_) + coef[:n_res]
        self._table = np.zeros((n_res, nf + 1))
        self._table[:, n_res:nf] = powers @ per_power
        self.alpha = float(model.alpha_)
        self.train_info = {"alpha": self.alpha, "degree": int(powers.shape[1] - 1)}

    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        width = self.layout.n_features + 1
        res = idx[:, 0].astype(np.int64)
        ids = self.layout.ids(idx)[:, 1:].astype(np.int64)  # inactive -> the zero column n_features
        flat = self._table.ravel()
        out = self._bias[res].copy()
        for s in range(0, idx.shape[0], 16384):  # chunks keep the gathered block in cache
            rows = slice(s, s + 16384)
            out[rows] += flat[res[rows, None] * width + ids[rows]].sum(axis=1)
        return out, np.zeros_like(out)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"bias": self._bias, "table": self._table}, {"alpha": self.alpha}

    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        shapes = {"bias": (self._n_res,), "table": (self._n_res, self.layout.n_features + 1)}
        got = {k: tuple(np.shape(v)) for k, v in tensors.items()}
        if got != shapes:
            raise bad_value("ridge arrays", got, f"exactly {shapes}")
        self._bias, self._table = np.asarray(tensors["bias"]), np.asarray(tensors["table"])
        self.alpha = meta.get("alpha")
