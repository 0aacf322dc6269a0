"""`Family`: the unit of extension of hwnas -- one kind of weight-sharing search space (MobileNetV3, vision
transformer, ...) with its config type, its index schema, its op kinds and their block builders.

A family is one class (usually one folder) plus one registration: `FAMILIES.register("vit", ViTFamily)` and a
`register_preset(...)` per preset. Everything else in hwnas -- latency tables, predictors, the search, export --
works from what the family provides here:

- `config_type`: frozen, validated on construction (field, value and what is allowed), JSON round-trip, versioned;
- `sample`, `suggest` (Optuna), `config_from_params` / `params_from_config` / `distributions`;
- `schema`: the meaning of every index-matrix column; `to_indices` / `from_indices`; the one-hot `encode` is
  derived from the schema here, so every family's features follow the same rules;
- `blocks(config)`: latency-table keys, each of an op kind in `op_kinds()`, whose builder makes the standalone
  module a table measures; `profile` (exact MACs, params, size at bits);
- `build_supernet()` / `supernet.extract(config)`; `quantizable_layers(subnet)` for export.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from search_spaces.errors import InputError, bad_value
from search_spaces.registry import Registry
from search_spaces.schema import IndexSchema

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from torch import nn

    from search_spaces.block_spec import BlockSpec
    from search_spaces.profile import Profile


class FamilyConfig:
    """Base of every family's config type: a frozen dataclass with a `space` field, a `version`, per-layer
    `weight_bits` / `act_bits`, `n_blocks`, `replace`, `to_dict` / `from_dict` and `label`. What every config does
    alike lives here."""

    space: str
    version: ClassVar[int]
    weight_bits: tuple[int, ...]
    act_bits: tuple[int, ...]

    @property
    def n_blocks(self) -> int:  # pragma: no cover - every config type defines it
        raise NotImplementedError

    def replace(self, **changes: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def label(self) -> str:  # pragma: no cover
        """A short human-readable summary for tables (e.g. `r32 d23443 w4-32b`)."""
        raise NotImplementedError

    @property
    def is_quantized(self) -> bool:
        return any(b < 32 for b in self.weight_bits) or any(b < 32 for b in self.act_bits)

    def with_bits(self, weight_bits: int, act_bits: int) -> Any:
        """The same architecture with every block at one bit-width policy."""
        n = self.n_blocks
        return self.replace(weight_bits=(weight_bits,) * n, act_bits=(act_bits,) * n)

    def float_version(self) -> Any:
        return self.with_bits(32, 32)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, space: str | None = None) -> Any:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"config: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        return cls.from_dict(d, space=space)  # type: ignore[attr-defined]

    def check_bit_pairs(self) -> None:
        """Activations are quantized only where the layer's weights are (what every backend deploys)."""
        for i, (w, a) in enumerate(zip(self.weight_bits, self.act_bits)):
            if a < 32 <= w:
                raise InputError(f"act_bits[{i}]: got {a} with weight_bits[{i}]={w}, allowed: activations quantized "
                                 "only when the block's weights are too (weight_bits < 32)")

    @classmethod
    def dict_fields(cls, d: Mapping[str, Any], space: str | None, fields: Sequence[str],
                    what: str = "config") -> tuple[str, dict[str, Any]]:
        """(space, {field: value}) of a dict written by `to_dict`, naming a wrong version, an unknown key, a missing
        space or field."""
        if not isinstance(d, Mapping):
            raise bad_value("config", d, "a JSON object")
        version = d.get("version", cls.version)
        if version != cls.version:
            raise bad_value("version", version, f"{cls.version} (this hwnas reads {what} version {cls.version})")
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
        return sp, {k: d[k] for k in fields}


