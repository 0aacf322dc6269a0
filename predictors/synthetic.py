"""A synthetic-but-realistic accuracy target, for tests and for benchmarking before real data exists.

Accuracy saturates with capacity (resolution, depth, kernel, expand, keep, weighted per position), has pairwise
interactions (a wide block helps more after a wide block), and quantization costs points -- 4-bit weights much more
than 8-bit, more in pruned (narrow) blocks and in the first and last positions, 8-bit activations a little --
plus Gaussian "evaluation" noise. Everything is a fixed function of `seed`.
"""
from __future__ import annotations

import numpy as np

from search_spaces import SearchSpace

from predictors.features import ConfigsOrIndices, FeatureLayout


def synthetic_accuracy(space: SearchSpace, x: ConfigsOrIndices, seed: int = 0, noise: float = 0.15) -> np.ndarray:
    """Top-1 accuracy in percent (roughly 80-98) of each config under a hidden random model fixed by `seed`."""
    s = space.spec
    idx = FeatureLayout(space, quant=True).as_indices(x).astype(np.int64)
    n = idx.shape[0]
    rng = np.random.default_rng(1_000_003 + seed)
    nf = 5
    base = 1 + s.n_stages
    active = idx[:, base::nf] >= 0                                          # (n, positions)
    k = np.where(active, idx[:, base + 0 :: nf], 0)
    e = np.where(active, idx[:, base + 1 :: nf], 0)
    kp = np.where(active, idx[:, base + 2 :: nf], 0)
    wb = np.where(active, idx[:, base + 3 :: nf], 0)
    ab = np.where(active, idx[:, base + 4 :: nf], 0)
    keep = np.asarray(s.keep_choices, dtype=float)[kp]
    wbits = np.asarray(s.weight_bit_choices, dtype=float)[wb]
    abits = np.asarray(s.act_bit_choices, dtype=float)[ab]
    pos = np.arange(s.n_positions)
    stage = pos // s.max_depth
    importance = rng.uniform(0.6, 1.4, s.n_positions) * (1.0 + 0.15 * stage)   # later stages matter a bit more
    width = (np.asarray(s.expand_choices, dtype=float)[e] / max(s.expand_choices)) * keep
    kernel = np.asarray(s.kernel_choices, dtype=float)[k] / max(s.kernel_choices)
    block = importance * (0.55 + 0.9 * width + 0.45 * kernel + rng.normal(0, 0.08, (1, s.n_positions)))
    capacity = (block * active).sum(axis=1)
    inter = (width[:, 1:] * width[:, :-1] * active[:, 1:] * active[:, :-1]).sum(axis=1) * 0.25
    res = np.asarray(s.resolutions, dtype=float)[idx[:, 0]] / max(s.resolutions)
    capacity = capacity + inter + 3.0 * res
    top = (importance * (1.0 + 0.9 + 0.45)).sum() + 0.25 * (s.n_positions - 1) + 3.0   # the largest subnet, roughly
    fp = 98.5 - 24.0 * np.exp(-3.2 * capacity / top)
    sens = rng.uniform(0.5, 1.5, s.n_positions)
    sens[[0, -1]] *= 2.0                                                     # first and last positions are fragile
    pen4 = (wbits == 4) * sens * (0.6 - 0.35 * keep)
    pen8 = (wbits == 8) * sens * 0.01
    pena = (abits == 8) * sens * 0.03
    penalty = ((pen4 + pen8 + pena) * active).sum(axis=1) * (1.0 + 0.02 * (98.5 - fp))
    noise_rng = np.random.default_rng([seed, n, int(idx.sum()) % 2**31])
    return fp - penalty + noise_rng.normal(0, noise, n)


def synthetic_dataset(space: SearchSpace, n: int, seed: int = 0):  # noqa: ANN201 -- AccuracyDataset
    """`n` sampled subnets (every other one quantized) labelled by `synthetic_accuracy`: a stand-in accuracy
    data set for tests and benchmarks that need a fitted predictor but no trained supernet."""
    from predictors.dataset import AccuracyDataset

    rng = np.random.default_rng(seed)
    configs = [space.sample(rng, quantize=bool(i % 2)) for i in range(n)]
    return AccuracyDataset(space=space.name, configs=configs, accuracy=synthetic_accuracy(space, configs, seed=seed),
                           quantized=np.array([c.is_quantized for c in configs]), sources={"data": ["synthetic"]})
