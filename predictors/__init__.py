"""What a subnet is worth: accuracy predictors (full precision and quantization-aware), their data and metrics.

    from predictors import load_predictor
    pred = load_predictor("runs/pred")            # what `hwnas predictor fit` wrote
    acc = pred.predict(space.to_indices(configs))  # top-1 percent; quantized configs use the qa model

Kinds (`PREDICTORS`, `create_predictor(kind, space, **options)`): `mlp` (ensemble, mean and spread), `mlp-qa`
(quantization-aware, transferred from an fp `mlp` by `QuantAwareMLPPredictor.from_fp`), `gbt` (gradient-boosted
trees baseline), `ridge` (linear, each choice's effect varying with the resolution), `stack` (a blend of kinds,
weighted by cross-validation), `qa-residual` (quantization-aware: any fitted fp kind, frozen, plus a fitted cost of
each quantized block). Imports only `search_spaces`.
"""
from predictors.base import PREDICTORS, Predictor, create_predictor, list_predictors
from predictors.bundle import AccuracyPredictor, fit_predictor, load_predictor
from predictors.dataset import AccuracyDataset, load_accuracy_dataset
from predictors.features import FeatureLayout
from predictors.gbt import GBTPredictor
from predictors.metrics import label_reliability, rank_metrics
from predictors.mlp import MLPPredictor
from predictors.qa import QuantAwareMLPPredictor, transfer
from predictors.residual_transfer import ResidualTransferPredictor
from predictors.ridge import RidgePredictor
from predictors.stack import StackPredictor
from predictors.synthetic import synthetic_accuracy

__all__ = [
    "PREDICTORS", "AccuracyDataset", "AccuracyPredictor", "FeatureLayout", "GBTPredictor", "MLPPredictor",
    "Predictor", "QuantAwareMLPPredictor", "ResidualTransferPredictor", "RidgePredictor", "StackPredictor",
    "create_predictor", "fit_predictor", "list_predictors", "label_reliability", "load_accuracy_dataset",
    "load_predictor", "rank_metrics", "synthetic_accuracy", "transfer",
]
