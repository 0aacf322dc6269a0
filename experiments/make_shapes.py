"""Write a generated image-classification tree (`train/CLASS/*.png`, `val/CLASS/*.png`) for `--data folder:PATH`.

Why: the real data that ships here (digits, MNIST-5k) cannot label subnets precisely enough to measure a
predictor's Kendall tau near 0.85 -- a few hundred to 1,500 holdout images, and subnets that differ by less than
the noise (experiments/results/predictors.md). A generated task can have as many evaluation images as wanted and be
hard enough that small, low-resolution subnets really lose accuracy. The labels are still real: accuracies of
real subnets of a real trained supernet, through the same `folder:` loader a user's own data goes through.

Ten classes of small grey shapes (disc, ring, square, frame, triangle, cross, X, horizontal / vertical / diagonal
bars), each at a random position, size, rotation and contrast, on a noisy background with random distractor
strokes. Deterministic from `--seed`.

    python -m experiments.make_shapes --out runs/shapes --train 8000 --val 1000
"""
from __future__ import annotations

import argparse
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("disc", "ring", "square", "frame", "triangle", "cross", "x", "hbars", "vbars", "dbars")
SIZE = 32


def _rotated(points: list[tuple[float, float]], cx: float, cy: float, angle: float) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def draw_shape(rng: np.random.Generator, cls: str) -> np.ndarray:
    """One SIZE x SIZE uint8 image of class `cls`."""
    bg = int(rng.integers(30, 110))
    im = Image.new("L", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(1, 4))):  # distractor strokes
        p = rng.uniform(0, SIZE, 4)
        d.line([(p[0], p[1]), (p[2], p[3])], fill=int(rng.integers(0, 256)), width=1)
    fg = int(np.clip(bg + rng.choice([-1, 1]) * rng.integers(50, 140), 0, 255))
    r = float(rng.uniform(4.5, 10.0))  # half-size
    cx, cy = rng.uniform(r + 1, SIZE - r - 1, 2)
    a = float(rng.uniform(0, math.pi))
    w = max(1, int(round(r / 3.5)))
    box = [cx - r, cy - r, cx + r, cy + r]
    if cls == "disc":
        d.ellipse(box, fill=fg)
    elif cls == "ring":
        d.ellipse(box, outline=fg, width=w)
    elif cls in ("square", "frame"):
        pts = _rotated([(-r, -r), (r, -r), (r, r), (-r, r)], cx, cy, a)
        if cls == "square":
            d.polygon(pts, fill=fg)
        else:
            d.line(pts + pts[:1], fill=fg, width=w)
    elif cls == "triangle":
        d.polygon(_rotated([(0, -r), (r * 0.87, r * 0.5), (-r * 0.87, r * 0.5)], cx, cy, a), fill=fg)
    elif cls in ("cross", "x"):
        base = 0.0 if cls == "cross" else math.pi / 4
        for t in (base + a * 0.15, base + a * 0.15 + math.pi / 2):
            p = _rotated([(-r, 0), (r, 0)], cx, cy, t)
            d.line(p, fill=fg, width=w)
    else:  # three parallel bars
        t = {"hbars": 0.0, "vbars": math.pi / 2, "dbars": math.pi / 4}[cls] + float(rng.uniform(-0.2, 0.2))
        for off in (-r * 0.6, 0.0, r * 0.6):
            d.line(_rotated([(-r, off), (r, off)], cx, cy, t), fill=fg, width=max(1, w - 1))
    x = np.asarray(im, dtype=np.float32) + rng.normal(0, float(rng.uniform(8, 28)), (SIZE, SIZE))
    return np.clip(x, 0, 255).astype(np.uint8)


def write_tree(out: Path, n_train: int, n_val: int, seed: int) -> None:
    """The whole tree, written next to `out` and renamed into place (never half-written)."""
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for split, n in (("train", n_train), ("val", n_val)):
            for ci, cls in enumerate(CLASSES):
                d = tmp / split / cls
                d.mkdir(parents=True)
                for i in range(n // len(CLASSES) + (1 if ci < n % len(CLASSES) else 0)):
                    Image.fromarray(draw_shape(rng, cls)).save(d / f"{i:05d}.png")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=8000, help="images under train/ (holdout is carved from these)")
    ap.add_argument("--val", type=int, default=1000, help="images under val/ (the test split)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    write_tree(Path(args.out), args.train, args.val, args.seed)
    print(f"wrote {args.out}: {args.train} train + {args.val} val images, {len(CLASSES)} classes")


if __name__ == "__main__":
    main()
