"""Which subnets calibrate a table and which validate it: random, reproducible from a seed, at the table's
resolutions, runnable on its device, and never the same subnet in both roles."""
from __future__ import annotations

from collections.abc import Collection

import numpy as np

from search_spaces import SearchSpace, SubnetConfig


def sample_configs(space: SearchSpace, n: int, seed: int, resolutions: Collection[int],
                   exclude: Collection[str] = (), supported=None, max_tries: int = 100,
                   quantize: bool = True) -> list[SubnetConfig]:
    """`n` distinct random configs at `resolutions`, none whose JSON is in `exclude`, all passing
    `supported(list_of_configs) -> bool array` when given; float only unless `quantize`."""
    rng = np.random.default_rng(seed)
    res = sorted(resolutions)
    seen = set(exclude)
    out: list[SubnetConfig] = []
    for _ in range(max_tries * max(n, 1)):
        if len(out) == n:
            break
        c = space.sample(rng, quantize=quantize)
        c = c.replace(resolution=res[int(rng.integers(len(res)))])
        j = c.to_json()
        if j in seen:
            continue
        if supported is not None and not bool(supported([c])[0]):
            continue
        seen.add(j)
        out.append(c)
    return out
