"""Evaluators: what a candidate is worth and what it costs.

- `PredictedEvaluator`: accuracy predictor + latency table + exact size, vectorised over a batch of configs
  (one `to_indices` matrix feeds all three). Cheap: used in large ask/tell batches.
- `MeasuredEvaluator`: the supernet evaluated on data and/or the subnet measured on a backend; expensive, run
  inside the Ray worker actors (one trial at a time).

Both return `Metrics`: parallel numpy arrays, units as everywhere in hwnas (percent, ms, bytes).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces import HwnasError, InputError, SearchSpace, SubnetConfig


# latency recorded for a config the device cannot run (the table says inf; objectives and JSON need a finite
# number): such trials are infeasible through the `supported` constraint, so the value never ranks a front
UNSUPPORTED_LATENCY_MS = 1e6


@dataclass(frozen=True)
class Metrics:
    accuracy: np.ndarray  # percent
    latency_ms: np.ndarray
    size_bytes: np.ndarray  # int64
    macs: np.ndarray  # int64
    supported: np.ndarray  # bool: the target device can run every block at its bits

    def __len__(self) -> int:
        return len(self.accuracy)

    def row(self, i: int) -> dict[str, Any]:
        return {"accuracy": float(self.accuracy[i]), "latency_ms": float(self.latency_ms[i]),
                "size_bytes": int(self.size_bytes[i]), "macs": int(self.macs[i]), "supported": bool(self.supported[i])}


class ProfileTable:
    """Exact MACs / params / size of many configs at once from their index matrix.

    `SearchSpace.profile` costs ~160 us per mbv3 config (it builds every block); the counts are additive over
    blocks, so per-position lookup arrays summed over the active blocks give the same integers in ~1 us.
    `tests/test_search.py::test_profile_table_matches_space_profile_exactly` checks equality with
    `SearchSpace.profile` on random configs.
    """

    def __init__(self, space: SearchSpace) -> None:
        sc = space.schema
        self.space = space
        self.ctx_cols = space.context_columns()
        self.ctx_sizes = tuple(len(sc.columns[c].choices) for c in self.ctx_cols)
        n_ctx = int(np.prod(self.ctx_sizes))
        # the per-position fields a block's counts depend on (its bits only scale its size)
        self.fields = [f for f in sc.position_fields if f not in ("weight_bits", "act_bits")]
        sizes = [len(sc.choices(f)) for f in self.fields]
        self.fixed_macs = np.zeros(n_ctx, np.int64)
        self.fixed_params = np.zeros(n_ctx, np.int64)
        self.fixed_bits = np.zeros(n_ctx, np.int64)
        self.macs = np.zeros((n_ctx, sc.n_positions, *sizes), np.int64)
        self.quant = np.zeros((n_ctx, sc.n_positions, *sizes), np.int64)
        self.other = np.zeros((n_ctx, sc.n_positions, *sizes), np.int64)
        for ci, cix in enumerate(np.ndindex(*self.ctx_sizes)):
            ctx = {sc.columns[c].field: sc.columns[c].choices[i] for c, i in zip(self.ctx_cols, cix)}
            for b in space.fixed_blocks_at(ctx):
                m, q, o = space.block_counts(b)
                self.fixed_macs[ci] += m
                self.fixed_params[ci] += q + o
                self.fixed_bits[ci] += (q + o) * 32
            for p in range(sc.n_positions):
                for fix in np.ndindex(*sizes):
                    values = {f: sc.choices(f)[i] for f, i in zip(self.fields, fix)}
                    values.update(weight_bits=32, act_bits=32)
                    m, q, o = space.block_counts(space.position_block(p, ctx, values))
                    self.macs[(ci, p, *fix)], self.quant[(ci, p, *fix)], self.other[(ci, p, *fix)] = m, q, o
        self.wbits = np.asarray(sc.choices("weight_bits"), np.int64)

    def compute(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(macs, params, size_bytes) int64 arrays for an `(n, n_index_columns)` index matrix."""
        sc = self.space.schema
        idx = np.asarray(indices).astype(np.int64)
        n = idx.shape[0]
        active = sc.active(idx)
        fx = [np.where(active, sc.field(idx, f), 0) for f in self.fields]
        w = np.where(active, sc.field(idx, "weight_bits"), 0)
        pos = np.broadcast_to(np.arange(sc.n_positions), (n, sc.n_positions))
        r = np.ravel_multi_index(tuple(idx[:, c] for c in self.ctx_cols), self.ctx_sizes) if n else np.zeros(0, int)
        at = (r[:, None], pos, *fx)
        macs = self.macs[at] * active
        q = self.quant[at] * active
        o = self.other[at] * active
        bits = q * self.wbits[w] + o * 32
        total_macs = self.fixed_macs[r] + macs.sum(1)
        params = self.fixed_params[r] + (q + o).sum(1)
        total_bits = self.fixed_bits[r] + bits.sum(1)
        return total_macs, params, -(-total_bits // 8)


@functools.lru_cache(maxsize=8)
def profile_table(space_name: str) -> ProfileTable:
    from search_spaces import get_space

    return ProfileTable(get_space(space_name))


class Evaluator:
    """Base: `evaluate(configs) -> Metrics` for a batch of configs of `space`."""

    name = "abstract"
    space: SearchSpace

    def evaluate(self, configs: Sequence[SubnetConfig]) -> Metrics:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"evaluator": self.name}


