"""Names several settings share -- the data splits, the mixed-precision modes, the device forms -- in a module
without torch, so a config type (`CollectConfig`), the CLI and the code that uses them read one definition."""
from __future__ import annotations

from typing import Literal, get_args

Split = Literal["train", "holdout", "test"]
SPLITS: tuple[str, ...] = get_args(Split)
Amp = Literal["bf16", "fp16", "off"]
AMP_CHOICES: tuple[str, ...] = get_args(Amp)
AMP_HELP = "Mixed precision (default: bf16 on CUDA, off on the CPU)."
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N."
