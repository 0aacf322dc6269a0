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


def _label(k: int, e: int, keep: float, w: int, a: int) -> str:
    return f"k{k}-e{e}-p{keep:g}-w{w}a{a}"


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
        s = self.space.spec
        d = self._dists
        params: dict[str, Any] = {"resolution": suggest("resolution", d["resolution"])}
        for st in range(s.n_stages):
            depth = params[f"depth_s{st}"] = suggest(f"depth_s{st}", d[f"depth_s{st}"])
            for i in range(depth):
                for f in ("kernel", "expand", "keep"):
                    params[f"{f}_s{st}b{i}"] = suggest(f"{f}_s{st}b{i}", d[f"{f}_s{st}b{i}"])
                if self.quantize:
                    w = params[f"weight_bits_s{st}b{i}"] = suggest(f"weight_bits_s{st}b{i}", d[f"weight_bits_s{st}b{i}"])
                    if w < 32:
                        params[f"act_bits_s{st}b{i}"] = suggest(f"act_bits_s{st}b{i}", d[f"act_bits_s{st}b{i}"])
        return self.space.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> SubnetConfig:
        return self.space.config_from_params(params)

    def params_from_config(self, config: SubnetConfig) -> dict[str, Any]:
        return self.space.params_from_config(config, quantize=self.quantize)

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return dict(self._dists)


class BlockEncoding(Encoding):
    """One categorical per block position over its joint choices (see the module docstring)."""

    def __init__(self, space: SearchSpace, quantize: bool = True, dense: bool = False) -> None:
        from optuna.distributions import CategoricalDistribution, IntDistribution

        super().__init__(space, quantize)
        self.dense = dense
        self.name = "block-dense" if dense else "block"
        s = space.spec
        pairs = space.bit_pairs if quantize else ((32, 32),)
        self._options: list[tuple[int, int, float, int, int]] = [
            (k, e, kp, w, a) for k in s.kernel_choices for e in s.expand_choices for kp in space.keep_choices
            for (w, a) in pairs
        ]
        self.labels = [_label(*o) for o in self._options]
        # the option number's mixed radix (kernel most significant): what `BlockFieldMutation` decodes
        self.radices: tuple[int, ...] | None = (len(s.kernel_choices), len(s.expand_choices), len(space.keep_choices),
                                                len(pairs))
        self._decode = dict(enumerate(self._options))
        self._encode = {o: i for i, o in enumerate(self._options)}
        # one distribution object per name, reused by every trial (cheap equality checks in storage)
        self._res = CategoricalDistribution(list(self.resolutions))
        self._depth = CategoricalDistribution(list(s.depth_choices))
        # the block's option number (see `labels`): an integer distribution compares in O(1) where a
        # 135-choice categorical is compared choice by choice on every suggest
        self._block = IntDistribution(0, len(self._options) - 1)
        self._depth_names = [f"depth_s{st}" for st in range(s.n_stages)]
        self._block_names = [[f"block_s{st}b{i}" for i in range(s.max_depth)] for st in range(s.n_stages)]

    def suggest(self, trial: optuna.trial.BaseTrial) -> SubnetConfig:
        s = self.space.spec
        suggest = _suggester(trial)
        params: dict[str, Any] = {"resolution": suggest("resolution", self._res)}
        for st in range(s.n_stages):
            d = suggest(self._depth_names[st], self._depth)
            params[self._depth_names[st]] = d
            for i in range(s.max_depth if self.dense else d):
                params[self._block_names[st][i]] = suggest(self._block_names[st][i], self._block)
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> SubnetConfig:
        s = self.space.spec
        try:
            depths = tuple(params[n] for n in self._depth_names)
            opts = [self._decode[params[self._block_names[st][i]]] for st, d in enumerate(depths) for i in range(d)]
            res = params["resolution"]
        except KeyError as e:
            raise InputError(f"trial params: missing or unknown {e.args[0]!r} for the {self.name} encoding "
                             f"of space {s.name}") from None
        cols = list(zip(*opts)) if opts else [(), (), (), (), ()]
        return SubnetConfig(s.name, res, depths, *[tuple(c) for c in cols])

    def params_from_config(self, config: SubnetConfig) -> dict[str, Any]:
        self.space.check(config)
        s = self.space.spec
        if not self.quantize and config.is_quantized:
            raise InputError("config: quantized, but the study searches float subnets only")
        p: dict[str, Any] = {"resolution": config.resolution}
        j = 0
        for st, d in enumerate(config.depths):
            p[self._depth_names[st]] = d
            for i in range(s.max_depth if self.dense else d):
                if i < d:
                    o = (config.kernel[j], config.expand[j], config.keep[j], config.weight_bits[j], config.act_bits[j])
                    p[self._block_names[st][i]] = self._encode[o]
                    j += 1
                else:  # inert gene of the dense encoding: the stage's last block, which a deeper child repeats
                    p[self._block_names[st][i]] = p[self._block_names[st][d - 1]]
        return p

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        d: dict[str, Any] = {"resolution": self._res}
        for st, names in enumerate(self._block_names):
            d[self._depth_names[st]] = self._depth
            for n in names:
                d[n] = self._block
        return d


