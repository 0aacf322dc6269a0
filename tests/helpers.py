"""Test utilities shared by several test files."""
from __future__ import annotations

import torch
from torch import nn

from search_spaces.quant import ActRange


@torch.no_grad()
def randomize_statistics(net: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, and every activation range a
    plausible span, so equality checks between supernet, extracted subnet and ONNX are not trivially met by a
    freshly initialised (identity-like) network."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.copy_(0.2 * torch.randn(n, generator=g))
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        elif isinstance(m, ActRange):
            m.lo.fill_(-2.0 * float(torch.rand((), generator=g)))
            m.hi.fill_(2.0 + 4.0 * float(torch.rand((), generator=g)))
            m.count.fill_(1)
    return net
