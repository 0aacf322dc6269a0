"""Streaming `folder:PATH`: cached index, Pillow decoding in DataLoader workers, OFA's train / eval transforms,
elastic resolution per batch, stated normalisation, and one clear error per bad tree."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from nas.data import load_data
from nas.folder_data import FolderData, centre_box, folder_index, random_resized_box
from search_spaces import HwnasError, InputError


def jpeg_tree(root, classes=("cat", "dog", "emu"), n_train=8, n_val=3, size=(40, 30)):
    """Classes of different brightness, images of a non-square size (so crops and resizes really happen)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for ci, c in enumerate(classes):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = (rng.random((size[1], size[0], 3)) * 60 + ci * 90).astype(np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{i}.jpg", quality=90)
    return root


def test_streams_with_stated_normalisation_and_splits(tmp_path):
    root = jpeg_tree(tmp_path / "t")
    d = load_data(f"folder:{root}", seed=0, holdout=0.25)
    assert isinstance(d, FolderData) and d.streaming and d.classes == ["cat", "dog", "emu"] and d.channels == 3
    assert d.split_sizes() == {"train": 18, "holdout": 6, "test": 9}
    norm = d.normalization
    assert len(norm["mean"]) == 3 and 0.05 < norm["mean"][0] < 0.9 and all(s > 0.01 for s in norm["std"])
    x, y = next(iter(d.batches("test", 24, 5)))
    assert x.shape == (5, 3, 24, 24) and set(y[:3].tolist()) == {0, 1, 2}  # val/'s classes mixed in every prefix
    assert abs(float(x.mean())) < 1.0  # normalised
    fixed = load_data(f"folder:{root}", normalization={"mean": [0.5] * 3, "std": [0.25] * 3})
    assert fixed.normalization == {"mean": [0.5] * 3, "std": [0.25] * 3}
    gray = load_data(f"folder:{root}", in_channels=1)
    assert next(iter(gray.batches("train", 16, 4)))[0].shape == (4, 1, 16, 16)


def test_train_draws_are_seeded_and_the_same_with_workers(tmp_path):
    d0 = load_data(f"folder:{jpeg_tree(tmp_path / 't')}", seed=0, workers=0)
    d2 = load_data(f"folder:{tmp_path / 't'}", seed=0, workers=2)

    def epoch(d, seed):
        g = torch.Generator().manual_seed(seed)
        return list(d.batches("train", lambda b: (16, 24, 20)[b % 3], 7, shuffle=True, generator=g, augment=True))

    a, b, c = epoch(d0, 1), epoch(d2, 1), epoch(d0, 2)
    assert [x.shape[-1] for x, _ in a] == [16, 24, 20]  # elastic: each batch at its own resolution
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    # evaluation is deterministic and differs from a training draw of the same images
    e1, e2 = (next(iter(d0.batches("train", 16, 18)))[0] for _ in range(2))
    assert torch.equal(e1, e2)
    t = next(iter(d0.batches("train", 16, 18, augment=True, generator=torch.Generator().manual_seed(0))))[0]
    assert not torch.equal(e1, t)


def test_transforms_follow_the_imagenet_recipe():
    rng = np.random.default_rng(0)
    boxes = [random_resized_box(400, 300, rng) for _ in range(200)]
    areas = np.array([(x1 - x0) * (y1 - y0) / (400 * 300) for x0, y0, x1, y1 in boxes])
    # scale uniform in [0.08, 1], less the large boxes of extreme ratios that do not fit a 4:3 image
    assert areas.min() >= 0.07 and areas.max() <= 1.0 and 0.35 < areas.mean() < 0.55
    assert all(0 <= x0 < x1 <= 400 and 0 <= y0 < y1 <= 300 for x0, y0, x1, y1 in boxes)
    size, box = centre_box(400, 300, 224)
    assert size == (341, 256) and box == (58, 16, 282, 240)  # short side 224 / 0.875 = 256, centre 224


def test_index_is_cached_and_refreshed(tmp_path):
    root = jpeg_tree(tmp_path / "t")
    a = folder_index(root)
    cache_files = list((__import__("nas.folder_data", fromlist=["x"]).cache_dir() / "folder-index").glob("*.json"))
    assert cache_files
    b = folder_index(root)
    assert b.classes == a.classes and (b.files["train"] == a.files["train"]).all()
    os.remove(root / "train" / "cat" / "0.jpg")
    c = folder_index(root)
    assert len(c.files["train"]) == len(a.files["train"]) - 1


def test_bad_trees_name_the_file_or_folder(tmp_path):
    root = jpeg_tree(tmp_path / "t")
    (root / "val" / "yak").mkdir()
    with pytest.raises(InputError, match=r"val/yak is a class that .*train lacks"):
        load_data(f"folder:{root}")
    (root / "val" / "yak").rmdir()
    (root / "train" / "fox").mkdir()
    with pytest.raises(InputError, match=r"class folder .*train/fox has no images"):
        load_data(f"folder:{root}")
    (root / "train" / "fox").rmdir()
    (root / "train" / "dog" / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(HwnasError, match=r"cannot read image .*train/dog/bad.jpg"):
        load_data(f"folder:{root}")
    (root / "train" / "dog" / "bad.jpg").unlink()
    # truncated after the index was built (and cached: a file's change leaves its folder's time alone): found when
    # decoded, in a worker, and reported as one line
    d = load_data(f"folder:{root}", workers=1)
    whole = (root / "val" / "emu" / "1.jpg").read_bytes()
    (root / "val" / "emu" / "1.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(HwnasError) as e:
        list(d.batches("test", 16, 4))
    assert str(e.value).startswith("data folder: cannot read image") and "val/emu/1.jpg" in str(e.value)
    assert "\n" not in str(e.value)


def test_in_memory_sets_share_the_interface(tmp_path):
    root = jpeg_tree(tmp_path / "t")
    mem, stream = load_data(f"folder-mem:{root}", seed=3, image_size=16), load_data(f"folder:{root}", seed=3)
    assert not mem.streaming and mem.classes == stream.classes and mem.split_sizes() == stream.split_sizes()
    assert torch.equal(mem.labels_of("holdout"), stream.labels_of("holdout"))
    assert torch.equal(mem.labels_of("test"), stream.labels_of("test"))
    for name in ("digits", "synthetic"):
        d = load_data(name)
        assert not d.streaming and set(d.normalization) == {"mean", "std"}
        x, y = next(iter(d.batches("train", lambda b: 12, 10, indices=torch.arange(5))))
        assert x.shape[0] == 5 and x.shape[-1] == 12 and torch.equal(y, d.labels_of("train")[:5])


@pytest.mark.slow
def test_supernet_trains_and_evaluates_on_a_streamed_tree(tmp_path):
    from nas.checkpoint import load_supernet
    from nas.train import TrainConfig, evaluate, load_for_eval, train_supernet
    from search_spaces import get_space

    root = jpeg_tree(tmp_path / "t", n_train=12)
    cfg = TrainConfig(space="mbv3-tiny", data=f"folder:{root}", epochs=1, batch_size=8, n_random=1)
    res = train_supernet(cfg, tmp_path / "sn.pt", progress=False, data_workers=1)
    assert res.epochs_done == 1
    _, meta = load_supernet(tmp_path / "sn.pt")
    assert len(meta["normalization"]["mean"]) == 1  # mbv3-tiny reads grayscale: stated, per channel
    net, data, _ = load_for_eval(tmp_path / "sn.pt")
    assert data.normalization == meta["normalization"]
    acc = evaluate(net, get_space("mbv3-tiny", num_classes=3).smallest(), data, "test", calib_batches=2,
                   calib_batch_size=8)
    assert 0.0 <= acc <= 100.0
    from nas.export import ExportConfig, export_subnet

    rep = export_subnet(ExportConfig(supernet=tmp_path / "sn.pt", config=get_space("mbv3-tiny", num_classes=3).smallest(),
                                     out=tmp_path / "m.onnx", backend=None, calib_batches=2, calib_batch_size=8,
                                     device="cpu"))
    assert rep.top1_agreement >= 99.0 and (tmp_path / "m.onnx").is_file()
