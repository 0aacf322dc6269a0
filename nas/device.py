"""Where the accuracy half runs: `--device auto|cpu|cuda|cuda:N` and `--amp bf16|fp16|off`.

`auto` is CUDA when torch sees a GPU. Mixed precision defaults to bf16 on CUDA (no loss scaling needed) and off on
the CPU (CPU autocast is slower than float32 for these small depthwise convolutions on most CPUs); fp16 trains with
a gradient scaler. Checkpoints never depend on the device: tensors are moved to the CPU before saving and loaded
with `map_location="cpu"`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from search_spaces.errors import HwnasError, InputError

from nas.choices import AMP_CHOICES, DEVICE_CHOICES, DEVICE_PATTERN

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | None = "auto") -> torch.device:
    """torch.device for `name`; asking for CUDA where there is none is an error, not a silent CPU run."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    m = DEVICE_PATTERN.fullmatch(name)
    if not m:
        raise InputError(f"device: got {name!r}, allowed: {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise HwnasError(f"device: {name} asked for, but torch sees no CUDA device here (use `device` cpu or auto)")
    index = int(m.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise InputError(f"device: got {name!r}, allowed: cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return torch.device("cuda", index)


def resolve_amp(amp: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for float32. `None` means the default for the device."""
    if amp is None:
        amp = "bf16" if device.type == "cuda" else "off"
    if amp not in AMP_CHOICES:
        raise InputError(f"amp: got {amp!r}, allowed: one of {', '.join(AMP_CHOICES)}")
    if amp == "off":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise InputError("amp: got 'fp16' on the CPU, allowed: bf16 or off (fp16 autocast needs CUDA)")
    return _AMP_DTYPES[amp]


@dataclass(frozen=True)
class Runtime:
    """A device and its autocast dtype (None: float32), passed to everything that runs a network."""

    device: torch.device = torch.device("cpu")
    amp: torch.dtype | None = None

    @classmethod
    def from_options(cls, device: str | None = "auto", amp: str | None = None) -> Runtime:
        d = resolve_device(device)
        return cls(d, resolve_amp(amp, d))

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def amp_name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp, "off")  # type: ignore[arg-type]

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.amp is None:
            yield
        else:
            with torch.autocast(self.device.type, dtype=self.amp):
                yield

    def put(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(self.device, non_blocking=self.cuda) for t in tensors)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that scales only for fp16 (bf16 and float32 need none); disabled it is a pass-through."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)

    def describe(self) -> dict[str, str]:
        out = {"device": str(self.device), "amp": self.amp_name}
        if self.cuda:
            out["gpu"] = torch.cuda.get_device_name(self.device)
        return out


CPU = Runtime()


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with every tensor on the CPU: what a device-independent checkpoint stores."""
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def tensors_to_cpu(obj: object) -> object:
    """A nested dict / list (an optimizer state dict) with its tensors moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: tensors_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(tensors_to_cpu(v) for v in obj)
    return obj


__all__ = ["AMP_CHOICES", "CPU", "DEVICE_CHOICES", "Runtime", "cpu_state_dict", "resolve_amp", "resolve_device",
           "tensors_to_cpu"]
