"""Ranking and error metrics of a predictor on held-out subnets (what the search needs is the ranking)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from search_spaces.errors import bad_value


def rank_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Kendall tau (tau-b), Spearman rho, Pearson r, RMSE and MAE (in the units of y: accuracy points), n.

    A correlation that is undefined (a constant prediction or constant truth) is reported as 0.0: no ranking
    information, which is what a constant predictor gives.
    """
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise bad_value("y_pred length", p.size, f"{t.size} (the length of y_true)")
    if t.size < 2:
        raise bad_value("y_true length", t.size, "at least 2 values")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise bad_value("y_true / y_pred", "non-finite values", "finite numbers")

    def corr(value: float) -> float:
        return 0.0 if value is None or math.isnan(value) else float(value)

    constant = np.ptp(t) == 0 or np.ptp(p) == 0
    err = p - t
    return {
        "kendall_tau": 0.0 if constant else corr(stats.kendalltau(t, p).statistic),
        "spearman": 0.0 if constant else corr(stats.spearmanr(t, p).statistic),
        "pearson": 0.0 if constant else corr(stats.pearsonr(t, p).statistic),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "n": int(t.size),
    }


def binomial_variance(accuracy: Any, images: Any) -> np.ndarray:
    """The variance (percent^2) of a top-1 accuracy measured on `images` images: p(1 - p) / N, p smoothed by half
    an image each way so that 0 % and 100 % are not certain."""
    a = np.asarray(accuracy, dtype=np.float64).ravel()
    n = np.broadcast_to(np.asarray(images, dtype=np.float64), a.shape)
    if not (np.isfinite(n).all() and (n >= 1).all()):
        raise bad_value("images", images, "at least 1 image per accuracy")
    p = (a / 100.0 * n + 0.5) / (n + 1.0)
    return 1e4 * p * (1.0 - p) / n


def label_reliability(halves: Any) -> dict[str, float]:
    """How much of an accuracy label is signal, from two independent half-measurements per subnet (top-1 on the
    even and on the odd images of the holdout split; shape (n, 2)).

    - `split_half_tau`: Kendall tau between the halves -- how well one half ranks the subnets as the other does.
    - `reliability`: Spearman-Brown: the correlation the full split would have with a second full split,
      2r / (1 + r) from the halves' Pearson r.
    - `tau_ceiling`: the Kendall tau a *perfect* predictor of the noise-free accuracy would get against these labels,
      (2/pi) asin(sqrt(reliability)) for jointly normal values (Greiner's relation). No predictor's held-out
      tau against these labels is expected to exceed it; a predictor near it is limited by the labels, not the model.
    """
    h = np.asarray(halves, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != 2:
        raise bad_value("halves shape", tuple(h.shape), "(n, 2)")
    h = h[np.isfinite(h).all(axis=1)]
    if len(h) < 3 or np.ptp(h[:, 0]) == 0 or np.ptp(h[:, 1]) == 0:
        return {"split_half_tau": 0.0, "split_half_pearson": 0.0, "reliability": 0.0, "tau_ceiling": 0.0,
                "n": int(len(h))}
    r = float(stats.pearsonr(h[:, 0], h[:, 1]).statistic)
    rel = max(0.0, 2 * r / (1 + r)) if r > -1 else 0.0
    return {"split_half_tau": float(stats.kendalltau(h[:, 0], h[:, 1]).statistic), "split_half_pearson": r,
            "reliability": rel, "tau_ceiling": float(2 / math.pi * math.asin(math.sqrt(min(rel, 1.0)))),
            "n": int(len(h))}


def cv_kendall_tau(fit: Callable[[np.ndarray], Any], rows: np.ndarray, idx: np.ndarray, y: np.ndarray,
                   folds: int, seed: int) -> float:
    """Mean held-out Kendall tau over `folds` folds of `rows` (shuffled by `seed`): `fit(training rows)` returns a
    fitted model whose `predict` is scored on the held-out fold -- how `auto` and the quantization-aware choice
    compare candidates on the user's own records."""
    order = rows[np.random.default_rng(seed).permutation(len(rows))]
    scores = []
    for f in range(folds):
        held = order[f::folds]
        model = fit(rows[~np.isin(rows, held)])  # the caller's order, not the file's
        scores.append(rank_metrics(y[held], model.predict(idx[held]))["kendall_tau"])
    return round(float(np.mean(scores)), 4)
