"""`ViTConfig`: one subnet of a vit preset -- embedding dimension, depth, and per active layer heads, MLP ratio,
MLP keep ratio and the bits of its linear layers. Frozen, hashable, validated on construction (field, value and
what is allowed), JSON round-trip, versioned."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces.config import _as_tuple, _match_choice
from search_spaces.errors import InputError, bad_value
from search_spaces.family import FamilyConfig

VIT_CONFIG_VERSION = 1
PER_LAYER = ("heads", "mlp_ratio", "keep", "weight_bits", "act_bits")


@dataclass(frozen=True)
class ViTConfig(FamilyConfig):
    space: str
    embed_dim: int
    depth: int
    heads: tuple[int, ...]
    mlp_ratio: tuple[float, ...]
    keep: tuple[float, ...]
    weight_bits: tuple[int, ...]
    act_bits: tuple[int, ...]

    version: ClassVar[int] = VIT_CONFIG_VERSION

    def __post_init__(self) -> None:
        spec = self.spec
        set_ = object.__setattr__
        set_(self, "embed_dim", _match_choice("embed_dim", self.embed_dim, spec.embed_choices))
        set_(self, "depth", _match_choice("depth", self.depth, spec.depth_choices))
        allowed = {"heads": spec.heads_choices, "mlp_ratio": spec.mlp_ratio_choices, "keep": spec.keep_choices,
                   "weight_bits": spec.weight_bit_choices, "act_bits": spec.act_bit_choices}
        for name in PER_LAYER:
            values = _as_tuple(name, getattr(self, name))
            if len(values) != self.depth:
                raise bad_value(name, list(values), f"one value per layer: {self.depth} (the depth)")
            set_(self, name, tuple(_match_choice(f"{name}[{i}]", v, allowed[name]) for i, v in enumerate(values)))
        for i, (w, a) in enumerate(zip(self.weight_bits, self.act_bits)):
            if a < 32 <= w:
                raise InputError(f"act_bits[{i}]: got {a} with weight_bits[{i}]={w}, allowed: activations quantized "
                                 "only when the layer's weights are too (weight_bits < 32)")

    @property
    def spec(self) -> Any:
        from search_spaces.presets import SPACE_SPECS

        if not isinstance(self.space, str):
            raise bad_value("space", self.space, ", ".join(SPACE_SPECS.names()))
        spec = SPACE_SPECS.get(self.space)
        if not hasattr(spec, "embed_choices"):
            raise bad_value("space", self.space, "a vit preset")
        return spec

    @property
    def resolution(self) -> int:
        return self.spec.image_size

    @property
    def n_blocks(self) -> int:
        return self.depth

    @property
    def is_quantized(self) -> bool:
        return any(b < 32 for b in self.weight_bits) or any(b < 32 for b in self.act_bits)

    def label(self) -> str:
        return (f"e{self.embed_dim} d{self.depth} h{''.join(map(str, self.heads))} "
                f"w{min(self.weight_bits)}-{max(self.weight_bits)}b")

    def replace(self, **changes: Any) -> ViTConfig:
        """A copy with `changes`; `resolution` is accepted when it is the preset's (code written for every family
        sets it), anything else names the one resolution allowed."""
        if "resolution" in changes:
            r = changes.pop("resolution")
            if r != self.resolution:
                raise bad_value("resolution", r, f"{self.resolution} (vit presets have one resolution)")
        return dataclasses.replace(self, **changes)

    def with_bits(self, weight_bits: int, act_bits: int) -> ViTConfig:
        return self.replace(weight_bits=(weight_bits,) * self.depth, act_bits=(act_bits,) * self.depth)

    def float_version(self) -> ViTConfig:
        return self.with_bits(32, 32)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"version": self.version, "space": self.space, "embed_dim": self.embed_dim,
                             "depth": self.depth}
        d.update({name: list(getattr(self, name)) for name in PER_LAYER})
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], space: str | None = None) -> ViTConfig:
        if not isinstance(d, Mapping):
            raise bad_value("config", d, "a JSON object")
        version = d.get("version", VIT_CONFIG_VERSION)
        if version != VIT_CONFIG_VERSION:
            raise bad_value("version", version, f"{VIT_CONFIG_VERSION} (this hwnas reads vit config version "
                            f"{VIT_CONFIG_VERSION})")
        fields = ("embed_dim", "depth", *PER_LAYER)
        known = {"version", "space", *fields}
        unknown = sorted(set(d) - known)
        if unknown:
            raise bad_value(f"config key {unknown[0]!r}", d[unknown[0]], f"keys {', '.join(sorted(known))}")
        sp = d.get("space", space)
        if sp is None:
            raise InputError("space: missing, allowed: a registered search space name")
        missing = [k for k in fields if k not in d]
        if missing:
            raise InputError(f"{missing[0]}: missing from the config")
        return cls(space=sp, **{k: d[k] for k in fields})

    @classmethod
    def from_json(cls, text: str, space: str | None = None) -> ViTConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"config: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        return cls.from_dict(d, space=space)
