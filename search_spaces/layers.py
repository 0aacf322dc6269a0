"""Static layers: the blocks of an extracted subnet, and the standalone blocks measured for latency tables.

Module names are part of the contract: a subnet's `blocks.{j}` is its j-th active elastic block, and inside a
block `expand`, `depthwise`, `pointwise` are the quantizable convolutions (ONNX node names follow them).
"""
from __future__ import annotations

import torch
from torch import nn

from search_spaces.block_spec import BlockSpec
from search_spaces.quant import FixedActQuant
from search_spaces.spec import SpaceSpec


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "hswish": nn.Hardswish, "none": nn.Identity}[name]()


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm + activation, with an optional fake-quantized input."""

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, groups: int = 1, act: str = "none",
                 act_bits: int = 32) -> None:
        super().__init__()
        self.in_quant = FixedActQuant(act_bits) if act_bits < 32 else None
        self.conv = nn.Conv2d(in_ch, out_ch, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_quant is not None:
            x = self.in_quant(x)
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fold_bn(self) -> None:
        """Inference only, after BN recalibration: the BatchNorm's eval-mode affine folded into the conv as a
        scale and a bias, and the activation in place -- the same function (the conv's weights, quantized or not,
        are fixed), without two passes over every activation (a quarter of a subnet's evaluation time)."""
        if isinstance(self.bn, nn.Identity):
            return
        bn, conv = self.bn, self.conv
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
        self.bn = nn.Identity()
        if hasattr(self.act, "inplace"):
            self.act.inplace = True


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """`ConvBN.fold_bn` on every ConvBN of `module` (in place; inference only); the module."""
    for m in module.modules():
        if isinstance(m, ConvBN):
            m.fold_bn()
    return module


class SqueezeExcite(nn.Module):
    def __init__(self, ch: int, mid: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(ch, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, ch, 1, bias=True)
        self.relu = nn.ReLU()
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.relu(self.reduce(s))))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, optional SE, 1x1 linear projection, identity shortcut.
    With `expand=False` it is the depthwise-separable block (no expand conv)."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int, k: int, stride: int, act: str, se_mid: int | None,
                 act_bits: int = 32, expand: bool = True, weight_bits: int = 32, fake_quant: bool = True) -> None:
        super().__init__()
        # the block's policy, for export; `fake_quant=False` keeps it but computes in float
        self.weight_bits, self.act_bits = weight_bits, act_bits
        qa = act_bits if fake_quant else 32
        self.expand = ConvBN(in_ch, hidden, 1, act=act, act_bits=qa) if expand else None
        self.depthwise = ConvBN(hidden, hidden, k, stride, groups=hidden, act=act, act_bits=qa)
        self.se = SqueezeExcite(hidden, se_mid) if se_mid else None
        self.pointwise = ConvBN(hidden, out_ch, 1, act="none", act_bits=qa)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.pointwise(y)
        return x + y if self.residual else y


class Head(nn.Module):
    """Global average pool, feature-mix 1x1 conv (no bias, no BN) + activation, dropout, linear classifier."""

    def __init__(self, in_ch: int, mix: int, num_classes: int, act: str, dropout: float) -> None:
        super().__init__()
        self.mix = nn.Conv2d(in_ch, mix, 1, bias=False)
        self.act = activation(act)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(mix, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.mix(x.mean((2, 3), keepdim=True)))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def build_block(b: BlockSpec, spec: SpaceSpec) -> nn.Module:
    """A standalone float module for one block (random weights): what a latency table measures. Quantized
    blocks are built float and quantized by the backend as deployed."""
    if b.op == "conv":
        return ConvBN(b.in_ch, b.out_ch, b.kernel, b.stride, act=b.act)
    if b.op == "dsconv":
        return MBConv(b.in_ch, b.in_ch, b.out_ch, b.kernel, b.stride, b.act, None, expand=False)
    if b.op == "mbconv":
        return MBConv(b.in_ch, b.hidden, b.out_ch, b.kernel, b.stride, b.act,
                      spec.se_channels(b.hidden) if b.se else None)
    if b.op == "head":
        return Head(b.in_ch, b.hidden, b.out_ch, b.act, 0.0)
    raise AssertionError(b.op)
