"""Generated shapes: ten classes of small grey shapes on a cluttered background, deterministic from a seed.

Why a generated task: the real data that ships here (digits, MNIST-5k) is too small and too easy to label subnets
precisely -- a few hundred holdout images, and subnets that differ by less than the noise. Generated images can be
as many as a measurement needs, and the task is hard enough that small subnets really lose accuracy, so the
trade-off a search explores is real and its predictions can be checked.

Ten classes (disc, ring, square, frame, triangle, cross, X, horizontal / vertical / diagonal bars), each at a
random position, size, rotation and contrast, on a noisy background with random distractor strokes. Used by the
built-in data set `shapes` (`nas.data`) and by `experiments/make_shapes.py`, which writes the same images as a
`folder:` tree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("disc", "ring", "square", "frame", "triangle", "cross", "x", "hbars", "vbars", "dbars")
SIZE = 32


def _rotated(points: list[tuple[float, float]], cx: float, cy: float, angle: float) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


@dataclass(frozen=True)
class Style:
    """How hard the images are: ranges (low, high) drawn uniformly per image."""

    distractors: tuple[int, int]  # strokes, integers in [low, high)
    contrast: tuple[int, int]  # |shape - background| grey levels, integers in [low, high)
    half_size: tuple[float, float]  # pixels
    noise: tuple[float, float]  # Gaussian noise sd, grey levels


# `folder:` benchmark trees (experiments/make_shapes.py): small subnets fall to ~60 %, large ones reach ~84 %
HARD = Style(distractors=(1, 4), contrast=(50, 140), half_size=(4.5, 10.0), noise=(8.0, 28.0))
# the built-in `shapes` data set: learnable in the quickstart's few minutes of training
EASY = Style(distractors=(0, 1), contrast=(90, 160), half_size=(6.5, 11.0), noise=(2.0, 6.0))


def draw_shape(rng: np.random.Generator, cls: str, style: Style = HARD) -> np.ndarray:
    """One SIZE x SIZE uint8 image of class `cls`."""
    bg = int(rng.integers(30, 110))
    im = Image.new("L", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(*style.distractors))):  # distractor strokes
        p = rng.uniform(0, SIZE, 4)
        d.line([(p[0], p[1]), (p[2], p[3])], fill=int(rng.integers(0, 256)), width=1)
    fg = int(np.clip(bg + rng.choice([-1, 1]) * rng.integers(*style.contrast), 0, 255))
    r = float(rng.uniform(*style.half_size))  # half-size
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
    x = np.asarray(im, dtype=np.float32) + rng.normal(0, float(rng.uniform(*style.noise)), (SIZE, SIZE))
    return np.clip(x, 0, 255).astype(np.uint8)


def generate(n: int, seed: int, style: Style = EASY) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (uint8, (n, SIZE, SIZE)) and their labels from `seed`: classes in turn, two of each, so every prefix
    of 20 images is balanced and so are its even and its odd images (the two halves `label_reliability` compares:
    one class per image in turn would put the even classes in one half and the odd ones in the other)."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n, dtype=np.int64) // 2) % len(CLASSES)
    images = (np.stack([draw_shape(rng, CLASSES[c], style) for c in labels]) if n
              else np.zeros((0, SIZE, SIZE), np.uint8))
    return images, labels


__all__ = ["CLASSES", "EASY", "HARD", "SIZE", "Style", "draw_shape", "generate"]
