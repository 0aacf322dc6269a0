"""`qa-residual`: a quantization-aware predictor for any full-precision kind -- the fitted fp predictor, frozen, plus
a `QuantResidual` (an additive cost per quantized block) fitted on the few quantized samples.

`mlp-qa` transfers from an `mlp` (and can also fine-tune it, as APQ does); this is the same residual transfer for the
kinds that have no weights to fine-tune (`gbt`, `ridge`, `stack`), so choosing the fp kind that ranks best on the
user's data does not cost the transfer. Before fitting -- and wherever the quantized labels show no cost -- it
predicts exactly what the fp model predicts.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces import HwnasError, SearchSpace
from search_spaces.errors import bad_value

from predictors.base import PREDICTORS, Predictor, pack_members, unpack_members
from predictors.quant_residual import COEF_KEY, QuantResidual


@PREDICTORS.register("qa-residual")
class ResidualTransferPredictor(Predictor):
    """A frozen fp predictor plus a fitted quantization cost; build it with `from_fp`."""

    kind = "qa-residual"
    full_precision = False

    def __init__(self, space: str | SearchSpace, *, seed: int = 0) -> None:
        super().__init__(space, quant=True, seed=seed)
        self.fp: Predictor | None = None
        self.residual = QuantResidual(self.search_space)

    @classmethod
    def from_fp(cls, fp: Predictor) -> ResidualTransferPredictor:
        """Start from a fitted float predictor of any kind (it predicts as `fp` until fitted)."""
        if not isinstance(fp, Predictor) or fp.quant:
            raise bad_value("fp", getattr(fp, "kind", type(fp).__name__), "a fitted full-precision predictor")
        if not fp.fitted:
            raise HwnasError(f"fp: the {fp.kind!r} predictor is not fitted; fit it before transferring")
        qa = cls(fp.search_space, seed=fp.seed)
        qa.fp = fp
        qa._start_as_transfer_of(fp)
        return qa

    def _fit(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        if self.fp is None:
            raise HwnasError("qa-residual: build it with ResidualTransferPredictor.from_fp(a fitted fp predictor), "
                             "then fit it on quantized samples")
        self.residual = QuantResidual(self.search_space).fit(idx, y - self.fp.predict(idx), weight)
        self.train_info = {**self.train_info, "n_finetune": int(idx.shape[0]), **self.residual.summary()}

    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.fp is not None
        out = self.fp.predict(idx) + self.residual.predict(idx)
        return out, np.zeros_like(out)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        assert self.fp is not None
        tensors, metas = pack_members([self.fp])
        return {**tensors, COEF_KEY: self.residual.coef}, {"member_states": metas,
                                                            "residual_alpha": self.residual.alpha}

    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        tensors = dict(tensors)
        coef = tensors.pop(COEF_KEY, None)
        metas = meta.get("member_states")
        if coef is None or not isinstance(metas, list) or len(metas) != 1:
            raise bad_value("qa-residual state", sorted(tensors), f"one fp model's state and {COEF_KEY!r}")
        (self.fp,) = unpack_members(self.search_space, tensors, metas)
        self._fp_label_range = self.fp.train_info.get("label_range")
        self.residual = QuantResidual(self.search_space, coef, meta.get("residual_alpha"))
