"""Whole subnets against the sum of their blocks, all measured now with the same backend and protocol.

Why: a latency table predicts a subnet as the sum of its blocks (less the per-call overhead each standalone block
pays), corrected where leave-one-out says so. On some hosts whole subnets depart from that sum by more than any
one correction fits (experiments/results/quickstart.md); this separates the composition from the table's age and
the host's drift, since nothing here comes from the table but its space, resolutions and overhead.

    .venv/bin/python -m experiments.bench_block_composition --table runs/quickstart/latency-*/table.json --n 5
"""
from __future__ import annotations

import argparse
import os
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="a latency table: its space, resolutions, backend, overhead")
    ap.add_argument("--n", type=int, default=5, help="float subnets to measure")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--quantize", action="store_true", help="sample quantized subnets too")
    a = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    from latency_tables import LatencyTable
    from latency_tables.backends import get_backend
    from latency_tables.models import export_block, export_subnet
    from latency_tables.protocol import Protocol
    from search_spaces import get_space

    t = LatencyTable.load(a.table)
    space = get_space(t.space, resolutions=tuple(t.resolutions))
    be = get_backend(t.backend, **t.backend_args)
    proto = Protocol(warmup=10, repeats=20, rounds=5, reference=False, clock="cpu")
    overhead = t.overhead_ms
    print("| blocks | whole ms | block sum ms | sum - n x overhead | whole / sum | whole / (sum - n x overhead) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="hwnas-compose-") as d:
        for c in space.sample_many(a.n, seed=a.seed, quantize=a.quantize):
            path, shape = export_subnet(space, c, d)
            whole = be.measure(path, shape, proto).median_ms
            blocks = space.blocks(c)
            total = sum(be.measure(*export_block(space, b, d), proto).median_ms for b in blocks)
            net = total - len(blocks) * overhead
            print(f"| {len(blocks)} | {whole:.4f} | {total:.4f} | {net:.4f} | {whole / total:.2f} | {whole / net:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
