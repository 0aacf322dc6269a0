"""`QuantResidual`: what quantization costs, as a ridge model added to a full-precision predictor.

Transfer by fine-tuning (APQ) moves every weight of the fp network on a few dozen quantized samples; measured on the
synthetic target it needed ~3x fewer samples than training from scratch, not 4x. Mixed-precision work (HAQ, HAWQ)
models the accuracy cost of quantization as additive over layers, with a per-layer sensitivity that grows as a
layer gets narrower. This model is exactly that, on top of the frozen fp prediction:

    accuracy(quantized subnet) = fp(architecture) + sum over active blocks of the cost of its bit-widths

with two kinds of features per quantized bit-width choice (weights and activations separately): one indicator per
block position (its own sensitivity), and the number of active blocks at that bit-width per keep ratio (a
sensitivity shared by all positions, larger for pruned blocks). No intercept: a subnet without quantized blocks
gets the fp prediction unchanged. The ridge strength comes from efficient leave-one-out (scikit-learn's `RidgeCV`)
with the one-standard-error rule, "no correction" included, so noise is not mistaken for a cost. Closed form:
fitting takes milliseconds, and 100,000 configs take ~0.1 s.
"""
from __future__ import annotations

import numpy as np

from search_spaces import SearchSpace
from search_spaces.errors import bad_value

ALPHAS = tuple(float(a) for a in np.logspace(-3, 4, 15))
COEF_KEY = "quant_residual.coef"  # the name its coefficients are saved under, next to the model it corrects
FLOAT_BITS = 32  # a bit-width of 32 means "not quantized" (search_spaces.quant)


def _fields(space: SearchSpace) -> list[tuple[str, tuple[int, ...], list[int]]]:
    """Per bit-width field, in feature order: (name, its choices, the indices of the quantized (< 32) ones)."""
    sc = space.schema
    return [(f, ch, [j for j, b in enumerate(ch) if b < FLOAT_BITS])
            for f, ch in ((f, sc.choices(f)) for f in ("weight_bits", "act_bits"))]


