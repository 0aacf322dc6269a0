"""`FitConfig`: every setting of one predictor fit (`predictors.fit_predictor`), defined once -- `hwnas predictor
fit` makes its options from these fields and an experiment file's `predictor:` section takes its keys from here."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search_spaces.settings import Seed, setting

if TYPE_CHECKING:  # pragma: no cover
    from predictors.dataset import AccuracyDataset

AUTO = "auto"


def kind_choices() -> tuple[str, ...]:
    """The names `kind` accepts: every full-precision kind, and auto."""
    from predictors.bundle import fp_kinds

    return (*fp_kinds(), AUTO)


def _kind_help() -> str:
    from predictors.bundle import AUTO_KINDS, CV_FOLDS, fp_kinds

    return (f"Full-precision model: {', '.join(fp_kinds())} (`hwnas`'s own: mlp ensemble, gbt trees, ridge linear with "
            "effects varying by resolution, stack = gbt + ridge blended by cross-validation), or auto "
            f"({' or '.join(AUTO_KINDS)}, whichever ranks better in {CV_FOLDS}-fold cross-validation on the training "
            "records). The quantization-aware model is transferred from it or fitted jointly on all records, "
            "whichever cross-validates better.")


@dataclass(frozen=True, kw_only=True)
class FitConfig:
    """Fit the fp model on float records and the quantization-aware one on quantized records, reporting held-out
    Kendall tau, Spearman and RMSE."""

    dataset: AccuracyDataset | str | os.PathLike[str] = setting(
        help="JSON-lines accuracy dataset (from `hwnas predictor dataset`).", required=True)
    out: str | os.PathLike[str] | None = setting(help="Directory to write (atomically).")
    kind: str = setting(AUTO, _kind_help)
    seed: Seed = setting(0, "Seed of the split and the models.")
    test_fraction: float = setting(0.2, "Share of architectures held out for the reported metrics.")
    space: str | None = setting(help="Expected search space (checked against the dataset).")
    min_train: int = setting(10, "Float records needed to train the fp model on.")

    def validate(self) -> None:
        from search_spaces.errors import bad_value

        if self.kind not in kind_choices():
            raise bad_value("kind", self.kind, f"one of {', '.join(kind_choices())}")

    def load_dataset(self) -> AccuracyDataset:
        """`dataset` itself, or the file it names read (checked against `space` when given)."""
        from predictors.dataset import AccuracyDataset, load_accuracy_dataset

        if isinstance(self.dataset, AccuracyDataset):
            return self.dataset
        return load_accuracy_dataset(self.dataset, space=self.space)

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "test_fraction": self.test_fraction}
