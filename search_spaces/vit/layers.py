"""The static layers of an extracted vit subnet, also the standalone blocks a latency table measures.

Module names are part of the contract: a subnet's `blocks.{j}` is its j-th encoder layer; inside it the quantizable
linear layers are `attn.q.fc`, `attn.k.fc`, `attn.v.fc`, `attn.proj.fc`, `mlp.fc1.fc`, `mlp.fc2.fc` (ONNX MatMul
node names follow them; `blocks.QUANT_LINEARS`). Attention is written with plain matmuls so that ONNX Runtime and the flop counter see it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.quant import FixedActQuant



class QLinear(nn.Module):
    """A linear layer with an optional fake-quantized input (weights are quantized when copied in)."""

    def __init__(self, in_f: int, out_f: int, act_bits: int = 32) -> None:
        super().__init__()
        self.in_quant = FixedActQuant(act_bits) if act_bits < 32 else None
        self.fc = nn.Linear(in_f, out_f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.in_quant(x) if self.in_quant is not None else x)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, tokens: int, act_bits: int = 32) -> None:
        super().__init__()
        self.heads, self.head_dim, self.tokens = heads, head_dim, tokens
        inner = heads * head_dim
        self.q, self.k, self.v = (QLinear(dim, inner, act_bits) for _ in range(3))
        self.proj = QLinear(inner, dim, act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reshapes by constants (no `x.shape`): the exported graph then has no Shape / Gather / Concat chains, which
        # cost as much as a tiny layer's matmuls in ONNX Runtime
        shape = (-1, self.tokens, self.heads, self.head_dim)
        q, k, v = (m(x).reshape(shape).transpose(1, 2) for m in (self.q, self.k, self.v))
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.head_dim**-0.5, dim=-1)
        return self.proj(torch.matmul(att, v).transpose(1, 2).reshape(-1, self.tokens, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, act_bits: int = 32) -> None:
        super().__init__()
        self.fc1, self.fc2 = QLinear(dim, hidden, act_bits), QLinear(hidden, dim, act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, dim: int, heads: int, head_dim: int, hidden: int, tokens: int, weight_bits: int = 32,
                 act_bits: int = 32, fake_quant: bool = True) -> None:
        super().__init__()
        self.weight_bits, self.act_bits = weight_bits, act_bits  # the layer's policy, for export
        qa = act_bits if fake_quant else 32
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim, tokens, qa)
        self.mlp = MLP(dim, hidden, qa)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class PatchEmbed(nn.Module):
    """Patches (a strided convolution) to tokens, the class token in front, plus learned position embeddings."""

    def __init__(self, in_ch: int, dim: int, patch: int, tokens: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos


class Head(nn.Module):
    """Final LayerNorm on the class token, then the classifier."""

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.norm(x[:, 0])))
