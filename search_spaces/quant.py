"""Fake quantization used in training and in extracted subnets (straight-through estimator; 32 bits = off).

Weights: symmetric, per output channel, signed (as ONNX Runtime's per-channel QDQ and TensorRT INT8 store them).
Activations: asymmetric, per tensor, unsigned (ONNX Runtime's U8 activations on x86), with a range tracked
during training and recalibrated per extracted subnet, like BatchNorm statistics.
Written with plain tensor ops so an extracted subnet exports to ONNX and runs identically in onnxruntime.
"""
from __future__ import annotations

import torch
from torch import nn


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    if bits >= 32:
        return w
    qmax = 2 ** (bits - 1) - 1
    scale = w.detach().abs().amax(dim=tuple(range(1, w.dim())), keepdim=True).clamp_min(1e-8) / qmax
    wq = torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
    return w + (wq - w).detach()


def fake_quant_act(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int) -> torch.Tensor:
    """Quantize to `bits` unsigned levels over [min(lo,0), max(hi,0)] (zero exactly representable), then back."""
    qmax = 2**bits - 1
    lo_ = torch.clamp(lo, max=0.0)
    hi_ = torch.maximum(torch.clamp(hi, min=0.0), lo_ + 1e-6)
    scale = (hi_ - lo_) / qmax
    zero = torch.round(-lo_ / scale)
    # in place on one new tensor: the same operations in the same order as clamp(round(x / s) + z) then
    # (q - z) * s, without five temporaries of x's size (a third of a quantized subnet's evaluation time)
    with torch.no_grad():
        xq = (x / scale).round_().add_(zero).clamp_(0, qmax).sub_(zero).mul_(scale)
    if torch.is_grad_enabled() and x.requires_grad:
        return x + (xq - x).detach()  # straight-through: the gradient of the identity
    return xq.sub_(x).add_(x)  # the straight-through form's value, x + (xq - x), bit for bit


class ActRange(nn.Module):
    """Tracks an activation range (EMA in training, plain mean of batch ranges while calibrating) and
    fake-quantizes to the bits asked for. One per quantizable convolution input, shared by all subnets."""

    def __init__(self, momentum: float = 0.05) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.calibrating = False

    def reset(self) -> None:
        self.lo.zero_()
        self.hi.zero_()
        self.count.zero_()

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.min().float(), x.max().float()  # float32 buffers, also under bf16 / fp16 autocast
        n = int(self.count)
        if n == 0:
            self.lo.copy_(lo)
            self.hi.copy_(hi)
        elif self.calibrating:
            self.lo.mul_(n / (n + 1)).add_(lo / (n + 1))
            self.hi.mul_(n / (n + 1)).add_(hi / (n + 1))
        else:
            self.lo.lerp_(lo, self.momentum)
            self.hi.lerp_(hi, self.momentum)
        self.count.add_(1)

    def forward(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        if self.training or self.calibrating:
            self.observe(x)
        if bits >= 32:
            return x
        return fake_quant_act(x, self.lo, self.hi, bits)


class FixedActQuant(nn.Module):
    """The extracted form of `ActRange`: fixed bits and range (a range recalibration may still update it)."""

    def __init__(self, bits: int, source: ActRange | None = None) -> None:
        super().__init__()
        self.bits = bits
        self.range = ActRange()
        if source is not None:
            self.range.load_state_dict(source.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.range(x, self.bits)
