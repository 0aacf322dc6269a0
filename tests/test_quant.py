"""Fake quantization: the in-place evaluation path gives the straight-through form's values bit for bit."""
import pytest
import torch

from search_spaces.quant import fake_quant_act


def _straight_through(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int) -> torch.Tensor:
    """The textbook form, one temporary per operation."""
    qmax = 2**bits - 1
    lo_ = torch.clamp(lo, max=0.0)
    hi_ = torch.maximum(torch.clamp(hi, min=0.0), lo_ + 1e-6)
    scale = (hi_ - lo_) / qmax
    zero = torch.round(-lo_ / scale)
    xq = (torch.clamp(torch.round(x / scale) + zero, 0, qmax) - zero) * scale
    return x + (xq - x).detach()


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("lo,hi", [(-2.5, 4.0), (0.5, 3.0), (-3.0, -1.0)])
def test_fake_quant_values_and_gradient(bits: int, lo: float, hi: float) -> None:
    x = torch.randn(16, 8, 5, 5, generator=torch.Generator().manual_seed(bits)) * 3
    lo_t, hi_t = torch.tensor(lo), torch.tensor(hi)
    want = _straight_through(x, lo_t, hi_t, bits)
    with torch.no_grad():
        got = fake_quant_act(x, lo_t, hi_t, bits)
    assert torch.equal(got, want)
    # really quantized, not passed through (x + (xq - x) is xq to an ulp, so compare rounded)
    assert torch.round(got * 1e4).unique().numel() <= 2**bits
    xr = x.clone().requires_grad_()
    y = fake_quant_act(xr, lo_t, hi_t, bits)
    y.sum().backward()
    assert torch.equal(y.detach(), want) and torch.equal(xr.grad, torch.ones_like(x))  # straight-through


def test_folded_batchnorm_computes_the_same_subnet() -> None:
    """An extracted subnet with its BatchNorms folded into the convs (what evaluation runs) gives the unfolded
    subnet's logits, quantized weights and activations included."""
    from search_spaces import get_space
    from search_spaces.layers import ConvBN, fold_batchnorm

    space = get_space("mbv3-tiny", resolutions=(16,))
    net = space.build_supernet()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # BN statistics and affines far from the identity, so a wrong fold shows
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5, generator=gen)
                m.running_var.uniform_(0.2, 3.0, generator=gen)
                m.weight.normal_(1, 0.5, generator=gen)
                m.bias.normal_(0, 0.5, generator=gen)
    x = torch.randn(32, space.spec.in_channels, 16, 16, generator=gen)
    for config in space.sample_many(4, seed=1, quantize=True):
        sub = net.extract(config).eval()
        with torch.no_grad():
            want = sub(x)
            folded = fold_batchnorm(sub)
            got = folded(x)
        assert not any(isinstance(m.bn, torch.nn.BatchNorm2d) for m in folded.modules() if isinstance(m, ConvBN))
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
