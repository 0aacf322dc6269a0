"""Latency where the search chooses (`search.time_picks`): the label rounds' picks, timed whole.

The latency table is a sum of blocks timed alone, calibrated on random subnets; a budget search keeps the most
accurate subnet it says fits, which is, by selection, one it under-predicts (the quickstart's latency budgets'
picks ran 5-18 % over the table, random subnets within 3 %: experiments/results/latency.md). So in every label
round every budget's picks are also exported whole and timed on the table's backend with its protocol
(`latency_tables.validate.measure_configs`, ms at the table's speed), and the table is corrected around every
subnet timed so far (`LatencyTable.with_correction`) before the budgets are searched again: a pick the table
under-predicted leaves a latency budget, with its neighbours, and what replaces it is timed in the next round.
A size budget's picks are timed too: its answer is exported and measured like the others, and the correction's
mean (selection's, shared by every untimed subnet) would otherwise be all it had (on the quickstart, a 4-bit
size pick the table over-predicted by 8 % came out 13 % off). What each round timed is kept, predicted against
measured before the correction. The export's own round (`nas.pipeline.export_round`) carries the timings on
(`resume`) and times its candidates again (`time(..., again=True)`): a subnet timed twice enters the correction
twice, which averages one timing's noise (5-15 % on a shared host) instead of trusting it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_spaces.files import atomic_write_text


@dataclass
class PickTiming:
    """The timings and the corrected tables, in `folder`; `base`: the latency stage's table, which every round
    corrects."""

    folder: Path
    base: str
    seed: int
    ray_address: str | None = None
    progress: bool = False
    rounds: list[dict[str, Any]] = field(default_factory=list)
    timed: list[tuple[Any, float]] = field(default_factory=list)  # (config, ms at the table's speed), in order

    def __post_init__(self) -> None:
        from latency_tables import LatencyTable
        from latency_tables.validate import table_executor

        self.table = LatencyTable.load(self.base)
        self.executor = table_executor(self.table, self.ray_address)

    @classmethod
    def resume(cls, path: str | Path, folder: Path, base: str, seed: int, ray_address: str | None = None,
               progress: bool = False) -> PickTiming:
        """The timings saved at `path` (`save`), carried on in `folder`: its corrected tables go there."""
        from search_spaces import config_from_dict

        saved = json.loads(Path(path).read_text())
        timing = cls(folder, base, seed, ray_address, progress, rounds=saved["rounds"])
        timing.timed = [(config_from_dict(t["config"]), float(t["measured_ms"])) for t in saved["timed"]]
        return timing

    def time(self, picks: list[tuple[str, Any]], again: bool = False) -> list[dict[str, Any]]:
        """Time every `(budget label, FrontEntry)` pick not timed before (`again`: every pick; the correction
        then learns each subnet from all its timings, and the noise of one); the round's rows {budget, subnet,
        predicted, measured, new}, or an empty list when every pick was timed already."""
        from latency_tables.validate import measure_configs

        before = {c for c, _ in self.timed}
        new = list(dict.fromkeys(e.config for _, e in picks if again or e.config not in before))
        if not new:
            return []
        measured = measure_configs(self.executor, self.table, new, f"time picks {len(self.rounds) + 1}",
                                   self.progress)
        for c, m in zip(new, measured):
            self.timed.append((c, self.table.latency_ms(m)))
        last = dict(self.timed)
        rows = [{"budget": b, "subnet": e.config.label(), "predicted_ms": round(e.latency_ms, 5),
                 "measured_ms": round(last[e.config], 5), "new": e.config in new} for b, e in picks]
        errors = [100 * (r["measured_ms"] / r["predicted_ms"] - 1) for r in rows]
        self.rounds.append({"round": len(self.rounds) + 1, "timed": len(new),
                            "mean_error_pct": round(sum(errors) / len(errors), 2),
                            "mean_abs_error_pct": round(sum(abs(x) for x in errors) / len(errors), 2), "picks": rows})
        return rows

    def correct(self) -> str:
        """The base table corrected around every subnet timed so far, saved as `table-<round>.json`; its path."""
        configs, measured = [c for c, _ in self.timed], [ms for _, ms in self.timed]
        fixed = self.table.with_correction(configs, measured, seed=self.seed)
        out = self.folder / f"table-{len(self.rounds)}.json"
        fixed.save(out)
        assert fixed.correction is not None
        self.rounds[-1]["correction"] = fixed.correction.summary()
        return str(out.resolve())

    def save(self) -> Path:
        path = self.folder / "pick_timing.json"
        atomic_write_text(path, json.dumps({"rounds": self.rounds, "timed": [
            {"config": c.to_dict(), "measured_ms": ms} for c, ms in self.timed]}, indent=1))
        return path
