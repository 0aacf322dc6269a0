"""Once-for-All import: OFA's own supernet (PyPI `ofa`, randomly initialised, offline) converted to hwnas gives
the same subnets. `ofa` is an optional test dependency; without it these tests skip and say why."""
from __future__ import annotations

import random

import pytest
import torch

from nas.checkpoint import load_supernet
from nas.ofa_import import ImportConfig, import_ofa, supernet_from_ofa_state_dict
from search_spaces import InputError, SubnetConfig

from experiments.ofa_compat import ofa_mbv3_class

try:
    OFAMobileNetV3 = ofa_mbv3_class()
    OFA_MISSING = ""
except ImportError as e:  # pragma: no cover - depends on the environment
    OFAMobileNetV3, OFA_MISSING = None, f"Once-for-All's `ofa` package cannot be imported here ({e}): pip install ofa"
needs_ofa = pytest.mark.skipif(bool(OFA_MISSING), reason=OFA_MISSING or "ofa imports")

KS, E, D = [3, 5, 7], [3, 4, 6], [2, 3, 4]


def _ofa_net(width: float, seed: int) -> torch.nn.Module:
    """OFA's supernet, randomly initialised by its own code, with BN statistics estimated on random images (so every
    layer passes signal of unit scale and an early block matters to the logits) and BN affine parameters and kernel
    transforms made random (their defaults, 1, 0 and identity, would hide a wrong mapping)."""
    torch.manual_seed(seed)
    net = OFAMobileNetV3(n_classes=1000, dropout_rate=0.1, width_mult=width, ks_list=KS, expand_ratio_list=E,
                         depth_list=D)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("bn.weight"):
                t.copy_(1 + 0.2 * torch.randn_like(t))
            elif name.endswith("bn.bias"):
                t.copy_(0.1 * torch.randn_like(t))
            elif name.endswith("_matrix"):
                t.add_(0.1 * torch.randn_like(t))
        bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        net.train()
        net.set_max_net()
        net(torch.randn(8, 3, 128, 128))
        for bn in bns:
            bn.momentum = 0.1
            bn.running_mean.add_(0.1 * torch.randn_like(bn.running_mean) * bn.running_var.sqrt())
    return net.eval()


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to the largest magnitude of the reference output."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@needs_ofa
@pytest.mark.slow
@pytest.mark.parametrize("width,space", [(1.0, "mbv3"), (1.2, "mbv3-w1.2")])
def test_extract_equals_ofa_get_active_subnet(tmp_path, width, space):
    torch.set_num_threads(2)
    ofa = _ofa_net(width, seed=int(width * 10))
    ofa_file = tmp_path / "ofa.pth"
    torch.save({"state_dict": ofa.state_dict()}, ofa_file)  # as OFA's model zoo stores it
    import_ofa(ImportConfig(checkpoint=ofa_file, space=space, out=tmp_path / "sn.pt"))
    net, meta = load_supernet(tmp_path / "sn.pt", space=space)
    assert meta["source"] == "once-for-all" and meta["normalization"]["mean"] == [0.485, 0.456, 0.406]
    rng = random.Random(7)
    checked = set()
    for i in range(10):
        ofa_cfg = {"ks": [rng.choice(KS) for _ in range(20)], "e": [rng.choice(E) for _ in range(20)],
                   "d": [rng.choice(D) for _ in range(5)]}
        if i == 0:
            ofa_cfg = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5}
        if i == 1:
            ofa_cfg = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5}
        ofa.set_active_subnet(**ofa_cfg)
        ofa_sub = ofa.get_active_subnet(preserve_weight=True).eval()
        for r in (128, 176, 224):
            cfg = SubnetConfig.from_ofa({**ofa_cfg, "r": r}, space=space)
            ours = net.extract(cfg).eval()
            x = torch.randn(2, 3, r, r, generator=torch.Generator().manual_seed(r + i))
            with torch.no_grad():
                want, got = ofa_sub(x), ours(x)
            assert _rel_err(got, want) < 1e-5, (ofa_cfg, r, _rel_err(got, want))
            checked.add((cfg, r))
    assert len(checked) == 30


@needs_ofa
def test_bad_state_dicts_name_the_keys():
    sd = _ofa_net(1.0, seed=1).state_dict()
    supernet_from_ofa_state_dict(dict(sd), "mbv3")  # the full one converts
    bad = dict(sd)
    bad.pop("blocks.3.conv.depth_conv.conv.conv.weight")
    bad["blocks.3.conv.extra.weight"] = torch.zeros(1)
    bad["classifier.linear.weight"] = torch.zeros(10, 1280)
    with pytest.raises(InputError) as e:
        supernet_from_ofa_state_dict(bad, "mbv3")
    msg = str(e.value)
    assert "unknown keys: blocks.3.conv.extra.weight" in msg
    assert "missing keys: blocks.3.conv.depth_conv.conv.weight" in msg
    assert "mis-shaped keys: classifier.linear.weight (10, 1280) (expected (1000, 1280))" in msg
    with pytest.raises(InputError, match="try --space mbv3-w1.2"):
        supernet_from_ofa_state_dict(_ofa_net(1.2, seed=2).state_dict(), "mbv3")


