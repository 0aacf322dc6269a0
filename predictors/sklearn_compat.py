"""The private scikit-learn names the `gbt` predictor reads, in one place (as `nas.search.optuna_compat` does for
Optuna): `HistGradientBoostingRegressor` has no public form of its fitted trees (its public API is `predict` and
`staged_predict`), and `gbt` copies those trees into plain arrays so that a saved predictor is evaluated without
scikit-learn and without pickle. Replacing it by a model with public trees (`GradientBoostingRegressor.estimators_`)
would change every gbt / stack prediction. `check()` fails naming the symbol when an upgrade removes one
(`tests/test_sklearn_compat.py`), and the copy is verified against `predict` on every fit (`GBTPredictor._fit`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces import HwnasError

# the fitted model's attributes, and the fields of each tree's node array
MODEL_ATTRIBUTES = ("_predictors", "_baseline_prediction")
NODE_FIELDS = ("feature_idx", "num_threshold", "is_leaf", "left", "right", "value")


def trees(model: Any) -> list[np.ndarray]:
    """The node record array of each boosting iteration's tree (single output: one tree per iteration)."""
    return [stage[0].nodes for stage in _attr(model, "_predictors")]


def baseline(model: Any) -> float:
    """The constant the trees' values are added to."""
    return float(np.ravel(_attr(model, "_baseline_prediction"))[0])


def _attr(model: Any, name: str) -> Any:
    if not hasattr(model, name):
        import sklearn

        raise HwnasError(f"scikit-learn {sklearn.__version__}: HistGradientBoostingRegressor.{name} is gone; "
                         "update predictors/sklearn_compat.py")
    return getattr(model, name)


def check() -> list[str]:
    """The names above that a tiny fitted model lacks (empty: all present)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    x = np.arange(40, dtype=np.float64).reshape(20, 2) % 3
    model = HistGradientBoostingRegressor(max_iter=2).fit(x, x[:, 0] + x[:, 1])
    missing = [f"HistGradientBoostingRegressor.{a}" for a in MODEL_ATTRIBUTES if not hasattr(model, a)]
    if not missing:
        names = trees(model)[0].dtype.names or ()
        missing = [f"TreePredictor.nodes[{f!r}]" for f in NODE_FIELDS if f not in names]
    return missing
