"""Exact profiles: MACs and parameters counted as Once-for-All counts them (convolutions and linear layers;
every trainable parameter, BatchNorm included), and model size with each layer's weights at its bits.

Integer arithmetic from the block shapes: no hooks, no float accumulation.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from search_spaces.block_spec import BlockSpec
from search_spaces.spec import SpaceSpec


@dataclass(frozen=True)
class Profile:
    macs: int
    params: int
    size_bytes: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class _Count:
    macs: int = 0
    quantizable: int = 0  # weights of the block's main convolutions (stored at the block's weight bits)
    other: int = 0  # BN, biases, SE and head weights (stored as float32)

    def __add__(self, o: _Count) -> _Count:
        return _Count(self.macs + o.macs, self.quantizable + o.quantizable, self.other + o.other)


def _conv(in_ch: int, out_ch: int, k: int, out_hw: int, groups: int = 1, bn: bool = True,
          bias: bool = False, quantizable: bool = True) -> _Count:
    weights = out_ch * (in_ch // groups) * k * k
    extra = (2 * out_ch if bn else 0) + (out_ch if bias else 0)
    macs = out_hw * out_hw * out_ch * (in_ch // groups) * k * k
    return _Count(macs, weights if quantizable else 0, extra + (0 if quantizable else weights))


def block_counts(b: BlockSpec, spec: SpaceSpec) -> _Count:
    """MACs and parameters of one block; which of its weights are stored at the block's bits."""
    o = b.out_hw
    if b.op == "conv":
        return _conv(b.in_ch, b.out_ch, b.kernel, o)
    if b.op == "dsconv":
        return _conv(b.in_ch, b.in_ch, b.kernel, o, groups=b.in_ch) + _conv(b.in_ch, b.out_ch, 1, o)
    if b.op == "mbconv":
        c = _conv(b.in_ch, b.hidden, 1, b.in_hw) + _conv(b.hidden, b.hidden, b.kernel, o, groups=b.hidden)
        if b.se:
            mid = spec.se_channels(b.hidden)
            c = c + _conv(b.hidden, mid, 1, 1, bn=False, bias=True, quantizable=False)
            c = c + _conv(mid, b.hidden, 1, 1, bn=False, bias=True, quantizable=False)
        return c + _conv(b.hidden, b.out_ch, 1, o)
    if b.op == "head":
        mix = _conv(b.in_ch, b.hidden, 1, 1, bn=False, quantizable=False)
        linear = _Count(b.hidden * b.out_ch, 0, b.hidden * b.out_ch + b.out_ch)
        return mix + linear
    raise AssertionError(b.op)


def profile_blocks(blocks: Iterable[BlockSpec], spec: SpaceSpec) -> Profile:
    macs = params = bits = 0
    for b in blocks:
        c = block_counts(b, spec)
        macs += c.macs
        params += c.quantizable + c.other
        bits += c.quantizable * b.weight_bits + c.other * 32
    return Profile(macs=macs, params=params, size_bytes=-(-bits // 8))
