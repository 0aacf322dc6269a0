"""Pareto fronts and hypervolume, on Optuna's own implementations (private in Optuna 5: `optuna_compat`)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.front import OBJECTIVES
from nas.search.optuna_compat import compute_hypervolume, is_pareto_front


def to_loss(values: np.ndarray, objectives: Sequence[str]) -> np.ndarray:
    """Objective values (n, k) in natural units -> losses (maximized objectives negated)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1, len(objectives))
    sign = np.array([-1.0 if OBJECTIVES[o] == "maximize" else 1.0 for o in objectives])
    return v * sign


def pareto_mask(values: np.ndarray, objectives: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows (duplicates of a front point all stay on the front)."""
    loss = to_loss(values, objectives)
    if len(loss) == 0:
        return np.zeros(0, dtype=bool)
    return is_pareto_front(loss, assume_unique_lexsorted=False)


class Normalizer:
    """Maps objective values to [0, 1] losses between an ideal and a nadir point (natural units), so
    hypervolumes of different runs are comparable; the reference point is `ref` (default 1.1 in every axis)."""

    def __init__(self, objectives: Sequence[str], ideal: Sequence[float], nadir: Sequence[float],
                 ref: float = 1.1) -> None:
        self.objectives = tuple(objectives)
        self.ideal_loss = to_loss(np.asarray(ideal, dtype=np.float64), objectives)[0]
        self.nadir_loss = to_loss(np.asarray(nadir, dtype=np.float64), objectives)[0]
        span = self.nadir_loss - self.ideal_loss
        self.span = np.where(np.abs(span) > 0, span, 1.0)
        self.ref = float(ref)

    @classmethod
    def from_values(cls, objectives: Sequence[str], values: np.ndarray, ref: float = 1.1) -> Normalizer:
        """Ideal and nadir of the Pareto front of `values` (e.g. a reference front)."""
        v = np.asarray(values, dtype=np.float64)
        front = v[pareto_mask(v, objectives)]
        loss = to_loss(front, objectives)
        sign = to_loss(np.ones((1, len(objectives))), objectives)[0]
        return cls(objectives, loss.min(0) * sign, loss.max(0) * sign, ref)

    def to_dict(self) -> dict[str, object]:
        sign = to_loss(np.ones((1, len(self.objectives))), self.objectives)[0]
        return {"objectives": list(self.objectives), "ideal": (self.ideal_loss * sign).tolist(),
                "nadir": (self.nadir_loss * sign).tolist(), "reference_point": self.ref}

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (to_loss(values, self.objectives) - self.ideal_loss) / self.span


def hypervolume(values: np.ndarray, normalizer: Normalizer) -> float:
    """The fraction of the reference box ``[0, ref]^k`` (normalised losses) that the points `values` (natural units)
    dominate: in [0, 1] whatever the points, so runs compare on one fixed normalisation. A point beyond the
    normaliser's ideal counts as at the ideal (its losses are clipped at 0): it cannot push the value above 1."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return 0.0
    loss = np.maximum(normalizer(v), 0.0)
    ref = np.full(loss.shape[1], normalizer.ref)
    loss = loss[np.all(loss < ref, axis=1)]
    if len(loss) == 0:
        return 0.0
    loss = loss[is_pareto_front(loss, assume_unique_lexsorted=False)]
    loss = np.unique(loss, axis=0)
    return float(compute_hypervolume(loss, ref, assume_pareto=True)) / float(np.prod(ref))
