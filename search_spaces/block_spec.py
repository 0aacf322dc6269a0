"""`BlockSpec`: one block exactly as it runs -- the latency-table key.

Two subnets that contain the same block (same op, input size, channels, kernel, stride, activation, SE and
bits) share its measurement; the string key is stable and human readable, e.g.
`mbconv:in14x14:c80-240-80:k5:s1:hswish:se1:w8a8`.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from search_spaces.errors import InputError, bad_value

OPS = ("conv", "dsconv", "mbconv", "head")
ACTS = ("relu", "hswish", "none")
_KEY_RE = re.compile(
    r"^(?P<op>[a-z]+):in(?P<hw>\d+)x(?P=hw):c(?P<cin>\d+)-(?P<hid>\d+)-(?P<cout>\d+):k(?P<k>\d+):s(?P<s>\d+)"
    r":(?P<act>[a-z]+):se(?P<se>[01]):w(?P<w>\d+)a(?P<a>\d+)$"
)


@dataclass(frozen=True, order=True)
class BlockSpec:
    """A block as it runs on the device.

    op: `conv` (conv-BN-act, the stem and the final expand layer), `dsconv` (the fixed depthwise-separable first
    block), `mbconv` (elastic inverted residual), `head` (global pool, feature-mix 1x1 conv + act, classifier).
    hidden: the (kept) expanded channels of an `mbconv`, the feature-mix width of the `head`, else equal to in_ch.
    """

    op: str
    in_hw: int
    in_ch: int
    hidden: int
    out_ch: int
    kernel: int
    stride: int
    act: str
    se: bool
    weight_bits: int = 32
    act_bits: int = 32

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise bad_value("op", self.op, f"one of {', '.join(OPS)}")
        if self.act not in ACTS:
            raise bad_value("act", self.act, f"one of {', '.join(ACTS)}")
        for f in ("in_hw", "in_ch", "hidden", "out_ch", "kernel", "stride"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad_value(f, v, "a positive integer")

    @property
    def residual(self) -> bool:
        return self.op in ("dsconv", "mbconv") and self.stride == 1 and self.in_ch == self.out_ch

    @property
    def out_hw(self) -> int:
        return 1 if self.op == "head" else (self.in_hw - 1) // self.stride + 1

    @property
    def quantized(self) -> bool:
        return self.weight_bits < 32 or self.act_bits < 32

    @property
    def key(self) -> str:
        return (
            f"{self.op}:in{self.in_hw}x{self.in_hw}:c{self.in_ch}-{self.hidden}-{self.out_ch}:k{self.kernel}"
            f":s{self.stride}:{self.act}:se{int(self.se)}:w{self.weight_bits}a{self.act_bits}"
        )

    def __str__(self) -> str:
        return self.key

    @classmethod
    def from_key(cls, key: str) -> BlockSpec:
        m = _KEY_RE.match(key)
        if m is None:
            raise InputError(f"block key: got {key!r}, allowed: op:inHxW:cIN-HIDDEN-OUT:kK:sS:act:se0|1:wBaB")
        g = m.groupdict()
        return cls(
            op=g["op"], in_hw=int(g["hw"]), in_ch=int(g["cin"]), hidden=int(g["hid"]), out_ch=int(g["cout"]),
            kernel=int(g["k"]), stride=int(g["s"]), act=g["act"], se=g["se"] == "1",
            weight_bits=int(g["w"]), act_bits=int(g["a"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def float_version(self) -> BlockSpec:
        from dataclasses import replace

        return replace(self, weight_bits=32, act_bits=32)

    def input_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.in_ch, self.in_hw, self.in_hw)

    def quant_policy(self) -> dict[str, tuple[int, int]]:
        """The quantized convolutions of the standalone block, named as in its exported graph (stem, final expand
        and head are always float in the mbv3 spaces)."""
        if not self.quantized:
            return {}
        parts = {"mbconv": ("expand", "depthwise", "pointwise"), "dsconv": ("depthwise", "pointwise")}.get(self.op)
        if parts is None:
            return {"conv": (self.weight_bits, self.act_bits)} if self.op == "conv" else {}
        return {f"{p}.conv": (self.weight_bits, self.act_bits) for p in parts}


# op kind -> the key type that parses it; families with their own key types add theirs (search_spaces/vit)
BLOCK_KEY_TYPES: dict[str, Any] = {op: BlockSpec for op in OPS}


def parse_block_key(key: str) -> Any:
    """The block of any registered family's latency-table key."""
    op = key.split(":", 1)[0] if isinstance(key, str) else None
    kind = BLOCK_KEY_TYPES.get(op) if op else None
    if kind is None:
        raise InputError(f"block key: got {key!r}, allowed: a key whose op is one of {', '.join(BLOCK_KEY_TYPES)}")
    return kind.from_key(key)
