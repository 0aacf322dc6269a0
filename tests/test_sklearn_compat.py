"""The private scikit-learn names the gbt predictor reads (`predictors.sklearn_compat`) exist in the installed
scikit-learn; when an upgrade removes one, this fails naming it."""
from __future__ import annotations

import pytest
import sklearn

from predictors import sklearn_compat
from search_spaces import HwnasError


def test_every_private_sklearn_name_gbt_reads_exists() -> None:
    missing = sklearn_compat.check()
    assert not missing, f"scikit-learn {sklearn.__version__} lacks {', '.join(missing)}: update sklearn_compat.py"


def test_a_removed_name_is_reported_by_its_name() -> None:
    class Fitted:  # a model whose trees went away
        _baseline_prediction = 0.0

    with pytest.raises(HwnasError, match=r"HistGradientBoostingRegressor\._predictors is gone"):
        sklearn_compat.trees(Fitted())
