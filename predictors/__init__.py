"""What a subnet is worth: accuracy predictors (full precision and quantization-aware), their data and metrics.

    from predictors import load_predictor
    pred = load_predictor("runs/pred")            # what `hwnas predictor fit` wrote
    acc = pred.predict(space.to_indices(configs))  # top-1 percent; quantized configs use the qa model

Kinds (`PREDICTORS`, `create_predictor(kind, space, **options)`): `mlp` (ensemble, mean and spread), `mlp-qa`
(quantization-aware, transferred from an fp `mlp` by `QuantAwareMLPPredictor.from_fp`), `gbt` (gradient-boosted
trees baseline), `ridge` (linear, each choice's effect varying with the resolution), `stack` (a blend of kinds,
weighted by cross-validation), `qa-residual` (quantization-aware: any fitted fp kind, frozen, plus a fitted cost of
each quantized block), `residual-gp` (a correction: a Gaussian process on the residuals of subnets a search
chose). Imports only `search_spaces`, and lazily: reading `FitConfig` (`hwnas predictor fit --help`)
imports no torch.
"""
from __future__ import annotations

from search_spaces.lazy import lazy_exports

# name -> module that defines it
_LAZY = {
    **{n: "predictors.base" for n in ("PREDICTORS", "Predictor", "create_predictor", "list_predictors")},
    **{n: "predictors.bundle" for n in ("AccuracyPredictor", "fit_predictor", "load_predictor")},
    **{n: "predictors.dataset" for n in ("AccuracyDataset", "load_accuracy_dataset")},
    "FeatureLayout": "predictors.features",
    "FitConfig": "predictors.fit_config",
    "GBTPredictor": "predictors.gbt",
    **{n: "predictors.metrics" for n in ("label_reliability", "rank_metrics")},
    "MLPPredictor": "predictors.mlp",
    **{n: "predictors.qa" for n in ("QuantAwareMLPPredictor", "transfer")},
    "ResidualGP": "predictors.residual_gp",
    "ResidualTransferPredictor": "predictors.residual_transfer",
    "RidgePredictor": "predictors.ridge",
    "StackPredictor": "predictors.stack",
    "synthetic_accuracy": "predictors.synthetic",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
