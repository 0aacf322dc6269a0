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
from search_spaces.presets import SPACE_SPECS, get_spec
from search_spaces.spec import SpaceSpec

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from search_spaces.profile import Profile
    from search_spaces.supernet import Supernet

# per elastic position, in this order, in `to_indices` / `encode`
ELASTIC_FIELDS = ("kernel", "expand", "keep", "weight_bits", "act_bits")


class SearchSpace:
    """One weight-sharing space. Configs are `SubnetConfig`s; batched views are numpy arrays."""

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

    def sample_many(self, n: int, seed: int, quantize: bool = True) -> list[SubnetConfig]:
        rng = np.random.default_rng(seed)
        return [self.sample(rng, quantize=quantize) for _ in range(n)]

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

    # ---- batched encodings -----------------------------------------------------------------------------
    @property
    def n_index_columns(self) -> int:
        return 1 + self.spec.n_stages + len(ELASTIC_FIELDS) * self.spec.n_positions

    def index_columns(self) -> list[str]:
        """Names of the `to_indices` columns: resolution, depth per stage, then each field per position."""
        cols = ["resolution"] + [f"depth_s{st}" for st in range(self.spec.n_stages)]
        for p in range(self.spec.n_positions):
            st, i = self.spec.position_stage(p)
            cols += [self._pname(f, st, i) for f in ELASTIC_FIELDS]
        return cols

    def check(self, config: SubnetConfig) -> None:
        if not isinstance(config, SubnetConfig):
            raise bad_value("config", type(config).__name__, "a SubnetConfig")
        if config.space != self.name:
            raise InputError(f"config.space: got {config.space!r}, allowed: {self.name!r} (this search space)")

    def to_indices(self, configs: Iterable[SubnetConfig]) -> np.ndarray:
        """(n, n_index_columns) int16 choice indices; -1 marks an inactive position. The compact form that
        latency tables and predictors consume in bulk."""
        s = self.spec
        lookup = {f: {c: i for i, c in enumerate(ch)} for f, ch in self._choices.items()}
        res_ix = {r: i for i, r in enumerate(s.resolutions)}
        dep_ix = {d: i for i, d in enumerate(s.depth_choices)}
        rows = []
        nf = len(ELASTIC_FIELDS)
        for c in configs:
            self.check(c)
            row = np.full(self.n_index_columns, -1, dtype=np.int16)
            row[0] = res_ix[c.resolution]
            row[1 : 1 + s.n_stages] = [dep_ix[d] for d in c.depths]
            base = 1 + s.n_stages
            for j, p in enumerate(c.active_positions()):
                o = base + p * nf
                row[o : o + nf] = [lookup[f][getattr(c, f)[j]] for f in ELASTIC_FIELDS]
            rows.append(row)
        if not rows:
            return np.zeros((0, self.n_index_columns), dtype=np.int16)
        return np.stack(rows)

    def from_indices(self, indices: np.ndarray) -> list[SubnetConfig]:
        s = self.spec
        nf = len(ELASTIC_FIELDS)
        out = []
        for row in np.asarray(indices):
            depths = tuple(s.depth_choices[int(i)] for i in row[1 : 1 + s.n_stages])
            fields: dict[str, list[Any]] = {f: [] for f in ELASTIC_FIELDS}
            for st, d in enumerate(depths):
                for i in range(d):
                    o = 1 + s.n_stages + (st * s.max_depth + i) * nf
                    for k, f in enumerate(ELASTIC_FIELDS):
                        fields[f].append(self._choices[f][int(row[o + k])])
            out.append(SubnetConfig(self.name, s.resolutions[int(row[0])], depths,
                                    **{f: tuple(v) for f, v in fields.items()}))
        return out

    def as_indices(self, configs: Sequence[SubnetConfig] | np.ndarray) -> np.ndarray:
        """`to_indices(configs)`, or an index matrix passed through once its shape is checked."""
        if isinstance(configs, np.ndarray):
            if configs.ndim != 2 or configs.shape[1] != self.n_index_columns:
                raise bad_value("indices shape", configs.shape, f"(n, {self.n_index_columns})")
            return configs
        return self.to_indices(configs)

    def encode(self, configs: Sequence[SubnetConfig] | np.ndarray, quant: bool = True) -> np.ndarray:
        """One-hot features for predictors: resolution, depth per stage, and per position kernel / expand /
        keep (all zero when inactive); with `quant`, weight and activation bits per position too."""
        idx = self.as_indices(configs).astype(np.int64)
        s = self.spec
        n = idx.shape[0]
        blocks = [np.eye(len(s.resolutions), dtype=np.float32)[idx[:, 0]]]
        for st in range(s.n_stages):
            blocks.append(np.eye(len(s.depth_choices), dtype=np.float32)[idx[:, 1 + st]])
        nf = len(ELASTIC_FIELDS)
        fields = ELASTIC_FIELDS if quant else ELASTIC_FIELDS[:3]
        for p in range(s.n_positions):
            for k, f in enumerate(ELASTIC_FIELDS):
                if f not in fields:
                    continue
                col = idx[:, 1 + s.n_stages + p * nf + k]
                m = len(self._choices[f])
                eye = np.vstack([np.eye(m, dtype=np.float32), np.zeros((1, m), dtype=np.float32)])
                blocks.append(eye[np.where(col < 0, m, col)])
        return np.concatenate(blocks, axis=1) if n else np.zeros((0, self.n_features(quant)), np.float32)

    def n_features(self, quant: bool = True) -> int:
        s = self.spec
        per = sum(len(self._choices[f]) for f in (ELASTIC_FIELDS if quant else ELASTIC_FIELDS[:3]))
        return len(s.resolutions) + s.n_stages * len(s.depth_choices) + s.n_positions * per

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


def get_space(name: str, num_classes: int | None = None, in_channels: int | None = None,
              resolutions: Sequence[int] | None = None, keep: Sequence[float] | None = None) -> SearchSpace:
    """The registered space `name`, optionally with another class / input channel count (a data set's) and
    searching only some of its resolutions (e.g. those a latency table was built for) and keep ratios."""
    return SearchSpace(get_spec(name, num_classes=num_classes, in_channels=in_channels), resolutions=resolutions,
                       keep=keep)


def list_spaces() -> list[str]:
    return SPACE_SPECS.names()


def space_of(config: SubnetConfig) -> SearchSpace:
    return get_space(config.space)


