"""`LatencyTable`: measured block latencies of one search space on one device, with their provenance
(fingerprint, protocol), the blocks the device cannot run, and the calibration to whole-model latency.

Stored as versioned, human-readable JSON. Prediction is a lookup: per resolution and elastic position a dense
array indexed by the choice indices of `SearchSpace.to_indices` is precomputed once, so predicting many configs
is a few vectorised gathers and sums.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latency_tables.calibration import Calibration, group_of
from latency_tables.correction import LatencyCorrection
from search_spaces import Family, FamilyConfig, SearchSpace, SubnetConfig, config_from_dict, get_space
from search_spaces.block_spec import BlockSpec, parse_block_key
from search_spaces.errors import HwnasError, InputError, bad_value
from search_spaces.files import atomic_write_json

FORMAT = "hwnas-latency-table"
VERSION = 1


class MissingBlockError(HwnasError):
    """A config needs a block the table has no measurement for."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _entry(key: str, d: Any) -> dict[str, float | int]:
    if not isinstance(d, Mapping):
        raise InputError(f"entries[{key!r}]: got {d!r}, allowed: {{median_ms, std_ms, count}}")
    try:
        e = {"median_ms": float(d["median_ms"]), "std_ms": float(d["std_ms"]), "count": int(d["count"])}
    except (KeyError, TypeError, ValueError):
        raise InputError(f"entries[{key!r}]: got {d!r}, allowed: {{median_ms, std_ms, count}} numbers") from None
    if not (math.isfinite(e["median_ms"]) and e["median_ms"] > 0 and e["count"] > 0):
        raise InputError(f"entries[{key!r}].median_ms: got {e['median_ms']!r}, allowed: a positive number")
    for k in ("p10_ms", "p90_ms", "ref_ms", "ref_ratio"):
        if k in d:
            try:
                e[k] = float(d[k])
            except (TypeError, ValueError):
                e[k] = math.nan
            if not (math.isfinite(e[k]) and e[k] > 0):  # ref_ratio x ref_ms is the latency of a normalized table
                raise InputError(f"entries[{key!r}].{k}: got {d[k]!r}, allowed: a positive number")
    return e


def _params_m(space: Family, block: BlockSpec) -> float:
    _, quantizable, other = space.block_counts(block)
    return (quantizable + other) / 1e6