@needs_ofa
def test_old_key_spellings_convert():
    """Older OFA checkpoints spell `conv` as `mobile_inverted_conv`, and DataParallel adds `module.`."""
    sd = _ofa_net(1.0, seed=3).state_dict()
    old = {"module." + k.replace("blocks.5.conv.", "blocks.5.mobile_inverted_conv."): v for k, v in sd.items()}
    a = supernet_from_ofa_state_dict(sd, "mbv3").state_dict()
    b = supernet_from_ofa_state_dict(old, "mbv3").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_ofa
def test_cli_import_ofa(tmp_path):
    from click.testing import CliRunner

    from nas.cli.main import cli

    sd = _ofa_net(1.0, seed=4).state_dict()
    torch.save({"state_dict": sd}, tmp_path / "ofa.pth")
    r = CliRunner().invoke(cli, ["supernet", "import-ofa", str(tmp_path / "ofa.pth"), "--space", "mbv3",
                                 "--out", str(tmp_path / "sn.pt"), "--json"])
    assert r.exit_code == 0, r.output
    net, meta = load_supernet(tmp_path / "sn.pt", space="mbv3")
    assert meta["keep"] == 1.0 and meta["ofa_checkpoint"] == "ofa.pth"
    assert torch.equal(net.state_dict()["blocks.0.dw_w"], sd["blocks.1.conv.depth_conv.conv.conv.weight"])
    sd.pop("feature_mix_layer.conv.weight")
    torch.save(sd, tmp_path / "bad.pth")
    r = CliRunner().invoke(cli, ["supernet", "import-ofa", str(tmp_path / "bad.pth"), "--space", "mbv3",
                                 "--out", str(tmp_path / "bad.pt")])
    assert r.exit_code == 2 and "missing keys: feature_mix_layer.conv.weight" in r.output
    assert not (tmp_path / "bad.pt").exists()


def test_experiment_import_ofa_validates():
    from pathlib import Path

    from nas.experiment import load_experiment, parse_experiment

    root = Path(__file__).resolve().parents[1]
    exp = load_experiment(root / "experiments" / "imagenet-mbv3-ofa.yaml")
    assert exp.supernet.import_ofa and exp.space == "mbv3" and exp.accuracy.gpus_per_task == 0.25
    base = {"name": "x", "space": "mbv3-tiny", "data": "digits", "budgets": [{"latency_ms": 1.0}]}
    with pytest.raises(InputError, match="supernet.import_ofa: space is 'mbv3-tiny', allowed: one of mbv3, mbv3-w1.2"):
        parse_experiment({**base, "supernet": {"import_ofa": "ofa.pth"}})
    with pytest.raises(InputError, match="not both"):
        parse_experiment({**base, "space": "mbv3", "supernet": {"import_ofa": "a", "checkpoint": __file__}})
    with pytest.raises(InputError, match="supernet.device"):
        parse_experiment({**base, "supernet": {"device": "gpu"}})
    c = parse_experiment({**base, "supernet": {"workers": 2, "use_gpu": True, "amp": "bf16"}})
    assert c.supernet.workers == 2 and c.supernet.use_gpu


def test_ofa_variant_dry_runs_here(monkeypatch):
    # in-process (click's runner): a child process would pay hwnas's start-up for a validation
    from pathlib import Path

    from click.testing import CliRunner

    from nas.cli.main import cli

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    r = CliRunner().invoke(cli, ["run", "experiments/imagenet-mbv3-ofa.yaml", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "experiment imagenet-mbv3-ofa: valid" in r.output and "[supernet] would run" in r.output


@needs_ofa
def test_run_pipeline_supernet_stage_imports(tmp_path):
    """`hwnas run` with `supernet: {import_ofa: PATH}`: the supernet stage converts instead of training."""
    from nas.experiment import parse_experiment
    from nas.pipeline.cache import StageRunner
    from nas.pipeline.stages import supernet_stage

    torch.save({"state_dict": _ofa_net(1.2, seed=5).state_dict()}, tmp_path / "ofa12.pth")
    exp = parse_experiment({"name": "x", "space": "mbv3-w1.2", "data": "folder:/nowhere", "workdir": str(tmp_path / "w"),
                            "budgets": [{"latency_ms": 5.0}], "supernet": {"import_ofa": str(tmp_path / "ofa12.pth")}})
    res = supernet_stage(StageRunner(tmp_path / "w", log=lambda m: None), exp, progress=False)
    assert res.outputs["trained_here"] is False and res.outputs["imported_from"].endswith("ofa12.pth")
    net, meta = load_supernet(res.outputs["checkpoint"], space="mbv3-w1.2")
    assert meta["source"] == "once-for-all"