class Family(ABC):
    """One preset of a family: its choices and every view of them the other packages need."""

    family: ClassVar[str]  # the registered family name, e.g. "mbv3"
    config_type: ClassVar[type[FamilyConfig]]

    name: str  # the preset, e.g. "mbv3-tiny"
    spec: Any  # the preset's static description (a frozen dataclass with in_channels, num_classes, resolutions)

    # ---- choices and configs ---------------------------------------------------------------------------
    @abstractmethod
    def size(self, quantize: bool = True) -> int:
        """Number of distinct configurations (exact integer)."""

    @abstractmethod
    def sample(self, rng: np.random.Generator | int, quantize: bool = True) -> FamilyConfig: ...

    def sample_many(self, n: int, seed: int, quantize: bool = True) -> list[FamilyConfig]:
        rng = np.random.default_rng(seed)
        return [self.sample(rng, quantize=quantize) for _ in range(n)]

    @abstractmethod
    def largest(self, weight_bits: int = 32, act_bits: int = 32) -> FamilyConfig: ...

    @abstractmethod
    def smallest(self, weight_bits: int = 32, act_bits: int = 32) -> FamilyConfig: ...

    @abstractmethod
    def middle(self, resolution: int | None = None) -> FamilyConfig:
        """The middle choice everywhere, float: the reference model a latency table times between rounds."""

    bit_pairs: tuple[tuple[int, int], ...]  # the (weight bits, activation bits) policies a quantized layer takes

    @abstractmethod
    def suggest(self, trial: optuna.trial.BaseTrial, quantize: bool = True) -> FamilyConfig: ...

    @abstractmethod
    def config_from_params(self, params: Mapping[str, Any]) -> FamilyConfig: ...

    @abstractmethod
    def params_from_config(self, config: FamilyConfig, quantize: bool = True) -> dict[str, Any]: ...

    @abstractmethod
    def distributions(self, quantize: bool = True) -> dict[str, optuna.distributions.BaseDistribution]: ...

    # ---- a config from / to schema-ordered values: what the search encodings and genes use ------------------
    @abstractmethod
    def assemble(self, values: Mapping[str, Any], depths: Sequence[int],
                 layers: Sequence[Sequence[Any]]) -> FamilyConfig:
        """The config with these global values (field -> value, depths excluded), per-group depths and, for every
        active position in order, its values in `schema.position_fields` order."""

    @abstractmethod
    def disassemble(self, config: FamilyConfig) -> tuple[dict[str, Any], tuple[int, ...], list[tuple[Any, ...]]]:
        """The inverse of `assemble`."""

    def searched(self, field: str) -> tuple[Any, ...]:
        """The choices a search draws for `field`: the schema's, except where the space was restricted (the
        resolutions a latency table covers; the keep ratios, e.g. no pruning). Indices always use the schema's."""
        if field == "resolution":
            return tuple(getattr(self, "resolutions"))
        if field == "keep":
            return tuple(getattr(self, "keep_choices"))
        return self.schema.choices(field)

    def check(self, config: FamilyConfig) -> None:
        if not isinstance(config, self.config_type):
            raise bad_value("config", type(config).__name__, f"a {self.config_type.__name__}")
        if config.space != self.name:
            raise InputError(f"config.space: got {config.space!r}, allowed: {self.name!r} (this search space)")

    def config_from_dict(self, d: Mapping[str, Any]) -> FamilyConfig:
        return self.config_type.from_dict(d, space=self.name)  # type: ignore[attr-defined]

    # ---- the index schema and what derives from it -----------------------------------------------------------
    @property
    @abstractmethod
    def schema(self) -> IndexSchema: ...

    @abstractmethod
    def to_indices(self, configs: Iterable[FamilyConfig]) -> np.ndarray:
        """(n, schema.n_columns) int16 choice indices; -1 exactly where `schema.inert` says."""

    @abstractmethod
    def from_indices(self, indices: np.ndarray) -> list[FamilyConfig]: ...

    @property
    def n_index_columns(self) -> int:
        return self.schema.n_columns

    def index_columns(self) -> list[str]:
        return list(self.schema.names)

    def as_indices(self, configs: Sequence[FamilyConfig] | np.ndarray) -> np.ndarray:
        if isinstance(configs, np.ndarray):
            if configs.ndim != 2 or configs.shape[1] != self.n_index_columns:
                raise bad_value("indices shape", configs.shape, f"(n, {self.n_index_columns})")
            return configs
        return self.to_indices(configs)

    def encode(self, configs: Sequence[FamilyConfig] | np.ndarray, quant: bool = True) -> np.ndarray:
        """One-hot features for predictors, one block per schema column in order (all zero where inert); bit-width
        columns only with `quant`."""
        idx = self.as_indices(configs).astype(np.int64)
        cols = [c for c, col in enumerate(self.schema.columns) if quant or not col.quant]
        sizes = np.array([len(self.schema.columns[c].choices) for c in cols], dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # each kept column's first feature
        sel = idx[:, cols]
        out = np.zeros((idx.shape[0], int(sizes.sum())), dtype=np.float32)
        rows, which = np.nonzero(sel >= 0)
        out[rows, first[which] + sel[rows, which]] = 1.0
        return out

    def n_features(self, quant: bool = True) -> int:
        return sum(len(c.choices) for c in self.schema.columns if quant or not c.quant)

    # ---- blocks, profile, supernet ----------------------------------------------------------------------------
    @abstractmethod
    def blocks(self, config: FamilyConfig) -> list[BlockSpec]:
        """Every block of the subnet in execution order, bits included: the latency-table keys."""

    @abstractmethod
    def all_block_specs(self, resolutions: Iterable[int] | None = None, quantize: bool = True) -> list[BlockSpec]:
        """Every distinct block any config can contain (sorted): what a full latency table measures."""

    # what tables and the vectorised profile precompute: every block is a function of the context (the global
    # columns other than depths: resolution, embedding dim, ...) and, for a position, of that position's fields
    def context_columns(self) -> list[int]:
        sc = self.schema
        return [c for c in range(sc.n_global) if sc.columns[c].field != "depth"]

    @abstractmethod
    def fixed_blocks_at(self, context: Mapping[str, Any]) -> list[BlockSpec]:
        """The blocks every subnet of this context has (stem, head, ...)."""

    @abstractmethod
    def position_block(self, position: int, context: Mapping[str, Any], fields: Mapping[str, Any]) -> BlockSpec:
        """The block at elastic `position` with these per-position field values, in this context."""

    @abstractmethod
    def block_counts(self, block: BlockSpec) -> tuple[int, int, int]:
        """(MACs, weights stored at the block's weight bits, other parameters stored as float32) of one block."""

    @classmethod
    @abstractmethod
    def op_kinds(cls) -> Mapping[str, Callable[[BlockSpec, Any], nn.Module]]:
        """Op kind -> builder of a standalone float module of one block (random weights) given the block and the
        preset's spec: what a latency table exports and measures."""

    def build_block(self, block: BlockSpec) -> nn.Module:
        kinds = self.op_kinds()
        if block.op not in kinds:
            raise bad_value("block op", block.op, f"one of {', '.join(kinds)} (family {self.family})")
        return kinds[block.op](block, self.spec)

    @abstractmethod
    def profile(self, config: FamilyConfig) -> Profile:
        """Exact MACs, parameters and size in bytes (weights at their bits)."""

    @abstractmethod
    def input_shape(self, config: FamilyConfig, batch: int = 1) -> tuple[int, ...]: ...

    @abstractmethod
    def build_supernet(self) -> nn.Module:
        """The weight-sharing supernet: `set_active(config)`, `forward`, `extract(config)`, `sort_channels()`."""

    @staticmethod
    def quantizable_layers(subnet: nn.Module) -> dict[str, tuple[int, int]]:
        """Qualified module name -> (weight bits, act bits) of every quantized layer of an extracted subnet: the
        layers export quantizes."""
        return subnet.quant_policy()  # type: ignore[operator]


FAMILIES: Registry[type[Family]] = Registry("search-space family")
# preset name -> family name (the spec itself is in `presets.SPACE_SPECS`)
PRESET_FAMILY: dict[str, str] = {}


def register_preset(family: str, spec: Any) -> None:
    """Register a preset (a spec with a `name`) of a registered family."""
    from search_spaces.presets import SPACE_SPECS

    FAMILIES.get(family)
    SPACE_SPECS.register(spec.name, spec)
    PRESET_FAMILY[spec.name] = family


def family_of(preset: str) -> type[Family]:
    from search_spaces.presets import SPACE_SPECS

    SPACE_SPECS.get(preset)  # the unknown-name error lists the presets
    return FAMILIES.get(PRESET_FAMILY[preset])


def config_from_dict(d: Mapping[str, Any], space: str | None = None) -> FamilyConfig:
    """A config of any registered family from its JSON dict (the `space` key picks the family; Once-for-All dicts
    are mbv3's)."""
    if not isinstance(d, Mapping):
        raise bad_value("config", d, "a JSON object")
    name = d.get("space", space)
    if isinstance(name, str) and name in PRESET_FAMILY:
        return family_of(name).config_type.from_dict(d, space=space)  # type: ignore[attr-defined]
    from search_spaces.config import SubnetConfig

    return SubnetConfig.from_dict(d, space=space)  # its errors name the space and the keys
