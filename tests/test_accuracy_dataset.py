"""Accuracy data set collection: schema, resume (torn last line, skipped configs), mismatch errors, Ray."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from nas.accuracy_dataset import RECORD_KEYS, CollectConfig, checkpoint_id, collect, read_records, sample_configs
from nas.checkpoint import save_supernet
from nas.data import load_data
from search_spaces import HwnasError, InputError, SubnetConfig, get_space


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An (untrained, seeded) supernet for the synthetic data: evaluation works the same on any weights."""
    torch.manual_seed(0)
    net = get_space("mbv3-tiny", num_classes=4).build_supernet()
    p = tmp_path_factory.mktemp("ck") / "supernet.pt"
    save_supernet(p, net, {"data": "synthetic", "data_seed": 0})
    return p


KW = dict(calib_batches=1, progress=False, threads=1)


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_sample_configs_prefix_and_mix():
    sp = get_space("mbv3-tiny")
    a = sample_configs(sp, 40, seed=1, quantized_fraction=0.5)
    assert sample_configs(sp, 10, seed=1, quantized_fraction=0.5) == a[:10]
    assert len(set(a)) == 40
    q = sum(c.is_quantized for c in a)
    assert 8 <= q <= 32
    assert not any(c.is_quantized for c in sample_configs(sp, 10, seed=1, quantized_fraction=0.0))
    with pytest.raises(InputError, match="quantized_fraction"):
        sample_configs(sp, 3, quantized_fraction=1.5)


def test_sample_configs_with_uniform_policies():
    """`uniform_fraction` of the quantized configs have one bit-width pair in every block (every quantized pair
    of the space drawn); 0 leaves the sequence as it was."""
    sp = get_space("mbv3-tiny")
    assert sample_configs(sp, 30, seed=2, uniform_fraction=0.0) == sample_configs(sp, 30, seed=2)
    every = sample_configs(sp, 60, seed=2, quantized_fraction=1.0, uniform_fraction=1.0)
    pairs = [set(zip(c.weight_bits, c.act_bits)) for c in every]
    assert all(len(p) == 1 and (32, 32) not in p for p in pairs)
    assert set().union(*pairs) == set(sp.bit_pairs) - {(32, 32)}
    half = sample_configs(sp, 200, seed=2, quantized_fraction=1.0, uniform_fraction=0.5)
    uniform = sum(len(set(zip(c.weight_bits, c.act_bits))) == 1 for c in half)
    assert 70 <= uniform <= 130  # binomial(200, 0.5): +-4 sigma
    with pytest.raises(InputError, match="uniform_fraction: got -0.1"):
        sample_configs(sp, 3, uniform_fraction=-0.1)


def test_labels_on_the_first_images_of_the_split(tmp_path, ckpt):
    """`max_images`: each record measured on that many images, said so in the record; a resume with another count
    is refused (the labels would not compare)."""
    out = tmp_path / "acc.jsonl"
    collect(CollectConfig(supernet=ckpt, data_name=None, n=3, out=out, seed=0, max_images=20, **KW))
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["max_images"], r["images"]) for r in recs] == [(20, 20)] * 3
    assert all(abs(sum(r["accuracy_halves"]) / 2 - r["accuracy"]) <= 100 / 20 + 1e-6 for r in recs)
    with pytest.raises(InputError, match="max_images 20; allowed: .* max_images None"):
        collect(CollectConfig(supernet=ckpt, data_name=None, n=4, out=out, seed=0, **KW))


def test_collect_schema(tmp_path, ckpt):
    out = tmp_path / "acc.jsonl"
    res = collect(CollectConfig(supernet=ckpt, data_name=None, n=4, out=out, seed=0, **KW))
    assert res["n"] == 4 and res["new"] == 4 and res["existing"] == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    n_holdout = load_data("synthetic", seed=0).split_sizes()["holdout"]
    for line in lines:
        r = json.loads(line)
        assert set(r) == set(RECORD_KEYS) | {"accuracy_halves", "max_images", "images"}
        assert r["max_images"] is None and r["images"] == n_holdout
        c = SubnetConfig.from_dict(r["config"])
        assert r["quantized"] == c.is_quantized
        assert 0.0 <= r["accuracy"] <= 100.0 and r["seconds"] > 0
        # the two halves (even / odd images) average to the whole split's accuracy
        assert abs(sum(r["accuracy_halves"]) / 2 - r["accuracy"]) <= 100.0 / n_holdout + 1e-6
        assert r["split"] == "holdout" and r["data"] == "synthetic"
        assert r["supernet"] == checkpoint_id(ckpt) and r["supernet"].startswith("sha256:")


