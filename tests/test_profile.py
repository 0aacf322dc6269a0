"""Exact profiles: checked against a hand-written layer list, an integer hook counter on the extracted module
(what Once-for-All's counter does, without its float32 accumulation), and numbers produced by Once-for-All."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from search_spaces import SubnetConfig, get_space

# mbv3-tiny smallest config (16 px, depth 2 everywhere, kernel 3, expand 3, keep 0.5, float), written out by
# hand from the architecture: (in, out, kernel, groups, output size, bias) per convolution, then the linear.
# hidden = make_divisible(make_divisible(in * 3, 8) * 0.5, 8); SE mid = make_divisible(hidden // 4, 8).
TINY_SMALLEST_LAYERS = [
    (1, 8, 3, 1, 16, 0), (8, 8, 3, 8, 16, 0), (8, 8, 1, 1, 16, 0),            # stem, first block
    (8, 16, 1, 1, 16, 0), (16, 16, 3, 16, 8, 0), (16, 16, 1, 1, 8, 0),        # stage 0 (stride 2)
    (16, 24, 1, 1, 8, 0), (24, 24, 3, 24, 8, 0), (24, 16, 1, 1, 8, 0),
    (16, 24, 1, 1, 8, 0), (24, 24, 3, 24, 4, 0), (24, 8, 1, 1, 1, 1), (8, 24, 1, 1, 1, 1), (24, 24, 1, 1, 4, 0),
    (24, 40, 1, 1, 4, 0), (40, 40, 3, 40, 4, 0), (40, 16, 1, 1, 1, 1), (16, 40, 1, 1, 1, 1), (40, 24, 1, 1, 4, 0),
    (24, 40, 1, 1, 4, 0), (40, 40, 3, 40, 4, 0), (40, 32, 1, 1, 4, 0),        # stage 2 (stride 1, no SE)
    (32, 48, 1, 1, 4, 0), (48, 48, 3, 48, 4, 0), (48, 32, 1, 1, 4, 0),
    (32, 48, 1, 1, 4, 0), (48, 48, 3, 48, 2, 0), (48, 16, 1, 1, 1, 1), (16, 48, 1, 1, 1, 1), (48, 48, 1, 1, 2, 0),
    (48, 72, 1, 1, 2, 0), (72, 72, 3, 72, 2, 0), (72, 24, 1, 1, 1, 1), (24, 72, 1, 1, 1, 1), (72, 48, 1, 1, 2, 0),
    (48, 72, 1, 1, 2, 0), (72, 72, 3, 72, 2, 0), (72, 24, 1, 1, 1, 1), (24, 72, 1, 1, 1, 1), (72, 64, 1, 1, 2, 0),
    (64, 96, 1, 1, 2, 0), (96, 96, 3, 96, 2, 0), (96, 24, 1, 1, 1, 1), (24, 96, 1, 1, 1, 1), (96, 64, 1, 1, 2, 0),
    (64, 192, 1, 1, 2, 0),                                                     # final expand
    (192, 256, 1, 1, 1, 0),                                                    # feature mix (no BN)
]
TINY_LINEAR = (256, 10)


def test_hand_computed_profile_of_tiny_smallest():
    macs = params = 0
    for cin, cout, k, groups, out, bias in TINY_SMALLEST_LAYERS:
        macs += out * out * cout * (cin // groups) * k * k
        params += cout * (cin // groups) * k * k + (cout if bias else 0)
        has_bn = not bias and (cin, cout) != (192, 256)
        params += 2 * cout if has_bn else 0
    macs += TINY_LINEAR[0] * TINY_LINEAR[1]
    params += TINY_LINEAR[0] * TINY_LINEAR[1] + TINY_LINEAR[1]
    p = get_space("mbv3-tiny").profile(get_space("mbv3-tiny").smallest())
    assert (p.macs, p.params) == (macs, params) == (614784, 127258)
    assert p.size_bytes == params * 4


def test_size_counts_each_layer_at_its_bits(tiny_space):
    c = tiny_space.smallest()
    n = c.n_blocks
    f, q8, q4 = (tiny_space.profile(c.with_bits(w, a)).size_bytes for w, a in ((32, 32), (8, 8), (4, 8)))
    # the main convolutions of the 10 elastic blocks, by hand from TINY_SMALLEST_LAYERS (SE, BN, bias stay float)
    main = [(8, 16, 1, 1), (16, 16, 3, 16), (16, 16, 1, 1), (16, 24, 1, 1), (24, 24, 3, 24), (24, 16, 1, 1),
            (16, 24, 1, 1), (24, 24, 3, 24), (24, 24, 1, 1), (24, 40, 1, 1), (40, 40, 3, 40), (40, 24, 1, 1),
            (24, 40, 1, 1), (40, 40, 3, 40), (40, 32, 1, 1), (32, 48, 1, 1), (48, 48, 3, 48), (48, 32, 1, 1),
            (32, 48, 1, 1), (48, 48, 3, 48), (48, 48, 1, 1), (48, 72, 1, 1), (72, 72, 3, 72), (72, 48, 1, 1),
            (48, 72, 1, 1), (72, 72, 3, 72), (72, 64, 1, 1), (64, 96, 1, 1), (96, 96, 3, 96), (96, 64, 1, 1)]
    w = sum(cout * (cin // g) * k * k for cin, cout, k, g in main)
    assert f - q8 == w * (32 - 8) // 8 and f - q4 == w * (32 - 4) // 8
    mixed = c.replace(weight_bits=(4,) + (32,) * (n - 1), act_bits=(8,) + (32,) * (n - 1))
    first_block_weights = 8 * 16 + 16 * 9 + 16 * 16
    assert f - tiny_space.profile(mixed).size_bytes == first_block_weights * 28 // 8


def _hook_count(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    """Once-for-All's counting rule (count_convNd / count_linear) with Python integers."""
    total = [0]

    def conv(m, _, y):
        total[0] += m.in_channels // m.groups * y.numel() * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, _, __):
        total[0] += m.in_features * m.out_features

    hooks = [m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
             for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        module.eval()(torch.zeros(shape))
    for h in hooks:
        h.remove()
    return total[0], sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ["mbv3-tiny", "mbv3"])
def test_profile_equals_integer_hook_counter(name):
    space = get_space(name)
    net = space.build_supernet()
    cfgs = space.sample_many(6, seed=2) + [space.smallest()]
    for c in cfgs:
        p = space.profile(c)
        assert (p.macs, p.params) == _hook_count(net.extract(c), space.input_shape(c)), c


REFERENCE = Path(__file__).parent / "data" / "ofa_reference.json"


@pytest.mark.skipif(not REFERENCE.exists(), reason="tests/data/ofa_reference.json not generated")
def test_profile_equals_once_for_all():
    """MACs and parameters that Once-for-All's own code reports (see tests/data/ofa_reference.README.md)."""
    refs = json.loads(REFERENCE.read_text())
    assert len(refs) >= 10
    for ref in refs:
        name = "mbv3" if ref["width_mult"] == 1.0 else "mbv3-w1.2"
        c = SubnetConfig.from_ofa(ref["ofa"], space=name)
        p = get_space(name).profile(c)
        assert (p.macs, p.params) == (ref["macs_exact"], ref["params"]), ref["ofa"]
