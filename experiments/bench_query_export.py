"""Benchmark of the deployment path: budget-query latency on a results store of 100k front entries (Python API
and, with --http, through a real `hwnas serve`), and for N exported subnets predicted vs measured latency and
accuracy. Writes JSON next to experiments/results/deploy.md and regenerates that file from whatever parts exist.

    # query latency (no artefacts needed)
    .venv/bin/python -m experiments.bench_query_export query --entries 100000 --queries 2000 --http
    # exports (needs a trained supernet, its latency table and accuracy predictor; long: run under the lock)
    flock /tmp/hwnas-heavy.lock .venv/bin/python -m experiments.bench_query_export export \\
        --supernet runs/tiny-digits/supernet.pt --table TABLE.json --predictor PRED_DIR [--store DB --device TAG] --n 5
"""
from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


# ---- query latency -------------------------------------------------------------------------------------------
def synthetic_front(n: int, space: str, seed: int) -> list[Any]:
    """`n` entries whose metrics trade off like a Pareto front (faster / smaller = less accurate) plus noise;
    configs are real samples of the space (1,000 distinct ones, reused)."""
    from nas.front import FrontEntry
    from search_spaces import get_space

    sp = get_space(space)
    rng = np.random.default_rng(seed)
    configs = sp.sample_many(1000, seed)
    lat = rng.uniform(0.2, 8.0, n)
    size = rng.integers(50_000, 4_000_000, n)
    acc = np.clip(55 + 6 * np.log(lat) + 4 * np.log(size / 5e4) + rng.normal(0, 2, n), 0, 100)
    macs = rng.integers(1_000_000, 100_000_000, n)
    return [FrontEntry(configs[i % 1000], float(acc[i]), float(lat[i]), int(size[i]), int(macs[i]), trial=i)
            for i in range(n)]


def pct(ts: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(ts) * 1e3, q)) if ts else float("nan")


def budgets_for(rng: np.random.Generator, i: int) -> dict[str, float | str | None]:
    """A mix like a deployment pipeline's: latency only, size only, both, plus an accuracy floor; budgets drawn
    over the whole range so some queries have no answer."""
    kind = i % 4
    return {"latency_ms": float(rng.uniform(0.1, 8.0)) if kind in (0, 2, 3) else None,
            "size_mb": float(rng.uniform(0.02, 4.0)) if kind in (1, 2, 3) else None,
            "min_accuracy": float(rng.uniform(50, 85)) if kind == 3 else None,
            "objective": ("accuracy", "latency", "size")[i % 3]}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_http(db: Path, space: str, device: str, queries: int, seed: int) -> dict[str, Any]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli.main", "serve", "--store", str(db), "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("hwnas serve did not come up") from None
                    time.sleep(0.2)
            rng = np.random.default_rng(seed)
            t0 = time.perf_counter()
            client.get("/subnets", params={"space": space, "device": device, "latency_ms": 1.0})
            cold = time.perf_counter() - t0
            ts, codes = [], {}
            for i in range(queries):
                b = {k: v for k, v in budgets_for(rng, i).items() if v is not None}
                t0 = time.perf_counter()
                r = client.get("/subnets", params={"space": space, "device": device, **b})
                ts.append(time.perf_counter() - t0)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"queries": queries, "cold_ms": cold * 1e3, "p50_ms": pct(ts, 50), "p99_ms": pct(ts, 99),
            "max_ms": pct(ts, 100), "status_codes": {str(k): v for k, v in sorted(codes.items())}}


