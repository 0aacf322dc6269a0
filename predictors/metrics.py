"""Ranking and error metrics of a predictor on held-out subnets (what the search needs is the ranking)."""
from __future__ import annotations

import math
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
