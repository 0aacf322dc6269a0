"""`SubnetConfig`: one candidate of a search space -- architecture, channel pruning and per-block bit-widths.

Frozen, hashable, JSON round-trippable and validated on construction against its space's choices. Per-block
fields list the *active* blocks only (stage-major, `sum(depths)` entries), so two configs that build the same
network are equal; Once-for-All's padded 20-entry format is converted by `from_ofa` / `to_ofa`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces.errors import InputError, bad_value
from search_spaces.family import FamilyConfig
from search_spaces.spec import SpaceSpec

CONFIG_VERSION = 1
_PER_BLOCK = ("kernel", "expand", "keep", "weight_bits", "act_bits")


def _choices_text(choices: Sequence[object]) -> str:
    return "{" + ", ".join(str(c) for c in choices) + "}"


def _match_choice(field: str, value: object, choices: Sequence[Any]) -> Any:
    """Return the choice equal to `value` (so 3.0 becomes 3), or raise naming the field and the choices."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_value(field, value, f"one of {_choices_text(choices)}")
    for c in choices:
        if value == c:
            return c
    raise bad_value(field, value, f"one of {_choices_text(choices)}")


_PLAIN_NUMBERS = {int, float}


def _match_all(field: str, values: tuple[Any, ...], choices: dict[Any, Any]) -> tuple[Any, ...]:
    """`_match_choice` of every value (`field[i]` in the error); where all are plain ints and floats, a dict lookup
    per value (numbers hash by value, so 3.0 finds 3), which is what makes building the search's many configs
    cheap. Anything else (bools, numpy scalars, strings) takes `_match_choice`'s checks."""
    if set(map(type, values)) <= _PLAIN_NUMBERS:
        try:
            return tuple(map(choices.__getitem__, values))
        except KeyError:
            pass
    return tuple(_match_choice(f"{field}[{i}]", v, tuple(choices)) for i, v in enumerate(values))


_ALLOWED: dict[int, tuple[SpaceSpec, dict[str, dict[Any, Any]]]] = {}


def _allowed(spec: SpaceSpec) -> dict[str, dict[Any, Any]]:
    """Each per-block field's choices of `spec`, as {choice: choice} (cached per spec object)."""
    hit = _ALLOWED.get(id(spec))
    if hit is None or hit[0] is not spec:
        choices = {"kernel": spec.kernel_choices, "expand": spec.expand_choices, "keep": spec.keep_choices,
                   "weight_bits": spec.weight_bit_choices, "act_bits": spec.act_bit_choices}
        hit = _ALLOWED[id(spec)] = (spec, {f: {c: c for c in ch} for f, ch in choices.items()})
    return hit[1]


