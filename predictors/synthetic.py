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
    sc = space.schema
    idx = FeatureLayout(space, quant=True).as_indices(x).astype(np.int64)
    n = idx.shape[0]
    rng = np.random.default_rng(1_000_003 + seed)
    active = sc.active(idx)                                                   # (n, positions)

    def value(field: str) -> np.ndarray:  # (n, positions) chosen values (the first choice where inert)
        return np.asarray(sc.choices(field), dtype=float)[np.where(active, sc.field(idx, field), 0)]

    # the last elastic field (mbv3: expand, vit: MLP ratio) times the keep ratio is the block's width; the
    # others (mbv3: kernel, vit: heads) add capacity too
    elastic = [f for f in sc.position_fields if f not in ("keep", "weight_bits", "act_bits")]
    keep, wbits, abits = value("keep"), value("weight_bits"), value("act_bits")
    n_pos = sc.n_positions
    stage = sc.group_of if len(sc.groups) > 1 else sc.slot_of // 4
    importance = rng.uniform(0.6, 1.4, n_pos) * (1.0 + 0.15 * stage)         # later stages matter a bit more
    width = (value(elastic[-1]) / max(sc.choices(elastic[-1]))) * keep
    kernel = sum(value(f) / max(sc.choices(f)) for f in elastic[:-1]) / max(len(elastic) - 1, 1)
    # global choices other than resolution and depth (vit: embedding dimension) scale every block
    scale = np.ones((n, 1))
    for c, col in enumerate(sc.columns[: sc.n_global]):
        if col.field not in ("resolution", "depth"):
            scale = scale * (0.5 + 0.5 * np.asarray(col.choices, dtype=float)[idx[:, c]] / max(col.choices))[:, None]
    block = importance * (0.55 + 0.9 * width + 0.45 * kernel + rng.normal(0, 0.08, (1, n_pos))) * scale
    capacity = (block * active).sum(axis=1)
    inter = (width[:, 1:] * width[:, :-1] * active[:, 1:] * active[:, :-1]).sum(axis=1) * 0.25
    res = np.asarray(sc.choices("resolution"), dtype=float)[idx[:, sc.column("resolution")]] / max(sc.choices("resolution"))
    capacity = capacity + inter + 3.0 * res
    top = (importance * (1.0 + 0.9 + 0.45)).sum() + 0.25 * (n_pos - 1) + 3.0   # the largest subnet, roughly
    fp = 98.5 - 24.0 * np.exp(-3.2 * capacity / top)
    sens = rng.uniform(0.5, 1.5, n_pos)
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
