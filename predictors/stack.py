"""`stack`: a weighted blend of other predictor kinds, the weights chosen by cross-validated Kendall tau.

Why: on real supernet labels no single kind is best everywhere, and their errors differ. Trees find the few choices
that matter; the resolution-varying `ridge` spreads small effects over every choice. Blending them ranked held-out
subnets better than either alone on the shapes and MNIST supernets (Kendall tau 0.866 vs 0.836 / 0.858 at 1,000
float samples; 0.681 vs 0.641 / 0.632 at 736) and about as well as gbt on noisy digits labels (0.633-0.646 vs 0.648;
experiments/results/predictors.md). An `mlp` member got weight 0-0.1 on all three, so it is left out by default.
The blend weight matters too, and it differs by data set, so it is measured rather than fixed: every member is fitted
`folds` times on the other folds, and the weights on a 0.1 grid of the simplex that rank the out-of-fold predictions
best (Kendall tau, which is what the search needs) are kept. Then every member is refitted on all samples.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from search_spaces import SearchSpace
from search_spaces.errors import bad_value

from predictors.base import PREDICTORS, Predictor, create_predictor, pack_members, unpack_members

MEMBER_KINDS = ("gbt", "ridge", "mlp")
GRID_STEPS = 10  # blend weights are multiples of 1/10


def simplex_grid(m: int, steps: int = GRID_STEPS) -> np.ndarray:
    """(k, m) every weight vector of m non-negative multiples of 1/steps that sum to 1."""
    rows = [c for c in itertools.product(range(steps + 1), repeat=m) if sum(c) == steps]
    return np.asarray(rows, dtype=np.float64) / steps


@PREDICTORS.register("stack")
class StackPredictor(Predictor):
    """Blend of `members` (kinds), weights by `folds`-fold cross-validated Kendall tau."""

    kind = "stack"

    def __init__(self, space: str | SearchSpace, *, quant: bool = False, seed: int = 0,
                 members: Sequence[str] = ("gbt", "ridge"), folds: int = 4) -> None:
        super().__init__(space, quant=quant, seed=seed)
        if isinstance(members, str) or not isinstance(members, Sequence) or not 1 <= len(members) <= 3:
            raise bad_value("members", members, f"a list of 1 to 3 distinct kinds out of {', '.join(MEMBER_KINDS)}")
        for kind in members:
            if kind not in MEMBER_KINDS or list(members).count(kind) > 1:
                raise bad_value("members", list(members), f"distinct kinds out of {', '.join(MEMBER_KINDS)}")
        if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
            raise bad_value("folds", folds, "an integer >= 2")
        self.members = list(members)
        self.folds = folds
        self.models: list[Predictor] = []
        self.weights = np.zeros(0)

    def _new_member(self, kind: str) -> Predictor:
        return create_predictor(kind, self.search_space, quant=self.quant, seed=self.seed)

    def _fit(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        m = len(self.members)
        n = len(y)
        folds = min(self.folds, n // 2)
        cv_tau: dict[str, float] = {}
        if m == 1 or folds < 2:  # too few samples to cross-validate: equal weights
            self.weights = np.full(m, 1.0 / m)
        else:
            oof = np.zeros((n, m))
            order = np.random.default_rng(self.seed).permutation(n)
            for f in range(folds):
                held = order[f::folds]
                rest = np.setdiff1d(order, held)
                w = None if weight is None else weight[rest]
                for j, kind in enumerate(self.members):
                    oof[held, j] = self._new_member(kind).fit(idx[rest], y[rest], sample_weight=w).predict(idx[held])
            grid = simplex_grid(m)
            taus = np.array([stats.kendalltau(y, oof @ g).statistic for g in grid])
            taus = np.nan_to_num(taus, nan=-1.0)
            best = np.flatnonzero(taus >= taus.max() - 1e-12)
            # ties: the most even blend (averaging is the safer bet on unseen subnets)
            pick = best[np.argmin(((grid[best] - 1.0 / m) ** 2).sum(axis=1))]
            self.weights = grid[pick]
            cv_tau = {kind: round(float(stats.kendalltau(y, oof[:, j]).statistic), 4)
                      for j, kind in enumerate(self.members)}
            cv_tau["blend"] = round(float(taus[pick]), 4)
        self.models = [self._new_member(kind).fit(idx, y, sample_weight=weight) for kind in self.members]
        self.train_info = {"weights": dict(zip(self.members, self.weights.round(3).tolist())),
                           "cv_folds": folds if m > 1 else 0, "cv_kendall_tau": cv_tau}

    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros(idx.shape[0])
        for w, model in zip(self.weights, self.models):
            if w > 0:
                out += w * model.predict(idx)
        return out, np.zeros_like(out)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors, metas = pack_members(self.models)
        return {**tensors, "weights": self.weights}, {"member_states": metas}

    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        tensors = dict(tensors)
        weights = np.asarray(tensors.pop("weights", np.zeros(0)), dtype=np.float64)
        metas = meta.get("member_states")
        if not isinstance(metas, list) or [x.get("kind") for x in metas] != self.members \
                or weights.shape != (len(self.members),):
            raise bad_value("stack members", [x.get("kind") for x in metas or []] if isinstance(metas, list) else metas,
                            f"states of {self.members} and {len(self.members)} weights")
        self.models = unpack_members(self.search_space, tensors, metas)
        self.weights = weights