def _columns(space: SearchSpace, idx: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(keep index per position, -1 where inactive; per bit field: choice index per position, -1 where inactive)."""
    sc = space.schema
    return sc.field(idx, "keep"), {f: sc.field(idx, f) for f, _, _ in _fields(space)}


def quantization_features(space: SearchSpace, idx: np.ndarray) -> np.ndarray:
    """(n, m) features of the `to_indices` rows `idx` (see the module docstring; `feature_names` names them)."""
    keep, bits = _columns(space, idx)
    cols: list[np.ndarray] = []
    for field, _, quantized in _fields(space):
        for j in quantized:
            at = bits[field] == j
            cols.append(at)
            cols.extend((at & (keep == k)).sum(axis=1, keepdims=True) for k in range(len(space.schema.choices("keep"))))
    return np.hstack(cols).astype(np.float64) if cols else np.zeros((idx.shape[0], 0))


def feature_names(space: SearchSpace) -> list[str]:
    sc = space.schema
    names = []
    for field, choices, quantized in _fields(space):
        for j in quantized:
            names += [f"{field}={choices[j]}@{p}" for p in range(sc.n_positions)]
            names += [f"count {field}={choices[j]}, keep={k}" for k in sc.choices("keep")]
    return names


class QuantResidual:
    """Ridge regression of (label - fp prediction) on `quantization_features`, without an intercept."""

    def __init__(self, space: SearchSpace, coef: np.ndarray | None = None, alpha: float | None = None) -> None:
        n = len(feature_names(space))
        self.space = space
        self.coef = np.zeros(n) if coef is None else np.asarray(coef, dtype=np.float64)
        self.alpha = alpha
        if self.coef.shape != (n,):
            raise bad_value("quantization residual coefficients", self.coef.shape,
                            f"({n},), one per feature of {space.name}")

    def fit(self, idx: np.ndarray, residual: np.ndarray, weight: np.ndarray | None = None) -> QuantResidual:
        """Fit on the rows that have quantized blocks (the others carry no information without an intercept).

        The strength is the largest one whose leave-one-out error is within one standard error of the best
        (the "one-standard-error rule"), and "no correction at all" is a candidate too: where quantization costs
        less than the label noise can show -- the digits and MNIST supernets, trained quantization-aware -- the
        fp prediction is kept as it is (the smallest-error strength lost up to 0.06 tau on MNIST), while on the
        synthetic target, where 4-bit blocks cost points, the rule keeps the fitted costs."""
        from sklearn.linear_model import Ridge, RidgeCV

        f = quantization_features(self.space, idx)
        rows = f.any(axis=1)
        self.coef, self.alpha = np.zeros(f.shape[1]), None
        if rows.sum() < 3:  # nothing to learn from: no correction
            return self
        w = np.ones(int(rows.sum())) if weight is None else np.asarray(weight, dtype=np.float64)[rows]
        sw = np.sqrt(w / w.mean())[:, None]  # weights as row scaling, so the LOO errors below are weighted alike
        x, r = f[rows] * sw, residual[rows] * sw[:, 0]
        cv = RidgeCV(alphas=ALPHAS, fit_intercept=False, store_cv_results=True).fit(x, r)
        err = cv.cv_results_  # (rows, alphas) squared leave-one-out errors
        mean, se = err.mean(axis=0), err.std(axis=0, ddof=1) / np.sqrt(len(r))
        best = int(np.argmin(mean))
        limit = mean[best] + se[best]
        if float(np.mean(r**2)) <= limit:  # no correction is as good as the best: keep the fp prediction
            return self
        alpha = max(a for a, m in zip(ALPHAS, mean) if m <= limit)
        self.coef = np.asarray(Ridge(alpha=alpha, fit_intercept=False).fit(x, r).coef_, dtype=np.float64)
        self.alpha = float(alpha)
        return self

    def predict(self, idx: np.ndarray) -> np.ndarray:
        """`quantization_features(idx) @ coef`, read from per-field lookup tables instead of building the
        features: a block's cost is its position's coefficient plus its (bit-width, keep) coefficient."""
        sc = self.space.schema
        keep, bits = _columns(self.space, idx)
        n_pos, n_keep = sc.n_positions, len(sc.choices("keep"))
        out = np.zeros(idx.shape[0])
        at = 0
        for field, choices, quantized in _fields(self.space):
            n_bits = len(choices)
            # [position, bits] and [bits, keep]; the extra last column / row is "inactive block" (cost 0), and a
            # float choice keeps its zeros
            by_pos = np.zeros((n_pos, n_bits + 1))
            by_keep = np.zeros((n_bits + 1, n_keep + 1))
            for j in quantized:
                by_pos[:n_pos, j] = self.coef[at : at + n_pos]
                by_keep[j, :n_keep] = self.coef[at + n_pos : at + n_pos + n_keep]
                at += n_pos + n_keep
            b = np.where(bits[field] >= 0, bits[field], n_bits)
            k = np.where(keep >= 0, keep, n_keep)
            rows = np.arange(n_pos) * (n_bits + 1)
            out += by_pos.ravel().take(rows + b).sum(axis=1)
            out += by_keep.ravel().take(b * (n_keep + 1) + k).sum(axis=1)
        return out

    def summary(self) -> dict[str, object]:
        """What a fit found, for a predictor's `train_info`: the ridge strength (None: no correction) and the
        largest costs."""
        return {"ridge_alpha": self.alpha, "largest_costs": self.largest()}

    def largest(self, k: int = 5) -> list[tuple[str, float]]:
        """The `k` largest costs (most negative coefficients), for reports: where quantization hurts most."""
        names = feature_names(self.space)
        order = np.argsort(self.coef)[:k]
        return [(names[i], round(float(self.coef[i]), 4)) for i in order]


__all__ = ["COEF_KEY", "QuantResidual", "feature_names", "quantization_features"]
