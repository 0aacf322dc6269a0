"""`Predictor`: the small abstract base every accuracy predictor kind implements, and the `PREDICTORS` registry.

A predictor maps subnets -- `SubnetConfig`s, a `to_indices` matrix or an `encode` matrix -- to top-1 accuracy in
percent. It is persisted without pickle: `state()` gives named numpy arrays (stored as safetensors) and a JSON-able
metadata dict; `from_state` rebuilds it.
"""
from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from search_spaces import HwnasError, InputError, Registry, SearchSpace, get_space
from search_spaces.errors import bad_value

from predictors.features import ConfigsOrIndices, FeatureLayout

FORMAT_VERSION = 1


# how far past the accuracies trained on a prediction may go, as a fraction of their range (see `soft_clip`)
SOFT_CLIP_FRACTION = 0.1


def soft_clip(y: np.ndarray, lo: float, hi: float, fraction: float = SOFT_CLIP_FRACTION) -> np.ndarray:
    """`y` inside [lo, hi]; beyond, squashed monotonically towards lo - w or hi + w (w = fraction * (hi - lo)).

    Why not a hard clip: a search maximises predicted accuracy, and a linear model (or an MLP's linear tails)
    scored unseen combinations above 100 % in the quickstart's search, so extrapolation must be bounded. But a
    hard clip ties every subnet past the top label at one value -- on the quickstart, all three candidates of
    every budget, so a budget's pick was arbitrary among them -- while a squashed tail keeps their order."""
    w = max(fraction * (hi - lo), 1e-9)
    y = np.asarray(y, dtype=np.float64)
    over, under = y > hi, y < lo
    out = y.copy()
    out[over] = hi + w * np.tanh((y[over] - hi) / w)
    out[under] = lo - w * np.tanh((lo - y[under]) / w)
    return np.clip(out, 0.0, 100.0)  # percent


