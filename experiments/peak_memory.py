"""Run a command and report the peak summed RSS of its whole process tree (Ray's processes included, which
are children of the driver when it starts a local instance), sampled every 0.25 s with psutil.

    python -m experiments.peak_memory -- hwnas run experiments/quickstart.yaml
"""
from __future__ import annotations

import subprocess
import sys
import time

import psutil


def tree_rss(root: psutil.Process) -> int:
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def main(argv: list[str]) -> int:
    cmd = argv[1:] if argv and argv[0] == "--" else argv
    if not cmd:
        print("usage: python -m experiments.peak_memory -- COMMAND ...", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, tree_rss(root))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.25)
    print(f"peak memory (RSS of the process tree): {peak / 2**30:.2f} GiB; wall {time.perf_counter() - t0:.0f} s; "
          f"exit {proc.returncode}", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
