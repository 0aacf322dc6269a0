"""`ViTBlockSpec`: one vit block as it runs -- the latency-table key -- with its exact counts and its builder.

Op kinds: `vit-patch` (patch embedding, class token, positions), `vit-layer` (one encoder layer: tokens, dim,
heads x head dim, MLP hidden units, bits), `vit-head` (final norm and classifier). Keys read like
`vit-layer:t17:d64:h2x16:m192:w8a8`; for `vit-patch` the `h` part is in-channels x patch size, for `vit-head` `m`
is the class count.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from search_spaces.errors import InputError, bad_value

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

OPS = ("vit-patch", "vit-layer", "vit-head")
# an encoder layer's quantizable linear layers, by module name (`layers.EncoderLayer`; its ONNX MatMuls follow them)
QUANT_LINEARS = ("attn.q.fc", "attn.k.fc", "attn.v.fc", "attn.proj.fc", "mlp.fc1.fc", "mlp.fc2.fc")
_KEY_RE = re.compile(r"^(?P<op>vit-[a-z]+):t(?P<t>\d+):d(?P<d>\d+):h(?P<h>\d+)x(?P<hd>\d+):m(?P<m>\d+)"
                     r":w(?P<w>\d+)a(?P<a>\d+)$")


@dataclass(frozen=True, order=True)
class ViTBlockSpec:
    op: str
    tokens: int
    dim: int
    heads: int  # vit-patch: input channels
    head_dim: int  # vit-patch: patch size
    hidden: int  # vit-layer: MLP hidden units; vit-head: classes; vit-patch: dim
    weight_bits: int = 32
    act_bits: int = 32

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise bad_value("op", self.op, f"one of {', '.join(OPS)}")
        for f in ("tokens", "dim", "heads", "head_dim", "hidden"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad_value(f, v, "a positive integer")

    @property
    def key(self) -> str:
        return (f"{self.op}:t{self.tokens}:d{self.dim}:h{self.heads}x{self.head_dim}:m{self.hidden}"
                f":w{self.weight_bits}a{self.act_bits}")

    def __str__(self) -> str:
        return self.key

    @classmethod
    def from_key(cls, key: str) -> ViTBlockSpec:
        m = _KEY_RE.match(key)
        if m is None:
            raise InputError(f"block key: got {key!r}, allowed: vit-OP:tTOKENS:dDIM:hHEADSxHEADDIM:mHIDDEN:wBaB")
        g = m.groupdict()
        return cls(g["op"], int(g["t"]), int(g["d"]), int(g["h"]), int(g["hd"]), int(g["m"]), int(g["w"]),
                   int(g["a"]))

    @property
    def quantized(self) -> bool:
        return self.weight_bits < 32 or self.act_bits < 32

    def float_version(self) -> ViTBlockSpec:
        return replace(self, weight_bits=32, act_bits=32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def input_shape(self, batch: int) -> tuple[int, ...]:
        if self.op == "vit-patch":
            side = int(round((self.tokens - 1) ** 0.5)) * self.head_dim
            return (batch, self.heads, side, side)
        return (batch, self.tokens, self.dim)

    def quant_policy(self) -> dict[str, tuple[int, int]]:
        """The quantized linear layers of the standalone block, named as in its exported graph."""
        if self.op != "vit-layer" or not self.quantized:
            return {}
        return {name: (self.weight_bits, self.act_bits) for name in QUANT_LINEARS}

    # ---- exact counts: (MACs, quantizable weights, other parameters) --------------------------------------------
    def counts(self) -> tuple[int, int, int]:
        t, d = self.tokens, self.dim
        if self.op == "vit-patch":
            cin, p = self.heads, self.head_dim
            weights = d * cin * p * p
            return (t - 1) * weights, 0, weights + d + d + t * d  # conv weight + bias, class token, positions
        if self.op == "vit-head":
            c = self.hidden
            return d * c, 0, 2 * d + d * c + c
        inner, h = self.heads * self.head_dim, self.hidden
        linear_macs = t * (3 * d * inner + inner * d + d * h + h * d)
        attention_macs = 2 * t * t * inner  # q @ k^T and attention @ v
        weights = 3 * d * inner + inner * d + d * h + h * d
        other = 3 * inner + d + h + d + 4 * d  # biases and two LayerNorms
        return linear_macs + attention_macs, weights, other


def build_vit_block(b: ViTBlockSpec, spec: Any) -> nn.Module:
    """A standalone float module of one block (random weights): what a latency table measures; quantized blocks
    are quantized by the backend as deployed."""
    from search_spaces.vit.layers import EncoderLayer, Head, PatchEmbed  # torch: `import search_spaces` stays light

    if b.op == "vit-patch":
        return PatchEmbed(b.heads, b.dim, b.head_dim, b.tokens)
    if b.op == "vit-layer":
        return EncoderLayer(b.dim, b.heads, b.head_dim, b.hidden, b.tokens)
    return Head(b.dim, b.hidden)
