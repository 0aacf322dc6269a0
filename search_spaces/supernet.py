"""The weight-sharing supernet (Once-for-All style) with elastic kernel, expand ratio, channel keep ratio,
depth and per-block fake quantization.

Elastic kernel: a smaller kernel is the centre of the larger one passed through a learned transform (one
k^2 x k^2 matrix per step, identity-initialised, shared by the channels), as in Once-for-All.
Elastic width: hidden channels are kept sorted by importance (L1 norm of the projection weights,
`sort_channels`), so the first `hidden` channels are the kept set for any expand ratio and keep ratio.
Elastic depth: the first `d` blocks of each stage.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.config import SubnetConfig
from search_spaces.errors import HwnasError, InputError
from search_spaces.layers import ConvBN, Head, MBConv
from search_spaces.quant import ActRange, FixedActQuant, quantize_weight
from search_spaces.spec import SpaceSpec

_ACTS = {"relu": F.relu, "hswish": F.hardswish}


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, n: int) -> torch.Tensor:
    """BatchNorm on the first `n` channels of a shared BN (its running statistics are updated in place)."""
    training = bn.training or not bn.track_running_stats
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.momentum is None:
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked)
    return F.batch_norm(x, bn.running_mean[:n], bn.running_var[:n], bn.weight[:n], bn.bias[:n],
                        training, momentum, bn.eps)


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, idx: slice) -> None:
    dst.weight.data.copy_(src.weight.data[idx])
    dst.bias.data.copy_(src.bias.data[idx])
    dst.running_mean.copy_(src.running_mean[idx])
    dst.running_var.copy_(src.running_var[idx])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)
    dst.eps, dst.momentum = src.eps, src.momentum


class ElasticMBConv(nn.Module):
    """An inverted-residual block at its largest (max kernel, max hidden) that runs any smaller version."""

    def __init__(self, in_ch: int, max_hidden: int, out_ch: int, kernels: Iterable[int], stride: int, act: str,
                 se: bool, spec: SpaceSpec) -> None:
        super().__init__()
        self.in_ch, self.max_hidden, self.out_ch, self.stride, self.act = in_ch, max_hidden, out_ch, stride, act
        self.spec = spec
        self.kernels = sorted(kernels)
        kmax = self.kernels[-1]
        self.expand_w = nn.Parameter(torch.empty(max_hidden, in_ch, 1, 1))
        self.expand_bn = nn.BatchNorm2d(max_hidden)
        self.dw_w = nn.Parameter(torch.empty(max_hidden, 1, kmax, kmax))
        self.dw_bn = nn.BatchNorm2d(max_hidden)
        # OFA kernel transforms: '7to5', '5to3' ... (large -> next smaller)
        self.kernel_transforms = nn.ParameterDict({
            f"{big}to{small}": nn.Parameter(torch.eye(small * small))
            for big, small in zip(self.kernels[::-1][:-1], self.kernels[::-1][1:])
        })
        self.se = se
        if se:
            max_mid = spec.se_channels(max_hidden)
            self.se_reduce = nn.Conv2d(max_hidden, max_mid, 1, bias=True)
            self.se_expand = nn.Conv2d(max_mid, max_hidden, 1, bias=True)
        self.point_w = nn.Parameter(torch.empty(out_ch, max_hidden, 1, 1))
        self.point_bn = nn.BatchNorm2d(out_ch)
        self.in_range, self.dw_range, self.point_range = ActRange(), ActRange(), ActRange()
        for w in (self.expand_w, self.dw_w, self.point_w):
            nn.init.kaiming_normal_(w, mode="fan_out")
        if self.residual:  # residual branches start as identity (zero-init last BN); others must pass signal
            nn.init.zeros_(self.point_bn.weight)

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch

    def active_dw_filter(self, hidden: int, kernel: int) -> torch.Tensor:
        w = self.dw_w[:hidden]
        k = self.kernels[-1]
        for small in reversed(self.kernels[:-1]):
            if kernel > small:
                break
            start = (k - small) // 2
            centre = w[:, :, start : start + small, start : start + small].reshape(-1, small * small)
            w = F.linear(centre, self.kernel_transforms[f"{k}to{small}"]).reshape(hidden, 1, small, small)
            k = small
        if k != kernel:
            raise InputError(f"kernel: got {kernel}, allowed: one of {self.kernels}")
        return w

    def forward(self, x: torch.Tensor, kernel: int, hidden: int, wbits: int, abits: int) -> torch.Tensor:
        act = _ACTS[self.act]
        y = self.in_range(x, abits)
        y = act(_bn(F.conv2d(y, quantize_weight(self.expand_w[:hidden], wbits)), self.expand_bn, hidden))
        y = self.dw_range(y, abits)
        w = quantize_weight(self.active_dw_filter(hidden, kernel), wbits)
        y = act(_bn(F.conv2d(y, w, None, self.stride, kernel // 2, 1, hidden), self.dw_bn, hidden))
        if self.se:
            mid = self.spec.se_channels(hidden)
            s = y.mean((2, 3), keepdim=True)
            s = F.relu(F.conv2d(s, self.se_reduce.weight[:mid, :hidden], self.se_reduce.bias[:mid]))
            y = y * F.hardsigmoid(F.conv2d(s, self.se_expand.weight[:hidden, :mid], self.se_expand.bias[:hidden]))
        y = self.point_range(y, abits)
        y = _bn(F.conv2d(y, quantize_weight(self.point_w[:, :hidden], wbits)), self.point_bn, self.out_ch)
        return x + y if self.residual else y

    def channel_permutation(self) -> list[tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]]:
        """(tensor, [(dim, index order), ...]) for every weight, BN parameter and statistic that sorting the
        hidden channels by importance (L1 norm of the projection weights, most important first) reorders; SE's
        own middle channels are sorted by the importance of their expand weights."""
        order = torch.argsort(self.point_w.detach().abs().sum(dim=(0, 2, 3)), descending=True)
        ops: list[tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]] = [
            (self.point_w, [(1, order)]), (self.expand_w, [(0, order)]), (self.dw_w, [(0, order)])]
        for bn in (self.expand_bn, self.dw_bn):
            ops += [(t, [(0, order)]) for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]
        if self.se:
            mid = torch.argsort(self.se_expand.weight.detach().abs().sum(dim=(0, 2, 3)), descending=True)
            ops += [(self.se_reduce.weight, [(1, order), (0, mid)]), (self.se_reduce.bias, [(0, mid)]),
                    (self.se_expand.weight, [(0, order), (1, mid)]), (self.se_expand.bias, [(0, order)])]
        return ops

    @torch.no_grad()
    def sort_channels(self) -> list[tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]]:
        """Reorder hidden channels by importance so every hidden-width prefix is the important set (Once-for-All's
        re_organize_middle_weights). Returns the permutations applied (for optimizer state)."""
        ops = self.channel_permutation()
        for t, dims in ops:
            t.copy_(permute(t, dims))
        return ops

    @torch.no_grad()
    def extract(self, kernel: int, hidden: int, wbits: int, abits: int, fake_quant: bool = True) -> MBConv:
        mid = self.spec.se_channels(hidden) if self.se else None
        qbits = wbits if fake_quant else 32
        m = MBConv(self.in_ch, hidden, self.out_ch, kernel, self.stride, self.act, mid,
                   act_bits=abits, weight_bits=wbits, fake_quant=fake_quant)
        assert m.expand is not None
        m.expand.conv.weight.copy_(quantize_weight(self.expand_w[:hidden], qbits))
        m.depthwise.conv.weight.copy_(quantize_weight(self.active_dw_filter(hidden, kernel), qbits))
        m.pointwise.conv.weight.copy_(quantize_weight(self.point_w[:, :hidden], qbits))
        _copy_bn(m.expand.bn, self.expand_bn, slice(0, hidden))
        _copy_bn(m.depthwise.bn, self.dw_bn, slice(0, hidden))
        _copy_bn(m.pointwise.bn, self.point_bn, slice(0, self.out_ch))
        if m.se is not None:
            m.se.reduce.weight.copy_(self.se_reduce.weight[:mid, :hidden])
            m.se.reduce.bias.copy_(self.se_reduce.bias[:mid])
            m.se.expand.weight.copy_(self.se_expand.weight[:hidden, :mid])
            m.se.expand.bias.copy_(self.se_expand.bias[:hidden])
        for conv, rng in ((m.expand, self.in_range), (m.depthwise, self.dw_range), (m.pointwise, self.point_range)):
            if conv.in_quant is not None:
                conv.in_quant.range.load_state_dict(rng.state_dict())
        return m


def permute(t: torch.Tensor, dims: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
    """`t` with each (dim, order) applied in turn (a copy)."""
    for dim, idx in dims:
        t = t.index_select(dim, idx)
    return t.clone()


class Subnet(nn.Module):
    """A standalone subnet: no elastic machinery, exportable. `config` says what it is."""

    def __init__(self, config: SubnetConfig, stem: ConvBN, first_block: MBConv, blocks: list[MBConv],
                 final_expand: ConvBN, head: Head) -> None:
        super().__init__()
        self.config = config
        self.stem, self.first_block = stem, first_block
        self.blocks = nn.Sequential(*blocks)
        self.final_expand, self.head = final_expand, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.first_block(self.stem(x)))
        return self.head(self.final_expand(x))

    def quant_policy(self) -> dict[str, tuple[int, int]]:
        """Qualified conv module name -> (weight bits, activation bits) for every quantized convolution."""
        out = {}
        for j, b in enumerate(self.blocks):
            if b.weight_bits < 32 or b.act_bits < 32:
                for part in ("expand", "depthwise", "pointwise"):
                    out[f"blocks.{j}.{part}.conv"] = (b.weight_bits, b.act_bits)
        return out


class Supernet(nn.Module):
    """Once-for-All-style MobileNetV3 supernet over a `SpaceSpec`; `set_active(config)` then call it."""

    def __init__(self, spec: SpaceSpec) -> None:
        super().__init__()
        self.spec = spec
        s = spec
        self.stem = ConvBN(s.in_channels, s.stem_width, 3, s.stem_stride, act=s.stem_act)
        self.first_block = MBConv(s.stem_width, s.stem_width, s.first_block_width, 3, s.first_block_stride,
                                  s.first_block_act, None, expand=False)
        blocks = []
        for p in range(s.n_positions):
            st, i = s.position_stage(p)
            stage = s.stages[st]
            in_ch = s.stage_in_width(st) if i == 0 else stage.width
            blocks.append(ElasticMBConv(in_ch, s.max_hidden_channels(in_ch), stage.width, s.kernel_choices,
                                        stage.stride if i == 0 else 1, stage.act, stage.se, s))
        self.blocks = nn.ModuleList(blocks)
        self.final_expand = ConvBN(s.stages[-1].width, s.final_expand_width, 1, act=s.head_act)
        self.head = Head(s.final_expand_width, s.feature_mix_width, s.num_classes, s.head_act, s.dropout)
        self.active: SubnetConfig | None = None
        self._plan: list[tuple[int, int, int, int, int]] = []

    def _check(self, config: SubnetConfig) -> None:
        if not isinstance(config, SubnetConfig):
            raise InputError(f"config: got {type(config).__name__}, allowed: a SubnetConfig")
        if config.space != self.spec.name:
            raise InputError(f"config.space: got {config.space!r}, allowed: {self.spec.name!r} (this supernet)")

    def plan(self, config: SubnetConfig) -> list[tuple[int, int, int, int, int]]:
        """(position, kernel, hidden, weight bits, act bits) of each active block."""
        self._check(config)
        out = []
        for j, p in enumerate(config.active_positions()):
            blk = self.blocks[p]
            hidden = self.spec.hidden_channels(blk.in_ch, config.expand[j], config.keep[j])
            out.append((p, config.kernel[j], hidden, config.weight_bits[j], config.act_bits[j]))
        return out

    def set_active(self, config: SubnetConfig) -> None:
        self._plan = self.plan(config)
        self.active = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            raise HwnasError("Supernet.forward: no active subnet; call set_active(config) first")
        x = self.first_block(self.stem(x))
        for p, k, h, wb, ab in self._plan:
            x = self.blocks[p](x, k, h, wb, ab)
        return self.head(self.final_expand(x))

    def sort_channels(self) -> list[tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]]:
        """Sort every elastic block's hidden channels by importance; returns all permutations applied."""
        return [op for b in self.blocks for op in b.sort_channels()]

    @torch.no_grad()
    def extract(self, config: SubnetConfig, fake_quant: bool = True) -> Subnet:
        """A standalone copy of the subnet (weights copied, fake quantization baked in unless `fake_quant` is
        False); in eval mode it computes what the supernet computes with `config` active."""
        blocks = [self.blocks[p].extract(k, h, wb, ab, fake_quant) for p, k, h, wb, ab in self.plan(config)]
        sub = Subnet(config, copy.deepcopy(self.stem), copy.deepcopy(self.first_block), blocks,
                     copy.deepcopy(self.final_expand), copy.deepcopy(self.head))
        return sub.train(self.training)


def set_calibrating(module: nn.Module, on: bool) -> None:
    for m in module.modules():
        if isinstance(m, ActRange):
            m.calibrating = on


@torch.no_grad()
def recalibrate(module: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Re-estimate BatchNorm statistics and activation ranges for this (sub)network from a few training
    batches: the shared statistics of a supernet do not fit any one subnet."""
    was_training = module.training
    bns = [m for m in module.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))]
    saved = [(bn.momentum,) for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    for m in module.modules():
        if isinstance(m, ActRange):
            m.reset()
    module.train()
    for m in module.modules():  # dropout off while calibrating
        if isinstance(m, nn.Dropout):
            m.eval()
    set_calibrating(module, True)
    seen = 0
    for x in batches:
        module(x)
        seen += 1
    set_calibrating(module, False)
    for bn, (mom,) in zip(bns, saved):
        bn.momentum = mom
    if seen == 0:
        raise InputError("recalibrate: got no batches, allowed: at least one batch of training images")
    return module.train(was_training)


__all__ = ["ElasticMBConv", "FixedActQuant", "Subnet", "Supernet", "recalibrate", "set_calibrating"]
