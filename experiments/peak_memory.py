"""Run a command and report the peak memory of its whole process tree (Ray's processes included, which are
children of the driver when it starts a local instance), sampled every 0.25 s with psutil.

Two sums: RSS (what `ps` shows; pages of shared libraries such as libtorch count once per process, so this is an
upper bound and the figure the README reports) and PSS (each shared page split among the processes that map it:
the memory the run really takes from the machine).

    python -m experiments.peak_memory -- hwnas run experiments/quickstart.yaml
"""
from __future__ import annotations

import subprocess
import sys
import time

import psutil


def tree_memory(root: psutil.Process, pss: bool) -> tuple[int, int, int]:
    """(summed RSS, summed PSS or 0, process count) of `root` and its descendants."""
    rss = total_pss = n = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            if pss:
                m = p.memory_full_info()
                total_pss += m.pss
            else:
                m = p.memory_info()
            rss += m.rss
            n += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, total_pss, n


def main(argv: list[str]) -> int:
    cmd = argv[1:] if argv and argv[0] == "--" else argv
    if not cmd:
        print("usage: python -m experiments.peak_memory -- COMMAND ...", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    root = psutil.Process(proc.pid)
    peak_rss = peak_pss = peak_n = 0
    tick = 0
    while proc.poll() is None:
        try:
            rss, pss, n = tree_memory(root, pss=tick % 2 == 0)  # smaps reads are slower: PSS every other tick
        except psutil.NoSuchProcess:
            break
        if rss > peak_rss:
            peak_rss, peak_n = rss, n
        peak_pss = max(peak_pss, pss)
        tick += 1
        time.sleep(0.25)
    print(f"peak memory of the process tree: RSS {peak_rss / 2**30:.2f} GiB ({peak_n} processes), "
          f"PSS {peak_pss / 2**30:.2f} GiB; wall {time.perf_counter() - t0:.0f} s; exit {proc.returncode}",
          file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
