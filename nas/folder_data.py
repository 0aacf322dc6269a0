"""`folder:PATH` as a stream: an ImageNet-style tree decoded by Pillow in `torch.utils.data` worker processes.

Memory does not grow with the tree: what stays in memory is the file list (one numpy string array) and the labels;
images are decoded per batch. The file list and class index are built once (every image's header checked, so an
unreadable file is named before training starts) and cached under `$HWNAS_CACHE` (default `~/.cache/hwnas`), keyed
by the tree's absolute path and checked against the folders' modification times.

Transforms as Once-for-All / torchvision's ImageNet recipe, written with Pillow (torchvision has no CPU wheel here):
training draws RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3) plus a horizontal flip; evaluation resizes the short
side to resolution / 0.875 and takes the centre crop. The normalisation (mean / std per channel, from the first 256
training images unless given, e.g. ImageNet's for an imported OFA supernet) is part of the data set and stated in
the checkpoint. Every random draw comes from a per-image seed chosen by the batch sampler in the main process, so a
batch is the same whatever the number of workers.

The resolution is elastic per batch: `batches(resolution=f)` with a function of the batch index delivers each batch
at its own size (OFA samples one resolution per step).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data import IMAGE_SUFFIXES, SPLITS, folder_splits
from search_spaces.errors import HwnasError, InputError, bad_value
from search_spaces.files import atomic_write_text

INDEX_VERSION = 1
EVAL_CROP = 0.875
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
_LAYOUT = "a tree PATH/train/CLASS/*.jpg and PATH/val/CLASS/*.jpg"


def cache_dir() -> Path:
    return Path(os.environ.get("HWNAS_CACHE", Path.home() / ".cache" / "hwnas")).expanduser()


@dataclass(frozen=True)
class FolderIndex:
    """Classes and, per tree split (train, val), file paths relative to the root and their labels."""

    root: Path
    classes: list[str]
    files: dict[str, np.ndarray]  # numpy unicode arrays: one object, not a Python string per file
    labels: dict[str, np.ndarray]


def _stamp(root: Path) -> dict[str, int]:
    """Modification times (ns) of the split and class folders: adding or removing a file changes its folder's."""
    out = {}
    for split in ("train", "val"):
        d = root / split
        out[split] = d.stat().st_mtime_ns
        for c in sorted(p for p in d.iterdir() if p.is_dir()):
            out[f"{split}/{c.name}"] = c.stat().st_mtime_ns
    return out


