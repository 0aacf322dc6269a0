"""How a subnet is spelled as Optuna parameters.

Three encodings, all real Optuna categorical parameters visible in optuna-dashboard:

- ``field``: the space's own ``suggest`` -- one parameter per block field (kernel, expand, keep, weight bits,
  activation bits when weights are quantized); conditional: blocks beyond a stage's depth are not suggested.
  About 80 ``suggest_categorical`` calls per ``mbv3`` trial.
- ``block``: one parameter per *active block*: the number of the block's joint (kernel, expand, keep, bits)
  option (`BlockEncoding.labels[i]`, e.g. ``"k5-e4-p0.75-w8a8"``); conditional like ``field``. About 21
  calls per ``mbv3`` trial instead of ~80: the per-call cost is where the predicted evaluator's time goes
  (see experiments/results/search.md). Used by the engine's in-memory sampler; the shared study always
  records the ``field`` parameters.
- ``block-dense``: like ``block`` but every block position is always suggested; positions beyond a stage's
  depth are inert genes (as in Once-for-All's padded encoding), so NSGA-II's crossover inherits them instead of
  re-drawing them at random (its intersection search space excludes conditional parameters).
  `params_from_config` sets an inert gene to the stage's last active block: a child that inherits a deeper
  stage then repeats that block instead of growing a tiny 3x3, 4-bit one (measured: +0.01 of the reference
  hypervolume at 5k evaluations with the seeded first generation, experiments/results/search.md).

Every encoding maps params -> `SubnetConfig` (`config_from_params`) and back (`params_from_config`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from search_spaces import InputError, SearchSpace, SubnetConfig
from search_spaces.errors import bad_value
from search_spaces.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import optuna

# name -> `factory(space, quantize) -> Encoding`; other packages add theirs through the `hwnas.encodings` entry points
ENCODINGS: Registry[Callable[[SearchSpace, bool], Encoding]] = Registry("encoding", entry_points="hwnas.encodings")


def _suggester(trial: Any) -> Any:
    """`trial._suggest(name, distribution)` when the trial has it (an `optuna.Trial`: reuses one distribution
    object instead of rebuilding and re-validating a 135-choice list per call), else the public API."""
    fast = getattr(trial, "_suggest", None)
    if fast is not None:
        return fast
    return lambda name, dist: trial.suggest_categorical(name, list(dist.choices))


class Encoding:
    """Base: the parameters of one space under one spelling."""

    name = "abstract"
    radices: tuple[int, ...] | None = None  # packed block options only (see `BlockEncoding`)
    dense = False  # every trial suggests every parameter of `distributions()` (a static search space)

    def __init__(self, space: SearchSpace, quantize: bool = True) -> None:
        self.space = space
        self.quantize = quantize
        # the space's searched resolutions (`get_space(name, resolutions=...)`: e.g. those a latency table has);
        # configs and indices always use the full space's
        self.resolutions = tuple(space.resolutions)

    def suggest(self, trial: optuna.trial.BaseTrial) -> SubnetConfig:  # pragma: no cover - abstract
        raise NotImplementedError

    def config_from_params(self, params: Mapping[str, Any]) -> SubnetConfig:  # pragma: no cover - abstract
        raise NotImplementedError

    def params_from_config(self, config: SubnetConfig) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:  # pragma: no cover
        raise NotImplementedError


class FieldEncoding(Encoding):
    """The space's own parameters (`SearchSpace.suggest`: same names, same conditions), with the resolution
    choices optionally restricted."""

    name = "field"

    def __init__(self, space: SearchSpace, quantize: bool = True) -> None:
        super().__init__(space, quantize)
        self._dists = space.distributions(quantize)
        self._full = self.resolutions == tuple(space.spec.resolutions)

    def suggest(self, trial: optuna.trial.BaseTrial) -> SubnetConfig:
        if self._full:
            return self.space.suggest(trial, quantize=self.quantize)
        suggest = _suggester(trial)
        sc, d = self.space.schema, self._dists
        params: dict[str, Any] = {}
        for col in sc.columns[: sc.n_global]:  # global columns other than depths (resolution)
            if col.field != "depth":
                params[col.name] = suggest(col.name, d[col.name])
        for g in sc.groups:  # each depth, then its active positions, in the order the space's own suggest takes
            depth_name = sc.names[g.depth_column]
            depth = params[depth_name] = suggest(depth_name, d[depth_name])
            for p in g.positions[:depth]:
                cols = {sc.columns[c].field: sc.columns[c] for c in sc.position_columns[p]}
                for col in cols.values():
                    if not col.quant:
                        params[col.name] = suggest(col.name, d[col.name])
                if self.quantize:  # activation bits only where the weights are quantized (no dead parameters)
                    w = params[cols["weight_bits"].name] = suggest(cols["weight_bits"].name, d[cols["weight_bits"].name])
                    if w < 32:
                        params[cols["act_bits"].name] = suggest(cols["act_bits"].name, d[cols["act_bits"].name])
        return self.space.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> SubnetConfig:
        return self.space.config_from_params(params)

    def params_from_config(self, config: SubnetConfig) -> dict[str, Any]:
        return self.space.params_from_config(config, quantize=self.quantize)

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return dict(self._dists)


class _Spelling:
    """What the packed and dense encodings spell, read from the space's schema: the global columns (resolution,
    embedding dim, ...: searched choices), the depth groups (name, depth choices, the labels of their positions)
    and per position the architecture fields (every per-position field but the bits) plus one bit pair."""

    def __init__(self, space: SearchSpace, quantize: bool) -> None:
        from optuna.distributions import CategoricalDistribution as Cat

        sc = space.schema
        if sc.position_fields[-2:] != ("weight_bits", "act_bits"):
            raise bad_value("schema position fields", sc.position_fields, "the bit fields last")
        self.arch = sc.position_fields[:-2]
        self.pairs = tuple(space.bit_pairs) if quantize else ((32, 32),)
        # one distribution object per name, reused by every trial (cheap equality checks in storage)
        self.globals = [(sc.names[c], sc.columns[c].field, Cat(list(space.searched(sc.columns[c].field))))
                        for c in space.context_columns()]
        self.groups = [(sc.names[g.depth_column], Cat(list(sc.depth_values(gi))),
                        [sc.position_label(p) for p in g.positions]) for gi, g in enumerate(sc.groups)]
        self.arch_choices = [space.searched(f) for f in self.arch]


_SHORT = {"keep": "p"}  # option labels: a field's first letter, `p` for the keep (pruning) ratio


class BlockEncoding(Encoding):
    """One categorical per block position over its joint choices (see the module docstring)."""

    def __init__(self, space: SearchSpace, quantize: bool = True, dense: bool = False) -> None:
        import itertools

        from optuna.distributions import IntDistribution

        super().__init__(space, quantize)
        self.dense = dense
        self.name = "block-dense" if dense else "block"
        sp = self._sp = _Spelling(space, quantize)
        self._options: list[tuple[Any, ...]] = [(*arch, w, a) for *arch, (w, a) in
                                                itertools.product(*sp.arch_choices, sp.pairs)]
        self.labels = ["-".join(f"{_SHORT.get(f, f[0])}{v:g}" for f, v in zip(sp.arch, o)) + f"-w{o[-2]}a{o[-1]}"
                       for o in self._options]
        # the option number's mixed radix (first field most significant): what `BlockFieldMutation` decodes
        self.radices: tuple[int, ...] | None = (*[len(c) for c in sp.arch_choices], len(sp.pairs))
        self._decode = dict(enumerate(self._options))
        self._encode = {o: i for i, o in enumerate(self._options)}
        # the block's option number (see `labels`): an integer distribution compares in O(1) where a
        # 135-choice categorical is compared choice by choice on every suggest
        self._block = IntDistribution(0, len(self._options) - 1)
        self._block_names = [[f"block_{label}" for label in labels] for _, _, labels in sp.groups]

    def suggest(self, trial: optuna.trial.BaseTrial) -> SubnetConfig:
        suggest = _suggester(trial)
        params: dict[str, Any] = {name: suggest(name, dist) for name, _, dist in self._sp.globals}
        for (depth_name, depth_dist, _), names in zip(self._sp.groups, self._block_names):
            d = params[depth_name] = suggest(depth_name, depth_dist)
            for n in names[: len(names) if self.dense else d]:
                params[n] = suggest(n, self._block)
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> SubnetConfig:
        sp = self._sp
        try:
            values = {field: params[name] for name, field, _ in sp.globals}
            depths = tuple(params[name] for name, _, _ in sp.groups)
            opts = [self._decode[params[n]] for d, names in zip(depths, self._block_names) for n in names[:d]]
        except KeyError as e:
            raise InputError(f"trial params: missing or unknown {e.args[0]!r} for the {self.name} encoding "
                             f"of space {self.space.name}") from None
        return self.space.assemble(values, depths, opts)

    def params_from_config(self, config: SubnetConfig) -> dict[str, Any]:
        self.space.check(config)
        if not self.quantize and config.is_quantized:
            raise InputError("config: quantized, but the study searches float subnets only")
        values, depths, layers = self.space.disassemble(config)
        p: dict[str, Any] = {name: values[field] for name, field, _ in self._sp.globals}
        j = 0
        for (depth_name, _, _), names, d in zip(self._sp.groups, self._block_names, depths):
            p[depth_name] = d
            for i in range(len(names) if self.dense else d):
                if i < d:
                    p[names[i]] = self._encode[tuple(layers[j])]
                    j += 1
                else:  # inert gene of the dense encoding: the group's last block, which a deeper child repeats
                    p[names[i]] = p[names[d - 1]]
        return p

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        d: dict[str, Any] = {name: dist for name, _, dist in self._sp.globals}
        for (depth_name, depth_dist, _), names in zip(self._sp.groups, self._block_names):
            d[depth_name] = depth_dist
            for n in names:
                d[n] = self._block
        return d


class DenseFieldEncoding(Encoding):
    """Every block position's architecture fields (mbv3: kernel, expand, keep) and bit pair (``"w8a8"``) always
    suggested: a static search space of globals + depths + (fields + 1) x positions categorical parameters.
    Positions beyond a group's depth are inert genes; crossover and mutation work per field, as in Once-for-All's
    evolution."""

    name = "field-dense"
    dense = True

    def __init__(self, space: SearchSpace, quantize: bool = True) -> None:
        from optuna.distributions import CategoricalDistribution as Cat

        super().__init__(space, quantize)
        sp = self._sp = _Spelling(space, quantize)
        self._pair_labels = [f"w{w}a{a}" for w, a in sp.pairs]
        self._pairs = dict(zip(self._pair_labels, sp.pairs))
        self._dists: dict[str, Any] = {name: dist for name, _, dist in sp.globals}
        self._names: list[list[tuple[str, ...]]] = []
        for depth_name, depth_dist, labels in sp.groups:
            self._dists[depth_name] = depth_dist
            row = []
            for label in labels:
                names = (*[f"{f}_{label}" for f in sp.arch], f"bits_{label}")
                for n, ch in zip(names, (*sp.arch_choices, self._pair_labels)):
                    self._dists[n] = Cat(list(ch))
                row.append(names)
            self._names.append(row)

    def suggest(self, trial: optuna.trial.BaseTrial) -> SubnetConfig:
        suggest = _suggester(trial)
        params = {name: suggest(name, d) for name, d in self._dists.items()}
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> SubnetConfig:
        sp = self._sp
        try:
            values = {field: params[name] for name, field, _ in sp.globals}
            depths = tuple(params[name] for name, _, _ in sp.groups)
            layers = [(*[params[n] for n in names[:-1]], *self._pairs[params[names[-1]]])
                      for d, row in zip(depths, self._names) for names in row[:d]]
            return self.space.assemble(values, depths, layers)
        except KeyError as err:
            raise InputError(f"trial params: missing or unknown {err.args[0]!r} for the field-dense encoding "
                             f"of space {self.space.name}") from None

    def params_from_config(self, config: SubnetConfig) -> dict[str, Any]:
        self.space.check(config)
        values, depths, layers = self.space.disassemble(config)
        p: dict[str, Any] = {name: values[field] for name, field, _ in self._sp.globals}
        j = 0
        for (depth_name, _, _), row, d in zip(self._sp.groups, self._names, depths):
            p[depth_name] = d
            for i, names in enumerate(row):
                if i < d:
                    *arch, w, a = layers[j]
                    p.update(zip(names[:-1], arch))
                    p[names[-1]] = f"w{w}a{a}"
                    j += 1
                else:  # inert genes: the group's last block, which a deeper child repeats
                    for n, last in zip(names, row[d - 1]):
                        p[n] = p[last]
        return p

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return dict(self._dists)


def get_encoding(name: str, space: SearchSpace, quantize: bool = True) -> Encoding:
    """The encoding `name` of `space` (restricted to `space.resolutions`)."""
    if name not in ENCODINGS:
        raise bad_value("encoding", name, ", ".join(ENCODINGS.names()))
    return ENCODINGS.get(name)(space, quantize)


ENCODINGS.register("field", FieldEncoding)
ENCODINGS.register("field-dense", DenseFieldEncoding)
ENCODINGS.register("block", lambda space, quantize=True: BlockEncoding(space, quantize))
ENCODINGS.register("block-dense", lambda space, quantize=True: BlockEncoding(space, quantize, dense=True))
