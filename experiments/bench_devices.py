"""Device-specific fronts: one predictor (and the supernet it was fitted on), searched against the latency table of
each device, and what goes wrong when device A's pick is deployed on device B.

    .venv/bin/python -m experiments.bench_devices \
        --tables runs/bench-latency-ov/mbv3-r160-ort-cpu.json,runs/bench-latency-ov/mbv3-r160-openvino-cpu.json \
        [--sixteen runs/bench-latency-ov/mbv3-r160-openvino-cpu-bf16-float.json] [--predictor DIR] \
        [--budgets 2,3,4] [--trials 3000] [--out runs/bench-devices]

Prints, per latency budget: each device's pick (the most accurate subnet of its front within the budget); that
pick's latency predicted by, and measured end to end on, every device (measured where the device's backend runs
here); and the regret of deploying device A's pick on device B -- the accuracy B's own pick has minus A's pick's,
or "over" when A's pick does not even fit the budget on B. Then the per-block-kind speed-up over fp32 of every
bit pair (int8 = w8a8) and of the 16-bit float format (`--sixteen`: float-only tables built with a 16-bit
precision, e.g. `hwnas latency build --backend openvino-cpu --precision bf16 --float-only`), from the tables.

Without --predictor it fits an MLP predictor on configs labelled by `predictors.synthetic.synthetic_accuracy` (no
supernet of the table's space trained here) and says so; the devices then share that one predictor.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from latency_tables import LatencyTable
from search_spaces import BlockSpec, SubnetConfig
from search_spaces.files import atomic_write_json

BIT_PAIRS = ((8, 8), (8, 32), (4, 32), (4, 8))


def search_front(table_path: str, predictor: str, out: Path, trials: int, seed: int) -> list[Any]:
    from nas.search import SearchConfig
    from nas.search.api import run_search

    table = LatencyTable.load(table_path)
    r = run_search(SearchConfig(space=table.space, out=str(out / table.device_tag), predictor=predictor,
                                table=table_path, trials=trials, seed=seed, workers=0))
    return [e for e in r.front if e.feasible and np.isfinite(e.latency_ms)]


def pick(front: list[Any], budget: float) -> Any | None:
    ok = [e for e in front if e.latency_ms <= budget]
    return max(ok, key=lambda e: (e.accuracy, -e.latency_ms)) if ok else None


def measure_here(table: LatencyTable, configs: list[SubnetConfig]) -> list[float] | None:
    """End-to-end latency on the table's device with its settings (load-normalized like the table), or None when
    its backend does not run on this machine."""
    from latency_tables import BACKENDS
    from latency_tables.executor import LocalExecutor
    from latency_tables.validate import measure_configs

    if not BACKENDS.get(table.backend).available()[0] or not configs:
        return None
    return [table.latency_ms(m) for m in measure_configs(LocalExecutor(), table, configs, "measure", False)]


def label(c: SubnetConfig) -> str:
    """r160 d23422 k5.4 e4.2 w8a8x12 w32a32x6: resolution, depths, mean kernel / expand, bit pairs with counts."""
    pairs: dict[str, int] = defaultdict(int)
    for w, b in zip(c.weight_bits, c.act_bits):
        pairs[f"w{w}a{b}"] += 1
    bits = " ".join(f"{k}x{v}" for k, v in sorted(pairs.items()))
    return (f"r{c.resolution} d{''.join(map(str, c.depths))} k{np.mean(c.kernel):.1f} e{np.mean(c.expand):.1f} "
            f"keep{np.mean(c.keep):.2f} {bits}")


def block_kind(b: BlockSpec) -> str:
    if b.op == "mbconv":
        return f"mbconv k{b.kernel}{' se' if b.se else ''} {b.act}"
    return b.op


def speedups(table: LatencyTable, sixteen: LatencyTable | None) -> dict[str, dict[str, float]]:
    """Per block kind, the median over blocks of fp32 latency / latency at each bit pair (and at 16 bits)."""
    ratios: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for key, e in table.entries.items():
        b = BlockSpec.from_key(key)
        if b.quantized:
            continue
        fp32 = table.latency_ms(e)
        for w, a in BIT_PAIRS:
            q = BlockSpec(**{**b.to_dict(), "weight_bits": w, "act_bits": a}).key
            if q in table.entries:
                ratios[block_kind(b)][f"w{w}a{a}"].append(fp32 / table.latency_ms(table.entries[q]))
        if sixteen is not None and key in sixteen.entries:
            ratios[block_kind(b)]["16-bit"].append(fp32 / sixteen.latency_ms(sixteen.entries[key]))
    return {k: {p: float(np.median(v)) for p, v in d.items()} for k, d in sorted(ratios.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", required=True, help="comma-separated latency tables of one space, one per device")
    ap.add_argument("--sixteen", default="", help="comma-separated 16-bit float-only tables (per-kind speed-up)")
    ap.add_argument("--predictor", help="predictor directory (default: fitted on synthetic labels)")
    ap.add_argument("--budgets", default="", help="latency budgets in ms (default: 4 quantiles of the fronts)")
    ap.add_argument("--trials", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-measure", action="store_true", help="predicted latencies only")
    ap.add_argument("--out", default="runs/bench-devices")
    a = ap.parse_args()
    out = Path(a.out)
    paths = a.tables.split(",")
    tables = [LatencyTable.load(p) for p in paths]
    if len({t.space for t in tables}) != 1:
        raise SystemExit("bench_devices: --tables must all be of one search space")
    space = tables[0].space
    predictor = a.predictor
    if predictor is None:
        from experiments.bench_search import fit_synthetic_predictor

        predictor = str(fit_synthetic_predictor(space, out / f"predictor-{space}-synthetic"))
        print(f"predictor: an MLP fitted on synthetic accuracy labels of {space} ({predictor})\n")
    names = [t.device_tag for t in tables]
    fronts = [search_front(p, predictor, out, a.trials, a.seed) for p in paths]
    lat = np.concatenate([[e.latency_ms for e in f] for f in fronts])
    budgets = [float(b) for b in a.budgets.split(",") if b] or [
        float(f"{q:.3g}") for q in np.quantile(lat, [0.2, 0.4, 0.6, 0.8])]

    rows: list[dict[str, Any]] = []
    for budget in budgets:
        picks = [pick(f, budget) for f in fronts]
        cfgs = [p.config for p in picks if p is not None]
        predicted = [t.predict(cfgs) if cfgs else np.array([]) for t in tables]
        measured = [None if a.no_measure else measure_here(t, cfgs) for t in tables]
        row: dict[str, Any] = {"budget_ms": budget, "picks": []}
        j = 0
        for i, p in enumerate(picks):
            if p is None:
                row["picks"].append({"device": names[i], "config": None})
                continue
            on = {names[d]: {"predicted_ms": float(predicted[d][j]),
                             "measured_ms": None if measured[d] is None else float(measured[d][j])}
                  for d in range(len(tables))}
            row["picks"].append({"device": names[i], "config": p.config.to_dict(), "label": label(p.config),
                                 "accuracy": p.accuracy, "on": on})
            j += 1
        regret: dict[str, Any] = {}
        for i, pa in enumerate(row["picks"]):
            for d, pb in enumerate(row["picks"]):
                if i == d or pa["config"] is None or pb["config"] is None:
                    continue
                ms = pa["on"][names[d]]["measured_ms"] or pa["on"][names[d]]["predicted_ms"]
                regret[f"{names[i]} -> {names[d]}"] = (
                    "over" if ms > budget else round(pb["accuracy"] - pa["accuracy"], 3))
        row["regret"] = regret
        rows.append(row)

    sixteen = {LatencyTable.load(p).backend: LatencyTable.load(p) for p in a.sixteen.split(",") if p}
    kinds = {t.device_tag: speedups(t, sixteen.get(t.backend)) for t in tables}
    atomic_write_json(out / "bench_devices.json", {"space": space, "devices": names, "tables": paths,
                                                   "predictor": predictor, "budgets": rows, "speedups": kinds})
    print(markdown(names, rows, kinds))


def markdown(names: list[str], rows: list[dict[str, Any]], kinds: dict[str, dict[str, dict[str, float]]]) -> str:
    def ms(x: dict[str, Any]) -> str:
        m = x["measured_ms"]
        return f"{x['predicted_ms']:.3f} / {'-' if m is None else f'{m:.3f}'}"

    head = " | ".join(f"on {n} (pred / meas ms)" for n in names)
    lines = [f"| budget ms | device | pick | pred acc % | {head} |", "|" + "---|" * (4 + len(names))]
    for r in rows:
        for p in r["picks"]:
            if p["config"] is None:
                lines.append(f"| {r['budget_ms']:g} | {p['device']} | (nothing fits) | | " + " | " * len(names))
                continue
            cells = " | ".join(ms(p["on"][n]) for n in names)
            lines.append(f"| {r['budget_ms']:g} | {p['device']} | {p['label']} | {p['accuracy']:.2f} | {cells} |")
    lines += ["", "| budget ms | deploy A's pick on B | regret (accuracy points B's own pick has more; over: A's "
              "pick misses the budget on B) |", "|---|---|---|"]
    for r in rows:
        for k, v in r["regret"].items():
            lines.append(f"| {r['budget_ms']:g} | {k} | {v} |")
    pairs = [f"w{w}a{a}" for w, a in BIT_PAIRS] + ["16-bit"]
    lines += ["", "Speed-up over fp32 (median over the blocks of a kind, from the tables; int8 = w8a8):", "",
              "| device | block kind | " + " | ".join(pairs) + " |", "|" + "---|" * (2 + len(pairs))]
    for dev, d in kinds.items():
        for kind, v in d.items():
            lines.append(f"| {dev} | {kind} | " + " | ".join(f"{v[p]:.2f}x" if p in v else "–" for p in pairs) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
