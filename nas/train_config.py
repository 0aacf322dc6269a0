"""`TrainConfig`: everything that fixes a supernet training run, defined once (`search_spaces.settings`) -- stored
in the checkpoint (resume checks it); `hwnas supernet train` makes its options from these fields and an
experiment file's `supernet:` section takes its keys from here. Importing it imports no torch."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from annotated_types import Ge, Gt, Le, Lt

from search_spaces.errors import bad_value
from search_spaces.settings import Seed, check_bounds, check_choice, setting

Optimizer = Literal["adamw", "sgd"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes a supernet training run (stored in the checkpoint; resume checks it)."""

    space: str = setting(help="Search space name (see `hwnas spaces`).", required=True)
    data: str = setting(help="Data set name (see `hwnas data list`), or folder:PATH.", required=True)
    epochs: Annotated[int, Ge(1)] = setting(required=True)
    batch_size: Annotated[int, Ge(2)] = setting(128)  # the global batch (data-parallel workers split it)
    optimizer: Optimizer = setting("adamw")
    lr: Annotated[float, Gt(0)] = setting(4e-3)
    weight_decay: Annotated[float, Ge(0)] = setting(5e-5)
    warmup_epochs: Annotated[float, Ge(0)] = setting(1.0, "Linear learning-rate warm-up (epochs), then cosine decay to zero.")
    seed: Seed = setting(0)
    data_seed: Seed = setting(0, "Seed of the train/holdout/test split.")
    # fractions of the pooled images (load_data); a larger holdout gives steadier labels
    holdout: Annotated[float, Gt(0), Lt(0.5)] = setting(
        0.2, "Fraction of the images held out for predictor labels (folder: of train/).")
    test: Annotated[float, Gt(0), Lt(0.5)] = setting(
        0.2, "Fraction of the images for the reported test accuracy (folder: uses val/).")
    n_random: Annotated[int, Ge(0)] = setting(2, "Random subnets per step besides the largest and the smallest.")
    # student loss = kd_weight * KL(teacher || student) + (1 - kd_weight) * CE
    kd_weight: Annotated[float, Ge(0), Le(1)] = setting(0.5)
    kd_temperature: Annotated[float, Gt(0)] = setting(1.0)
    label_smoothing: Annotated[float, Ge(0), Lt(1)] = setting(0.1)
    quant_prob: Annotated[float, Ge(0), Le(1)] = setting(0.5, "Probability that a random subnet has quantized blocks.")
    # probability that a slot is the largest / smallest at a uniform low bit-width
    extreme_quant_prob: Annotated[float, Ge(0), Le(1)] = setting(0.2)
    sort_every: Annotated[int, Ge(0)] = setting(1, "Epochs between channel re-sorting (0: never).")
    largest_only_epochs: Annotated[int, Ge(0)] = setting(
        0, "Train only the full network for the first epochs (progressive shrinking lite).")
    augment: bool = setting(True)
    grad_clip: float = setting(5.0)

    def __post_init__(self) -> None:
        check_bounds(self)
        check_choice(self, "optimizer", OPTIMIZERS)
        for name in ("lr", "kd_temperature"):  # a bound of > 0 lets inf through
            if not math.isfinite(getattr(self, name)):
                raise bad_value(name, getattr(self, name), "a finite positive number")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
