"""`QueryConfig`: one budget question to the results store (`nas.lookup.query`), defined once -- `hwnas query`
and `hwnas export --query` make their options from these fields."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from search_spaces.settings import setting

from nas.budgets import BudgetSettings
from nas.front import Objective

STORE_HELP = "Results store: an SQLite file path or any SQLAlchemy URL [default: ./hwnas-results.db]."
N_CLOSEST = 3


@dataclass(frozen=True, kw_only=True)
class QueryConfig(BudgetSettings):
    """The best stored subnet for `space` on `device` meeting every budget given (latency <= latency_ms,
    size <= size_mb * 10^6 bytes, accuracy >= min_accuracy % at `nas.front.CONFIDENCE`), best by `objective`;
    with `n_ranked` > 1 also the runners-up."""

    # an open `ResultsStore`, or its path / URL (None: ./hwnas-results.db)
    store: Any | str | os.PathLike[str] | None = setting(help=STORE_HELP)
    space: str = setting(help="Search space name.", required=True)
    device: str | None = setting(help="Device tag the fronts were searched for.")
    objective: Objective = setting("accuracy", "Best by this metric among the subnets meeting every budget.")
    dataset: str | None = setting(help="Data set of the fronts (needed when several exist).")
    predictor: str | None = setting(help="Only fronts searched with this predictor (as stored).")
    front_id: int | None = setting(help="Only this stored front (the id `ResultsStore.add_front` returned).")
    n_closest: int = setting(N_CLOSEST, "Nearest misses listed when nothing meets the budgets.")
    n_ranked: int = setting(1, "Best candidates returned, best first (a caller that verifies them by measurement).")
