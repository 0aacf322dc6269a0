"""`make bench`: every CPU benchmark in dependency order, each printing its table.

The search benchmarks read the `mbv3` table the latency benchmark writes; the export half of the deployment
benchmark needs a trained supernet (run `make demo` first, then see experiments/results/deploy.md).
Takes about 30-40 minutes on a 2-core machine without `latency-devices` / `devices` (which need openvino, and add
about 40 minutes: four more tables); pass benchmark names to run a subset.
"""
from __future__ import annotations

import subprocess
import sys
import time

BENCHES: dict[str, list[str]] = {
    "latency": ["experiments.bench_latency", "--n", "50", "--calibrate", "10", "--out-dir", "runs/bench-latency"],
    "predictors": ["experiments.bench_predictors", "--synthetic"],
    "search": ["experiments.bench_search", "--table", "runs/bench-latency/mbv3-r224-ort-cpu.json"],
    "search-scaling": ["experiments.bench_search_scaling", "--table", "runs/bench-latency/mbv3-r224-ort-cpu.json"],
    "query": ["experiments.bench_query_export", "query", "--entries", "100000", "--http"],
    # both CPU runtimes (ort-cpu, openvino-cpu) at 32 / 160 px, then their device-specific fronts (issue 18)
    "latency-devices": ["experiments.bench_latency", "--backends", "ort-cpu,openvino-cpu", "--resolutions",
                        "mbv3=160", "--n", "40", "--calibrate", "10", "--out-dir", "runs/bench-latency-ov"],
    "devices": ["experiments.bench_devices", "--tables", "runs/bench-latency-ov/mbv3-r160-ort-cpu.json,"
                "runs/bench-latency-ov/mbv3-r160-openvino-cpu.json", "--out", "runs/bench-devices-mbv3"],
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"error: unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n=== {name}: python -m {' '.join(BENCHES[name])}", flush=True)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", *BENCHES[name]])
        print(f"=== {name}: exit {r.returncode} after {time.perf_counter() - t0:.0f} s", flush=True)
        if r.returncode != 0:
            return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