def _check_header(p: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise HwnasError(f"data folder: cannot read image {p} ({e})") from None


def _scan(root: Path) -> FolderIndex:
    classes: list[str] | None = None
    files, labels = {}, {}
    for split in ("train", "val"):
        d = root / split
        found = sorted(p.name for p in d.iterdir() if p.is_dir())
        if classes is None:
            classes = found
            if len(classes) < 2:
                raise InputError(f"data folder: {d} has {len(classes)} class folders, allowed: at least 2")
        else:
            extra = sorted(set(found) - set(classes))
            if extra:
                raise InputError(f"data folder: {d / extra[0]} is a class that {root / 'train'} lacks, allowed: "
                                 f"classes of train/ ({', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''})")
        names, ys = [], []
        for ci, c in enumerate(classes):
            cdir = d / c
            if not cdir.is_dir():
                continue
            imgs = sorted(p for p in cdir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not imgs:
                raise InputError(f"data folder: class folder {cdir} has no images ({', '.join(IMAGE_SUFFIXES)})")
            for p in imgs:
                _check_header(p)
            names += [f"{split}/{c}/{p.name}" for p in imgs]
            ys += [ci] * len(imgs)
        files[split] = np.array(names, dtype=str)
        labels[split] = np.array(ys, dtype=np.int64)
    assert classes is not None
    return FolderIndex(root, classes, files, labels)


def folder_index(root: Path, use_cache: bool = True) -> FolderIndex:
    """The tree's index, from the cache when the folders are unchanged, else scanned (and cached)."""
    root = root.resolve()
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise InputError(f"data folder: {root / split} is missing, allowed: {_LAYOUT}")
    stamp = _stamp(root)
    key = hashlib.sha256(str(root).encode()).hexdigest()[:24]
    path = cache_dir() / "folder-index" / f"{key}.json"
    if use_cache and path.is_file():
        try:
            c = json.loads(path.read_text(encoding="utf-8"))
            if c.get("version") == INDEX_VERSION and c.get("root") == str(root) and c.get("stamp") == stamp:
                return FolderIndex(root, c["classes"], {s: np.array(c["files"][s], dtype=str) for s in c["files"]},
                                   {s: np.array(c["labels"][s], dtype=np.int64) for s in c["labels"]})
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache is rebuilt
    idx = _scan(root)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps({
                "version": INDEX_VERSION, "root": str(root), "stamp": stamp, "classes": idx.classes,
                "files": {s: v.tolist() for s, v in idx.files.items()},
                "labels": {s: v.tolist() for s, v in idx.labels.items()}}))
        except OSError:
            pass  # a read-only cache folder costs a rescan next time, nothing else
    return idx


# ---- decoding, in the DataLoader workers ------------------------------------------------------------------------
def random_resized_box(w: int, h: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box (10 tries, then the centre crop at the clamped ratio)."""
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        ratio = float(np.exp(rng.uniform(np.log(CROP_RATIO[0]), np.log(CROP_RATIO[1]))))
        cw, ch = int(round((target * ratio) ** 0.5)), int(round((target / ratio) ** 0.5))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return x, y, x + cw, y + ch
    r = w / h
    cw, ch = (w, int(round(w / CROP_RATIO[1]))) if r > CROP_RATIO[1] else \
        ((int(round(h * CROP_RATIO[0])), h) if r < CROP_RATIO[0] else (w, h))
    x, y = (w - cw) // 2, (h - ch) // 2
    return x, y, x + cw, y + ch


def centre_box(w: int, h: int, resolution: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """(size after resizing the short side to resolution / 0.875, centre crop box in that size)."""
    short = int(round(resolution / EVAL_CROP))
    nw, nh = (short, max(short, round(h * short / w))) if w <= h else (max(short, round(w * short / h)), short)
    x, y = (nw - resolution) // 2, (nh - resolution) // 2
    return (nw, nh), (x, y, x + resolution, y + resolution)


class ImageFiles(torch.utils.data.Dataset):
    """Items are (index, resolution, seed or -1): seed >= 0 means a training draw (crop + flip), -1 evaluation."""

    def __init__(self, root: Path, files: np.ndarray, labels: np.ndarray, channels: int, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.root, self.files, self.labels, self.channels = root, files, labels, channels
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def decode(self, i: int, resolution: int, seed: int) -> np.ndarray:
        """(C, r, r) uint8."""
        from PIL import Image

        p = self.root / str(self.files[i])
        try:
            with Image.open(p) as im:
                im = im.convert("L" if self.channels == 1 else "RGB")
                w, h = im.size
                if seed >= 0:
                    rng = np.random.default_rng(seed)
                    im = im.resize((resolution, resolution), Image.BILINEAR, box=random_resized_box(w, h, rng))
                    if rng.random() < 0.5:
                        im = im.transpose(Image.FLIP_LEFT_RIGHT)
                else:
                    size, box = centre_box(w, h, resolution)
                    im = im.resize(size, Image.BILINEAR).crop(box)
                arr = np.asarray(im, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as e:  # truncated or damaged after the header
            raise HwnasError(f"data folder: cannot read image {p} ({e})") from None
        return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[np.ndarray, int]:
        i, resolution, seed = key
        return self.decode(i, resolution, seed), int(self.labels[i])

    def normalise(self, x: np.ndarray) -> torch.Tensor:
        """A uint8 batch (N, C, H, W) as normalised float32."""
        return torch.from_numpy(x).float().div_(255.0).sub_(self.mean).div_(self.std)


class _BatchKeys:
    """The epoch's batches as DataLoader `batch_sampler`: lists of (index, resolution, seed), made as the loader
    asks for them (two int64 tensors of the split's length are all it keeps, not a Python object per image)."""

    def __init__(self, order: torch.Tensor, batch_size: int, resolution: int | Callable[[int], int],
                 limit: int | None, seeds: torch.Tensor | None) -> None:
        self.order, self.batch_size, self.resolution, self.seeds = order, batch_size, resolution, seeds
        n = (len(order) + batch_size - 1) // batch_size
        self.n = n if limit is None else min(n, limit)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for b in range(self.n):
            r = self.resolution(b) if callable(self.resolution) else self.resolution
            if not isinstance(r, int) or r < 4:
                raise bad_value("resolution", r, "an integer >= 4")
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            idx = self.order[sl].tolist()
            seeds = self.seeds[sl].tolist() if self.seeds is not None else [-1] * len(idx)
            yield [(i, r, s) for i, s in zip(idx, seeds)]


class _EpochKeys:
    """A DataLoader's `batch_sampler` that iterates whatever `_BatchKeys` the current call put in it."""

    keys: _BatchKeys | None = None

    def __len__(self) -> int:
        return len(self.keys) if self.keys is not None else 0

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        return iter(self.keys) if self.keys is not None else iter(())


def _collate(items: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Batches leave the workers as uint8 numpy arrays: pickled through the pipe, 4x smaller than float, and freed
    when sent. (Tensors would go through shared memory, and a worker then kept ~64 batches mapped: its memory grew by
    ~380 MiB over its first ~120 batches; experiments/results/training.md.)"""
    return np.stack([x for x, _ in items]), np.array([y for _, y in items], dtype=np.int64)


def _first_line(e: BaseException) -> str:
    """DataLoader re-raises a worker's exception with the worker's traceback appended: keep our one line."""
    for line in str(e).splitlines():
        if line.startswith("data folder:") or "HwnasError: data folder:" in line:
            return line[line.index("data folder:"):]
    return str(e).splitlines()[0] if str(e) else type(e).__name__


class FolderData:
    """A streaming `folder:PATH` data set with the interface of `nas.data.DataSet` (`batches`, `split_sizes`, ...).

    Splits: `holdout` is a seeded, class-stratified part of train/; `test` is val/."""

    streaming = True

    def __init__(self, root: str | os.PathLike[str], seed: int = 0, channels: int | None = None,
                 holdout: float = 0.2, image_size: int = 64, workers: int = 0,
                 normalization: dict[str, Sequence[float]] | None = None, use_cache: bool = True) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise InputError(f"data folder: got {str(root)!r}, allowed: an existing directory with train/ and val/")
        if not isinstance(workers, int) or workers < 0:
            raise bad_value("data_workers", workers, "an integer >= 0")
        self.name = f"folder:{root}"
        self.seed, self.workers, self.image_size = seed, workers, image_size
        self.index = folder_index(self.root, use_cache)
        self.classes = list(self.index.classes)
        self.num_classes = len(self.classes)
        self.channels = channels or 3
        rest, hold, test = folder_splits(self.index.labels["train"], self.index.labels["val"], holdout, seed)
        self._parts = {"train": ("train", rest), "holdout": ("train", hold), "test": ("val", test)}
        for s in SPLITS:
            if len(self._parts[s][1]) == 0:
                raise HwnasError(f"data {self.name}: the {s} split is empty")
        self.normalization = {k: [float(v) for v in vs] for k, vs in normalization.items()} if normalization \
            else self._measure_normalization()
        if len(self.normalization["mean"]) != self.channels or len(self.normalization["std"]) != self.channels:
            raise bad_value("normalization", self.normalization, f"mean and std with {self.channels} values each")
        self._sets: dict[str, ImageFiles] = {}
        self._loaders: dict[str, tuple[_EpochKeys, torch.utils.data.DataLoader]] = {}

    @property
    def size(self) -> int:
        return self.image_size

    def split_sizes(self) -> dict[str, int]:
        return {s: len(self._parts[s][1]) for s in SPLITS}

    def __len__(self) -> int:
        return sum(self.split_sizes().values())

    def labels_of(self, split: str) -> torch.Tensor:
        which, idx = self._part(split)
        return torch.as_tensor(self.index.labels[which][idx])

    def _part(self, split: str) -> tuple[str, np.ndarray]:
        if split not in SPLITS:
            raise bad_value("split", split, f"one of {', '.join(SPLITS)}")
        return self._parts[split]

    def _files(self, split: str, mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,)) -> ImageFiles:
        which, idx = self._part(split)
        return ImageFiles(self.root, self.index.files[which][idx], self.index.labels[which][idx], self.channels,
                          mean, std)

    def _measure_normalization(self, n: int = 256) -> dict[str, list[float]]:
        raw = self._files("train", (0.0,) * self.channels, (1.0,) * self.channels)
        take = np.linspace(0, len(raw) - 1, min(n, len(raw))).astype(int)
        x = raw.normalise(np.stack([raw.decode(int(i), 64, -1) for i in take]))
        return {"mean": x.mean(dim=(0, 2, 3)).tolist(), "std": x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()}

    def dataset(self, split: str) -> ImageFiles:
        if split not in self._sets:
            self._sets[split] = self._files(split, self.normalization["mean"], self.normalization["std"])
        return self._sets[split]

    def batches(self, split: str, resolution: int | Callable[[int], int], batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None, augment: bool = False, limit: int | None = None,
                indices: Sequence[int] | torch.Tensor | None = None,
                pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches decoded in `self.workers` processes (0: here). `augment` draws crops and flips;
        `resolution` may be a function of the batch index; `indices` (e.g. one worker's shard) replaces the
        split's order."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise bad_value("batch_size", batch_size, "an integer >= 1")
        ds = self.dataset(split)
        n = len(ds)
        if indices is not None:
            order = torch.as_tensor(indices, dtype=torch.int64)
        else:
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        keys = _BatchKeys(order, batch_size, resolution, limit,
                          torch.randint(0, 2**62, (len(order),), generator=generator) if augment else None)
        holder, loader = self._loader(split)
        holder.keys = keys
        try:
            for xb, yb in loader:
                x = ds.normalise(xb)
                yield (x.pin_memory() if pin_memory else x), torch.from_numpy(yb)
        except HwnasError as e:
            raise HwnasError(_first_line(e)) from None

    def _loader(self, split: str) -> tuple[_EpochKeys, torch.utils.data.DataLoader]:
        """One DataLoader per split whose worker processes live as long as this object (persistent workers: an
        epoch does not start processes, and memory does not churn); each call swaps in its own batches."""
        if split not in self._loaders:
            holder = _EpochKeys()
            kw: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": 2} if self.workers else {}
            self._loaders[split] = holder, torch.utils.data.DataLoader(
                self.dataset(split), batch_sampler=holder, num_workers=self.workers, collate_fn=_collate, **kw)
        return self._loaders[split]

    def at(self, split: str, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split decoded at `resolution` (evaluation transform): for small splits only (it is in memory)."""
        xs, ys = zip(*self.batches(split, resolution, 256))
        return torch.cat(xs), torch.cat(ys)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "streaming": True, "normalization": self.normalization,
                "eval_crop": EVAL_CROP, "train_crop": {"scale": list(CROP_SCALE), "ratio": list(CROP_RATIO)}}


__all__ = ["FolderData", "FolderIndex", "ImageFiles", "centre_box", "folder_index", "random_resized_box"]
