"""Stages cached by their inputs: a stage's key hashes its settings and its upstream stages' keys, its
outputs live in `<workdir>/<stage>-<key>/`, and a `stage.json` written last (atomically) marks it done.

So a rerun skips what is done, a changed setting reruns exactly the stages that depend on it (their new key
gives them a new folder; the old one stays as a cache), and an interrupted stage resumes inside its folder
with the tool's own resume (training checkpoints, latency-table entries, dataset lines, the Optuna study).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_spaces.files import atomic_write_json

# 2: the data splits come in a prefix-stratified order (`nas.data.stratified_order`), so no stage of an earlier
# run, whose label and check images were other prefixes, is reused
STAGE_FORMAT = 2


@dataclass(frozen=True)
class StageResult:
    name: str
    key: str
    folder: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False


def stage_key(name: str, settings: Any, deps: Sequence[StageResult]) -> str:
    blob = json.dumps({"stage": name, "format": STAGE_FORMAT, "settings": settings,
                       "deps": {d.name: d.key for d in deps}}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class StageRunner:
    """Runs named stages in a workdir, skipping those whose key is already done."""

    def __init__(self, workdir: Path, log: Callable[[str], None] = print, dry_run: bool = False) -> None:
        self.workdir = Path(workdir)
        self.log = log
        self.dry_run = dry_run  # report what would run, run nothing
        self.results: dict[str, StageResult] = {}

    @staticmethod
    def key_of(name: str, settings: Any, deps: Sequence[StageResult]) -> str:
        return stage_key(name, settings, deps)

    def _read_marker(self, marker: Path, name: str) -> dict[str, Any] | None:
        """The stage's done marker, or None. A marker that is not one (torn, edited, not JSON) means "not done":
        the stage runs again in its folder and resumes from what it had written, which is always safe."""
        if not marker.is_file():
            return None
        try:
            done = json.loads(marker.read_text(encoding="utf-8"))
            if not (isinstance(done, dict) and isinstance(done.get("key"), str) and isinstance(done.get("outputs"), dict)
                    and isinstance(done.get("seconds"), (int, float))):
                raise ValueError("not a stage marker")
        except (ValueError, UnicodeDecodeError) as e:
            self.log(f"[{name}] warning: {marker} is unreadable ({type(e).__name__}); running the stage again")
            return None
        return done

    def run(self, name: str, settings: Any, deps: Sequence[StageResult],
            fn: Callable[[Path], dict[str, Any]]) -> StageResult:
        key = stage_key(name, settings, deps)
        folder = self.workdir / f"{name}-{key}"
        marker = folder / "stage.json"
        done = self._read_marker(marker, name)
        if done is not None:
            if done.get("key") == key:
                res = StageResult(name, key, folder, done["outputs"], done["seconds"], cached=True)
                self.log(f"[{name}] cached ({folder}, {done['seconds']:.0f} s when run)")
                self.results[name] = res
                return res
        if self.dry_run:
            self.log(f"[{name}] would run in {folder}")
            res = StageResult(name, key, folder)
            self.results[name] = res
            return res
        folder.mkdir(parents=True, exist_ok=True)
        self.log(f"[{name}] running in {folder}")
        t0 = time.perf_counter()
        outputs = fn(folder)
        seconds = time.perf_counter() - t0
        atomic_write_json(marker, {"stage": name, "key": key, "settings": settings, "outputs": outputs,
                                   "seconds": seconds, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self.log(f"[{name}] done in {seconds:.1f} s")
        res = StageResult(name, key, folder, outputs, seconds)
        self.results[name] = res
        return res
