"""`ViTFamily`: the vision-transformer family on the `Family` interface -- choices, sampling, Optuna, the index
schema, latency-table blocks, exact profiles and the supernet."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces.errors import InputError, bad_value
from search_spaces.family import Family
from search_spaces.profile import Profile
from search_spaces.schema import Column, DepthGroup, IndexSchema
from search_spaces.vit.blocks import ViTBlockSpec, build_vit_block
from search_spaces.vit.config import PER_LAYER, ViTConfig
from search_spaces.vit.spec import ViTSpec

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from search_spaces.vit.supernet import ViTSupernet

QUANT = ("weight_bits", "act_bits")


class ViTFamily(Family):
    family = "vit"
    config_type = ViTConfig

    def __init__(self, spec: ViTSpec, resolutions: Sequence[int] | None = None,
                 keep: Sequence[float] | None = None) -> None:
        self.spec, self.name = spec, spec.name
        if resolutions is not None and tuple(sorted(set(resolutions))) != spec.resolutions:
            raise bad_value("resolutions", list(resolutions), f"[{spec.image_size}] (vit presets have one)")
        self.resolutions: tuple[int, ...] = spec.resolutions
        kp = spec.keep_choices if keep is None else tuple(sorted({float(k) for k in keep}))
        if not kp or any(k not in spec.keep_choices for k in kp):
            raise bad_value("keep", list(keep or []), f"a non-empty subset of {set(spec.keep_choices)}")
        self.keep_choices: tuple[float, ...] = kp
        self._choices: dict[str, tuple[Any, ...]] = {
            "heads": spec.heads_choices, "mlp_ratio": spec.mlp_ratio_choices, "keep": spec.keep_choices,
            "weight_bits": spec.weight_bit_choices, "act_bits": spec.act_bit_choices}
        self.bit_pairs = tuple((w, a) for w in spec.weight_bit_choices for a in spec.act_bit_choices
                               if not (a < 32 <= w))
        cols = [Column("resolution", "resolution", spec.resolutions), Column("embed_dim", "embed_dim", spec.embed_choices),
                Column("depth", "depth", spec.depth_choices)]
        for p in range(spec.max_depth):
            cols += [Column(self._pname(f, p), f, self._choices[f], p, f in QUANT) for f in PER_LAYER]
        self._schema = IndexSchema(cols, [DepthGroup(2, tuple(range(spec.max_depth)))])

    def __repr__(self) -> str:
        return f"ViTFamily({self.name!r}, in_channels={self.spec.in_channels}, num_classes={self.spec.num_classes})"

    @staticmethod
    def _pname(field: str, layer: int) -> str:
        return f"{field}_l{layer}"

    def _searched(self, field: str) -> list[Any]:
        return list(self.keep_choices) if field == "keep" else list(self._choices[field])

    @property
    def schema(self) -> IndexSchema:
        return self._schema

    def size(self, quantize: bool = True) -> int:
        per = len(self.spec.heads_choices) * len(self.spec.mlp_ratio_choices) * len(self.keep_choices)
        per *= len(self.bit_pairs) if quantize else 1
        return len(self.spec.embed_choices) * sum(per**d for d in self.spec.depth_choices)

    # ---- configs ---------------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator | int, quantize: bool = True) -> ViTConfig:
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        s = self.spec
        embed = int(rng.choice(s.embed_choices))
        depth = int(rng.choice(s.depth_choices))
        pick = lambda ch: tuple(ch[i] for i in rng.integers(0, len(ch), depth))  # noqa: E731
        bits = [self.bit_pairs[i] for i in rng.integers(0, len(self.bit_pairs), depth)] if quantize else [(32, 32)] * depth
        return ViTConfig(self.name, embed, depth, pick(s.heads_choices), pick(s.mlp_ratio_choices),
                         pick(self.keep_choices), tuple(b[0] for b in bits), tuple(b[1] for b in bits))

    def _uniform(self, pick: Any, w: int, a: int) -> ViTConfig:
        s = self.spec
        d = pick(s.depth_choices)
        return ViTConfig(self.name, pick(s.embed_choices), d, (pick(s.heads_choices),) * d,
                         (pick(s.mlp_ratio_choices),) * d, (pick(self.keep_choices),) * d, (w,) * d, (a,) * d)

    def largest(self, weight_bits: int = 32, act_bits: int = 32) -> ViTConfig:
        return self._uniform(max, weight_bits, act_bits)

    def smallest(self, weight_bits: int = 32, act_bits: int = 32) -> ViTConfig:
        return self._uniform(min, weight_bits, act_bits)

    def middle(self, resolution: int | None = None) -> ViTConfig:
        """The middle choice everywhere, float: a latency table's reference model (one resolution)."""
        return self._uniform(lambda ch: sorted(ch)[(len(ch) - 1) // 2], 32, 32)

    # ---- Optuna ----------------------------------------------------------------------------------------------
    def suggest(self, trial: optuna.trial.BaseTrial, quantize: bool = True) -> ViTConfig:
        s = self.spec
        params: dict[str, Any] = {"resolution": trial.suggest_categorical("resolution", list(self.resolutions)),
                                  "embed_dim": trial.suggest_categorical("embed_dim", list(s.embed_choices))}
        d = params["depth"] = trial.suggest_categorical("depth", list(s.depth_choices))
        for i in range(d):
            for f in ("heads", "mlp_ratio", "keep"):
                params[self._pname(f, i)] = trial.suggest_categorical(self._pname(f, i), self._searched(f))
            if quantize:
                w = params[self._pname("weight_bits", i)] = trial.suggest_categorical(
                    self._pname("weight_bits", i), list(s.weight_bit_choices))
                if w < 32:
                    params[self._pname("act_bits", i)] = trial.suggest_categorical(
                        self._pname("act_bits", i), list(s.act_bit_choices))
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> ViTConfig:
        try:
            d = params["depth"]
            per = {f: tuple(params[self._pname(f, i)] for i in range(d)) for f in ("heads", "mlp_ratio", "keep")}
            per.update({f: tuple(params.get(self._pname(f, i), 32) for i in range(d)) for f in QUANT})
            return ViTConfig(self.name, params["embed_dim"], d, **per)
        except KeyError as e:
            raise InputError(f"trial params: missing {e.args[0]!r} for space {self.name}") from None

    def params_from_config(self, config: ViTConfig, quantize: bool = True) -> dict[str, Any]:
        self.check(config)
        p: dict[str, Any] = {"resolution": config.resolution, "embed_dim": config.embed_dim, "depth": config.depth}
        for i in range(config.depth):
            for f in ("heads", "mlp_ratio", "keep"):
                p[self._pname(f, i)] = getattr(config, f)[i]
            if config.weight_bits[i] < 32:
                if not quantize:
                    raise InputError(f"config: layer {i} is quantized but the study searches float subnets only")
                p[self._pname("weight_bits", i)] = config.weight_bits[i]
                p[self._pname("act_bits", i)] = config.act_bits[i]
            elif quantize:
                p[self._pname("weight_bits", i)] = 32
        return p

    def distributions(self, quantize: bool = True) -> dict[str, optuna.distributions.BaseDistribution]:
        from optuna.distributions import CategoricalDistribution as Cat

        s = self.spec
        dist: dict[str, Any] = {"resolution": Cat(list(self.resolutions)), "embed_dim": Cat(list(s.embed_choices)),
                                "depth": Cat(list(s.depth_choices))}
        for i in range(s.max_depth):
            for f in PER_LAYER if quantize else PER_LAYER[:3]:
                dist[self._pname(f, i)] = Cat(self._searched(f))
        return dist

    # ---- indices ---------------------------------------------------------------------------------------------
    def to_indices(self, configs: Iterable[ViTConfig]) -> np.ndarray:
        sc, s = self.schema, self.spec
        lookup = {f: {c: i for i, c in enumerate(ch)} for f, ch in self._choices.items()}
        rows = []
        for c in configs:
            self.check(c)
            row = np.full(sc.n_columns, -1, dtype=np.int16)
            row[sc.column("resolution")] = 0
            row[sc.column("embed_dim")] = s.embed_choices.index(c.embed_dim)
            row[sc.column("depth")] = s.depth_choices.index(c.depth)
            for p in range(c.depth):
                row[sc.position_columns[p]] = [lookup[f][getattr(c, f)[p]] for f in sc.position_fields]
            rows.append(row)
        return np.stack(rows) if rows else np.zeros((0, sc.n_columns), dtype=np.int16)

    def from_indices(self, indices: np.ndarray) -> list[ViTConfig]:
        sc, s = self.schema, self.spec
        out = []
        for row in np.asarray(indices):
            d = s.depth_choices[int(row[sc.column("depth")])]
            per = {f: tuple(self._choices[f][int(row[c])] for c in sc.field_columns(f)[:d]) for f in PER_LAYER}
            out.append(ViTConfig(self.name, s.embed_choices[int(row[sc.column("embed_dim")])], d, **per))
        return out

    # ---- blocks, profile, supernet ------------------------------------------------------------------------
    def fixed_blocks(self, embed: int) -> tuple[list[ViTBlockSpec], list[ViTBlockSpec]]:
        s = self.spec
        return ([ViTBlockSpec("vit-patch", s.tokens, embed, s.in_channels, s.patch, embed)],
                [ViTBlockSpec("vit-head", s.tokens, embed, 1, 1, s.num_classes)])

    def layer_block(self, embed: int, heads: int, mlp_ratio: float, keep: float, weight_bits: int = 32,
                    act_bits: int = 32) -> ViTBlockSpec:
        s = self.spec
        return ViTBlockSpec("vit-layer", s.tokens, embed, heads, s.head_dim, s.mlp_hidden(embed, mlp_ratio, keep),
                            weight_bits, act_bits)

    def blocks(self, config: ViTConfig) -> list[ViTBlockSpec]:
        self.check(config)
        before, after = self.fixed_blocks(config.embed_dim)
        layers = [self.layer_block(config.embed_dim, config.heads[j], config.mlp_ratio[j], config.keep[j],
                                   config.weight_bits[j], config.act_bits[j]) for j in range(config.depth)]
        return before + layers + after

    def all_block_specs(self, resolutions: Iterable[int] | None = None, quantize: bool = True) -> list[ViTBlockSpec]:
        s = self.spec
        if resolutions is not None and any(r != s.image_size for r in resolutions):
            raise bad_value("resolutions", list(resolutions), f"[{s.image_size}]")
        pairs = self.bit_pairs if quantize else ((32, 32),)
        out: set[ViTBlockSpec] = set()
        for e in s.embed_choices:
            before, after = self.fixed_blocks(e)
            out.update(before + after)
            out.update(self.layer_block(e, h, r, k, w, a) for h in s.heads_choices for r in s.mlp_ratio_choices
                       for k in s.keep_choices for w, a in pairs)
        return sorted(out)

    def assemble(self, values: Mapping[str, Any], depths: Sequence[int],
                 layers: Sequence[Sequence[Any]]) -> ViTConfig:
        cols = list(zip(*layers)) if layers else [()] * len(PER_LAYER)
        return ViTConfig(self.name, values["embed_dim"], depths[0], *[tuple(c) for c in cols])

    def disassemble(self, config: ViTConfig) -> tuple[dict[str, Any], tuple[int, ...], list[tuple[Any, ...]]]:
        return ({"resolution": config.resolution, "embed_dim": config.embed_dim}, (config.depth,),
                list(zip(config.heads, config.mlp_ratio, config.keep, config.weight_bits, config.act_bits)))

    def fixed_blocks_at(self, context: Mapping[str, Any]) -> list[ViTBlockSpec]:
        before, after = self.fixed_blocks(context["embed_dim"])
        return before + after

    def position_block(self, position: int, context: Mapping[str, Any], fields: Mapping[str, Any]) -> ViTBlockSpec:
        return self.layer_block(context["embed_dim"], **fields)

    def block_counts(self, block: ViTBlockSpec) -> tuple[int, int, int]:
        return block.counts()

    @classmethod
    def op_kinds(cls) -> dict[str, Any]:
        return {op: build_vit_block for op in ("vit-patch", "vit-layer", "vit-head")}

    def profile(self, config: ViTConfig) -> Profile:
        """Exact MACs (linear layers, the patch projection and the two attention matmuls; LayerNorm, softmax and
        GELU not counted, as BatchNorm and activations are not in mbv3), every parameter, size at bits."""
        macs = params = bits = 0
        for b in self.blocks(config):
            m, q, o = self.block_counts(b)
            macs, params, bits = macs + m, params + q + o, bits + q * b.weight_bits + o * 32
        return Profile(macs=macs, params=params, size_bytes=-(-bits // 8))

    def input_shape(self, config: ViTConfig, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.spec.in_channels, self.spec.image_size, self.spec.image_size)

    def build_supernet(self) -> ViTSupernet:
        from search_spaces.vit.supernet import ViTSupernet

        return ViTSupernet(self.spec)