def run_query(args: argparse.Namespace) -> dict[str, Any]:
    from nas.lookup import query
    from nas.query_config import QueryConfig
    from nas.store import ResultsStore

    space, device = "mbv3-tiny", "bench-cpu"
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp:
        db = Path(tmp) / "results.db"
        per_front = args.entries // args.fronts
        t0 = time.perf_counter()
        with ResultsStore(db) as st:
            for f in range(args.fronts):
                st.add_front(synthetic_front(per_front, space, seed=f), space=space, device_tag=device,
                             device_fingerprint={"backend": "ort-cpu", "bench": True}, dataset="digits",
                             predictor="bench-mlp", source={"front": f})
            # a second device and space, so the indexes have something to skip
            st.add_front(synthetic_front(1000, space, seed=99), space=space, device_tag="other-device",
                         device_fingerprint="other", dataset="digits", predictor="bench-mlp")
        build_s = time.perf_counter() - t0
        file_mb = db.stat().st_size / 1e6

        st = ResultsStore(db, create=False)  # a fresh reader: the first query loads the columns
        t0 = time.perf_counter()
        first = query(QueryConfig(store=st, space=space, device=device, latency_ms=1.0))
        cold = time.perf_counter() - t0
        assert first.n_entries == per_front * args.fronts
        rng = np.random.default_rng(args.seed)
        found_ts, missing_ts = [], []
        for i in range(args.queries):
            b = budgets_for(rng, i)
            t0 = time.perf_counter()
            r = query(QueryConfig(store=st, space=space, device=device, **b))
            dt = time.perf_counter() - t0
            (found_ts if r.found else missing_ts).append(dt)
        every = found_ts + missing_ts
        # after a write, the next query reloads (the revision changed): what a writer costs a reader
        st.add_front(synthetic_front(10, space, seed=123), space=space, device_tag=device, device_fingerprint="x",
                     dataset="digits", predictor="bench-mlp")
        t0 = time.perf_counter()
        query(QueryConfig(store=st, space=space, device=device, latency_ms=1.0))
        after_write = time.perf_counter() - t0
        st.close()
        out: dict[str, Any] = {
            "entries": per_front * args.fronts, "fronts": args.fronts, "queries": args.queries,
            "store_build_s": build_s, "store_file_mb": file_mb, "cold_query_ms": cold * 1e3,
            "after_write_query_ms": after_write * 1e3,
            "all": {"n": len(every), "p50_ms": pct(every, 50), "p99_ms": pct(every, 99), "max_ms": pct(every, 100)},
            "found": {"n": len(found_ts), "p50_ms": pct(found_ts, 50), "p99_ms": pct(found_ts, 99)},
            "nothing_meets": {"n": len(missing_ts), "p50_ms": pct(missing_ts, 50), "p99_ms": pct(missing_ts, 99)},
            "load": os.getloadavg()[0],
        }
        if args.http:
            out["http"] = bench_http(db, space, device, args.http_queries, args.seed)
    return out


# ---- exports ----------------------------------------------------------------------------------------------
def pick_configs(args: argparse.Namespace, space_name: str, table: Any) -> list[tuple[Any, Any, dict[str, Any] | None]]:
    """(config, front entry or None, query provenance or None): from budget queries spread over a stored front,
    or seeded random (quantized) samples of the space."""
    if args.store:
        from nas.lookup import query
        from nas.query_config import QueryConfig
        from nas.store import ResultsStore

        with ResultsStore(args.store, create=False) as st:
            probe = query(QueryConfig(store=st, space=space_name, device=args.device))
            cols = st.columns([f.id for f in st.fronts() if f.space == space_name and f.device_tag == args.device],
                              st.revision())
            qs = np.quantile(cols.latency_ms, np.linspace(0.1, 0.9, args.n))
            out, seen = [], set()
            for b in qs:
                r = query(QueryConfig(store=st, space=space_name, device=args.device,
                                      latency_ms=float(b)))
                if r.found and r.best.entry.config not in seen:
                    seen.add(r.best.entry.config)
                    prov = {"entry_id": r.best.entry_id, "budgets": r.budgets, **r.best.front.to_dict()}
                    out.append((r.best.entry.config, r.best.entry, prov))
            assert probe.found
            return out
    from search_spaces import get_space

    sp = get_space(space_name)
    rng = np.random.default_rng(args.seed)
    res = list(table.resolutions) if table is not None else list(sp.spec.resolutions)
    out = []
    for _ in range(args.n):  # at a resolution the table has measured
        c = sp.sample(rng, quantize=not args.float)
        out.append((c.replace(resolution=int(rng.choice(res))), None, None))
    return out


