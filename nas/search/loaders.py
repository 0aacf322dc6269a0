"""Loading the predictor and the latency table a search runs on, with the CLI's error style."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from search_spaces import InputError


def load_predictor(directory: str | os.PathLike[str], space: str | None = None) -> Any:
    p = Path(directory)
    if not p.exists():
        raise InputError(f"predictor: got {str(directory)!r}, allowed: an existing predictor directory "
                         "(written by `hwnas predictor fit`)")
    from predictors import load_predictor as _load

    return _load(p, space=space)


def load_table(path: str | os.PathLike[str], space: str | None = None) -> Any:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"table: got {str(path)!r}, allowed: an existing latency table file "
                         "(written by `hwnas latency build`)")
    from latency_tables import LatencyTable

    return LatencyTable.load(p, space=space)
