"""`mlp-qa`: the quantization-aware predictor, transferred from a fitted full-precision `mlp` (APQ's idea).

`QuantAwareMLPPredictor.from_fp(fp)` builds the same ensemble over the features with bit-widths: the float
features keep the fp model's input weights, the bit-width features get zero input weights -- so before any
fitting it predicts exactly what the fp model predicts. `fit` on a few quantized samples then does one of two
transfers (`transfer=`):

- `residual` (default): the transferred network stays frozen and a `QuantResidual` -- an additive per-block cost of
  each bit-width, larger for pruned blocks, ridge-fitted, and no correction at all where the labels show no cost --
  learns what quantization costs on top of it. On the synthetic target it beats scratch with 4x the samples (the
  issue's bar); fine-tuning did not, and on MNIST fine-tuning fitted noise.
- `finetune`: APQ's fine-tuning of the whole network with an L2 pull towards the transferred weights (`anchor`,
  weakening as 100 / n beyond 100 samples); the float training samples may be replayed (`replay_weights`).

Both models tie weights across positions ("a block with 4-bit weights"). Without `from_fp`, `fit` trains from
scratch (the comparison a transfer is measured against).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces import HwnasError, InputError, SearchSpace
from search_spaces.errors import bad_value

from predictors.base import PREDICTORS
from predictors.mlp import MLPPredictor
from predictors.quant_residual import COEF_KEY, QuantResidual


ANCHOR_SAMPLES = 100  # `anchor` is the fine-tuning prior's strength up to this many samples
TRANSFERS = ("residual", "finetune")


@PREDICTORS.register("mlp-qa")
class QuantAwareMLPPredictor(MLPPredictor):
    """An `mlp` over features with bit-widths; transferred from an fp `mlp` (`from_fp`) or trained from scratch."""

    kind = "mlp-qa"
    full_precision = False

    def __init__(self, space: str | SearchSpace, *, seed: int = 0, members: int = 5, hidden: int = 32,
                 layers: int = 2, epochs: int = 200, lr: float = 1e-2, weight_decay: float = 3e-2,
                 batch_size: int = 1024, finetune_epochs: int = 400, finetune_lr: float = 3e-2,
                 anchor: float = 0.3, finetune_weight_decay: float = 1e-3, transfer: str = "residual") -> None:
        super().__init__(space, quant=True, seed=seed, members=members, hidden=hidden, layers=layers, epochs=epochs,
                         lr=lr, weight_decay=weight_decay, batch_size=batch_size)
        if not isinstance(finetune_epochs, int) or finetune_epochs < 1:
            raise bad_value("finetune_epochs", finetune_epochs, "an integer >= 1")
        if not finetune_lr > 0:
            raise bad_value("finetune_lr", finetune_lr, "a number > 0")
        if not anchor >= 0:
            raise bad_value("anchor", anchor, "a number >= 0")
        if not finetune_weight_decay >= 0:
            raise bad_value("finetune_weight_decay", finetune_weight_decay, "a number >= 0")
        if transfer not in TRANSFERS:
            raise bad_value("transfer", transfer, f"one of {', '.join(TRANSFERS)}")
        self.transfer = transfer
        self.residual: QuantResidual | None = None  # the `residual` transfer's correction, once fitted
        # fine-tuning's prior is the transferred weights (`anchor`); decay towards zero would fight it
        self.finetune_weight_decay = float(finetune_weight_decay)
        self.finetune_epochs, self.finetune_lr, self.anchor = finetune_epochs, float(finetune_lr), float(anchor)
        self.transferred = False

    @classmethod
    def from_fp(cls, fp: MLPPredictor, **options: Any) -> QuantAwareMLPPredictor:
        """A QA predictor initialised from a fitted float `mlp` (same ensemble shape; seed from `fp` unless given)."""
        if not isinstance(fp, MLPPredictor) or isinstance(fp, QuantAwareMLPPredictor) or fp.quant:
            raise bad_value("fp", type(fp).__name__, "a fitted full-precision 'mlp' predictor")
        if not fp.fitted or fp.net is None:
            raise HwnasError("fp: the full-precision predictor is not fitted; fit it before transferring")
        for name in ("members", "hidden", "layers"):
            if name in options and options[name] != getattr(fp, name):
                raise InputError(f"{name}: got {options[name]!r}, allowed: {getattr(fp, name)!r} (the fp model's)")
        shape = {"members": fp.members, "hidden": fp.hidden, "layers": fp.layers, "seed": fp.seed,
                 "epochs": fp.epochs, "lr": fp.lr, "weight_decay": fp.weight_decay, "batch_size": fp.batch_size}
        qa = cls(fp.search_space, **{**shape, **options})
        qa.y_mean, qa.y_std = fp.y_mean, fp.y_std
        qa.net = qa._new_net()
        src = fp.net.arrays()
        cols = qa.layout.transfer_map(fp.layout)
        emb = np.zeros_like(src["emb"], shape=(qa.layout.n_features + 1, src["emb"].shape[1]))
        emb[cols] = src["emb"][: fp.layout.n_features]  # float features keep their weights; bit features start at 0
        fp_names, _ = fp.layout.shared_classes()
        qa_names, _ = qa.layout.shared_classes()
        shared = np.zeros_like(src["shared"], shape=(len(qa_names), src["shared"].shape[1]))
        shared[[qa_names.index(nm) for nm in fp_names]] = src["shared"]  # bit classes start at 0
        qa.net.load_arrays({**src, "emb": emb, "shared": shared})
        qa._table = None
        qa.net.eval()
        qa.transferred = True
        qa._start_as_transfer_of(fp)
        qa.train_info.update(y_mean=qa.y_mean, y_std=qa.y_std)
        return qa

    def _fit(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        if not self.transferred:  # from scratch
            super()._fit(idx, y, weight)
            self.train_info["transferred_from"] = None
            return
        if self.transfer == "residual":
            fp_mean, _ = super()._predict(idx)
            self.residual = QuantResidual(self.search_space).fit(idx, y - fp_mean, weight)
            self.train_info = {**self.train_info, "transfer": "residual", "n_finetune": int(idx.shape[0]),
                               **self.residual.summary()}
            return
        # the pull towards the transferred weights is a prior: it weakens as the data grows (anchor * 100 / n)
        anchor = self.anchor * min(1.0, ANCHOR_SAMPLES / idx.shape[0])
        loss = self._train(idx, y, weight, self.finetune_epochs, self.finetune_lr, anchor=anchor,
                           weight_decay=self.finetune_weight_decay)
        self.train_info = {**self.train_info, "transfer": "finetune", "finetune_train_loss": loss,
                           "n_finetune": int(idx.shape[0]), "effective_anchor": anchor}

    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = super()._predict(idx)
        if self.residual is not None:
            mean = mean + self.residual.predict(idx)
        return mean, std

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors, extra = super()._state()
        if self.residual is not None:
            tensors = {**tensors, COEF_KEY: self.residual.coef}
        return tensors, {**extra, "transferred": self.transferred,
                         "residual_alpha": None if self.residual is None else self.residual.alpha}

    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        tensors = dict(tensors)
        coef = tensors.pop(COEF_KEY, None)
        super()._load_state(tensors, meta)
        self.transferred = bool(meta.get("transferred", False))
        self.residual = None if coef is None else QuantResidual(self.search_space, coef, meta.get("residual_alpha"))


def transfer(fp: MLPPredictor, **options: Any) -> QuantAwareMLPPredictor:
    """Shorthand for `QuantAwareMLPPredictor.from_fp`."""
    return QuantAwareMLPPredictor.from_fp(fp, **options)


__all__ = ["QuantAwareMLPPredictor", "transfer"]


def replay_weights(n_quantized: int, n_float: int, share: float = 1 / 3) -> np.ndarray:
    """Sample weights for fine-tuning on `n_quantized` quantized samples followed by `n_float` float ones
    ("replay" of the fp training data): the quantized samples carry at least `share` of the total weight."""
    if not 0 < share < 1:
        raise bad_value("share", share, "a number strictly between 0 and 1")
    wq = max(1.0, share / (1 - share) * n_float / max(n_quantized, 1))
    return np.concatenate([np.full(n_quantized, wq), np.ones(n_float)])
