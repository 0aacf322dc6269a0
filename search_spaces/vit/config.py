"""`ViTConfig`: one subnet of a vit preset -- embedding dimension, depth, and per active layer heads, MLP ratio,
MLP keep ratio and the bits of its linear layers. Frozen, hashable, validated on construction (field, value and
what is allowed), JSON round-trip, versioned."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces.config import _as_tuple, _match_choice
from search_spaces.errors import bad_value
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
        self.check_bit_pairs()

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

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"version": self.version, "space": self.space, "embed_dim": self.embed_dim,
                             "depth": self.depth}
        d.update({name: list(getattr(self, name)) for name in PER_LAYER})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], space: str | None = None) -> ViTConfig:
        sp, values = cls.dict_fields(d, space, ("embed_dim", "depth", *PER_LAYER), what="vit config")
        return cls(space=sp, **values)
