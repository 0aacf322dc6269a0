"""Budget queries: "which subnet do I deploy on device D under budget B?" -- `nas.query(...)`.

The answer is the best stored front entry (by `objective`) that meets every budget, with where it came from;
or, when none does, a clear message and the closest candidates (smallest relative budget violation).
Budgets: latency in ms (<=), size in MB = 10^6 bytes (<=), accuracy in percent (>=).

The metric columns of the fronts asked about are cached as numpy arrays per store revision, so a query costs
one primary-key read (is the cache current?), a vectorised mask, and one read of the chosen row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.front import CONFIDENCE, OBJECTIVES, FrontEntry
from nas.budgets import Budgets
from nas.query_config import QueryConfig
from nas.store import FrontInfo, ResultsStore
from search_spaces import InputError
from search_spaces.errors import bad_value



@dataclass(frozen=True)
class Candidate:
    entry: FrontEntry
    entry_id: int
    front: FrontInfo
    violations: dict[str, dict[str, float]] = field(default_factory=dict)  # budget -> {value, budget, over_by}

    def to_dict(self) -> dict[str, Any]:
        d = self.entry.to_dict()
        d["size_mb"] = self.entry.size_bytes / 1e6
        if self.entry.accuracy_lower is not None:
            d["accuracy_lower_confidence"] = CONFIDENCE
        d["entry_id"] = self.entry_id
        d["provenance"] = self.front.to_dict()
        if self.violations:
            d["violations"] = self.violations
        return d


@dataclass(frozen=True)
class QueryResult:
    """`found` with `best` (and its provenance), or not found with `message` and `closest`."""

    found: bool
    space: str
    device: str
    objective: str
    budgets: dict[str, float]
    n_entries: int  # entries considered (every front matching space / device / data set / predictor)
    n_feasible: int  # of those, meeting every budget
    best: Candidate | None = None
    closest: list[Candidate] = field(default_factory=list)
    message: str = ""
    ranked: list[Candidate] = field(default_factory=list)  # the n_ranked best feasible, best first

    @property
    def config(self):  # noqa: ANN201 -- SubnetConfig | None
        return None if self.best is None else self.best.entry.config

    def to_dict(self) -> dict[str, Any]:
        return {"found": self.found, "message": self.message, "space": self.space, "device": self.device,
                "objective": self.objective, "budgets": self.budgets, "n_entries": self.n_entries,
                "n_feasible": self.n_feasible, "best": None if self.best is None else self.best.to_dict(),
                "closest": [c.to_dict() for c in self.closest]}


def _budget(name: str, value: float | None, unit: str, upper: float | None = None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputError(f"{name}: got {value!r}, allowed: a number ({unit})")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and upper is None):
        allowed = f"a number in [0, {upper:g}] ({unit})" if upper is not None else f"a positive number ({unit})"
        raise InputError(f"{name}: got {value!r}, allowed: {allowed}")
    if upper is not None and v > upper:
        raise InputError(f"{name}: got {value!r}, allowed: a number in [0, {upper:g}] ({unit})")
    return v


def _one_of(name: str, value: str, allowed: list[str], what: str) -> None:
    if value not in allowed:
        opts = ", ".join(sorted(allowed)) if allowed else "none -- " + what
        raise InputError(f"{name}: got {value!r}, allowed: one of {{{opts}}}" if allowed else
                         f"{name}: got {value!r}, allowed: {opts}")


def _matching_fronts(fronts: list[FrontInfo], space: str, device: str, dataset: str | None,
                     predictor: str | None, front_id: int | None = None) -> list[FrontInfo]:
    if not isinstance(space, str):
        raise InputError(f"space: got {space!r}, allowed: a search space name")
    if not isinstance(device, str):
        raise InputError(f"device: got {device!r}, allowed: a device tag")
    _one_of("space", space, sorted({f.space for f in fronts}), "the store holds no fronts (run hwnas search --store URL)")
    fs = [f for f in fronts if f.space == space]
    _one_of("device", device, sorted({f.device_tag for f in fs}), "")
    fs = [f for f in fs if f.device_tag == device]
    if dataset is not None:
        _one_of("dataset", dataset, sorted({f.dataset for f in fs}), "")
        fs = [f for f in fs if f.dataset == dataset]
    else:
        datasets = sorted({f.dataset for f in fs})
        if len(datasets) > 1:
            raise InputError(f"dataset: not given, but fronts for space {space!r} on {device!r} were searched on "
                             f"several data sets; allowed: one of {{{', '.join(datasets)}}}")
    if predictor is not None:
        _one_of("predictor", predictor, sorted({f.predictor for f in fs}), "")
        fs = [f for f in fs if f.predictor == predictor]
    if front_id is not None:
        ids = sorted(f.id for f in fs)
        if front_id not in ids:
            raise bad_value("front_id", front_id, f"one of {ids} (the matching fronts)" if ids else "none match")
        fs = [f for f in fs if f.id == front_id]
    return fs


def _order(idx: np.ndarray, cols: Any, objective: str) -> np.ndarray:
    """`idx` sorted best first: by the objective, then accuracy (higher), latency, size (lower), id."""
    acc, lat, size = cols.accuracy[idx], cols.latency_ms[idx], cols.size_bytes[idx]
    keys = {"accuracy": (-acc, lat, size), "latency": (lat, -acc, size), "size": (size, -acc, lat)}[objective]
    return idx[np.lexsort((cols.ids[idx],) + tuple(reversed(keys)))]


def _best(idx: np.ndarray, cols: Any, objective: str) -> int:
    """Index (into the columns) of the best of `idx` without sorting all of them."""
    primary = {"accuracy": -cols.accuracy, "latency": cols.latency_ms, "size": cols.size_bytes}[objective][idx]
    top = idx[primary == primary.min()]
    return int(_order(top, cols, objective)[0]) if len(top) > 1 else int(top[0])


def query(config: QueryConfig) -> QueryResult:
    """The answer to `config` (see `QueryConfig`): a `min_accuracy` budget holds on the entry's lower bound where it
    has one, else on its predicted accuracy."""
    c = config
    if c.device is None:
        raise InputError("device: missing, allowed: a device tag with a stored front (see `hwnas query --help`)")
    if c.objective not in OBJECTIVES:
        raise InputError(f"objective: got {c.objective!r}, allowed: one of {{{', '.join(OBJECTIVES)}}}")
    if isinstance(c.store, ResultsStore):
        return _answer(c.store, c)
    with ResultsStore(c.store, create=False) as store:
        return _answer(store, c)


def _answer(store: ResultsStore, c: QueryConfig) -> QueryResult:
    space, device, objective, n_closest, n_ranked = c.space, c.device, c.objective, c.n_closest, c.n_ranked
    lat_b = _budget("latency_ms", c.latency_ms, "milliseconds")
    size_b = _budget("size_mb", c.size_mb, "MB = 10^6 bytes")
    acc_b = _budget("min_accuracy", c.min_accuracy, "percent", upper=100.0)
    budgets = {k: v for k, v in (("latency_ms", lat_b), ("size_mb", size_b), ("min_accuracy", acc_b)) if v is not None}

    rev = store.revision()
    fronts = _matching_fronts(store.fronts(rev), space, device, c.dataset, c.predictor, c.front_id)
    by_id = {f.id: f for f in fronts}
    cols = store.columns(by_id, rev)
    n = len(cols.ids)
    # a min_accuracy budget holds at the front's confidence: on the lower bound where the entry has one
    feasible = np.flatnonzero(Budgets(lat_b, size_b, acc_b).mask(cols.accuracy_for_budget, cols.latency_ms,
                                                                 cols.size_bytes))

    def candidate(i: int, with_violations: bool) -> Candidate:
        entry, front_id = store.entry(int(cols.ids[i]))
        viol: dict[str, dict[str, float]] = {}
        if with_violations:
            if lat_b is not None and entry.latency_ms > lat_b:
                viol["latency_ms"] = {"value": entry.latency_ms, "budget": lat_b, "over_by": entry.latency_ms - lat_b}
            if size_b is not None and entry.size_bytes / 1e6 > size_b:
                mb = entry.size_bytes / 1e6
                viol["size_mb"] = {"value": mb, "budget": size_b, "over_by": mb - size_b}
            if acc_b is not None and entry.accuracy_for_budget < acc_b:
                a = entry.accuracy_for_budget
                viol["min_accuracy"] = {"value": a, "budget": acc_b, "over_by": acc_b - a}
        return Candidate(entry, int(cols.ids[i]), by_id[front_id], viol)

    common = {"space": space, "device": device, "objective": objective, "budgets": budgets, "n_entries": n,
              "n_feasible": int(len(feasible))}
    if len(feasible):
        best = candidate(_best(feasible, cols, objective), False)
        ranked = [best]
        if n_ranked > 1:
            ranked += [candidate(int(i), False) for i in _order(feasible, cols, objective)[:n_ranked]
                       if int(cols.ids[i]) != best.entry_id][: n_ranked - 1]
        e = best.entry
        lower = "" if e.accuracy_lower is None else f" (>= {e.accuracy_lower:.2f} % at {CONFIDENCE:.0%} confidence)"
        msg = (f"best by {objective} of {len(feasible)} of {n} stored subnets meeting the budgets: accuracy "
               f"{e.accuracy:.2f} %{lower}, latency {e.latency_ms:.3f} ms, size {e.size_bytes / 1e6:.3f} MB")
        return QueryResult(found=True, best=best, message=msg, ranked=ranked, **common)
    # nothing meets the budgets: rank everything by total relative violation
    over = np.zeros(n)
    with np.errstate(over="ignore"):  # a budget near zero makes a violation inf: still the right order
        if lat_b is not None:
            over += np.maximum(cols.latency_ms / lat_b - 1.0, 0.0)
        if size_b is not None:
            over += np.maximum(cols.size_bytes / (size_b * 1e6) - 1.0, 0.0)
    if acc_b is not None:
        over += np.maximum((acc_b - cols.accuracy_for_budget) / max(acc_b, 1e-9), 0.0)
    k = min(max(n_closest, 0), n)
    closest: list[Candidate] = []
    if k:
        part = np.argpartition(over, k - 1)[:k] if k < n else np.arange(n)
        part = part[np.lexsort((cols.ids[part], over[part]))]
        closest = [candidate(int(i), True) for i in part]
    wanted = ", ".join(f"{b} {'>=' if b == 'min_accuracy' else '<='} {v:g}" for b, v in budgets.items())
    msg = f"nothing meets these budgets ({wanted}) among {n} stored subnets for {space} on {device}"
    if closest:
        parts = [f"{b} {v['value']:.4g} (budget {v['budget']:g})" for b, v in closest[0].violations.items()]
        msg += f"; closest: {', '.join(parts)}"
    return QueryResult(found=False, closest=closest, message=msg, **common)


__all__ = ["Candidate", "QueryResult", "query"]
