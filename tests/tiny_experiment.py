"""A complete experiment small enough for the test suite (~30 s): synthetic data, one resolution, float-only."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def tiny_experiment(workdir: Path, **overrides: Any) -> dict[str, Any]:
    exp: dict[str, Any] = {
        "name": "tiny",
        "space": "mbv3-tiny",
        "data": "synthetic",
        "seed": 0,
        "workdir": str(workdir),
        "supernet": {"epochs": 2, "batch_size": 64},
        "latency": {"backend": "ort-cpu", "resolutions": [16], "calibrate": 8, "validate_n": 3},
        "accuracy": {"n": 40},
        "predictor": {"kind": "mlp"},
        "search": {"trials": 300, "quantize": False, "verify_top": 2, "budget_trials": 100,
                   "label_rounds": 1, "label_picks": 2},
        # `fast` relative to the table's reference subnet (the pipeline turns it into ms): a loose limit
        "budgets": [{"name": "fast", "latency_vs_reference": 10.0}, {"name": "impossible", "size_mb": 0.001}],
    }
    for k, v in overrides.items():
        exp[k] = {**exp[k], **v} if isinstance(v, dict) else v
    return exp


def write_experiment(path: Path, exp: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(exp))
    return path
