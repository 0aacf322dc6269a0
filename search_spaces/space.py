"""`SearchSpace`: the choices of one registered space and every view of them the other packages need --
sampling, Optuna suggestion, integer and one-hot encodings, latency-table block keys, exact profiles and the
supernet."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces.block_spec import BlockSpec
from search_spaces.config import SubnetConfig
from search_spaces.errors import InputError, bad_value
from search_spaces.family import FAMILIES, PRESET_FAMILY, Family, family_of
from search_spaces.presets import MBV3_PRESETS, SPACE_SPECS, get_spec
from search_spaces.schema import Column, DepthGroup, IndexSchema
from search_spaces.spec import SpaceSpec

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from search_spaces.profile import Profile
    from search_spaces.supernet import Supernet

# per elastic position, in this order, in `to_indices` / `encode`
ELASTIC_FIELDS = ("kernel", "expand", "keep", "weight_bits", "act_bits")


class SearchSpace(Family):
    """The `mbv3` family: one Once-for-All MobileNetV3 weight-sharing space. Configs are `SubnetConfig`s; batched
    views are numpy arrays."""

    family = "mbv3"
    config_type = SubnetConfig

    def __init__(self, spec: SpaceSpec, resolutions: Sequence[int] | None = None,
                 keep: Sequence[float] | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        # the resolutions sampled and suggested (e.g. those a latency table covers); encodings always use all
        # of the spec's choices so predictors and tables stay valid for every restriction
        if resolutions is None:
            self.resolutions: tuple[int, ...] = spec.resolutions
        else:
            res = tuple(sorted(set(resolutions)))
            bad = [r for r in res if r not in spec.resolutions]
            if not res or bad:
                raise bad_value("resolutions", list(resolutions),
                                f"a non-empty subset of {{{', '.join(map(str, spec.resolutions))}}}")
            self.resolutions = res
        # the keep ratios searched (`keep=(1.0,)`: no channel pruning); encodings use all of the spec's, as above
        if keep is None:
            self.keep_choices: tuple[float, ...] = spec.keep_choices
        else:
            kp = tuple(sorted({float(k) for k in keep}))
            if not kp or any(k not in spec.keep_choices for k in kp):
                raise bad_value("keep", list(keep), f"a non-empty subset of {{{', '.join(map(str, spec.keep_choices))}}}")
            self.keep_choices = kp
        self._choices: dict[str, tuple[Any, ...]] = {
            "kernel": spec.kernel_choices,
            "expand": spec.expand_choices,
            "keep": spec.keep_choices,
            "weight_bits": spec.weight_bit_choices,
            "act_bits": spec.act_bit_choices,
        }
        self.bit_pairs: tuple[tuple[int, int], ...] = tuple(
            (w, a) for w in spec.weight_bit_choices for a in spec.act_bit_choices if not (a < 32 <= w)
        )
        self._hw_cache: dict[int, list[int]] = {}
        self._schema = self._make_schema()

    def __repr__(self) -> str:
        return (f"SearchSpace({self.name!r}, in_channels={self.spec.in_channels}, num_classes={self.spec.num_classes}, "
                f"resolutions={list(self.resolutions)})")

    # ---- size --------------------------------------------------------------------------------------
    def size(self, quantize: bool = True) -> int:
        """Number of distinct configurations (exact integer)."""
        s = self.spec
        per_block = len(s.kernel_choices) * len(s.expand_choices) * len(s.keep_choices)
        per_block *= len(self.bit_pairs) if quantize else 1
        per_stage = sum(per_block**d for d in s.depth_choices)
        return len(self.resolutions) * per_stage**s.n_stages

    # ---- sampling --------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator | int, quantize: bool = True) -> SubnetConfig:
        """A uniformly random config; with `quantize=False` every block stays float (32 bits)."""
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        s = self.spec
        depths = tuple(int(rng.choice(s.depth_choices)) for _ in range(s.n_stages))
        n = sum(depths)
        pick = lambda choices: tuple(choices[i] for i in rng.integers(0, len(choices), n))  # noqa: E731
        bits = [self.bit_pairs[i] for i in rng.integers(0, len(self.bit_pairs), n)] if quantize else [(32, 32)] * n
        return SubnetConfig(
            space=self.name,
            resolution=self.resolutions[int(rng.integers(len(self.resolutions)))],
            depths=depths,
            kernel=pick(s.kernel_choices),
            expand=pick(s.expand_choices),
            keep=pick(self.keep_choices),
            weight_bits=tuple(b[0] for b in bits),
            act_bits=tuple(b[1] for b in bits),
        )

    def _uniform(self, depth: int, resolution: int, kernel: int, expand: int, keep: float, w: int, a: int) -> SubnetConfig:
        n = depth * self.spec.n_stages
        return SubnetConfig(self.name, resolution, (depth,) * self.spec.n_stages, (kernel,) * n, (expand,) * n,
                            (keep,) * n, (w,) * n, (a,) * n)

    def largest(self, weight_bits: int = 32, act_bits: int = 32) -> SubnetConfig:
        s = self.spec
        return self._uniform(max(s.depth_choices), max(self.resolutions), max(s.kernel_choices),
                             max(s.expand_choices), max(self.keep_choices), weight_bits, act_bits)

    def smallest(self, weight_bits: int = 32, act_bits: int = 32) -> SubnetConfig:
        s = self.spec
        return self._uniform(min(s.depth_choices), min(self.resolutions), min(s.kernel_choices),
                             min(s.expand_choices), min(self.keep_choices), weight_bits, act_bits)

    def middle(self, resolution: int | None = None) -> SubnetConfig:
        """The middle depth, kernel, expand and keep choice everywhere, float (a latency table's reference)."""
        s = self.spec
        mid = lambda choices: sorted(choices)[(len(choices) - 1) // 2]  # noqa: E731
        res = mid(self.resolutions) if resolution is None else resolution
        return self._uniform(mid(s.depth_choices), res, mid(s.kernel_choices), mid(s.expand_choices),
                             mid(s.keep_choices), 32, 32)

    # ---- Optuna --------------------------------------------------------------------------------------
    @staticmethod
    def _pname(field: str, stage: int, index: int) -> str:
        return f"{field}_s{stage}b{index}"

    def suggest(self, trial: optuna.trial.BaseTrial, quantize: bool = True) -> SubnetConfig:
        """Define the joint parameters on an Optuna trial. Blocks beyond a stage's depth are not suggested, and
        activation bits only when the block's weights are quantized, so samplers see no dead parameters."""
        s = self.spec
        params: dict[str, Any] = {"resolution": trial.suggest_categorical("resolution", list(self.resolutions))}
        for st in range(s.n_stages):
            d = trial.suggest_categorical(f"depth_s{st}", list(s.depth_choices))
            params[f"depth_s{st}"] = d
            for i in range(d):
                for f in ("kernel", "expand", "keep"):
                    params[self._pname(f, st, i)] = trial.suggest_categorical(self._pname(f, st, i), self._searched(f))
                if quantize:
                    w = trial.suggest_categorical(self._pname("weight_bits", st, i), list(s.weight_bit_choices))
                    params[self._pname("weight_bits", st, i)] = w
                    if w < 32:
                        a = trial.suggest_categorical(self._pname("act_bits", st, i), list(s.act_bit_choices))
                        params[self._pname("act_bits", st, i)] = a
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> SubnetConfig:
        """The config of an Optuna trial's params (missing bits mean float)."""
        s = self.spec
        try:
            depths = tuple(params[f"depth_s{st}"] for st in range(s.n_stages))
            fields: dict[str, list[Any]] = {f: [] for f in ELASTIC_FIELDS}
            for st, d in enumerate(depths):
                for i in range(d):
                    for f in ("kernel", "expand", "keep"):
                        fields[f].append(params[self._pname(f, st, i)])
                    fields["weight_bits"].append(params.get(self._pname("weight_bits", st, i), 32))
                    fields["act_bits"].append(params.get(self._pname("act_bits", st, i), 32))
            return SubnetConfig(self.name, params["resolution"], depths, **{f: tuple(v) for f, v in fields.items()})
        except KeyError as e:
            raise InputError(f"trial params: missing {e.args[0]!r} for space {self.name}") from None

    def params_from_config(self, config: SubnetConfig, quantize: bool = True) -> dict[str, Any]:
        """Inverse of `config_from_params` (for `enqueue_trial` and `create_trial`); `quantize` as in `suggest`."""
        self.check(config)
        p: dict[str, Any] = {"resolution": config.resolution}
        j = 0
        for st, d in enumerate(config.depths):
            p[f"depth_s{st}"] = d
            for i in range(d):
                for f in ("kernel", "expand", "keep"):
                    p[self._pname(f, st, i)] = getattr(config, f)[j]
                if config.weight_bits[j] < 32:
                    if not quantize:
                        raise InputError(f"config: block {j} is quantized but the study searches float subnets only")
                    p[self._pname("weight_bits", st, i)] = config.weight_bits[j]
                    p[self._pname("act_bits", st, i)] = config.act_bits[j]
                elif quantize:
                    p[self._pname("weight_bits", st, i)] = 32
                j += 1
        return p

    def distributions(self, quantize: bool = True) -> dict[str, optuna.distributions.BaseDistribution]:
        """Every parameter `suggest` may define, with its Optuna distribution."""
        from optuna.distributions import CategoricalDistribution as Cat

        s = self.spec
        dist: dict[str, Any] = {"resolution": Cat(list(self.resolutions))}
        for st in range(s.n_stages):
            dist[f"depth_s{st}"] = Cat(list(s.depth_choices))
            for i in range(s.max_depth):
                fields = ELASTIC_FIELDS if quantize else ELASTIC_FIELDS[:3]
                for f in fields:
                    dist[self._pname(f, st, i)] = Cat(self._searched(f))
        return dist

    def _searched(self, field: str) -> list[Any]:
        return list(self.keep_choices) if field == "keep" else list(self._choices[field])

    # ---- the index schema ------------------------------------------------------------------------------
    def _make_schema(self) -> IndexSchema:
        """resolution, depth per stage, then each of `ELASTIC_FIELDS` per elastic position (stage-major);
        encodings always use all of the spec's choices so predictors and tables stay valid for every restriction."""
        s = self.spec
        cols = [Column("resolution", "resolution", s.resolutions)]
        cols += [Column(f"depth_s{st}", "depth", s.depth_choices) for st in range(s.n_stages)]
        for p in range(s.n_positions):
            st, i = s.position_stage(p)
            cols += [Column(self._pname(f, st, i), f, self._choices[f], p, f in ("weight_bits", "act_bits"))
                     for f in ELASTIC_FIELDS]
        groups = [DepthGroup(1 + st, tuple(st * s.max_depth + i for i in range(s.max_depth)))
                  for st in range(s.n_stages)]
        return IndexSchema(cols, groups)

    @property
    def schema(self) -> IndexSchema:
        return self._schema

    def to_indices(self, configs: Iterable[SubnetConfig]) -> np.ndarray:
        """(n, n_index_columns) int16 choice indices; -1 marks an inactive position. The compact form that
        latency tables and predictors consume in bulk."""
        sc = self.schema
        lookup = {f: {c: i for i, c in enumerate(ch)} for f, ch in self._choices.items()}
        res_ix = {r: i for i, r in enumerate(sc.choices("resolution"))}
        dep_ix = {d: i for i, d in enumerate(sc.choices("depth"))}
        depth_cols = [g.depth_column for g in sc.groups]
        rows = []
        for c in configs:
            self.check(c)
            row = np.full(self.n_index_columns, -1, dtype=np.int16)
            row[sc.column("resolution")] = res_ix[c.resolution]
            row[depth_cols] = [dep_ix[d] for d in c.depths]
            for j, p in enumerate(c.active_positions()):
                row[sc.position_columns[p]] = [lookup[f][getattr(c, f)[j]] for f in sc.position_fields]
            rows.append(row)
        if not rows:
            return np.zeros((0, self.n_index_columns), dtype=np.int16)
        return np.stack(rows)

    def from_indices(self, indices: np.ndarray) -> list[SubnetConfig]:
        sc = self.schema
        res = sc.choices("resolution")
        out = []
        for row in np.asarray(indices):
            depths = tuple(sc.depth_values(gi)[int(row[g.depth_column])] for gi, g in enumerate(sc.groups))
            fields: dict[str, list[Any]] = {f: [] for f in sc.position_fields}
            for g, d in zip(sc.groups, depths):
                for p in g.positions[:d]:
                    for f, c in zip(sc.position_fields, sc.position_columns[p]):
                        fields[f].append(self._choices[f][int(row[c])])
            out.append(SubnetConfig(self.name, res[int(row[sc.column("resolution")])], depths,
                                    **{f: tuple(v) for f, v in fields.items()}))
        return out

    # ---- blocks (latency-table keys) -------------------------------------------------------------------
    def _stage_hw(self, resolution: int) -> list[int]:
        """Input size of each stage's first block; the last entry is the size after the last stage."""
        if resolution not in self._hw_cache:
            s = self.spec
            hw = s.spatial_after(s.spatial_after(resolution, s.stem_stride), s.first_block_stride)
            sizes = [hw]
            for st in s.stages:
                hw = s.spatial_after(hw, st.stride)
                sizes.append(hw)
            self._hw_cache[resolution] = sizes
        return self._hw_cache[resolution]

    def elastic_block(self, position: int, resolution: int, kernel: int, expand: int, keep: float,
                      weight_bits: int = 32, act_bits: int = 32) -> BlockSpec:
        """The block at elastic `position` with these choices, as it runs at `resolution`."""
        s = self.spec
        st, i = s.position_stage(position)
        stage = s.stages[st]
        hw = self._stage_hw(resolution)
        in_ch = s.stage_in_width(st) if i == 0 else stage.width
        return BlockSpec(
            op="mbconv", in_hw=hw[st] if i == 0 else hw[st + 1], in_ch=in_ch,
            hidden=s.hidden_channels(in_ch, expand, keep), out_ch=stage.width, kernel=kernel,
            stride=stage.stride if i == 0 else 1, act=stage.act, se=stage.se,
            weight_bits=weight_bits, act_bits=act_bits,
        )

    def fixed_blocks(self, resolution: int) -> tuple[list[BlockSpec], list[BlockSpec]]:
        """(blocks before the elastic stages, blocks after them) at `resolution`; always float."""
        s = self.spec
        stem_hw = s.spatial_after(resolution, s.stem_stride)
        last_hw = self._stage_hw(resolution)[-1]
        before = [
            BlockSpec("conv", resolution, s.in_channels, s.stem_width, s.stem_width, 3, s.stem_stride, s.stem_act, False),
            BlockSpec("dsconv", stem_hw, s.stem_width, s.stem_width, s.first_block_width, 3, s.first_block_stride,
                      s.first_block_act, False),
        ]
        last_w = s.stages[-1].width
        after = [
            BlockSpec("conv", last_hw, last_w, s.final_expand_width, s.final_expand_width, 1, 1, s.head_act, False),
            BlockSpec("head", last_hw, s.final_expand_width, s.feature_mix_width, s.num_classes, 1, 1, s.head_act, False),
        ]
        return before, after

    def blocks(self, config: SubnetConfig) -> list[BlockSpec]:
        """Every block of the subnet in execution order, bits included: the latency-table keys."""
        self.check(config)
        before, after = self.fixed_blocks(config.resolution)
        elastic = [
            self.elastic_block(p, config.resolution, config.kernel[j], config.expand[j], config.keep[j],
                               config.weight_bits[j], config.act_bits[j])
            for j, p in enumerate(config.active_positions())
        ]
        return before + elastic + after

    def all_block_specs(self, resolutions: Iterable[int] | None = None, quantize: bool = True) -> list[BlockSpec]:
        """Every distinct block any config at these resolutions can contain (sorted, deduplicated)."""
        s = self.spec
        res_list = list(s.resolutions if resolutions is None else resolutions)
        for r in res_list:
            if r not in s.resolutions:
                raise bad_value("resolutions", r, f"one of {{{', '.join(map(str, s.resolutions))}}}")
        pairs = self.bit_pairs if quantize else ((32, 32),)
        out: set[BlockSpec] = set()
        for r in res_list:
            before, after = self.fixed_blocks(r)
            out.update(before + after)
            for p in range(s.n_positions):
                for k in s.kernel_choices:
                    for e in s.expand_choices:
                        for kp in s.keep_choices:
                            for w, a in pairs:
                                out.add(self.elastic_block(p, r, k, e, kp, w, a))
        return sorted(out)

    # ---- profile, supernet -------------------------------------------------------------------------------
    def profile(self, config: SubnetConfig) -> Profile:
        """Exact MACs, parameters and size in bytes (weights at their bits), as Once-for-All counts them."""
        from search_spaces.profile import profile_blocks

        return profile_blocks(self.blocks(config), self.spec)

    def input_shape(self, config: SubnetConfig, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.spec.in_channels, config.resolution, config.resolution)

    def build_supernet(self) -> Supernet:
        from search_spaces.supernet import Supernet

        return Supernet(self.spec)

    def assemble(self, values: Mapping[str, Any], depths: Sequence[int],
                 layers: Sequence[Sequence[Any]]) -> SubnetConfig:
        cols = list(zip(*layers)) if layers else [()] * len(ELASTIC_FIELDS)
        return SubnetConfig(self.name, values["resolution"], tuple(depths), *[tuple(c) for c in cols])

    def disassemble(self, config: SubnetConfig) -> tuple[dict[str, Any], tuple[int, ...], list[tuple[Any, ...]]]:
        return ({"resolution": config.resolution}, config.depths,
                list(zip(config.kernel, config.expand, config.keep, config.weight_bits, config.act_bits)))

    def fixed_blocks_at(self, context: Mapping[str, Any]) -> list[BlockSpec]:
        before, after = self.fixed_blocks(context["resolution"])
        return before + after

    def position_block(self, position: int, context: Mapping[str, Any], fields: Mapping[str, Any]) -> BlockSpec:
        return self.elastic_block(position, context["resolution"], **fields)

    def block_counts(self, block: BlockSpec) -> tuple[int, int, int]:
        from search_spaces.profile import block_counts

        c = block_counts(block, self.spec)
        return c.macs, c.quantizable, c.other

    @classmethod
    def op_kinds(cls) -> dict[str, Any]:
        from search_spaces.layers import build_block

        return {op: build_block for op in ("conv", "dsconv", "mbconv", "head")}


FAMILIES.register("mbv3", SearchSpace)
PRESET_FAMILY.update({preset: "mbv3" for preset in MBV3_PRESETS})  # their specs: `presets.py`


def get_space(name: str, num_classes: int | None = None, in_channels: int | None = None,
              resolutions: Sequence[int] | None = None, keep: Sequence[float] | None = None) -> Any:
    """The registered space `name`, optionally with another class / input channel count (a data set's) and
    searching only some of its resolutions (e.g. those a latency table was built for) and keep ratios."""
    return family_of(name)(get_spec(name, num_classes=num_classes, in_channels=in_channels),  # type: ignore[call-arg]
                           resolutions=resolutions, keep=keep)


def list_spaces() -> list[str]:
    return SPACE_SPECS.names()


def space_of(config: SubnetConfig) -> Family:
    return get_space(config.space)


