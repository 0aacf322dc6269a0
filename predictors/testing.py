"""The contract every accuracy predictor kind passes: fit on a synthetic target -> beats a constant predictor ->
configs, indices and one-hot give the same predictions -> save -> load -> same predictions -> seeded refit is
identical. A kind from another package gets the same checks by subclassing `PredictorContract` and giving
`predictor_kind` (override `new` when the kind is built from another model, as `qa-residual` is):

    class TestMyPredictor(PredictorContract):
        @pytest.fixture
        def predictor_kind(self) -> str:
            return "my-kind"

The base's name does not start with `Test`, so pytest collects only the subclasses."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from predictors.base import SOFT_CLIP_FRACTION, Predictor, create_predictor
from predictors.bundle import AccuracyPredictor, load_predictor
from predictors.metrics import rank_metrics
from predictors.synthetic import synthetic_accuracy
from search_spaces import get_space

CONTRACT_SPACE = "mbv3-tiny"
# small, fast settings per kind (the defaults are tuned for ~1,000 samples)
FAST = {"mlp": {"epochs": 120}, "mlp-qa": {"epochs": 120}, "gbt": {"max_iter": 80}}


def _save_model(model, path: Path) -> None:
    bundle_fp = model if not model.quant else None
    if bundle_fp is None:  # a quantized model travels as the qa half of a bundle
        fp = create_predictor("mlp", model.space, epochs=5).fit(*_tiny_float(model.search_space))
        AccuracyPredictor(fp, model).save(path)
    else:
        AccuracyPredictor(model).save(path)


def _tiny_float(space):
    idx = space.to_indices(space.sample_many(20, 9, quantize=False))
    return idx, synthetic_accuracy(space, idx)


def contract_data(space: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train / test indices and synthetic accuracies, float and quantized (300 each)."""
    out = {}
    for name, n, seed, quant in (("fp_train", 300, 1, False), ("fp_test", 300, 2, False),
                                 ("q_train", 300, 3, True), ("q_test", 300, 4, True)):
        idx = space.to_indices(space.sample_many(n, seed, quantize=quant))
        out[name] = (idx, synthetic_accuracy(space, idx, seed=0, noise=0.1))
    return out


class PredictorContract:
    @pytest.fixture
    def predictor_kind(self) -> str:  # pragma: no cover - the subclass gives it
        raise NotImplementedError("override the `predictor_kind` fixture")

    @pytest.fixture(scope="class")
    @classmethod
    def space(cls) -> Any:
        return get_space(CONTRACT_SPACE)

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls, space: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Train / test indices and synthetic accuracies, float and quantized."""
        return contract_data(space)

    def new(self, kind: str, space: Any, data: dict[str, Any]) -> Predictor:
        """A new predictor of `kind`; `qa-residual` only exists on top of a fitted fp model."""
        if kind == "qa-residual":
            from predictors.residual_transfer import ResidualTransferPredictor

            return ResidualTransferPredictor.from_fp(create_predictor("ridge", space).fit(*data["fp_train"]))
        return create_predictor(kind, space, seed=0, **FAST.get(kind, {}))

    def test_predictor_contract(self, predictor_kind, space, data, tmp_path) -> None:
        kind = predictor_kind
        model = self.new(kind, space, data)
        train, test = ("q_train", "q_test") if model.quant else ("fp_train", "fp_test")
        x, y = data[train]
        xt, yt = data[test]
        model.fit(x, y)
        pred = model.predict(xt)
        assert pred.shape == (len(yt),) and pred.dtype == np.float64 and np.isfinite(pred).all()
        # extrapolation bounded to a tenth of the trained-on range past it (`predictors.base.soft_clip`), even far
        # outside the training distribution
        extreme = np.vstack([space.to_indices([space.largest(), space.smallest()]) if not model.quant else
                             space.to_indices([space.largest(4, 8), space.smallest(4, 8)]), xt])
        lo, hi = model.train_info["label_range"]  # what it trained on (a transfer: and its fp model)
        w = SOFT_CLIP_FRACTION * (hi - lo)
        p_extreme = model.predict(extreme)
        assert lo <= y.min() and y.max() <= hi and lo - w <= p_extreme.min() <= p_extreme.max() <= hi + w
        m = rank_metrics(yt, pred)
        const = rank_metrics(yt, np.full(len(yt), y.mean()))
        assert m["kendall_tau"] > 0.5 > const["kendall_tau"], (kind, m)
        assert m["rmse"] < 0.7 * const["rmse"], (kind, m, const)
        # configs, indices and the encode matrix give the same predictions
        configs = space.from_indices(xt[:7])
        np.testing.assert_allclose(model.predict(configs), pred[:7], rtol=0, atol=1e-5)
        np.testing.assert_allclose(model.predict(space.encode(xt[:7], quant=model.quant)), pred[:7], rtol=0, atol=1e-5)
        assert model.predict(xt[:0]).shape == (0,)
        # save -> load -> identical predictions
        _save_model(model, tmp_path / "p")
        loaded = load_predictor(tmp_path / "p", space="mbv3-tiny")
        again = loaded.qa if model.quant else loaded.fp
        assert type(again) is type(model) and again.options() == model.options()
        np.testing.assert_array_equal(again.predict(xt), pred)
        assert not list(tmp_path.glob(".p.*")), "temporary directories left behind"
        # seeded: fitting again gives the same model
        np.testing.assert_array_equal(self.new(kind, space, data).fit(x, y).predict(xt), pred)
