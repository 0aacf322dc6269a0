"""`ExportConfig`: every setting of one verified ONNX export (`nas.export.export_subnet`), defined once -- `hwnas
export` makes its options from these fields, and an experiment file's `export:` section takes `verify_n` from here."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge

from search_spaces.settings import Seed, setting


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    """Export `config` from the supernet checkpoint `supernet` to `out` (+ `<stem>.card.json`) and verify it."""

    supernet: str | os.PathLike[str] = setting(help="Supernet checkpoint (.pt).", required=True)
    config: Any = setting(help="The subnet (a search-space config: SubnetConfig, ...).", required=True)
    out: str | os.PathLike[str] = setting(help="Output model, e.g. model.onnx.", required=True)
    # else the float version of the architecture is exported
    quantize: bool = setting(False, "Apply the config's per-layer bit-widths (static QDQ).")
    # calibration (train split) and verification (test split)
    data: str | None = setting(help="Data set for calibration and verification (default: the supernet's).")
    backend: str | None = setting("ort-cpu", "Latency backend to measure on ('none' skips measuring).")
    table: Any = setting(help="Latency table for predicted latency.")  # a LatencyTable or its path
    predictor: Any = setting(help="Accuracy predictor directory for predicted accuracy.")  # or a loaded predictor
    # its predictions are used when no table / predictor is given
    entry: Any = setting(help="The stored FrontEntry this config came from.")
    query_provenance: Mapping[str, Any] | None = setting(help="Where the query found it (goes into the card).")
    protocol: Any = setting(help="Latency measurement protocol (default: the backend's).")
    calib_batches: int = setting(8, "Training batches that recalibrate BN statistics and activation ranges.")
    calib_batch_size: int = setting(128)
    seed: Seed = setting(0, "Seed of the calibration batches.")
    # its accuracy is measured on all of them either way
    verify_n: Annotated[int, Ge(1)] | None = setting(
        help="Test images the ONNX model is compared with PyTorch on (None: all).")
    # float32; the subnet then moves to the CPU for ONNX export and checks
    device: str = setting("auto", "Where BN statistics are recalibrated: auto, cpu, cuda or cuda:N (export itself "
                                  "runs on the CPU; --device is the latency target of --query).")
    # a selection among candidates measured on the first holdout images is biased upwards on them, so
    # `holdout_accuracy` is measured on the rest
    holdout_from: int = setting(0, "Holdout images before this index chose the subnet.")