def _reference_model(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None
    if not isinstance(d, Mapping) or d.get("kind") not in ("subnet", "block"):
        raise bad_value("reference_model", d, "an object with kind subnet (and config) or block (and key)")
    if d["kind"] == "subnet":
        config_from_dict(d["config"])
    else:
        parse_block_key(d["key"])
    return dict(d)


class LatencyTable:
    """Block latencies (ms) of `space` measured by `backend` on the device `device_tag`."""

    def __init__(self, space: str, device_tag: str, backend: str, fingerprint: Mapping[str, Any],
                 protocol: Mapping[str, Any], resolutions: Sequence[int], entries: Mapping[str, Mapping[str, Any]]
                 | None = None, unsupported: Mapping[str, str] | None = None,
                 overhead: Mapping[str, Any] | None = None, calibration: Calibration | None = None,
                 calibration_measurements: Sequence[Mapping[str, Any]] | None = None,
                 expected_keys: int | None = None, build_seconds: float = 0.0,
                 reference_model: Mapping[str, Any] | None = None,
                 correction: LatencyCorrection | None = None) -> None:
        self.space = space
        self.device_tag = device_tag
        self.backend = backend
        self.fingerprint = dict(fingerprint)
        self.protocol = dict(protocol)
        self.resolutions = sorted(int(r) for r in resolutions)
        self.entries: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (entries or {}).items()}
        self.unsupported: dict[str, str] = dict(unsupported or {})
        self.overhead = dict(overhead) if overhead else None
        self.calibration = calibration
        self.calibration_measurements = [dict(m) for m in (calibration_measurements or [])]
        self.expected_keys = expected_keys
        self.build_seconds = float(build_seconds)
        # the model timed alongside every measurement (protocol.reference): a whole subnet of this space; None in
        # tables written before it existed, which used a fixed float block (models.LEGACY_REFERENCE)
        self.reference_model = dict(reference_model) if reference_model else None
        # around subnets timed whole after a search (`with_correction`); the calibrated prediction carries it
        self.correction = correction
        self._dense: dict[str, Any] | None = None
        self._ref: tuple[float | None] | None = None

    def __repr__(self) -> str:
        return (f"LatencyTable(space={self.space!r}, device_tag={self.device_tag!r}, backend={self.backend!r}, "
                f"{len(self.entries)} entries, {len(self.unsupported)} unsupported)")

    @property
    def search_space(self) -> SearchSpace:
        return get_space(self.space)

    @property
    def backend_args(self) -> dict[str, Any]:
        """The backend settings the table was measured with (what any later measurement must use too)."""
        args: dict[str, Any] = {"threads": int(self.fingerprint.get("threads", 1)),
                                "batch_size": int(self.fingerprint.get("batch_size", 1))}
        if self.fingerprint.get("precision", "fp32") != "fp32":  # a 16-bit table is measured at 16 bits again
            args["precision"] = str(self.fingerprint["precision"])
        return args

    @property
    def normalized(self) -> bool:
        """True when latencies are load-normalized: ratio to the reference model x its typical latency."""
        return bool(self.protocol.get("reference")) and self.reference_ms is not None

    @property
    def reference_ms(self) -> float | None:
        """The reference model's typical latency over the build: the median of its per-chunk statistics."""
        if self._ref is None:
            refs = [e["ref_ms"] for e in self.entries.values() if "ref_ms" in e]
            self._ref = (float(np.median(refs)),) if refs else (None,)
        return self._ref[0]

    def latency_ms(self, m: Mapping[str, Any]) -> float:
        """The latency a stored measurement stands for: load-normalized when the protocol has a reference."""
        if self.normalized and m.get("ref_ratio") is not None:
            return float(m["ref_ratio"]) * float(self.reference_ms)  # type: ignore[arg-type]
        return float(m["median_ms"])

    @property
    def overhead_ms(self) -> float:
        return self.latency_ms(self.overhead) if self.overhead else 0.0

    @property
    def quantized(self) -> bool:
        """Whether the table measured quantized blocks (a float-only table serves float subnets only)."""
        return any(not k.endswith(":w32a32") for k in (*self.entries, *self.unsupported))

    @property
    def complete(self) -> bool:
        return self.expected_keys is not None and len(self.entries) + len(self.unsupported) >= self.expected_keys

    def set_entry(self, key: str, median_ms: float, std_ms: float, count: int, **extra: float) -> None:
        self.entries[key] = _entry(key, {"median_ms": median_ms, "std_ms": std_ms, "count": count, **extra})
        self._dense = self._ref = None

    def mark_unsupported(self, key: str, reason: str) -> None:
        self.unsupported[key] = reason
        self._dense = None

    def set_overhead(self, overhead: Any) -> None:
        """The whole-model overhead measurement (the lookup arrays include it: rebuilt on the next predict)."""
        self.overhead = overhead
        self._dense = None

    # ---- file --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "space": self.space, "device_tag": self.device_tag,
            "backend": self.backend, "resolutions": self.resolutions, "fingerprint": self.fingerprint,
            "protocol": self.protocol, "reference_model": self.reference_model, "reference_ms": self.reference_ms,
            "overhead": self.overhead, "expected_keys": self.expected_keys,
            "build_seconds": round(self.build_seconds, 3), "complete": self.complete,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "calibration_measurements": self.calibration_measurements,
            "correction": self.correction.to_dict() if self.correction else None,
            "unsupported": dict(sorted(self.unsupported.items())),
            "entries": dict(sorted(self.entries.items())),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a crash leaves the previous file, never half of a new one."""
        atomic_write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike[str], space: str | None = None) -> LatencyTable:
        """Read a table; with `space`, refuse a table made for another space. Any damage is one clear line."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"latency table: got {str(path)!r}, allowed: an existing table file")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            msg = f"{e.msg} at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
            raise InputError(f"latency table {p}: not valid JSON ({msg}); truncated or edited? rebuild it with "
                             "`hwnas latency build`") from None
        return cls.from_dict(d, space=space, source=str(p))

    @classmethod
    def from_dict(cls, d: Any, space: str | None = None, source: str = "latency table") -> LatencyTable:
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise InputError(f"{source}: not a hwnas latency table (format must be {FORMAT!r})")
        if d.get("version") != VERSION:
            raise InputError(f"{source}: version: got {d.get('version')!r}, allowed: {VERSION} (this hwnas reads "
                             f"table version {VERSION}; rebuild the table)")
        try:
            tspace = d["space"]
            if space is not None and tspace != space:
                raise InputError(f"{source}: space: got a table for {tspace!r}, allowed: {space!r} (the space asked for)")
            sp = get_space(tspace)
            resolutions = [int(r) for r in d["resolutions"]]
            for r in resolutions:
                if r not in sp.spec.resolutions:
                    raise bad_value(f"{source}: resolutions", r, f"resolutions of {tspace}")
            entries = d["entries"]
            if not isinstance(entries, Mapping):
                raise bad_value(f"{source}: entries", type(entries).__name__, "an object key -> measurement")
            clean = {}
            for k, v in entries.items():
                parse_block_key(k)
                clean[k] = _entry(k, v)
            unsupported = d.get("unsupported") or {}
            for k in unsupported:
                parse_block_key(k)
            cal = Calibration.from_dict(d["calibration"]) if d.get("calibration") else None
            overhead = d.get("overhead")
            if overhead is not None:
                overhead = _entry("overhead", overhead)
            correction = LatencyCorrection.from_dict(d["correction"], sp) if d.get("correction") else None
            return cls(tspace, str(d["device_tag"]), str(d["backend"]), dict(d["fingerprint"]), dict(d["protocol"]),
                       resolutions, clean, {str(k): str(v) for k, v in unsupported.items()}, overhead, cal,
                       list(d.get("calibration_measurements") or []), d.get("expected_keys"),
                       float(d.get("build_seconds") or 0.0), _reference_model(d.get("reference_model")), correction)
        except InputError as e:
            if str(e).startswith(source):
                raise
            raise InputError(f"{source}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"{source}: malformed table ({type(e).__name__}: {e}); rebuild it with "
                             "`hwnas latency build`") from None

    # ---- lookup ------------------------------------------------------------------------------------
    def _build_dense(self) -> dict[str, Any]:
        """Per (context, position, *per-position field choice indices) -- mbv3: (resolution, position, kernel,
        expand, keep, wbits, abits); vit: (embed dim, layer, heads, MLP ratio, keep, wbits, abits) --
        overhead-corrected ms (NaN = not in the table) and whether the device marks it unsupported; the fixed blocks
        per context. The context is the space's global columns other than depths (`Family.context_columns`)."""
        sp = self.search_space
        sc = sp.schema
        ctx_cols = sp.context_columns()
        ctx_sizes = tuple(len(sc.columns[c].choices) for c in ctx_cols)
        n_ctx = int(np.prod(ctx_sizes))
        fields = sc.position_fields
        ch = [sc.choices(f) for f in fields]
        shape = (n_ctx, sc.n_positions, *[len(c) for c in ch])
        ms = np.full(shape, np.nan)
        unsup = np.zeros(shape, dtype=bool)
        group = np.zeros(shape, dtype=np.int8)
        fixed = np.full(n_ctx, np.nan)
        fixed_unsup = np.zeros(n_ctx, dtype=bool)
        n_fixed = np.zeros(n_ctx, dtype=np.int64)
        params = np.zeros(shape)  # each block's parameters, millions (the `weights` calibration's feature)
        fixed_params = np.zeros(n_ctx)
        o = self.overhead_ms
        for ci, cix in enumerate(np.ndindex(*ctx_sizes)):
            ctx = {sc.columns[c].field: sc.columns[c].choices[i] for c, i in zip(ctx_cols, cix)}
            if ctx["resolution"] not in self.resolutions:
                continue
            fixed_blocks = sp.fixed_blocks_at(ctx)
            vals = [self.latency_ms(self.entries[b.key]) - o if b.key in self.entries else
                    (0.0 if b.key in self.unsupported else np.nan) for b in fixed_blocks]
            fixed[ci] = np.sum(vals)
            fixed_unsup[ci] = any(b.key in self.unsupported for b in fixed_blocks)
            n_fixed[ci] = len(fixed_blocks)
            fixed_params[ci] = sum(_params_m(sp, b) for b in fixed_blocks)
            cache: dict[Any, tuple[float, bool, float]] = {}
            for p in range(sc.n_positions):
                for idx in np.ndindex(*shape[2:]):
                    values = dict(zip(fields, (c[i] for c, i in zip(ch, idx))))
                    w, a = values["weight_bits"], values["act_bits"]
                    if a < 32 <= w:
                        continue
                    b = sp.position_block(p, ctx, values)
                    if b not in cache:
                        key = b.key
                        if key in self.unsupported:
                            cache[b] = (0.0, True, _params_m(sp, b))
                        else:
                            cache[b] = (self.latency_ms(self.entries[key]) - o if key in self.entries else np.nan,
                                        False, _params_m(sp, b))
                    ms[(ci, p, *idx)], unsup[(ci, p, *idx)], params[(ci, p, *idx)] = cache[b]
                    group[(ci, p, *idx)] = group_of(w)
        return {"ms": ms.ravel(), "unsup": unsup.ravel(), "group": group.ravel(), "fixed": fixed,
                "fixed_unsup": fixed_unsup, "n_fixed": n_fixed, "params": params.ravel(),
                "fixed_params": fixed_params, "shape": shape, "ctx_cols": ctx_cols, "ctx_sizes": ctx_sizes}

    def _gather(self, configs: Sequence[Any] | np.ndarray, weights: bool = False) -> dict[str, np.ndarray]:
        """Block sums per group, block counts, unsupported flags; with `weights`, also the parameter sums (only the
        `weights` calibration reads them: a search's many predictions do not pay for them otherwise)."""
        sp = self.search_space
        if not isinstance(configs, np.ndarray):
            for c in configs:
                if isinstance(c, FamilyConfig) and c.space != self.space:
                    raise InputError(f"config.space: got {c.space!r}, allowed: {self.space!r} (this table's space)")
        idx = sp.as_indices(configs).astype(np.int64)
        if self._dense is None:
            self._dense = self._build_dense()
        d = self._dense
        shape = d["shape"]
        sc = sp.schema
        n = idx.shape[0]
        r = np.ravel_multi_index(tuple(idx[:, c] for c in d["ctx_cols"]), d["ctx_sizes"]) if n else np.zeros(0, int)
        el = sc.per_position(idx)  # (n, positions, fields)
        active = sc.active(idx)
        flat = r[:, None] * shape[1] + np.arange(sc.n_positions)[None, :]
        for j in range(len(sc.position_fields)):
            flat = flat * shape[2 + j] + np.where(active, el[:, :, j], 0)
        vals = np.where(active, d["ms"][flat], 0.0)
        fixed = d["fixed"][r]
        bad_rows = np.isnan(fixed) | np.isnan(vals).any(axis=1)
        if bad_rows.any():
            self._raise_missing(sp, idx[int(np.argmax(bad_rows))])
        groups = np.zeros((n, 3))
        g = d["group"][flat]
        for gi in range(3):
            groups[:, gi] = np.where(g == gi, vals, 0.0).sum(axis=1)
        groups[:, 0] += fixed
        unsup = (active & d["unsup"][flat]).any(axis=1) | d["fixed_unsup"][r]
        out = {"groups": groups, "n_blocks": active.sum(axis=1) + d["n_fixed"][r], "unsupported": unsup, "idx": idx}
        if weights:
            out["weights_m"] = np.where(active, d["params"][flat], 0.0).sum(axis=1) + d["fixed_params"][r]
        return out

    def _raise_missing(self, sp: Family, row: np.ndarray) -> None:
        config = sp.from_indices(row[None, :])[0]
        for b in sp.blocks(config):
            if b.key not in self.entries and b.key not in self.unsupported:
                where = "" if config.resolution in self.resolutions else (
                    f"; the table covers resolutions {self.resolutions}")
                raise MissingBlockError(b.key, f"latency table ({self.space}, {self.device_tag}): no measurement for "
                                        f"block {b.key!r}{where}; rebuild or resume it with `hwnas latency build`")
        raise AssertionError("a missing entry was detected but not found")

    def block_sums(self, configs: Sequence[SubnetConfig] | np.ndarray) -> np.ndarray:
        """(n, 3) sums of overhead-corrected block latencies grouped by weight bits (fp, w8, w4)."""
        return self._gather(configs)["groups"]

    def block_counts(self, configs: Sequence[SubnetConfig] | np.ndarray) -> np.ndarray:
        """(n,) how many blocks each config's prediction sums (what the `per-block` calibration counts)."""
        return self._gather(configs)["n_blocks"]

    def weights_m(self, configs: Sequence[SubnetConfig] | np.ndarray) -> np.ndarray:
        """(n,) each config's parameters in millions, blocks summed (what the `weights` calibration reads)."""
        return self._gather(configs, weights=True)["weights_m"]

    def predict(self, configs: Sequence[SubnetConfig] | np.ndarray, calibrated: bool = True,
                corrected: bool = True) -> np.ndarray:
        """Predicted whole-model latency in ms (float64), inf where a block is unsupported on this device.
        Uncalibrated: the overhead-corrected block sum (each block's latency less the per-call overhead, plus that
        overhead once for the model). Calibrated: the table's calibration (see `calibration.py`), which is that
        same sum when the calibration's cross-validation kept it (method `none`), times the correction around
        subnets timed whole where the table has one (`with_correction`; `corrected=False`: without it)."""
        uses_weights = calibrated and self.calibration is not None and self.calibration.method == "weights"
        g = self._gather(configs, weights=uses_weights)
        if calibrated and self.calibration is not None:
            out = self.calibration.apply(g["groups"], g["n_blocks"], g.get("weights_m"))
        else:
            out = g["groups"].sum(axis=1) + self.overhead_ms
        if calibrated and corrected and self.correction is not None and len(out):
            out = out * self.correction.factor(self.search_space, g["idx"])
        bad = ~g["unsupported"] & ~(np.isfinite(out) & (out > 0))
        if bad.any():  # a latency <= 0 is never a measurement: refuse it rather than let a search rank by it
            i = int(np.argmax(bad))
            how = f"calibration {self.calibration.formula}, {self.calibration.params}" if (
                calibrated and self.calibration is not None) else "the sum of its block latencies"
            raise HwnasError(f"latency table ({self.space}, {self.device_tag}): predicts {out[i]:.4g} ms for a config "
                             f"({int(bad.sum())} of {len(out)}) from {how}; allowed: a positive latency "
                             "(recalibrate or rebuild the table)")
        return np.where(g["unsupported"], np.inf, out)

    def with_correction(self, configs: Sequence[SubnetConfig], measured_ms: Sequence[float],
                        seed: int = 0) -> LatencyTable:
        """This table corrected around `configs`, timed whole at `measured_ms` (ms at the table's speed:
        `latency_ms` of their measurements) -- what a search's picks really take (`correction.py`). Any earlier
        correction is replaced: pass every subnet timed so far."""
        table = LatencyTable.from_dict(self.to_dict())
        table._dense = self._dense  # the same blocks
        table.correction = LatencyCorrection.fit(self.search_space, configs, measured_ms,
                                                 self.predict(configs, corrected=False), seed=seed)
        return table

    def supported(self, configs: Sequence[SubnetConfig] | np.ndarray) -> np.ndarray:
        """False where a config contains a block this device cannot run (the search excludes it)."""
        return ~self._gather(configs)["unsupported"]
