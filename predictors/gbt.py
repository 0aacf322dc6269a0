"""`gbt`: gradient-boosted trees (scikit-learn's HistGradientBoostingRegressor) over the one-hot features -- the
classical baseline the MLP is compared with.

scikit-learn fits; the fitted trees are then copied into plain arrays (split feature, threshold, children, leaf
value) that are saved as safetensors and evaluated here in numpy straight from the `to_indices` matrix: a split on
one-hot feature "column c has choice v" reads `indices[:, c] == v`. No pickle, no scikit-learn at load; the
trees are read through `predictors.sklearn_compat` (scikit-learn has no public form of them).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces import SearchSpace
from search_spaces.errors import bad_value

from predictors import sklearn_compat
from predictors.base import PREDICTORS, Predictor


@PREDICTORS.register("gbt")
class GBTPredictor(Predictor):
    """Histogram gradient boosting on the one-hot features (float, or with bits when `quant`)."""

    kind = "gbt"

    def __init__(self, space: str | SearchSpace, *, quant: bool = False, seed: int = 0, max_iter: int = 100,
                 learning_rate: float = 0.15, max_leaf_nodes: int = 15, max_depth: int = 6,
                 min_samples_leaf: int = 5, l2_regularization: float = 1.0) -> None:
        super().__init__(space, quant=quant, seed=seed)
        for name, value, lo in (("max_iter", max_iter, 1), ("max_leaf_nodes", max_leaf_nodes, 2),
                                ("max_depth", max_depth, 1), ("min_samples_leaf", min_samples_leaf, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise bad_value(name, value, f"an integer >= {lo}")
        if not 0 < learning_rate <= 1:
            raise bad_value("learning_rate", learning_rate, "a number in (0, 1]")
        if not l2_regularization >= 0:
            raise bad_value("l2_regularization", l2_regularization, "a number >= 0")
        self.max_iter, self.learning_rate, self.max_leaf_nodes = max_iter, float(learning_rate), max_leaf_nodes
        self.max_depth, self.min_samples_leaf = max_depth, min_samples_leaf
        self.l2_regularization = float(l2_regularization)
        self._trees: dict[str, np.ndarray] = {}

    # ---- fit: scikit-learn, then flatten its trees ----------------------------------------------------------
    def _fit(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        model = HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization, early_stopping=False, random_state=self.seed,
        )
        from threadpoolctl import threadpool_limits

        x = self.layout.onehot(idx, dtype=np.float64)
        with threadpool_limits(limits=1, user_api="openmp"):  # OpenMP threads spin badly on shared cores
            model.fit(x, y, sample_weight=weight)
        feature, threshold, left, right, value, leaf, roots = [], [], [], [], [], [], []
        base = 0
        for nodes in sklearn_compat.trees(model):
            roots.append(base)
            feature.append(nodes["feature_idx"].astype(np.int64))
            threshold.append(nodes["num_threshold"].astype(np.float64))
            is_leaf = nodes["is_leaf"].astype(bool)
            left.append(np.where(is_leaf, 0, nodes["left"].astype(np.int64)) + base)
            right.append(np.where(is_leaf, 0, nodes["right"].astype(np.int64)) + base)
            value.append(nodes["value"].astype(np.float64))
            leaf.append(is_leaf)
            base += len(nodes)
        feature_all = np.concatenate(feature)
        is_leaf_all = np.concatenate(leaf)
        group = np.searchsorted(self.layout.offsets, feature_all, side="right") - 1
        self._trees = {
            "column": np.where(is_leaf_all, 0, self.layout.columns[group]).astype(np.int64),
            "choice": np.where(is_leaf_all, 0, feature_all - self.layout.offsets[group]).astype(np.int64),
            "threshold": np.concatenate(threshold),
            "left": np.concatenate(left), "right": np.concatenate(right),
            "value": np.concatenate(value), "is_leaf": is_leaf_all.astype(np.uint8),
            "roots": np.asarray(roots, dtype=np.int64),
            "baseline": np.asarray([sklearn_compat.baseline(model)]),
        }
        self.train_info = {"n_trees": len(roots), "n_nodes": int(base)}
        # the flattened trees must reproduce scikit-learn exactly
        check = self._evaluate(idx[: min(len(idx), 256)])
        with threadpool_limits(limits=1, user_api="openmp"):
            ref = model.predict(x[: min(len(idx), 256)])
        if not np.allclose(check, ref, atol=1e-6):
            raise AssertionError(f"flattened trees differ from scikit-learn by {np.abs(check - ref).max():.3g}")

    # ---- predict: numpy traversal on the indices --------------------------------------------------------------
    def _evaluate(self, idx: np.ndarray) -> np.ndarray:
        t = self._trees
        column, choice, threshold = t["column"], t["choice"], t["threshold"]
        left, right, is_leaf = t["left"], t["right"], t["is_leaf"].astype(bool)
        n = idx.shape[0]
        flat = np.ascontiguousarray(idx.T).ravel()  # (n_columns * n): column-major, so a gather is col * n + row
        rows = np.arange(n, dtype=np.int64)
        out = np.full(n, float(t["baseline"][0]))
        for root in t["roots"]:
            node = np.full(n, root, dtype=np.int64)
            for _ in range(self.max_depth + 1):
                leafy = is_leaf[node]
                if leafy.all():
                    break
                x = (flat[column[node] * n + rows] == choice[node]).astype(np.float64)
                nxt = np.where(x <= threshold[node], left[node], right[node])
                node = np.where(leafy, node, nxt)
            out += t["value"][node]
        return out

    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.empty(idx.shape[0])
        for s in range(0, idx.shape[0], 16384):  # chunks keep the working set in cache
            out[s : s + 16384] = self._evaluate(idx[s : s + 16384])
        return out, np.zeros_like(out)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return dict(self._trees), {}

    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        need = {"column", "choice", "threshold", "left", "right", "value", "is_leaf", "roots", "baseline"}
        if set(tensors) != need:
            raise bad_value("gbt arrays", sorted(tensors), f"exactly {sorted(need)}")
        self._trees = {k: np.asarray(v) for k, v in tensors.items()}
