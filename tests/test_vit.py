"""The vit family's own promises: exact counts against a hand count (DeiT-S), weight sharing by prefix, MLP
hidden units sorted by importance, int8 / int4 QDQ linear layers in ONNX Runtime, and sandwich-rule training with
in-place distillation through the shared trainer. The generic contract: tests/test_family_contract.py."""
from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from search_spaces import InputError, get_space
from search_spaces.vit import ViTConfig


def test_largest_vit_s_is_deit_s_by_hand_count() -> None:
    sp = get_space("vit-s")
    c = sp.largest()
    assert (c.embed_dim, c.depth, set(c.heads), set(c.mlp_ratio)) == (384, 12, {6}, {4.0})
    d, t, h, layers, classes = 384, 197, 1536, 12, 1000
    per_layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * h + h) + (h * d + d)  # 2 LN, qkv, proj, fc1, fc2
    params = (3 * 16 * 16 * d + d) + d + t * d + layers * per_layer + 2 * d + d * classes + classes
    assert params == 22_050_664 == sp.profile(c).params  # DeiT-S as published (timm deit_small_patch16_224)
    macs = 196 * 3 * 16 * 16 * d + layers * (t * (4 * d * d + 2 * d * h) + 2 * t * t * d) + d * classes
    assert sp.profile(c).macs == macs
    # size at bits: the six linear weights of each layer at 8 bits, everything else float32
    q = sp.profile(c.with_bits(8, 8))
    linear = layers * (4 * d * d + 2 * d * h)
    assert q.size_bytes == linear + (params - linear) * 4


def test_smaller_choices_are_prefixes_of_the_shared_weights() -> None:
    sp = get_space("vit-tiny")
    torch.manual_seed(0)
    net = sp.build_supernet().eval()
    c = ViTConfig("vit-tiny", 32, 2, (1, 2), (2.0, 4.0), (0.5, 1.0), (32, 32), (32, 32))
    sub = net.extract(c)
    assert torch.equal(sub.blocks[0].attn.q.fc.weight, net.blocks[0].q.weight[:16, :32])
    assert torch.equal(sub.blocks[1].mlp.fc2.fc.weight, net.blocks[1].fc2.weight[:32, :sp.spec.mlp_hidden(32, 4.0)])
    assert sub.blocks[0].mlp.fc1.fc.out_features == sp.spec.mlp_hidden(32, 2.0, 0.5) == 32
    with pytest.raises(InputError, match=r"heads\[1\]"):
        ViTConfig("vit-tiny", 32, 2, (1, 3), (2.0, 4.0), (0.5, 1.0), (32, 32), (32, 32))
    with pytest.raises(InputError, match="resolution"):
        c.replace(resolution=28)


def test_sort_channels_keeps_the_function_and_orders_mlp_units_by_importance() -> None:
    sp = get_space("vit-tiny")
    torch.manual_seed(0)
    net = sp.build_supernet().eval()
    for b in net.blocks:  # distinct importances
        b.fc2.weight.data.mul_(torch.rand(b.fc2.weight.shape[1]) * 2)
    c = sp.largest()
    net.set_active(c)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        after = net(x)
    assert torch.allclose(before, after, atol=1e-5)
    for b in net.blocks:
        imp = b.fc2.weight.abs().sum(dim=0)
        assert bool((imp[:-1] >= imp[1:]).all())


@pytest.mark.parametrize("bits", [(8, 8), (4, 8), (8, 32)])
def test_quantized_export_runs_qdq_matmuls_in_onnx_runtime(tmp_path, bits) -> None:
    from latency_tables.models import export_subnet

    sp = get_space("vit-tiny")
    c = sp.middle().with_bits(*bits)
    path, shape = export_subnet(sp, c, tmp_path)
    m = onnx.load(str(path))
    producers = {o: n for n in m.graph.node for o in n.output}
    fed = collections.Counter(n.op_type for n in m.graph.node
                              if n.op_type == "MatMul" and producers.get(n.input[1]) is not None
                              and producers[n.input[1]].op_type == "DequantizeLinear")
    assert fed["MatMul"] == 6 * c.depth  # q, k, v, proj, fc1, fc2 of every layer: quantized weights
    if bits[1] == 8:
        assert any(n.op_type == "QuantizeLinear" for n in m.graph.node)  # static activations too
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    yq = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    yf = ort.InferenceSession(str(path).replace(".onnx", ".float.onnx"),
                              providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    cos = float((yq * yf).sum() / np.linalg.norm(yq) / np.linalg.norm(yf))
    assert cos > (0.97 if bits[0] == 4 else 0.999)  # random weights; a wrong channel axis gives ~0


def test_sandwich_training_reuses_the_trainer(tmp_path) -> None:
    from nas.train import TrainConfig, evaluate, load_for_eval, train_supernet

    cfg = TrainConfig(space="vit-tiny", data="digits", epochs=3, batch_size=32, n_random=1, warmup_epochs=0.5,
                      lr=1e-3)
    res = train_supernet(cfg, tmp_path / "vit.pt", progress=False)
    net, data, _ = load_for_eval(tmp_path / "vit.pt")
    sp = get_space("vit-tiny")
    acc = {k: evaluate(net, c, data, split="holdout", calib_batches=1) for k, c in
           {"largest": sp.largest(), "smallest": sp.smallest(), "w8a8": sp.largest(8, 8)}.items()}
    # 10 classes: chance is 10 % (+-1.6 points on the 359 holdout digits); a ViT from scratch learns slowly here
    # (3 epochs: 19-22 %; 30 epochs on mnist-5k: 80 %, experiments/results/vit-tiny.md)
    assert all(a > 15 for a in acc.values()), (acc, res)
