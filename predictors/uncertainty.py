"""How far below its prediction a subnet's accuracy may lie: one-sided split-conformal margins from the residuals
of held-out subnets.

Why conformal and not an ensemble's spread: the spread says how much the members disagree, not how wrong they
are together, and most kinds (gbt, ridge, the stack) have no spread at all. Residuals of subnets the predictor never saw are what it really gets wrong. With the residuals
r_i = predicted_i - measured_i of n held-out subnets, sorted, the margin at confidence c is r_(k) with
k = ceil((n + 1) c): a new subnet drawn like them then has measured >= predicted - margin with probability >= c
(finite-sample, distribution-free). A subnet *chosen* for its high prediction is not drawn like them -- it is
optimistic by selection -- so the pipeline also measures what it exports.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from search_spaces.errors import InputError, bad_value

METHOD = "split-conformal, one-sided, on held-out residuals (predicted - measured)"
MIN_PER_ROLE = 20  # fewer held-out records of a role (float / quantized): use all roles' residuals together


def conformal_margin(residuals: Sequence[float] | np.ndarray, confidence: float) -> float:
    """The margin m with P(measured >= predicted - m) >= `confidence` for a new exchangeable subnet; inf when
    there are too few residuals to promise that confidence (k > n)."""
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise bad_value("confidence", confidence, "a probability in (0, 1), e.g. 0.9")
    r = np.sort(np.asarray(residuals, dtype=np.float64))
    if r.size == 0 or not np.all(np.isfinite(r)):
        raise bad_value("residuals", f"{r.size} values", "at least one finite residual")
    k = math.ceil((r.size + 1) * confidence)
    return float("inf") if k > r.size else float(r[k - 1])


class Margins:
    """Held-out residuals per predictor role (`fp`: float subnets, `qa`: quantized), persisted as JSON lists."""

    def __init__(self, residuals: Mapping[str, Sequence[float]]) -> None:
        self.residuals = {role: np.asarray(v, dtype=np.float64) for role, v in residuals.items() if len(v)}
        for role, r in self.residuals.items():
            if not np.all(np.isfinite(r)):
                raise bad_value(f"uncertainty.residuals.{role}", "non-finite values", "finite numbers")

    @classmethod
    def from_held_out(cls, predicted: np.ndarray, measured: np.ndarray, quantized: np.ndarray) -> Margins:
        res = np.asarray(predicted, np.float64) - np.asarray(measured, np.float64)
        q = np.asarray(quantized, bool)
        return cls({"fp": res[~q].round(4).tolist(), "qa": res[q].round(4).tolist()})

    def for_role(self, role: str) -> np.ndarray:
        own = self.residuals.get(role)
        if own is not None and own.size >= MIN_PER_ROLE:
            return own
        pooled = list(self.residuals.values())
        if not pooled:
            raise InputError("predictor: no held-out residuals to bound its error (refit with hwnas predictor fit)")
        return np.concatenate(pooled)

    def margin(self, role: str, confidence: float) -> float:
        return conformal_margin(self.for_role(role), confidence)

    def to_dict(self) -> dict[str, Any]:
        return {"method": METHOD, "residuals": {k: v.tolist() for k, v in self.residuals.items()},
                "n": {k: int(v.size) for k, v in self.residuals.items()}}

    @classmethod
    def from_dict(cls, d: Any) -> Margins:
        if not isinstance(d, Mapping) or not isinstance(d.get("residuals"), Mapping):
            raise bad_value("uncertainty", type(d).__name__, "an object with residuals per role")
        res = {}
        for role, v in d["residuals"].items():
            if role not in ("fp", "qa") or not isinstance(v, list) or \
                    not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise bad_value(f"uncertainty.residuals.{role}", type(v).__name__, "a list of numbers, role fp or qa")
            res[role] = v
        return cls(res)


__all__ = ["METHOD", "Margins", "conformal_margin"]