def _check_space(what: str, obj_space: Any, space: SearchSpace) -> None:
    name = getattr(obj_space, "name", obj_space)
    if name != space.name:
        raise InputError(f"{what}: built for space {name!r}, but the search is over {space.name!r}")


class PredictedEvaluator(Evaluator):
    """Accuracy from `predictor.predict`, latency and device support from `table.predict` (inf: a block this
    device cannot run), exact size and MACs from `ProfileTable`."""

    name = "predicted"

    def __init__(self, space: SearchSpace, predictor: Any, table: Any, calibrated: bool = True) -> None:
        _check_space("predictor", getattr(predictor, "space", space.name), space)
        _check_space("table", getattr(table, "space", space.name), space)
        self.space = space
        self.predictor = predictor
        self.table = table
        self.calibrated = calibrated
        self.profiles = profile_table(space.name) if _registered(space) else ProfileTable(space)

    def evaluate(self, configs: Sequence[SubnetConfig]) -> Metrics:
        idx = self.space.to_indices(configs)
        return self.evaluate_indices(idx)

    def evaluate_indices(self, idx: np.ndarray) -> Metrics:
        acc = np.asarray(self.predictor.predict(idx), dtype=np.float64).reshape(-1)
        # one table lookup: `LatencyTable.predict` is inf exactly where `supported` is False
        lat = np.asarray(self.table.predict(idx, calibrated=self.calibrated), dtype=np.float64).reshape(-1)
        sup = np.isfinite(lat)
        lat = np.where(sup, lat, UNSUPPORTED_LATENCY_MS)
        macs, _, size = self.profiles.compute(idx)
        if len(acc) != len(idx) or len(lat) != len(idx):
            raise HwnasError(f"evaluator: predictor/table returned {len(acc)}/{len(lat)} values for {len(idx)} configs")
        return Metrics(acc, lat, size, macs, sup)

    def evaluate_cost(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(latency_ms, size_bytes, supported) without the accuracy predictor: what a search checks a candidate's
        budgets with before spending an evaluation on it (a table lookup and exact counts, as cheap as OFA's
        efficiency predictor)."""
        lat = np.asarray(self.table.predict(idx, calibrated=self.calibrated), dtype=np.float64).reshape(-1)
        sup = np.isfinite(lat)
        _, _, size = self.profiles.compute(idx)
        return np.where(sup, lat, UNSUPPORTED_LATENCY_MS), size, sup

    def describe(self) -> dict[str, Any]:
        return {"evaluator": self.name, "predictor": type(self.predictor).__name__,
                "table_device": getattr(self.table, "device_tag", None)}


def _registered(space: SearchSpace) -> bool:
    from search_spaces import SPACE_SPECS

    try:
        return SPACE_SPECS.get(space.name) == space.spec
    except Exception:
        return False


class MeasuredEvaluator(Evaluator):
    """Real measurements, one config at a time (inside a Ray worker):

    - accuracy: the supernet checkpoint `supernet` evaluated on data set `data` (`nas.train.evaluate`), or the
      predictor's estimate when no supernet is given;
    - latency: the subnet exported and run on `backend` (`latency_tables.measure_subnet`), or the table's
      estimate when no backend is given. With a table of the same backend as well, the subnet is measured with
      the table's device settings and protocol, and a load-normalized table scales it the way its own figures
      are scaled (ratio to the reference model x the reference's typical latency), so a measured value and the
      table's prediction for it compare on a shared machine.
    At least one of the two must be measured.
    """

    name = "measured"

    def __init__(self, space: SearchSpace, predictor: Any = None, table: Any = None, backend: str | None = None,
                 supernet: str | None = None, data: str | None = None, split: str = "test") -> None:
        if backend is None and supernet is None:
            raise InputError("evaluator measured: needs `backend` and/or `supernet` (with `data`)")
        if supernet is None and predictor is None:
            raise InputError("evaluator measured: needs `supernet`/`data` or `predictor` for accuracy")
        if backend is None and table is None:
            raise InputError("evaluator measured: needs `backend` or `table` for latency")
        self.space = space
        self.predictor, self.table = predictor, table
        self.backend_name, self.supernet_path, self.data_name, self.split = backend, supernet, data, split
        self._backend: Any = None
        self._net: Any = None
        self._data: Any = None
        self.profiles = profile_table(space.name) if _registered(space) else ProfileTable(space)

    def _accuracy(self, config: SubnetConfig, idx: np.ndarray) -> float:
        if self.supernet_path is None:
            return float(np.asarray(self.predictor.predict(idx)).reshape(-1)[0])
        if self._net is None:
            from nas.train import load_for_eval

            self._net, self._data, _ = load_for_eval(self.supernet_path, data_name=self.data_name, space=self.space.name)
        from nas.train import evaluate

        return float(evaluate(self._net, config, self._data, split=self.split))

    def _latency(self, config: SubnetConfig, idx: np.ndarray) -> float:
        if self.backend_name is None:
            return float(np.asarray(self.table.predict(idx)).reshape(-1)[0])
        import latency_tables

        if self.table is not None and self.table.backend == self.backend_name:
            from latency_tables import device_tasks

            m = device_tasks.measure_subnets(self.space.name, [config.to_dict()], self.backend_name,
                                             self.table.backend_args, self.table.protocol)[0]
            return float(self.table.latency_ms(m))
        if self._backend is None:
            self._backend = latency_tables.get_backend(self.backend_name)
        return float(latency_tables.measure_subnet(self.space, config, self._backend).median_ms)

    def evaluate(self, configs: Sequence[SubnetConfig]) -> Metrics:
        idx = self.space.to_indices(configs)
        acc = np.array([self._accuracy(c, idx[i:i + 1]) for i, c in enumerate(configs)], np.float64)
        lat = np.array([self._latency(c, idx[i:i + 1]) for i, c in enumerate(configs)], np.float64)
        sup_fn = getattr(self.table, "supported", None) if self.table is not None else None
        sup = np.asarray(sup_fn(idx), bool) if sup_fn is not None else np.ones(len(idx), bool)
        macs, _, size = self.profiles.compute(idx)
        return Metrics(acc, lat, size, macs, sup)

    def describe(self) -> dict[str, Any]:
        return {"evaluator": self.name, "backend": self.backend_name, "supernet": self.supernet_path,
                "data": self.data_name}