def run_export(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from latency_tables import LatencyTable, Protocol
    from nas.checkpoint import read_checkpoint
    from nas.export import ExportConfig, export_subnet
    from predictors import load_predictor

    torch.set_num_threads(1)
    space_name = read_checkpoint(args.supernet)["space"]
    table = LatencyTable.load(args.table) if args.table else None
    predictor = load_predictor(args.predictor) if args.predictor else None
    protocol = Protocol(rounds=args.rounds)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwnas-export-") as tmp:
        for i, (cfg, entry, prov) in enumerate(pick_configs(args, space_name, table)):
            t0 = time.perf_counter()
            r = export_subnet(ExportConfig(supernet=args.supernet, config=cfg, out=Path(tmp) / f"subnet{i}.onnx",
                                           quantize=not args.float, data=args.data, backend=args.backend, table=table,
                                           predictor=predictor, entry=entry, query_provenance=prov,
                                           protocol=protocol, seed=args.seed))
            row = r.summary()
            row["seconds"] = time.perf_counter() - t0
            row["bits"] = sorted({f"w{w}a{a}" for w, a in zip(cfg.weight_bits, cfg.act_bits)})
            rows.append(row)
            print(f"subnet{i}: res {cfg.resolution} depths {list(cfg.depths)} bits {row['bits']}: "
                  f"acc {r.accuracy:.2f} (pred {r.predicted_accuracy}) lat {r.latency_ms} (pred "
                  f"{r.predicted_latency_ms}) agree {r.top1_agreement:.1f}", flush=True)

    def errs(meas: str, pred: str, rel: bool) -> list[float]:
        out = []
        for row in rows:
            if row[meas] is not None and row[pred] is not None:
                out.append(abs(row[pred] / row[meas] - 1) * 100 if rel else abs(row[pred] - row[meas]))
        return out

    lat_err, acc_err = errs("latency_ms", "predicted_latency_ms", True), errs("accuracy", "predicted_accuracy", False)
    return {"supernet": args.supernet, "table": args.table, "predictor": args.predictor, "store": args.store,
            "device": args.device, "backend": args.backend, "quantize": not args.float, "rows": rows,
            "latency_abs_rel_error_pct": {"mean": float(np.mean(lat_err)) if lat_err else None,
                                          "max": float(np.max(lat_err)) if lat_err else None},
            "accuracy_abs_error_pp": {"mean": float(np.mean(acc_err)) if acc_err else None,
                                      "max": float(np.max(acc_err)) if acc_err else None},
            "load": os.getloadavg()[0], "note": args.note,
            "command": ".venv/bin/python -m experiments.bench_query_export " + " ".join(sys.argv[1:])}


# ---- report -------------------------------------------------------------------------------------------------
def f(v: Any, fmt: str = ".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def write_markdown() -> Path:
    q = json.loads((RESULTS / "deploy-query.json").read_text()) if (RESULTS / "deploy-query.json").exists() else None
    e = json.loads((RESULTS / "deploy-export.json").read_text()) if (RESULTS / "deploy-export.json").exists() else None
    lines = ["# Deployment path: budget queries and verified export", "",
             "Machine: 2 shared CPU cores (other jobs running; single timings swing by tens of percent). "
             "Regenerate with the commands below (`experiments/bench_query_export.py`).", ""]
    if q:
        lines += ["## Query latency", "",
                  f"Store: {q['entries']:,} front entries in {q['fronts']} fronts for one (space, device) "
                  f"(+1,000 for another device), SQLite file {q['store_file_mb']:.1f} MB, built in "
                  f"{q['store_build_s']:.1f} s. {q['queries']:,} queries with random latency / size / accuracy "
                  f"budgets and objectives (load average {q['load']:.1f}).", "",
                  "| queries | n | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|",
                  f"| all (Python API `nas.query`) | {q['all']['n']} | {f(q['all']['p50_ms'])} | "
                  f"{f(q['all']['p99_ms'])} | {f(q['all']['max_ms'])} |",
                  f"| with an answer | {q['found']['n']} | {f(q['found']['p50_ms'])} | {f(q['found']['p99_ms'])} | |",
                  f"| nothing meets (3 closest returned) | {q['nothing_meets']['n']} | "
                  f"{f(q['nothing_meets']['p50_ms'])} | {f(q['nothing_meets']['p99_ms'])} | |"]
        if "http" in q:
            h = q["http"]
            lines.append(f"| HTTP `GET /subnets` via uvicorn + httpx (end to end) | {h['queries']} | {f(h['p50_ms'])} | "
                         f"{f(h['p99_ms'])} | {f(h['max_ms'])} |")
        lines += ["", f"First query of a fresh reader (loads the {q['entries']:,} metric columns): "
                  f"{q['cold_query_ms']:.0f} ms; first query after another front is written (reload): "
                  f"{q['after_write_query_ms']:.0f} ms. Every query checks the store revision (one primary-key "
                  "read), so answers are never stale.", "",
                  "```", ".venv/bin/python -m experiments.bench_query_export query --entries 100000 --queries 2000 "
                  "--http", "```", ""]
    if e:
        lines += ["## Exported subnets: predicted vs measured", "",
                  f"Supernet `{e['supernet']}`, table `{e['table']}`, predictor `{e['predictor']}`, "
                  f"store `{e['store']}` (device `{e['device']}`), backend `{e['backend']}`, "
                  f"{'quantized per policy' if e['quantize'] else 'float'}. Accuracy: onnxruntime on the test split; "
                  "latency: the exported model on the backend (median, batch 1).", "",
                  "| # | res | bits | pred acc % | PyTorch acc % | ONNX acc % | pred ms | measured ms | lat err % | top-1 agree % | "
                  "max abs diff | size bytes (pred) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(e["rows"]):
            le = (abs(r["predicted_latency_ms"] / r["latency_ms"] - 1) * 100
                  if r["latency_ms"] and r["predicted_latency_ms"] else None)
            lines.append(f"| {i} | {r['config']['resolution']} | {' '.join(r['bits'])} | "
                         f"{f(r['predicted_accuracy'], '.2f')} | {f(r['torch_accuracy'], '.2f')} | "
                         f"{f(r['accuracy'], '.2f')} | "
                         f"{f(r['predicted_latency_ms'])} | {f(r['latency_ms'])} | {f(le, '.1f')} | "
                         f"{f(r['top1_agreement'], '.1f')} | {f(r['max_abs_diff'], '.3g')} | "
                         f"{r['size_bytes']:,} ({r['predicted_size_bytes']:,}) |")
        le, ae = e["latency_abs_rel_error_pct"], e["accuracy_abs_error_pp"]
        lines += ["", "PyTorch acc: the extracted, recalibrated (fake-quantized) subnet -- what an accuracy predictor "
                  "is trained to predict; ONNX acc: the exported file in onnxruntime; top-1 agree / max abs diff: "
                  "ONNX vs that PyTorch subnet on the test split. Size: the ONNX file (predicted: weights at their "
                  "bits, SE / head / BN float)."]
        if e.get("note"):
            lines += ["", f"Inputs: {e['note']}"]
        if e["predictor"] is None:
            lines += ["", "No accuracy predictor for this supernet existed when this ran, so predicted accuracy is "
                      "n/a; rerun with `--predictor DIR` (and `--store DB --device TAG` to export query answers)."]
        lines += ["", f"Latency |pred/measured - 1|: mean {f(le['mean'], '.1f')} %, max {f(le['max'], '.1f')} %. "
                  f"Accuracy |pred - measured|: mean {f(ae['mean'], '.2f')} pp, max {f(ae['max'], '.2f')} pp "
                  f"(load average {e['load']:.1f}).", "", "```", f"flock /tmp/hwnas-heavy.lock {e['command']}"
                  .replace(sys.executable, ".venv/bin/python"), "```", ""]
    out = RESULTS / "deploy.md"
    from search_spaces.files import atomic_write_text

    atomic_write_text(out, "\n".join(lines))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    q = sub.add_parser("query", help="query latency on a synthetic store")
    q.add_argument("--entries", type=int, default=100_000)
    q.add_argument("--fronts", type=int, default=10)
    q.add_argument("--queries", type=int, default=2000)
    q.add_argument("--http", action="store_true", help="also through a real `hwnas serve`")
    q.add_argument("--http-queries", type=int, default=500)
    q.add_argument("--seed", type=int, default=0)
    x = sub.add_parser("export", help="export N subnets; predicted vs measured")
    x.add_argument("--supernet", required=True)
    x.add_argument("--table", default=None)
    x.add_argument("--predictor", default=None)
    x.add_argument("--store", default=None, help="take the subnets from budget queries on this store")
    x.add_argument("--device", default=None, help="device tag in --store")
    x.add_argument("--data", default=None)
    x.add_argument("--backend", default="ort-cpu")
    x.add_argument("--n", type=int, default=5)
    x.add_argument("--rounds", type=int, default=5, help="measurement rounds (protocol)")
    x.add_argument("--float", action="store_true", help="export float instead of quantized per policy")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--note", default=None, help="how the inputs were made (printed in deploy.md)")
    sub.add_parser("report", help="only regenerate deploy.md from the JSON parts")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    from search_spaces.files import atomic_write_json

    if args.part == "query":
        res = run_query(args)
        atomic_write_json(RESULTS / "deploy-query.json", res)
        print(json.dumps(res, indent=1))
    elif args.part == "export":
        if args.store and not args.device:
            ap.error("--store needs --device")
        res = run_export(args)
        atomic_write_json(RESULTS / "deploy-export.json", res)
        print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))
    print(f"wrote {write_markdown()}")


if __name__ == "__main__":
    main()
