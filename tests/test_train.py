"""Supernet training: one epoch lowers the loss, resume equals an unbroken run, channel sorting keeps the
function and the optimizer state aligned, evaluation is deterministic, bad input fails clearly."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from nas.checkpoint import load_supernet, read_checkpoint, save_supernet
from nas.data import load_data
from nas.train import (TrainConfig, correct_mask, evaluate, load_for_eval, make_optimizer, percent_correct,
                       prepare_subnet, reference_configs, sort_channels, train_supernet)
from search_spaces import InputError, UnknownNameError, get_space

FAST = dict(space="mbv3-tiny", data="synthetic", batch_size=72, n_random=1, warmup_epochs=0.0, lr=4e-3)


@pytest.fixture(scope="module")
def synth():
    return load_data("synthetic", seed=0)


@pytest.fixture(scope="module")
def space4():
    return get_space("mbv3-tiny", num_classes=4)


def _train_loss(net, config, data):
    sub = prepare_subnet(net, config, data, calib_batches=2)
    with torch.no_grad():
        x, y = data.at("train", config.resolution)
        return float(F.cross_entropy(sub(x), y))


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory, synth):
    """(checkpoint after one epoch, the result, the config) -- shared by the tests below."""
    cfg = TrainConfig(epochs=1, seed=3, **FAST)
    path = tmp_path_factory.mktemp("one") / "s.pt"
    res = train_supernet(cfg, path, progress=False, threads=1, data=synth)
    return path, res, cfg


def test_one_epoch_lowers_the_loss(one_epoch, synth, space4):
    path, res, cfg = one_epoch
    torch.manual_seed(cfg.seed)
    before = space4.build_supernet()  # the same seeded initialisation train_supernet starts from
    after, meta = load_supernet(path, space="mbv3-tiny")
    assert meta["epochs"] == 1 and meta["data"] == "synthetic" and len(res.history) == 1
    for c in (space4.largest(), space4.smallest()):
        assert _train_loss(after, c, synth) < _train_loss(before, c, synth) - 0.05
    assert torch.isfinite(torch.tensor(res.history[0]["loss"]))


def test_resume_continues_exactly(tmp_path, synth):
    fast = {**FAST, "n_random": 0}
    straight = tmp_path / "a.pt"
    train_supernet(TrainConfig(epochs=2, **fast), straight, progress=False, threads=1, data=synth)
    # interrupted after its first epoch's checkpoint, then resumed
    first = tmp_path / "c.pt"
    epochs_seen = []
    with pytest.raises(KeyboardInterrupt):
        def stop(rec):
            epochs_seen.append(rec["epoch"])
            raise KeyboardInterrupt

        train_supernet(TrainConfig(epochs=2, **fast), first, progress=False, threads=1, data=synth, on_epoch=stop)
    assert epochs_seen == [1] and read_checkpoint(first)["train_state"]["epoch"] == 1
    res = train_supernet(TrainConfig(epochs=2, **fast), first, resume=True, progress=False, threads=1, data=synth)
    assert [h["epoch"] for h in res.history] == [1, 2]
    a, b = read_checkpoint(straight), read_checkpoint(first)
    for k, v in a["state_dict"].items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-6), k
    assert a["train_state"]["history"][1]["loss"] == pytest.approx(b["train_state"]["history"][1]["loss"], rel=1e-4)


def test_train_input_errors(tmp_path, synth, one_epoch):
    with pytest.raises(UnknownNameError, match="unknown search space 'mbv3-tin'"):
        train_supernet(TrainConfig(space="mbv3-tin", data="synthetic", epochs=1), tmp_path / "x.pt", progress=False)
    with pytest.raises(UnknownNameError, match="unknown data set"):
        train_supernet(TrainConfig(space="mbv3-tiny", data="nope", epochs=1), tmp_path / "x.pt", progress=False)
    with pytest.raises(InputError, match="epochs: got 0"):
        TrainConfig(space="mbv3-tiny", data="synthetic", epochs=0)
    with pytest.raises(InputError, match=r"holdout: got 0.6, allowed: a number in \(0, 0.5\)"):
        TrainConfig(space="mbv3-tiny", data="synthetic", epochs=1, holdout=0.6)
    p = tmp_path / "exists.pt"
    p.write_bytes(b"x")
    with pytest.raises(InputError, match="exists"):
        train_supernet(TrainConfig(epochs=1, **FAST), p, progress=False, data=synth)
    ck = one_epoch[0]
    with pytest.raises(InputError, match="resume: seed got 9"):
        train_supernet(TrainConfig(epochs=2, seed=9, **FAST), ck, resume=True, progress=False, data=synth)
    with pytest.raises(InputError, match="trained for space 'mbv3-tiny', not 'mbv3'"):
        load_supernet(ck, space="mbv3")
    net, _ = load_supernet(ck)
    digits = load_data("digits")
    with pytest.raises(InputError, match="10 classes, the supernet 4"):
        evaluate(net, get_space("mbv3-tiny", num_classes=4).largest(), digits)


def test_sort_channels_keeps_function_and_optimizer_alignment(space4, synth):
    torch.manual_seed(0)
    net = space4.build_supernet()
    cfg = TrainConfig(epochs=1, **FAST)
    opt = make_optimizer(net, cfg)
    net.train()
    x, y = synth.at("train", 16)
    for _ in range(2):
        opt.zero_grad()
        net.set_active(space4.largest().replace(resolution=16))
        F.cross_entropy(net(x[:32]), y[:32]).backward()
        opt.step()
    blk = net.blocks[0]
    order = torch.argsort(blk.point_w.abs().sum(dim=(0, 2, 3)), descending=True)
    m_before = opt.state[blk.point_w]["exp_avg"].clone()
    se_blk = net.blocks[4]  # stage 1 has squeeze-and-excitation
    assert se_blk.se
    se_order = torch.argsort(se_blk.point_w.abs().sum(dim=(0, 2, 3)), descending=True)
    se_before = opt.state[se_blk.se_expand.bias]["exp_avg_sq"].clone()
    sort_channels(net, opt)
    assert torch.equal(opt.state[blk.point_w]["exp_avg"], m_before[:, order])
    assert torch.equal(opt.state[se_blk.se_expand.bias]["exp_avg_sq"], se_before[se_order])
    assert not torch.equal(order, torch.arange(len(order)))  # something moved
    imp = net.blocks[0].point_w.abs().sum(dim=(0, 2, 3))
    assert torch.all(imp[:-1] >= imp[1:])  # most important first: every keep-ratio prefix is the important set
    assert opt.state[blk.point_w]["exp_avg"].abs().sum() > 0


def test_sort_is_function_preserving_for_the_full_width(space4, synth):
    torch.manual_seed(1)
    net = space4.build_supernet().eval()
    for b in net.blocks:  # non-trivial BN / weights
        torch.nn.init.normal_(b.point_bn.weight)
    full = space4.largest()
    net.set_active(full)
    x, _ = synth.at("test", 32)
    with torch.no_grad():
        ref = net(x)
        sort_channels(net, None)
        assert torch.allclose(net(x), ref, atol=1e-4)


def test_evaluate_is_deterministic_and_leaves_the_supernet_alone(tmp_path, space4, synth):
    torch.manual_seed(0)
    net = space4.build_supernet()
    save_supernet(tmp_path / "n.pt", net, {"data": "synthetic"})
    net, _ = load_supernet(tmp_path / "n.pt")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    refs = reference_configs(space4, n_random=1)
    assert {"largest", "smallest-w8a8", "largest-w4a8", "random0-w8a8"} <= set(refs)
    a = evaluate(net, refs["smallest-w8a8"], synth, "holdout")
    b = evaluate(net, refs["smallest-w8a8"], synth, "holdout")
    assert a == b and 0.0 <= a <= 100.0
    # an image range: images [10, 30) of the same per-image hits
    sub = prepare_subnet(net, refs["smallest-w8a8"], synth)
    hits = correct_mask(sub, synth, "holdout", refs["smallest-w8a8"].resolution)
    assert evaluate(net, refs["smallest-w8a8"], synth, "holdout", max_images=20, skip_images=10) \
        == percent_correct(hits[10:30])
    assert evaluate(net, refs["smallest-w8a8"], synth, "holdout", skip_images=10) == percent_correct(hits[10:])
    for batch in (7, 10, 512):  # ranges that start and end inside, on and across batch boundaries
        got = correct_mask(sub, synth, "holdout", refs["smallest-w8a8"].resolution, batch_size=batch,
                           max_images=20, skip_images=10)
        assert torch.equal(got, hits[10:30]), batch
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_cli_train_and_eval(tmp_path):
    from nas.cli.main import cli

    out = tmp_path / "cli.pt"
    r = CliRunner().invoke(cli, ["supernet", "train", "--space", "mbv3-tiny", "--data", "synthetic", "--epochs", "1",
                                 "--out", str(out), "--batch-size", "72", "--n-random", "0", "--no-eval", "--quiet",
                                 "--threads", "1", "--json", "--holdout", "0.3", "--test", "0.1"])
    assert r.exit_code == 0, r.output
    assert out.is_file() and '"epochs": 1' in r.output
    # the split fractions travel in the checkpoint: evaluation and accuracy collection see the same holdout
    _, data, meta = load_for_eval(out)
    sizes, total = data.split_sizes(), sum(data.split_sizes().values())
    assert (meta["holdout"], meta["test"]) == (0.3, 0.1)
    assert abs(sizes["holdout"] - 0.3 * total) <= 10 and abs(sizes["test"] - 0.1 * total) <= 10
    cfg_file = tmp_path / "smallest.json"
    cfg_file.write_text(get_space("mbv3-tiny").smallest(8, 8).to_json())
    r = CliRunner().invoke(cli, ["supernet", "eval", "--supernet", str(out), "--split", "holdout", "--config",
                                 str(cfg_file), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["split"] == "holdout" and 0 <= res["accuracy"]["config"] <= 100
    r = CliRunner().invoke(cli, ["supernet", "train", "--space", "nope", "--data", "synthetic", "--epochs", "1",
                                 "--out", str(tmp_path / "z.pt")])
    assert r.exit_code == 2 and "unknown search space 'nope'" in r.output
    r = CliRunner().invoke(cli, ["supernet", "eval", "--supernet", str(tmp_path / "missing.pt")])
    assert r.exit_code == 2 and "existing hwnas checkpoint file" in r.output