class DenseFieldEncoding(Encoding):
    """Every block position's kernel, expand, keep and bit pair (``"w8a8"``) always suggested: a static search
    space of 1 + stages + 4 x positions categorical parameters. Positions beyond a stage's depth are inert genes;
    crossover and mutation work per field, as in Once-for-All's evolution."""

    name = "field-dense"
    dense = True

    def __init__(self, space: SearchSpace, quantize: bool = True) -> None:
        from optuna.distributions import CategoricalDistribution as Cat

        super().__init__(space, quantize)
        s = space.spec
        pairs = space.bit_pairs if quantize else ((32, 32),)
        self._pair_labels = [f"w{w}a{a}" for w, a in pairs]
        self._pairs = dict(zip(self._pair_labels, pairs))
        self._dists: dict[str, Any] = {"resolution": Cat(list(self.resolutions))}
        self._names: list[list[tuple[str, str, str, str]]] = []
        for st in range(s.n_stages):
            self._dists[f"depth_s{st}"] = Cat(list(s.depth_choices))
            row = []
            for i in range(s.max_depth):
                names = (f"kernel_s{st}b{i}", f"expand_s{st}b{i}", f"keep_s{st}b{i}", f"bits_s{st}b{i}")
                for n, ch in zip(names, (s.kernel_choices, s.expand_choices, space.keep_choices, self._pair_labels)):
                    self._dists[n] = Cat(list(ch))
                row.append(names)
            self._names.append(row)

    def suggest(self, trial: optuna.trial.BaseTrial) -> SubnetConfig:
        suggest = _suggester(trial)
        params = {name: suggest(name, d) for name, d in self._dists.items()}
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> SubnetConfig:
        s = self.space.spec
        try:
            depths = tuple(params[f"depth_s{st}"] for st in range(s.n_stages))
            k, e, kp, w, a = [], [], [], [], []
            for st, d in enumerate(depths):
                for i in range(d):
                    nk, ne, nkp, nb = self._names[st][i]
                    k.append(params[nk]); e.append(params[ne]); kp.append(params[nkp])  # noqa: E702
                    wb, ab = self._pairs[params[nb]]
                    w.append(wb); a.append(ab)  # noqa: E702
            return SubnetConfig(s.name, params["resolution"], depths, tuple(k), tuple(e), tuple(kp), tuple(w), tuple(a))
        except KeyError as err:
            raise InputError(f"trial params: missing or unknown {err.args[0]!r} for the field-dense encoding "
                             f"of space {s.name}") from None

    def params_from_config(self, config: SubnetConfig) -> dict[str, Any]:
        self.space.check(config)
        s = self.space.spec
        p: dict[str, Any] = {"resolution": config.resolution}
        j = 0
        for st, d in enumerate(config.depths):
            p[f"depth_s{st}"] = d
            for i in range(s.max_depth):
                nk, ne, nkp, nb = self._names[st][i]
                if i < d:
                    p[nk], p[ne], p[nkp] = config.kernel[j], config.expand[j], config.keep[j]
                    p[nb] = f"w{config.weight_bits[j]}a{config.act_bits[j]}"
                    j += 1
                else:  # inert genes: the stage's last block, which a deeper child repeats
                    for n, last in zip(self._names[st][i], self._names[st][d - 1]):
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
