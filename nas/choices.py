"""Names several settings share -- the data splits, the mixed-precision modes, the device forms, the decoding
processes -- in a module without torch, so a config type (`CollectConfig`), the CLI and the code that uses them read
one definition."""
from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import Field

Split = Literal["train", "holdout", "test"]
SPLITS: tuple[str, ...] = get_args(Split)
Amp = Literal["bf16", "fp16", "off"]
AMP_CHOICES: tuple[str, ...] = get_args(Amp)
AMP_HELP = "Mixed precision (default: bf16 on CUDA, off on the CPU)."
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(?::(\d+))?")  # group 1: the CUDA index
# the form of a device name, as a type: an experiment file's schema refuses `cuda0` on reading; whether the device
# exists is checked where it is used (`nas.device.resolve_device`)
DeviceName = Annotated[str, Field(pattern=f"^({DEVICE_PATTERN.pattern})$")]
DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N."
DATA_WORKERS_HELP = "DataLoader processes decoding a streamed folder:PATH (0: decode here)."
