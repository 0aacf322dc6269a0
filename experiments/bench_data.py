"""Data at scale: peak memory against data-set size, loader throughput, and 1 vs 2 Ray Train workers.

1. Peak RSS (and PSS) of the process tree (DataLoader workers included) while the same number of training images
   (one epoch of the largest tree; the smaller tree repeats epochs) streams from generated JPEG trees of 2,000 and
   50,000 images (`folder:PATH`): it must not grow with the tree. Equal work matters: a forked worker's RSS
   climbs for its first ~150 batches as it touches pages of libtorch and Pillow it shares with its parent, so a
   longer run shows more RSS without holding more data.
2. Loader throughput in images/s on the same 2,000-image tree: streamed (Pillow in 0 and 2 worker processes,
   RandomResizedCrop + flip) against in memory (`folder-mem:PATH`, random affine on stored tensors).
3. Wall time of one epoch of supernet training (mbv3-tiny on digits) in this process, on 1 Ray Train worker and on
   2 Ray Train workers. On a 2-core machine shared with other jobs this measures Ray Train's overhead and the
   all-reduce, not a speed-up: the two workers split the same two cores the single process uses.

    python -m experiments.bench_data [--sizes 2000 50000] [--skip-ray] [--tree-dir runs/bench-data]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RES = 64


def write_tree(root: Path, n_images: int, n_classes: int = 10, size: int = 48, val_fraction: float = 0.1) -> Path:
    """`n_images` small JPEGs (class = brightness band plus noise), written once and reused."""
    from PIL import Image

    done = root / ".complete"
    if done.exists():
        return root
    rng = np.random.default_rng(n_images)
    n_val = int(n_images * val_fraction)
    for i in range(n_images):
        split = "val" if i < n_val else "train"
        c = i % n_classes
        d = root / split / f"c{c:02d}"
        if i < 2 * n_classes or not d.exists():
            d.mkdir(parents=True, exist_ok=True)
        arr = (rng.random((size, size, 3)) * 80 + c * 17).astype(np.uint8)
        Image.fromarray(arr).save(d / f"{i:06d}.jpg", quality=85)
    done.touch()
    return root


def _memory_child(tree: str, workers: int, images: int) -> None:
    """Index the tree and stream `images` augmented training images (epoch after epoch, as training reads)."""
    import torch

    from nas.data import load_data

    d = load_data(f"folder:{tree}", workers=workers)
    g = torch.Generator().manual_seed(0)
    n = epochs = 0
    while n < images:
        epochs += 1
        for x, _ in d.batches("train", RES, 128, shuffle=True, generator=g, augment=True):
            n += len(x)
            if n >= images:
                break
    print(json.dumps({"images": n, "epochs": epochs}))


def peak_memory(cmd: list[str]) -> tuple[float, float, str]:
    """(peak summed RSS, peak summed PSS of the command's process tree in MiB, its stdout)."""
    import psutil

    from experiments.peak_memory import tree_memory

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak = peak_pss = 0
    tick = 0
    while proc.poll() is None:
        try:
            rss, pss, _ = tree_memory(root, pss=tick % 2 == 0)
        except psutil.NoSuchProcess:
            break
        peak, peak_pss, tick = max(peak, rss), max(peak_pss, pss), tick + 1
        time.sleep(0.1)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        raise SystemExit(f"memory child failed: {' '.join(cmd)}")
    return peak / 2**20, peak_pss / 2**20, out


def throughput(name: str, workers: int, n_batches: int = 12) -> float:
    import torch

    from nas.data import load_data

    d = load_data(name, workers=workers, image_size=RES)
    g = torch.Generator().manual_seed(0)
    it = d.batches("train", RES, 128, shuffle=True, generator=g, augment=True, limit=n_batches + 1)
    next(it)  # the first batch includes starting the workers and, in memory, the resize cache
    t0 = time.perf_counter()
    n = sum(len(x) for x, _ in it)
    return n / (time.perf_counter() - t0)


def ray_train_times() -> dict[str, float]:
    import tempfile

    import ray

    from nas.distributed_train import train_distributed
    from nas.train import TrainConfig, train_supernet

    cfg = TrainConfig(space="mbv3-tiny", data="digits", epochs=1, batch_size=64, n_random=1)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        train_supernet(cfg, Path(d) / "p.pt", progress=False, threads=2)
        out["in process (2 threads)"] = time.perf_counter() - t0
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            for w in (1, 2):
                t0 = time.perf_counter()
                train_distributed(cfg, Path(d) / f"w{w}.pt", workers=w, threads=2 // w, progress=False)
                out[f"Ray Train, {w} worker{'s' if w > 1 else ''} ({2 // w} thread{'s' if w == 1 else ''} each)"] = \
                    time.perf_counter() - t0
        finally:
            ray.shutdown()
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 50000])
    ap.add_argument("--tree-dir", default="runs/bench-data")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for the memory runs")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--memory-child", nargs=3, metavar=("TREE", "WORKERS", "IMAGES"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.memory_child:
        _memory_child(a.memory_child[0], int(a.memory_child[1]), int(a.memory_child[2]))
        return 0
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    trees = {}
    for n in a.sizes:
        t0 = time.perf_counter()
        trees[n] = write_tree(Path(a.tree_dir) / f"jpeg-{n}", n)
        print(f"tree of {n} images: {trees[n]} ({time.perf_counter() - t0:.0f} s to write)", flush=True)

    from nas.folder_data import folder_index

    images = int(max(trees) * 0.9 * 0.8)  # one epoch of the largest tree's train split (val 10 %, holdout 20 %)
    print(f"\n1. peak memory while {images:,} training images stream at {RES} px, batch 128, {a.workers} "
          "DataLoader workers")
    print("| images in the tree | peak RSS (MiB) | peak PSS (MiB) | epochs | wall (s) |\n|---|---|---|---|---|")
    peaks = {}
    for n, tree in trees.items():
        folder_index(tree)  # the index is built (and cached) once; the memory run reads the cache like a rerun
        t0 = time.perf_counter()
        peak, pss, out = peak_memory([sys.executable, "-m", "experiments.bench_data", "--memory-child", str(tree),
                                      str(a.workers), str(images)])
        peaks[n] = peak
        print(f"| {n:,} | {peak:.0f} | {pss:.0f} | {json.loads(out.splitlines()[-1])['epochs']} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)
    if len(peaks) >= 2:
        lo, hi = peaks[min(peaks)], peaks[max(peaks)]
        print(f"largest / smallest tree: {hi / lo:.3f}x peak RSS (target: < 1.10x)")

    small = trees[min(trees)]
    print(f"\n2. loader throughput on the {min(trees):,}-image tree, training batches of 128 at {RES} px")
    print("| loader | images/s |\n|---|---|")
    for label, name, w in ((f"in memory (folder-mem, random affine)", f"folder-mem:{small}", 0),
                           ("streamed, decoded here (0 workers)", f"folder:{small}", 0),
                           ("streamed, 2 DataLoader workers", f"folder:{small}", 2)):
        print(f"| {label} | {throughput(name, w):,.0f} |", flush=True)

    if not a.skip_ray:
        print("\n3. one epoch of mbv3-tiny on digits (batch 64, 1 random subnet), wall time incl. start-up; "
              "2 shared cores: overhead, not speed-up")
        print("| how | wall (s) |\n|---|---|")
        for label, sec in ray_train_times().items():
            print(f"| {label} | {sec:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