class Predictor(ABC):
    """Base of every predictor kind. Subclasses set `kind`, implement `_fit`, `_predict`, `_state`, `_load_state`,
    and declare their options as keyword-only `__init__` arguments (listed by `options()`)."""

    kind: ClassVar[str] = ""
    has_std: ClassVar[bool] = False
    # a kind `fit_predictor(kind=...)` fits on float records; False: a quantization-aware model built from one
    full_precision: ClassVar[bool] = True

    def __init__(self, space: str | SearchSpace, *, quant: bool = False, seed: int = 0) -> None:
        self.search_space: SearchSpace = get_space(space) if isinstance(space, str) else space
        self.space: str = self.search_space.name
        self.layout = FeatureLayout(self.search_space, quant)
        self.seed = int(seed)
        self.fitted = False
        self.train_info: dict[str, Any] = {}
        self._fp_label_range: list[float] | None = None  # a transfer's: the range of the fp model it starts from

    @property
    def quant(self) -> bool:
        return self.layout.quant

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}(space={self.space!r}, {opts})"

    # ---- options -----------------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """The constructor options of this instance (round-trip through JSON)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "space")]
        return {n: getattr(self, n) for n in names}

    # ---- inputs ---------------------------------------------------------------------------------------
    def indices(self, x: ConfigsOrIndices) -> np.ndarray:
        return self.layout.as_indices(x)

    @staticmethod
    def _targets(y: Any, n: int) -> np.ndarray:
        t = np.asarray(y, dtype=np.float64).ravel()
        if t.size != n:
            raise bad_value("y length", t.size, f"{n} (one accuracy per config)")
        if not np.isfinite(t).all():
            raise bad_value("y", "non-finite values", "finite accuracies in percent")
        return t

    # ---- API ---------------------------------------------------------------------------------------
    def fit(self, x: ConfigsOrIndices, y: Any, sample_weight: Any = None) -> Predictor:
        """Train on configs (or their indices / encode matrix) and top-1 accuracies in percent, optionally
        weighting the samples."""
        idx = self.indices(x)
        t = self._targets(y, idx.shape[0])
        if idx.shape[0] < 2:
            raise bad_value("number of training samples", idx.shape[0], "at least 2")
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64).ravel()
            if w.size != idx.shape[0] or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise bad_value("sample_weight", f"{w.size} values, min {w.min() if w.size else None}",
                                f"{idx.shape[0]} finite non-negative weights, not all zero")
        start = time.perf_counter()
        self._fit(idx, t, w)
        self.fitted = True
        self.train_info = {**self.train_info, "n_train": int(idx.shape[0]),
                           "fit_seconds": round(time.perf_counter() - start, 3),
                           "label_range": self._label_range(t)}
        return self

    def _label_range(self, y: np.ndarray) -> list[float]:
        """The accuracies predictions are clipped to: the range trained on, and for a transfer its fp model's too
        (float configs keep the fp prediction)."""
        lo, hi = float(y.min()), float(y.max())
        if self._fp_label_range:
            lo, hi = min(lo, self._fp_label_range[0]), max(hi, self._fp_label_range[1])
        return [lo, hi]

    def _start_as_transfer_of(self, fp: Predictor) -> None:
        """Mark this (quantization-aware) model as transferred from the fitted float `fp`: it counts as fitted --
        it predicts what `fp` predicts until fitted -- and keeps `fp`'s label range."""
        self._fp_label_range = fp.train_info.get("label_range")
        self.fitted = True
        self.train_info = {"transferred_from": {"kind": fp.kind, "n_train": fp.train_info.get("n_train")},
                           "label_range": self._fp_label_range}

    def predict(self, x: ConfigsOrIndices) -> np.ndarray:
        """Predicted top-1 accuracy (percent), float64, one per config."""
        return self.predict_with_std(x)[0] if self.has_std else self._predict_checked(x)[0]

    def predict_with_std(self, x: ConfigsOrIndices) -> tuple[np.ndarray, np.ndarray]:
        """(mean, spread) in percent; the spread is the ensemble's standard deviation."""
        if not self.has_std:
            raise HwnasError(f"predictor kind {self.kind!r} gives no spread; use predict() or kind 'mlp'")
        return self._predict_checked(x)

    def _predict_checked(self, x: ConfigsOrIndices) -> tuple[np.ndarray, np.ndarray]:
        if not self.fitted:
            raise HwnasError(f"predictor {self.kind!r} is not fitted: call fit() or load a fitted one")
        idx = self.indices(x)
        if idx.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        mean, std = self._predict(idx)
        bounds = self.train_info.get("label_range")
        if bounds is not None:
            mean = soft_clip(mean, bounds[0], bounds[1])
        return mean, std

    # ---- persistence --------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if not self.fitted:
            raise HwnasError(f"predictor {self.kind!r} is not fitted: nothing to save")
        tensors, extra = self._state()
        meta = {"format_version": FORMAT_VERSION, "kind": self.kind, "space": self.space,
                "options": self.options(), "layout": self.layout.to_dict(), "train": self.train_info, **extra}
        return tensors, meta

    @classmethod
    def from_state(cls, space: str | SearchSpace, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Predictor:
        if meta.get("format_version") != FORMAT_VERSION:
            raise bad_value("predictor format_version", meta.get("format_version"), str(FORMAT_VERSION))
        obj = cls(space, **meta["options"])
        if meta.get("space") != obj.space:
            raise InputError(f"predictor space: got {meta.get('space')!r}, allowed: {obj.space!r} "
                             "(the space asked for)")
        saved = meta.get("layout", {})
        if saved.get("fingerprint") != obj.layout.fingerprint():
            raise InputError(f"predictor feature layout: got {saved.get('fingerprint')!r} "
                             f"({saved.get('n_features')} features), allowed: {obj.layout.fingerprint()!r} "
                             f"({obj.layout.n_features} features, space {obj.space} as registered now)")
        obj._load_state(tensors, meta)
        obj.train_info = dict(meta.get("train", {}))
        obj.fitted = True
        return obj

    # ---- for subclasses ----------------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None: ...

    @abstractmethod
    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) for a validated, non-empty indices matrix (std may be zeros without `has_std`)."""

    @abstractmethod
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...

    @abstractmethod
    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None: ...


PREDICTORS: Registry[type[Predictor]] = Registry("predictor kind", entry_points="hwnas.predictors")


def pack_members(models: list[Predictor]) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """The states of the predictors a composite one is made of, as one flat dict of arrays (member j's arrays
    under "j.NAME") and a list of their metadata -- so composites persist like any predictor, without pickle."""
    tensors: dict[str, np.ndarray] = {}
    metas: list[dict[str, Any]] = []
    for j, model in enumerate(models):
        arrays, meta = model.state()
        tensors.update({f"{j}.{k}": v for k, v in arrays.items()})
        metas.append(meta)
    return tensors, metas


def unpack_members(space: str | SearchSpace, tensors: dict[str, np.ndarray],
                   metas: list[dict[str, Any]]) -> list[Predictor]:
    """The inverse of `pack_members`: each member rebuilt by its own kind's `from_state` (which checks its layout)."""
    models = []
    for j, meta in enumerate(metas):
        prefix = f"{j}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        models.append(PREDICTORS.get(meta["kind"]).from_state(space, own, meta))
    return models


def list_predictors() -> list[str]:
    return PREDICTORS.names()


def create_predictor(kind: str, space: str | SearchSpace, **options: Any) -> Predictor:
    """A new, unfitted predictor of a registered kind; an unknown option names the allowed ones."""
    cls = PREDICTORS.get(kind)
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "space")]
    for name in options:
        if name not in allowed:
            raise bad_value(f"{kind} option {name!r}", options[name], f"options {', '.join(allowed)}")
    return cls(space, **options)


# the built-in kinds register themselves on import: whoever reads `PREDICTORS` sees them all (the package's
# `__init__` is lazy, so this is where they are imported)
from predictors import gbt, mlp, qa, residual_gp, residual_transfer, ridge, stack  # noqa: E402,F401
