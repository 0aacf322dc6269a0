"""Write a generated image-classification tree (`train/CLASS/*.png`, `val/CLASS/*.png`) for `--data folder:PATH`.

The images are `nas.shapes`' (the built-in data set `shapes` generates them in memory); this writes them as a
tree, to go through the `folder:` loader as a user's own data does. Deterministic from `--seed`.

    python -m experiments.make_shapes --out runs/shapes --train 8000 --val 1000
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from nas.shapes import CLASSES, draw_shape


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
