"""`AccuracyDataset`: (subnet, measured top-1 accuracy) pairs read from the JSON-lines file that
`hwnas predictor dataset` appends to, one record per line:

    {"config": <SubnetConfig.to_dict()>, "accuracy": <top-1 percent>, "quantized": <bool>, "split": "holdout",
     "data": <name>, "supernet": <path or sha>, "seconds": <float>}

A torn last line (an interrupted append) is skipped; anything else that is not a record is an error naming the line.
"""
from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import InputError, SubnetConfig, config_from_dict, get_space
from search_spaces.errors import bad_value

REQUIRED_KEYS = ("config", "accuracy", "quantized")


@dataclass
class AccuracyDataset:
    """Configs of one space with their accuracy (percent) and whether each is quantized."""

    space: str
    configs: list[SubnetConfig]
    accuracy: np.ndarray
    quantized: np.ndarray
    sources: dict[str, list[str]] = field(default_factory=dict)  # distinct "data" / "supernet" / "split" values
    skipped_torn_line: bool = False
    halves: np.ndarray | None = None  # (n, 2) top-1 on each half of the split; NaN rows where a record has none
    # labelled because a search chose the subnet (record key "chosen": true), not drawn at random: always trained
    # on, never held out -- held-out residuals stand for random subnets (`predictors.uncertainty`)
    chosen: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.accuracy = np.asarray(self.accuracy, dtype=np.float64)
        if self.halves is None:
            self.halves = np.full((len(self.configs), 2), np.nan)
        self.halves = np.asarray(self.halves, dtype=np.float64).reshape(-1, 2)
        self.quantized = np.asarray(self.quantized, dtype=bool)
        self.chosen = np.zeros(len(self.configs), dtype=bool) if self.chosen is None else \
            np.asarray(self.chosen, dtype=bool).reshape(-1)
        if not (len(self.configs) == len(self.accuracy) == len(self.quantized) == len(self.chosen)):
            raise bad_value("dataset lengths", (len(self.configs), len(self.accuracy), len(self.quantized)),
                            "equal lengths of configs, accuracy and quantized")

    def __len__(self) -> int:
        return len(self.configs)

    def indices(self) -> np.ndarray:
        return get_space(self.space).to_indices(self.configs)

    def subset(self, rows: Sequence[int] | np.ndarray) -> AccuracyDataset:
        rows = np.asarray(rows, dtype=np.int64)
        assert self.halves is not None
        assert self.chosen is not None
        return AccuracyDataset(self.space, [self.configs[i] for i in rows], self.accuracy[rows], self.quantized[rows],
                               dict(self.sources), halves=self.halves[rows], chosen=self.chosen[rows])

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(train rows, test rows): held-out *architectures* -- a subnet's float and quantized versions fall on the
        same side -- chosen deterministically from `seed` (stable under appending records). Each side comes in an
        order set by the configs, not by the file: parallel collection writes records in whatever order its
        workers finish, and the same records must give the same predictor. An architecture with a `chosen`
        record is trained on, with all its records."""
        if not 0 < test_fraction < 1:
            raise bad_value("test_fraction", test_fraction, "a number strictly between 0 and 1")
        keys = [zlib.crc32(f"{seed}:{c.float_version().to_json()}".encode()) / 2**32 for c in self.configs]
        test = np.asarray(keys) < test_fraction
        assert self.chosen is not None
        if self.chosen.any():
            picked = {c.float_version() for c, ch in zip(self.configs, self.chosen) if ch}
            test &= np.array([c.float_version() not in picked for c in self.configs])
        texts = [c.to_json() for c in self.configs]
        order = np.asarray(sorted(range(len(texts)), key=lambda i: (zlib.crc32(texts[i].encode()), texts[i],
                                                                    self.accuracy[i])), dtype=np.int64)
        return order[~test[order]], order[test[order]]


def _record(line_no: int, obj: Any, path: str) -> tuple[SubnetConfig, float, bool, dict[str, Any]]:
    where = f"{path} line {line_no}"
    if not isinstance(obj, dict):
        raise InputError(f"{where}: got {type(obj).__name__}, allowed: a JSON object with keys "
                         f"{', '.join(REQUIRED_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in obj:
            raise InputError(f"{where}: key {key!r} missing, allowed: records with keys {', '.join(REQUIRED_KEYS)}")
    try:
        config = config_from_dict(obj["config"])
    except InputError as e:
        raise InputError(f"{where}: config {e}") from None
    acc = obj["accuracy"]
    if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not math.isfinite(acc) or not 0 <= acc <= 100:
        raise InputError(f"{where}: accuracy: got {acc!r}, allowed: a top-1 accuracy in percent, 0 to 100")
    q = obj["quantized"]
    if not isinstance(q, bool):
        raise InputError(f"{where}: quantized: got {q!r}, allowed: true or false")
    if q != config.is_quantized:
        raise InputError(f"{where}: quantized: got {q!r}, allowed: {config.is_quantized!r} (the config's bits say so)")
    halves = obj.get("accuracy_halves")
    if halves is not None and not (isinstance(halves, list) and len(halves) == 2 and all(
            isinstance(h, (int, float)) and not isinstance(h, bool) and 0 <= h <= 100 for h in halves)):
        raise InputError(f"{where}: accuracy_halves: got {halves!r}, allowed: two top-1 accuracies in percent")
    if not isinstance(obj.get("chosen", False), bool):
        raise InputError(f"{where}: chosen: got {obj['chosen']!r}, allowed: true or false")
    return config, float(acc), q, obj


def load_accuracy_dataset(path: str | os.PathLike[str], space: str | None = None) -> AccuracyDataset:
    """Read a JSON-lines accuracy dataset; `space` (optional) must match the records' space."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"dataset: got {str(path)!r}, allowed: an existing JSON-lines file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"dataset: {p} is not UTF-8 text (byte {e.start}); expected JSON lines") from None
    lines = text.split("\n")
    torn = False
    configs: list[SubnetConfig] = []
    acc: list[float] = []
    quant: list[bool] = []
    halves: list[tuple[float, float]] = []
    chosen: list[bool] = []
    sources: dict[str, set[str]] = {"data": set(), "supernet": set(), "split": set()}
    last_content = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if i == last_content and not text.endswith("\n") and configs:  # an interrupted append
                torn = True
                continue
            raise InputError(f"dataset: {p} line {i + 1} is not JSON ({e.msg} at column {e.colno}); "
                             "expected one record per line") from None
        config, a, q, rec = _record(i + 1, obj, str(p))
        if configs and config.space != configs[0].space:
            raise InputError(f"{p} line {i + 1}: config.space: got {config.space!r}, allowed: {configs[0].space!r} "
                             "(one space per dataset)")
        configs.append(config)
        acc.append(a)
        quant.append(q)
        h = rec.get("accuracy_halves")
        halves.append((float(h[0]), float(h[1])) if h is not None else (math.nan, math.nan))
        chosen.append(rec.get("chosen") is True)
        for key in sources:
            if rec.get(key) is not None:
                sources[key].add(str(rec[key]))
    if not configs:
        raise InputError(f"dataset: {p} holds no records; expected JSON lines like "
                         '{"config": {...}, "accuracy": 97.1, "quantized": false, ...}')
    if space is not None and configs[0].space != space:
        raise InputError(f"dataset space: got {configs[0].space!r}, allowed: {space!r}")
    return AccuracyDataset(configs[0].space, configs, np.asarray(acc), np.asarray(quant),
                           {k: sorted(v) for k, v in sources.items()}, torn, np.asarray(halves, dtype=np.float64),
                           np.asarray(chosen, dtype=bool))


__all__ = ["AccuracyDataset", "load_accuracy_dataset"]
