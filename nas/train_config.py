"""`TrainConfig`: everything that fixes a supernet training run, defined once (`search_spaces.settings`) -- stored
in the checkpoint (resume checks it); and `TrainRun`: where that run writes and what it runs on. `hwnas supernet
train` makes its options from both, and an experiment file's `supernet:` section takes its keys from them.
Importing it imports no torch."""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from annotated_types import Ge, Gt, Le, Lt

from search_spaces.errors import bad_value
from search_spaces.settings import Seed, carry_fields, check_bounds, check_choice, setting

from nas.choices import AMP_CHOICES, DATA_WORKERS_HELP, DEVICE_CHOICES, DEVICE_PATTERN
from nas.choices import Amp, DeviceName  # noqa: F401 -- the carried fields' annotations resolve here
from nas.collect_config import CollectConfig

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


@dataclass(frozen=True, kw_only=True)
@carry_fields(CollectConfig, "device", "amp")
class TrainRun:
    """Where a training run writes and what it runs on -- not what it trains (`TrainConfig`, which the checkpoint
    records): the same run resumed on other hardware, or with more workers, trains the same supernet.
    `hwnas supernet train` makes its run options from these fields, an experiment file's `supernet:` section takes
    `RUN_YAML_FIELDS` from here, and `run_training` (`nas.train_run`) is the one place that dispatches on them."""

    out: str | os.PathLike[str] = setting(help="Checkpoint file (written each epoch).", required=True)
    resume: bool = setting(False, "Continue the run stored in `out`.")
    overwrite: bool = setting(False, "Start afresh even if `out` exists.")
    threads: Annotated[int, Ge(1)] | None = setting(None, "torch threads (default min(4, cores)).")
    data_workers: Annotated[int, Ge(0)] = setting(0, DATA_WORKERS_HELP)
    init_from: str | os.PathLike[str] | None = setting(
        None, "Start from this supernet's weights (e.g. `hwnas supernet import-ofa`) instead of a random init.")
    workers: Annotated[int, Ge(1)] = setting(
        1, "Data-parallel Ray Train workers (1: train in this process). The batch size is the global batch.")
    use_gpu: bool = setting(False, "One GPU per Ray Train worker (NCCL); else CPU workers (gloo).")
    ray_address: str | None = setting(None, "Run the Ray Train workers on this cluster (e.g. auto).")

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.amp is not None:
            check_choice(self, "amp", AMP_CHOICES)
        if not DEVICE_PATTERN.fullmatch(str(self.device)):
            raise bad_value("device", self.device, DEVICE_CHOICES)
        if self.use_gpu and not self.distributed:
            raise bad_value("use_gpu", self.use_gpu, "true only with `workers` > 1 or a `ray_address` (Ray Train "
                            "workers); to train in this process on a GPU, set `device` to cuda")
        if self.resume and self.overwrite:
            raise bad_value("overwrite", self.overwrite, "false with `resume` (continue the run, or start afresh)")

    @property
    def distributed(self) -> bool:
        """Train on Ray Train workers (else in this process)."""
        return self.workers > 1 or self.ray_address is not None


# the `TrainRun` fields an experiment file's `supernet:` section sets (where the checkpoint goes, and whether to
# resume it, are the pipeline's: its stage folder)
RUN_YAML_FIELDS = ("workers", "use_gpu", "device", "amp", "data_workers")
