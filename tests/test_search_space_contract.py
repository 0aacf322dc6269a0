"""One contract every registered search space passes: sample -> validate -> encode -> supernet forward ->
extract -> ONNX -> onnxruntime, with outputs equal at every step."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import optuna
import pytest
import torch

from search_spaces import SubnetConfig, family_of, get_space, list_spaces
from search_spaces.onnx_export import export_onnx
from tests.helpers import randomize_statistics

# the mbv3 family's own contract (Once-for-All format, stages); every family: tests/test_family_contract.py
SPACES = [s for s in list_spaces() if family_of(s).family == "mbv3"]
# (space, number of random configs, resolution cap to keep the big spaces fast)
N_CONFIGS = {"mbv3-tiny": 12}


@pytest.fixture(scope="module", params=SPACES)
def space_and_net(request):
    space = get_space(request.param)
    torch.manual_seed(0)
    net = randomize_statistics(space.build_supernet().eval(), seed=1)
    return space, net


def _configs(space, n: int, seed: int) -> list[SubnetConfig]:
    cfgs = space.sample_many(n, seed)
    if space.name != "mbv3-tiny":  # big spaces: the smallest resolution keeps the test fast
        cfgs = [c.replace(resolution=space.spec.resolutions[0]) for c in cfgs]
    return cfgs


def test_sample_roundtrips(space_and_net):
    space, _ = space_and_net
    cfgs = space.sample_many(50, seed=3)
    assert len(set(cfgs)) == 50
    for c in cfgs:
        assert SubnetConfig.from_json(c.to_json()) == c
        assert hash(SubnetConfig.from_dict(json.loads(json.dumps(c.to_dict())))) == hash(c)
        ofa = c.to_ofa()
        assert len(ofa["ks"]) == len(ofa["e"]) == space.spec.n_positions
        back = SubnetConfig.from_ofa(ofa, space=space.name)
        n = c.n_blocks
        assert back == c.replace(keep=(1.0,) * n, weight_bits=(32,) * n, act_bits=(32,) * n)
    assert space.from_indices(space.to_indices(cfgs)) == cfgs


def test_encode_is_one_hot_of_active_choices(space_and_net):
    space, _ = space_and_net
    cfgs = space.sample_many(20, seed=4)
    for quant, per_block in ((True, 5), (False, 3)):
        x = space.encode(cfgs, quant=quant)
        assert x.shape == (20, space.n_features(quant)) and x.dtype == np.float32
        assert set(np.unique(x)) <= {0.0, 1.0}
        expected = [1 + space.spec.n_stages + per_block * c.n_blocks for c in cfgs]
        assert x.sum(axis=1).tolist() == expected
    assert np.array_equal(space.encode(cfgs), space.encode(space.to_indices(cfgs)))


def test_supernet_extract_onnx_agree(space_and_net, tmp_path):
    space, net = space_and_net
    n = N_CONFIGS.get(space.name, 2)
    cfgs = _configs(space, n, seed=7)
    cfgs[0] = cfgs[0].float_version()
    for i, c in enumerate(cfgs):
        x = torch.randn(2, space.spec.in_channels, c.resolution, c.resolution, generator=torch.Generator().manual_seed(i))
        net.set_active(c)
        with torch.no_grad():
            y_super = net(x)
            sub = net.extract(c).eval()
            y_sub = sub(x)
        scale = y_super.abs().max().item()
        assert scale > 1e-3
        assert (y_super - y_sub).abs().max().item() <= 1e-5 * scale, c
        # the extracted module has no elastic machinery left and the parameters the profile counts
        assert sum(p.numel() for p in sub.parameters()) == space.profile(c).params
        path = tmp_path / f"{space.name}-{i}.onnx"
        export_onnx(sub, space.input_shape(c, 1), path)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        y_ort = sess.run(None, {"input": x.numpy()})[0]  # dynamic batch: exported with 1, run with 2
        assert np.abs(y_ort - y_sub.numpy()).max() <= 1e-4 * scale, c


def test_profile_macs_match_torch_flop_counter(space_and_net):
    space, net = space_and_net
    from torch.utils.flop_counter import FlopCounterMode

    for c in _configs(space, 3, seed=11):
        sub = net.extract(c)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            sub(torch.zeros(space.input_shape(c, 1)))
        # torch counts 2 FLOPs per multiply-accumulate of convolutions and linear layers
        assert counter.get_total_flops() == 2 * space.profile(c).macs


def test_blocks_are_the_subnet_in_order(space_and_net):
    space, _ = space_and_net
    for c in space.sample_many(10, seed=5):
        blocks = space.blocks(c)
        assert len(blocks) == 4 + c.n_blocks
        assert [b.op for b in blocks[:2]] == ["conv", "dsconv"] and [b.op for b in blocks[-2:]] == ["conv", "head"]
        for prev, nxt in zip(blocks[:-1], blocks[1:]):
            assert prev.out_ch == nxt.in_ch and prev.out_hw == nxt.in_hw
        mb = blocks[2:-2]
        assert [(b.kernel, b.weight_bits, b.act_bits) for b in mb] == list(zip(c.kernel, c.weight_bits, c.act_bits))
        for b in blocks:
            assert type(b).from_key(b.key) == b
    assert set(space.blocks(space.largest())) <= set(space.all_block_specs([space.spec.resolutions[-1]]))


def test_optuna_suggest_defines_only_active_parameters(space_and_net):
    space, _ = space_and_net
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        c = space.suggest(trial)
        active_blocks = {k for k in trial.params if k.startswith("kernel_")}
        assert len(active_blocks) == c.n_blocks
        assert all(k in trial.params for k in (f"act_bits_s{s}b{i}" for s, d in enumerate(c.depths)
                                               for i in range(d) if c.weight_bits[sum(c.depths[:s]) + i] < 32))
        assert space.config_from_params(trial.params) == c
        assert space.params_from_config(c) == trial.params
        study.tell(trial, 0.0)
    dists = space.distributions()
    assert all(k in dists for k in study.trials[0].params)


def test_sort_channels_keeps_the_function_and_orders_importance(space_and_net):
    space, net = space_and_net
    c = space.largest().replace(resolution=space.spec.resolutions[0])
    net.set_active(c)
    x = torch.randn(space.input_shape(c, 2))
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        after = net(x)
    assert torch.allclose(before, after, rtol=1e-4, atol=1e-4 * before.abs().max().item())
    for blk in net.blocks:
        imp = blk.point_w.abs().sum(dim=(0, 2, 3))
        assert bool((imp[:-1] >= imp[1:]).all())


def test_float_extraction_keeps_the_quantization_policy(tiny_space):
    net = tiny_space.build_supernet()
    c = tiny_space.sample(3)
    while not any(a < 32 for a in c.act_bits):
        c = tiny_space.sample(int(c.resolution) + len(c.kernel))
    fq, fl = net.extract(c), net.extract(c, fake_quant=False)
    assert fq.quant_policy() == fl.quant_policy()
    assert any(a < 32 for _, a in fl.quant_policy().values())
    assert not any(m.__class__.__name__ == "FixedActQuant" for m in fl.modules())
