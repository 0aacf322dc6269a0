"""The contract every search space passes: sample -> validate -> encode -> supernet forward -> extract -> ONNX ->
onnxruntime, with outputs equal at every step. A space from another package gets the same checks by subclassing
`SearchSpaceContract` in its tests and giving the `space_name` fixture (class-scoped: the supernet is built once):

    class TestMySpace(SearchSpaceContract):
        @pytest.fixture(scope="class")
        @classmethod
        def space_name(cls) -> str:
            return "my-space"

The base's name does not start with `Test`, so pytest collects only the subclasses."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnxruntime as ort
import optuna
import pytest
import torch
from torch import nn

from search_spaces import SubnetConfig, get_space
from search_spaces.onnx_export import export_onnx
from search_spaces.quant import ActRange


def check_supernet_extract_onnx_agree(space: Any, net: nn.Module, configs: list[Any], tmp_path: Any) -> None:
    """For each config: the supernet's output equals the extracted subnet's (1e-5 relative) and ONNX Runtime's
    run of its export (1e-4; exported at batch 1, run at batch 2), and the subnet holds the parameters its
    profile counts. Every family's promise: what the search scores is what gets deployed."""
    for i, c in enumerate(configs):
        x = torch.randn(space.input_shape(c, 2), generator=torch.Generator().manual_seed(i))
        net.set_active(c)
        with torch.no_grad():
            y_super = net(x)
            sub = net.extract(c).eval()
            y_sub = sub(x)
        scale = y_super.abs().max().item()
        assert scale > 1e-3
        assert (y_super - y_sub).abs().max().item() <= 1e-5 * scale, c
        assert sum(p.numel() for p in sub.parameters()) == space.profile(c).params
        path = tmp_path / f"{space.name}-{i}.onnx"
        export_onnx(sub, space.input_shape(c, 1), path)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        y_ort = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        assert np.abs(y_ort - y_sub.numpy()).max() <= 1e-4 * scale, c


@torch.no_grad()
def randomize_statistics(net: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, and every activation range a
    plausible span, so equality checks between supernet, extracted subnet and ONNX are not trivially met by a
    freshly initialised (identity-like) network."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.copy_(0.2 * torch.randn(n, generator=g))
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        elif isinstance(m, ActRange):
            m.lo.fill_(-2.0 * float(torch.rand((), generator=g)))
            m.hi.fill_(2.0 + 4.0 * float(torch.rand((), generator=g)))
            m.count.fill_(1)
    return net


class SearchSpaceContract:
    # random configs exported to ONNX per space (default 2: the big spaces' supernets are slow)
    n_onnx_configs: dict[str, int] = {"mbv3-tiny": 12}

    @pytest.fixture(scope="class")
    @classmethod
    def space_name(cls) -> str:  # pragma: no cover - the subclass gives it
        raise NotImplementedError("override the `space_name` fixture")

    @pytest.fixture(scope="class")
    @classmethod
    def space_and_net(cls, space_name: str):  # noqa: ANN201
        space = get_space(space_name)
        torch.manual_seed(0)
        net = randomize_statistics(space.build_supernet().eval(), seed=1)
        return space, net

    @staticmethod
    def _configs(space, n: int, seed: int) -> list[SubnetConfig]:  # noqa: ANN001
        cfgs = space.sample_many(n, seed)
        if space.name != "mbv3-tiny":  # big spaces: the smallest resolution keeps the test fast
            cfgs = [c.replace(resolution=space.spec.resolutions[0]) for c in cfgs]
        return cfgs

    def test_sample_roundtrips(self, space_and_net) -> None:
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


    def test_encode_is_one_hot_of_active_choices(self, space_and_net) -> None:
        space, _ = space_and_net
        cfgs = space.sample_many(20, seed=4)
        for quant, per_block in ((True, 5), (False, 3)):
            x = space.encode(cfgs, quant=quant)
            assert x.shape == (20, space.n_features(quant)) and x.dtype == np.float32
            assert set(np.unique(x)) <= {0.0, 1.0}
            expected = [1 + space.spec.n_stages + per_block * c.n_blocks for c in cfgs]
            assert x.sum(axis=1).tolist() == expected
        assert np.array_equal(space.encode(cfgs), space.encode(space.to_indices(cfgs)))


    def test_supernet_extract_onnx_agree(self, space_and_net, tmp_path) -> None:
        space, net = space_and_net
        cfgs = self._configs(space, self.n_onnx_configs.get(space.name, 2), seed=7)
        check_supernet_extract_onnx_agree(space, net, [cfgs[0].float_version(), *cfgs[1:]], tmp_path)

    def test_profile_macs_match_torch_flop_counter(self, space_and_net) -> None:
        space, net = space_and_net
        from torch.utils.flop_counter import FlopCounterMode

        for c in self._configs(space, 3, seed=11):
            sub = net.extract(c)
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                sub(torch.zeros(space.input_shape(c, 1)))
            # torch counts 2 FLOPs per multiply-accumulate of convolutions and linear layers
            assert counter.get_total_flops() == 2 * space.profile(c).macs


    def test_blocks_are_the_subnet_in_order(self, space_and_net) -> None:
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


    def test_optuna_suggest_defines_only_active_parameters(self, space_and_net) -> None:
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


    def test_sort_channels_keeps_the_function_and_orders_importance(self, space_and_net) -> None:
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
