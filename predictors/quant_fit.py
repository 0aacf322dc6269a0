"""Which quantization-aware model to fit next to a fitted fp model: by transfer or jointly, chosen by cross-validation.

Two ways to predict quantized subnets, and the data decide between them (measured, Kendall tau on held-out
quantized subnets, `experiments/results/predictors.md`):

- `transfer`: the fp model, frozen, plus a fitted quantization cost (`mlp-qa` from an `mlp`, `qa-residual` from any
  other kind). It needs few quantized samples and wins where bit-widths cost accuracy: on the synthetic target 0.851
  with 50 quantized samples against 0.617 for the joint stack.
- `joint`: the same kind with bit-width features, fitted on the float and the quantized samples together. Where
  quantization costs little, every quantized sample is one more architecture sample: on the supernets trained
  quantization-aware here (8-bit equal to float) the two are within a few hundredths (MNIST: joint 0.600-0.616 vs
  transfer 0.597; shapes: 0.868-0.875 vs 0.886), and in the quickstart's cross-validation the joint stack won
  0.574 to 0.519.

Each is fitted `folds` times with one fold of the quantized training records held out (the fp model never saw a
quantized record, so nothing leaks), the one with the better mean held-out tau is kept (ties: the transfer) and
refitted on every record.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from predictors.base import Predictor, create_predictor
from predictors.metrics import cv_kendall_tau
from predictors.mlp import MLPPredictor
from predictors.qa import QuantAwareMLPPredictor, replay_weights
from predictors.residual_transfer import ResidualTransferPredictor

QA_CHOICES = ("transfer", "joint")


def _transfer(fp: Predictor, idx: np.ndarray, y: np.ndarray, q_rows: np.ndarray, fp_rows: np.ndarray) -> Predictor:
    if isinstance(fp, MLPPredictor):
        # the float samples go along as replay, which the `finetune` transfer uses (weighted so the quantized carry
        # >= 1/3) and the default `residual` one ignores (no quantized blocks: nothing to correct)
        rows = np.concatenate([q_rows, fp_rows])
        return QuantAwareMLPPredictor.from_fp(fp).fit(idx[rows], y[rows],
                                                      sample_weight=replay_weights(len(q_rows), len(fp_rows)))
    return ResidualTransferPredictor.from_fp(fp).fit(idx[q_rows], y[q_rows])


def _joint(fp: Predictor, idx: np.ndarray, y: np.ndarray, q_rows: np.ndarray, fp_rows: np.ndarray) -> Predictor:
    rows = np.concatenate([fp_rows, q_rows])
    return create_predictor(fp.kind, fp.search_space, quant=True, seed=fp.seed).fit(idx[rows], y[rows])


def fit_quant_model(fp: Predictor, idx: np.ndarray, y: np.ndarray, fp_rows: np.ndarray, q_rows: np.ndarray,
                    folds: int = 4) -> tuple[Predictor, dict[str, Any]]:
    """The quantization-aware model for the fitted float model `fp`, trained on the quantized records `q_rows` (and,
    jointly, the float ones `fp_rows`), and how it was chosen."""
    fitters = {"transfer": _transfer, "joint": _joint}
    taus: dict[str, float] = {}
    chosen = "transfer"
    if len(q_rows) >= 2 * folds:
        taus = {how: cv_kendall_tau(lambda rest, fit=fit: fit(fp, idx, y, rest, fp_rows), q_rows, idx, y, folds,
                                    fp.seed) for how, fit in fitters.items()}
        chosen = max(QA_CHOICES, key=lambda h: taus[h])  # ties: the first (the transfer)
    return fitters[chosen](fp, idx, y, q_rows, fp_rows), {"cv_folds": folds if taus else 0, "kendall_tau": taus,
                                                          "chosen": chosen}