def _as_tuple(field: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise bad_value(field, value, "a list")
    return tuple(value)


@dataclass(frozen=True)
class SubnetConfig(FamilyConfig):
    """One subnet: resolution, per-stage depth, and per active block kernel / expand / keep / bits."""

    space: str
    resolution: int
    depths: tuple[int, ...]
    kernel: tuple[int, ...]
    expand: tuple[int, ...]
    keep: tuple[float, ...]
    weight_bits: tuple[int, ...]
    act_bits: tuple[int, ...]

    version: ClassVar[int] = CONFIG_VERSION

    def __post_init__(self) -> None:
        spec = self.spec
        set_ = object.__setattr__
        set_(self, "resolution", _match_choice("resolution", self.resolution, spec.resolutions))
        depths = _as_tuple("depths", self.depths)
        if len(depths) != spec.n_stages:
            raise bad_value("depths", list(depths), f"a list of {spec.n_stages} stage depths")
        set_(self, "depths", tuple(_match_choice(f"depths[{i}]", d, spec.depth_choices) for i, d in enumerate(depths)))
        n = sum(self.depths)
        allowed = _allowed(spec)
        for name in _PER_BLOCK:
            values = _as_tuple(name, getattr(self, name))
            if len(values) != n:
                raise bad_value(name, list(values), f"one value per active block: {n} (the sum of depths)")
            set_(self, name, _match_all(name, values, allowed[name]))
        self.check_bit_pairs()

    # ---- the space ---------------------------------------------------------------------------------
    @property
    def spec(self) -> SpaceSpec:
        from search_spaces.presets import SPACE_SPECS

        if not isinstance(self.space, str):
            raise bad_value("space", self.space, f"one of {', '.join(SPACE_SPECS.names())}")
        return SPACE_SPECS.get(self.space)

    @property
    def n_blocks(self) -> int:
        return sum(self.depths)

    def active_positions(self) -> list[int]:
        """Elastic block positions (stage * max_depth + index) of the active blocks, in order."""
        md = self.spec.max_depth
        return [s * md + i for s, d in enumerate(self.depths) for i in range(d)]

    def label(self) -> str:
        return f"r{self.resolution} d{''.join(map(str, self.depths))} w{min(self.weight_bits)}-{max(self.weight_bits)}b"

    def replace(self, **changes: Any) -> SubnetConfig:
        return dataclasses.replace(self, **changes)

    # ---- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"version": self.version, "space": self.space, "resolution": self.resolution}
        d["depths"] = list(self.depths)
        for name in _PER_BLOCK:
            d[name] = list(getattr(self, name))
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], space: str | None = None) -> SubnetConfig:
        """Parse a dict written by `to_dict`, or a Once-for-All dict (keys ks/e/d/r), naming any bad key."""
        if not isinstance(d, Mapping):
            raise bad_value("config", d, "a JSON object")
        if "ks" in d or "e" in d or ("d" in d and "depths" not in d):
            return cls.from_ofa(d, space=space or str(d.get("space", "mbv3")))
        sp, values = cls.dict_fields(d, space, ("resolution", "depths", *_PER_BLOCK))
        return cls(space=sp, **values)

    # ---- Once-for-All format ------------------------------------------------------------------------
    @classmethod
    def from_ofa(cls, d: Mapping[str, Any], space: str = "mbv3") -> SubnetConfig:
        """Read OFA's `{"ks": [20], "e": [20], "d": [5], "r": 224}` (or `image_size`); float, unpruned."""
        from search_spaces.presets import SPACE_SPECS

        spec = SPACE_SPECS.get(space)
        unknown = sorted(set(d) - {"ks", "e", "d", "r", "image_size", "space", "w"})
        if unknown:
            raise bad_value(f"OFA config key {unknown[0]!r}", d[unknown[0]], "keys ks, e, d, r (or image_size)")
        for key in ("ks", "e", "d"):
            if key not in d:
                raise InputError(f"{key}: missing from the Once-for-All config (needs ks, e, d and r)")
        r = d.get("r", d.get("image_size"))
        if r is None:
            raise InputError("r: missing from the Once-for-All config (or give image_size)")
        if isinstance(r, Sequence) and not isinstance(r, str):  # OFA sometimes stores [224]
            r = r[0] if len(r) == 1 else r
        ks, e, depths = _as_tuple("ks", d["ks"]), _as_tuple("e", d["e"]), _as_tuple("d", d["d"])
        n_pos = spec.n_positions
        for key, values in (("ks", ks), ("e", e)):
            if len(values) != n_pos:
                raise bad_value(key, list(values), f"a list of {n_pos} values (one per block position)")
        if len(depths) != spec.n_stages:
            raise bad_value("d", list(depths), f"a list of {spec.n_stages} stage depths")
        for i, dep in enumerate(depths):
            _match_choice(f"d[{i}]", dep, spec.depth_choices)
        md = spec.max_depth
        pos = [s * md + i for s, dep in enumerate(depths) for i in range(int(dep))]
        n = len(pos)
        return cls(
            space=space,
            resolution=r,
            depths=depths,
            kernel=tuple(ks[p] for p in pos),
            expand=tuple(e[p] for p in pos),
            keep=(1.0,) * n,
            weight_bits=(32,) * n,
            act_bits=(32,) * n,
        )

    def to_ofa(self) -> dict[str, Any]:
        """OFA's padded format (inactive positions get the smallest choice); pruning and bits are dropped."""
        spec = self.spec
        ks = [min(spec.kernel_choices)] * spec.n_positions
        e = [min(spec.expand_choices)] * spec.n_positions
        for j, p in enumerate(self.active_positions()):
            ks[p], e[p] = self.kernel[j], self.expand[j]
        return {"ks": ks, "e": e, "d": list(self.depths), "r": self.resolution}
