"""How well a table corrected around a run's timed picks predicts the picks of the next round, and what it does
to random subnets -- the figures behind `latency_tables.correction`'s choice of a kernel correction with an
offset.

From a finished `hwnas run` with `search.time_picks` (its search stage's `pick_timing.json` and its latency
stage's table): for each round k > 1, the correction is fitted on the picks timed in rounds < k and predicts the
picks of round k (which the search chose with a correction fitted on those rounds); the residual left is
100 ln(measured / corrected). Then the correction fitted on every timed pick predicts the table's calibration
subnets (random ones, timed whole when the table was built): how far it moves them from their timings.

    .venv/bin/python -m experiments.bench_pick_correction --run runs/quickstart
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from latency_tables import LatencyTable
from latency_tables.correction import TIMING_SD_PCT
from search_spaces import config_from_dict
from search_spaces.kernel_residuals import KernelResiduals

VARIANTS = {"none": None, "local (no offset)": False, "local + offset": True}


def _one(path_glob: list[Path], what: str) -> Path:
    if len(path_glob) != 1:
        raise SystemExit(f"{what}: expected one, found {len(path_glob)} ({[str(p) for p in path_glob]})")
    return path_glob[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a run's workdir (holds latency-*/ and search-*/)")
    args = ap.parse_args()
    run = Path(args.run)
    table = LatencyTable.load(_one(list(run.glob("latency-*/table.json")), "latency table"))
    timing = json.loads(_one(list(run.glob("search-*/pick_timing.json")), "pick_timing.json").read_text())
    sp = table.search_space
    configs = [config_from_dict(t["config"]) for t in timing["timed"]]
    measured = np.array([t["measured_ms"] for t in timing["timed"]])
    round_of = np.repeat(np.arange(len(timing["rounds"])), [r["timed"] for r in timing["rounds"]])
    x = sp.encode(configs).astype(np.float64)
    y = 100 * np.log(measured / table.predict(configs, corrected=False))
    var = np.full(len(y), TIMING_SD_PCT ** 2)
    calib = [config_from_dict(m["config"]) for m in table.calibration_measurements]
    calib_ms = np.array([table.latency_ms(m) for m in table.calibration_measurements])
    xc = sp.encode(calib).astype(np.float64)
    yc = 100 * np.log(calib_ms / table.predict(calib, corrected=False))

    print(f"{len(y)} picks timed in {len(timing['rounds'])} rounds; their residual against the table by round: "
          + ", ".join(f"{y[round_of == k].mean():+.1f} %" for k in range(len(timing["rounds"]))))
    print(f"{'correction':20s} {'next round: mean':>17s} {'mean |.|':>9s} {'max |.|':>8s} "
          f"{'random subnets: mean':>21s} {'mean |.|':>9s} {'within 5 %':>11s}")
    for name, offset in VARIANTS.items():
        left = []
        for k in range(1, len(timing["rounds"])):
            before, now = round_of < k, round_of == k
            fit = None if offset is None else KernelResiduals.fit(x[before], y[before], var[before], offset=offset)
            left.append(y[now] - (0.0 if fit is None else fit.predict(x[now])))
        rest = np.concatenate(left)
        fit = None if offset is None else KernelResiduals.fit(x, y, var, offset=offset)
        rc = yc - (0.0 if fit is None else fit.predict(xc))
        print(f"{name:20s} {rest.mean():+16.2f}% {np.abs(rest).mean():8.2f}% {np.abs(rest).max():7.2f}% "
              f"{rc.mean():+20.2f}% {np.abs(rc).mean():8.2f}% {np.mean(np.abs(np.expm1(rc / 100)) <= 0.05):11.2f}")


if __name__ == "__main__":
    main()
