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
from search_spaces.settings import Seed, setting

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
    lr: float = setting(4e-3)
    weight_decay: float = setting(5e-5)
    warmup_epochs: float = setting(1.0, "Linear learning-rate warm-up (epochs), then cosine decay to zero.")
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
    kd_temperature: float = setting(1.0)
    label_smoothing: float = setting(0.1)
    quant_prob: Annotated[float, Ge(0), Le(1)] = setting(0.5, "Probability that a random subnet has quantized blocks.")
    # probability that a slot is the largest / smallest at a uniform low bit-width
    extreme_quant_prob: float = setting(0.2)
    sort_every: Annotated[int, Ge(0)] = setting(1, "Epochs between channel re-sorting (0: never).")
    largest_only_epochs: Annotated[int, Ge(0)] = setting(
        0, "Train only the full network for the first epochs (progressive shrinking lite).")
    augment: bool = setting(True)
    grad_clip: float = setting(5.0)

    def __post_init__(self) -> None:
        def need(field: str, ok: bool, allowed: str) -> None:
            if not ok:
                raise bad_value(field, getattr(self, field), allowed)

        need("epochs", isinstance(self.epochs, int) and self.epochs >= 1, "an integer >= 1")
        need("batch_size", isinstance(self.batch_size, int) and self.batch_size >= 2, "an integer >= 2")
        need("optimizer", self.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}")
        need("lr", math.isfinite(self.lr) and self.lr > 0, "a finite positive number")
        need("holdout", 0 < self.holdout < 0.5, "a fraction in (0, 0.5)")
        need("test", 0 < self.test < 0.5, "a fraction in (0, 0.5)")
        need("weight_decay", self.weight_decay >= 0, "a number >= 0")
        need("warmup_epochs", self.warmup_epochs >= 0, "a number >= 0")
        need("n_random", isinstance(self.n_random, int) and self.n_random >= 0, "an integer >= 0")
        need("kd_weight", 0 <= self.kd_weight <= 1, "a number in [0, 1]")
        need("kd_temperature", math.isfinite(self.kd_temperature) and self.kd_temperature > 0, "a finite positive number")
        need("label_smoothing", 0 <= self.label_smoothing < 1, "a number in [0, 1)")
        need("quant_prob", 0 <= self.quant_prob <= 1, "a probability in [0, 1]")
        need("extreme_quant_prob", 0 <= self.extreme_quant_prob <= 1, "a probability in [0, 1]")
        need("sort_every", isinstance(self.sort_every, int) and self.sort_every >= 0, "an integer >= 0")
        need("largest_only_epochs", isinstance(self.largest_only_epochs, int) and self.largest_only_epochs >= 0,
             "an integer >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