def test_collect_resumes_after_a_torn_line(tmp_path, ckpt):
    fresh = tmp_path / "fresh.jsonl"
    collect(CollectConfig(supernet=ckpt, data_name="synthetic", n=6, out=fresh, seed=2, **KW))
    out = tmp_path / "acc.jsonl"
    collect(CollectConfig(supernet=ckpt, data_name="synthetic", n=3, out=out, seed=2, **KW))
    with out.open("a") as f:
        f.write('{"config": {"version": 1, "space": "mbv3-ti')  # killed mid-write
    assert len(read_records(out)) == 3  # the torn tail is not a record
    res = collect(CollectConfig(supernet=ckpt, data_name="synthetic", n=6, out=out, seed=2, **KW))
    assert res["existing"] == 3 and res["new"] == 3
    text = out.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 6
    assert _strip(read_records(out)) == _strip(read_records(fresh))  # same configs, same accuracies
    again = collect(CollectConfig(supernet=ckpt, data_name="synthetic", n=6, out=out, seed=2, **KW))
    assert again["new"] == 0 and len(out.read_text().splitlines()) == 6


def test_collect_refuses_mixing_and_corrupt_files(tmp_path, ckpt):
    out = tmp_path / "acc.jsonl"
    collect(CollectConfig(supernet=ckpt, data_name=None, n=2, out=out, **KW))
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    save_supernet(other, get_space("mbv3-tiny", num_classes=4).build_supernet(), {"data": "synthetic"})
    with pytest.raises(InputError, match="use another `out`"):
        collect(CollectConfig(supernet=other, data_name=None, n=3, out=out, **KW))
    lines = out.read_text().splitlines()
    out.write_text("not json\n" + "\n".join(lines) + "\n")
    with pytest.raises(HwnasError, match="line 1 is not an accuracy record"):
        collect(CollectConfig(supernet=ckpt, data_name=None, n=3, out=out, **KW))
    # a whole (newline-terminated) bad last line was written as such: an error, never cut off as torn
    out.write_text("\n".join(lines) + "\n" + '{"accuracy": 90}\n')
    with pytest.raises(HwnasError, match=f"line {len(lines) + 1} is not an accuracy record"):
        collect(CollectConfig(supernet=ckpt, data_name=None, n=3, out=out, **KW))
    assert len(out.read_text().splitlines()) == len(lines) + 1
    with pytest.raises(InputError, match="existing checkpoint"):
        collect(CollectConfig(supernet=tmp_path / "missing.pt", data_name=None, n=3, out=tmp_path / "x.jsonl",
                              **KW))
    with pytest.raises(InputError, match="10 classes, the supernet 4"):
        collect(CollectConfig(supernet=ckpt, data_name="digits", n=1, out=tmp_path / "d.jsonl", **KW))


def test_dataset_command(tmp_path, ckpt):
    from nas.cli.dataset_cmds import dataset

    out = tmp_path / "cli.jsonl"
    args = ["--supernet", str(ckpt), "--n", "2", "--out", str(out), "--calib-batches", "1", "--quiet", "--json"]
    r = CliRunner().invoke(dataset, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["n"] == 2 and len(out.read_text().splitlines()) == 2
    r = CliRunner().invoke(dataset, ["--supernet", str(ckpt), "--n", "0", "--out", str(out)])
    assert r.exit_code == 2


@pytest.mark.ray
def test_collect_with_ray_tasks(tmp_path, ckpt, ray_local):
    local = tmp_path / "local.jsonl"
    collect(CollectConfig(supernet=ckpt, data_name=None, n=4, out=local, seed=5, **KW))
    remote = tmp_path / "ray.jsonl"
    res = collect(CollectConfig(supernet=ckpt, data_name=None, n=4, out=remote, seed=5, workers=2, chunk_size=2,
                                **KW))
    assert res["new"] == 4
    key = lambda r: json.dumps(r["config"], sort_keys=True)  # noqa: E731
    assert sorted(_strip(read_records(remote)), key=key) == sorted(_strip(read_records(local)), key=key)
