"""The weight-sharing vision transformer (AutoFormer-style weight entanglement).

Every weight is stored at its largest shape and a subnet uses a prefix: the first `embed_dim` embedding channels
everywhere (patch projection, positions, LayerNorms, residual stream), the first `heads x head_dim` query / key /
value channels, the first `hidden` MLP units (sorted by importance, `sort_channels`), the first `depth` layers.
Linear layers are fake-quantized per layer (weights per output channel, activations per tensor, as mbv3).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.errors import HwnasError, InputError
from search_spaces.quant import ActRange, quantize_weight
from search_spaces.supernet import permute
from search_spaces.vit.blocks import QUANT_LINEARS
from search_spaces.vit.config import ViTConfig
from search_spaces.vit.layers import EncoderLayer, Head, PatchEmbed
from search_spaces.vit.spec import ViTSpec


class ElasticLinear(nn.Module):
    """A linear layer at its largest; `forward(x, out, in_, wbits, abits)` uses the top-left block."""

    def __init__(self, in_f: int, out_f: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_f, in_f))
        self.bias = nn.Parameter(torch.zeros(out_f))
        self.in_range = ActRange()
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor, out_f: int, in_f: int, wbits: int, abits: int) -> torch.Tensor:
        x = self.in_range(x, abits)
        return F.linear(x, quantize_weight(self.weight[:out_f, :in_f], wbits), self.bias[:out_f])

    @torch.no_grad()
    def copy_to(self, dst: nn.Module, out_f: int, in_f: int, wbits: int, fake_quant: bool) -> None:
        dst.fc.weight.copy_(quantize_weight(self.weight[:out_f, :in_f], wbits if fake_quant else 32))
        dst.fc.bias.copy_(self.bias[:out_f])
        if dst.in_quant is not None:
            dst.in_quant.range.load_state_dict(self.in_range.state_dict())


def _ln(x: torch.Tensor, ln: nn.LayerNorm, d: int) -> torch.Tensor:
    return F.layer_norm(x, (d,), ln.weight[:d], ln.bias[:d], ln.eps)


def _copy_ln(dst: nn.LayerNorm, src: nn.LayerNorm, d: int) -> None:
    dst.weight.data.copy_(src.weight.data[:d])
    dst.bias.data.copy_(src.bias.data[:d])
    dst.eps = src.eps


class ElasticLayer(nn.Module):
    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        d, inner, h = spec.max_embed, spec.max_heads * spec.head_dim, spec.max_hidden
        self.head_dim, self.tokens = spec.head_dim, spec.tokens
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v = ElasticLinear(d, inner), ElasticLinear(d, inner), ElasticLinear(d, inner)
        self.proj = ElasticLinear(inner, d)
        self.fc1, self.fc2 = ElasticLinear(d, h), ElasticLinear(h, d)

    def forward(self, x: torch.Tensor, d: int, heads: int, hidden: int, wb: int, ab: int) -> torch.Tensor:
        b, t, _ = x.shape
        inner = heads * self.head_dim
        y = _ln(x, self.ln1, d)
        q, k, v = (m(y, inner, d, wb, ab).reshape(b, t, heads, self.head_dim).transpose(1, 2)
                   for m in (self.q, self.k, self.v))
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.head_dim**-0.5, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, inner)
        x = x + self.proj(y, d, inner, wb, ab)
        y = F.gelu(self.fc1(_ln(x, self.ln2, d), hidden, d, wb, ab))
        return x + self.fc2(y, d, hidden, wb, ab)

    def channel_permutation(self) -> list[tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]]:
        """MLP hidden units by importance (L1 norm of their fc2 column, most important first)."""
        order = torch.argsort(self.fc2.weight.detach().abs().sum(dim=0), descending=True)
        return [(self.fc1.weight, [(0, order)]), (self.fc1.bias, [(0, order)]), (self.fc2.weight, [(1, order)])]

    @torch.no_grad()
    def sort_channels(self) -> list[tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]]:
        ops = self.channel_permutation()
        for t, dims in ops:
            t.copy_(permute(t, dims))
        return ops

    @torch.no_grad()
    def extract(self, d: int, heads: int, hidden: int, wb: int, ab: int, fake_quant: bool) -> EncoderLayer:
        inner = heads * self.head_dim
        m = EncoderLayer(d, heads, self.head_dim, hidden, self.tokens, wb, ab, fake_quant)
        _copy_ln(m.ln1, self.ln1, d)
        _copy_ln(m.ln2, self.ln2, d)
        for src, dst, o, i in ((self.q, m.attn.q, inner, d), (self.k, m.attn.k, inner, d),
                               (self.v, m.attn.v, inner, d), (self.proj, m.attn.proj, d, inner),
                               (self.fc1, m.mlp.fc1, hidden, d), (self.fc2, m.mlp.fc2, d, hidden)):
            src.copy_to(dst, o, i, wb, fake_quant)
        return m


class ViTSubnet(nn.Module):
    """A standalone vit subnet: no elastic machinery, exportable."""

    def __init__(self, config: ViTConfig, embed: PatchEmbed, blocks: list[EncoderLayer], head: Head) -> None:
        super().__init__()
        self.config = config
        self.embed, self.blocks, self.head = embed, nn.Sequential(*blocks), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed(x)))

    def quant_policy(self) -> dict[str, tuple[int, int]]:
        return {f"blocks.{j}.{name}": (b.weight_bits, b.act_bits) for j, b in enumerate(self.blocks)
                if b.weight_bits < 32 or b.act_bits < 32 for name in QUANT_LINEARS}


class ViTSupernet(nn.Module):
    """`set_active(config)` then call it, like the mbv3 `Supernet`."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.spec = spec
        d = spec.max_embed
        self.patch = nn.Conv2d(spec.in_channels, d, spec.patch, spec.patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, spec.tokens, d))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(ElasticLayer(spec) for _ in range(spec.max_depth))
        self.norm = nn.LayerNorm(d)
        self.classifier = nn.Linear(d, spec.num_classes)
        self.dropout = nn.Dropout(spec.dropout)
        self.active: ViTConfig | None = None
        self._plan: list[tuple[int, int, int, int, int]] = []

    def plan(self, config: ViTConfig) -> list[tuple[int, int, int, int, int]]:
        """(embed, heads, hidden, weight bits, act bits) of each active layer."""
        if not isinstance(config, ViTConfig):
            raise InputError(f"config: got {type(config).__name__}, allowed: a ViTConfig")
        if config.space != self.spec.name:
            raise InputError(f"config.space: got {config.space!r}, allowed: {self.spec.name!r} (this supernet)")
        d = config.embed_dim
        return [(d, config.heads[j], self.spec.mlp_hidden(d, config.mlp_ratio[j], config.keep[j]),
                 config.weight_bits[j], config.act_bits[j]) for j in range(config.depth)]

    def set_active(self, config: ViTConfig) -> None:
        self._plan = self.plan(config)
        self.active = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            raise HwnasError("ViTSupernet.forward: no active subnet; call set_active(config) first")
        d = self.active.embed_dim
        x = F.conv2d(x, self.patch.weight[:d], self.patch.bias[:d], self.spec.patch).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls[:, :, :d].expand(x.shape[0], -1, -1), x], dim=1) + self.pos[:, :, :d]
        for j, (dd, h, hid, wb, ab) in enumerate(self._plan):
            x = self.blocks[j](x, dd, h, hid, wb, ab)
        x = _ln(x[:, 0], self.norm, d)
        return F.linear(self.dropout(x), self.classifier.weight[:, :d], self.classifier.bias)

    def sort_channels(self) -> list[tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]]:
        return [op for b in self.blocks for op in b.sort_channels()]

    @torch.no_grad()
    def extract(self, config: ViTConfig, fake_quant: bool = True) -> ViTSubnet:
        s, d = self.spec, config.embed_dim
        embed = PatchEmbed(s.in_channels, d, s.patch, s.tokens)
        embed.conv.weight.copy_(self.patch.weight[:d])
        embed.conv.bias.copy_(self.patch.bias[:d])
        embed.cls.copy_(self.cls[:, :, :d])
        embed.pos.copy_(self.pos[:, :, :d])
        blocks = [self.blocks[j].extract(*p, fake_quant=fake_quant) for j, p in enumerate(self.plan(config))]
        head = Head(d, s.num_classes, s.dropout)
        _copy_ln(head.norm, self.norm, d)
        head.classifier.weight.copy_(self.classifier.weight[:, :d])
        head.classifier.bias.copy_(self.classifier.bias)
        return ViTSubnet(config, embed, blocks, head).train(self.training)
