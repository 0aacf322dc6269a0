"""Which subnets calibrate a table and which validate it: reproducible from a seed, at the table's resolutions,
runnable on its device, never the same subnet in both roles -- and covering the bit-width policies users deploy
(float, uniform w8a8 and w4a8) as well as mixed ones, at sizes across the space, because a table that is only
checked on random mixed-bit subnets says nothing about the float or uniformly quantized model a user exports."""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from search_spaces import SearchSpace, SubnetConfig

MIXED = "mixed"
UNIFORM = {"float": (32, 32), "w8a8": (8, 8), "w4a8": (4, 8)}


def policies(space: SearchSpace, quantize: bool = True) -> list[str]:
    """The policies the space can express: float, then the uniform ones its bit choices allow, then mixed."""
    if not quantize:
        return ["float"]
    return [p for p, bits in UNIFORM.items() if bits in space.bit_pairs or bits == (32, 32)] + [MIXED]


def policy_of(config: SubnetConfig) -> str:
    """`float`, `w8a8`, `w4a8`, another uniform `wXaY`, or `mixed`."""
    pairs = set(zip(config.weight_bits, config.act_bits))
    if len(pairs) != 1:
        return MIXED
    w, a = pairs.pop()
    return "float" if (w, a) == (32, 32) else f"w{w}a{a}"


def with_policy(config: SubnetConfig, policy: str) -> SubnetConfig:
    """The same architecture under `policy` (`mixed` keeps the sampled per-block bits)."""
    return config if policy == MIXED else config.with_bits(*UNIFORM[policy])


def sample_configs(space: SearchSpace, n: int, seed: int, resolutions: Collection[int],
                   exclude: Collection[str] = (), supported=None, max_tries: int = 100,
                   quantize: bool = True, spread_by: Callable[[Sequence[SubnetConfig]], np.ndarray] | None = None,
                   pool: int = 64) -> list[SubnetConfig]:
    """`n` distinct configs at `resolutions`, the policies of `policies(space, quantize)` taking turns, none whose
    JSON is in `exclude`, all passing `supported(list_of_configs) -> bool array` when given.

    Random architectures by default. With `spread_by` (e.g. a table's uncalibrated prediction), each policy's
    configs are picked from `pool` random candidates at evenly spaced quantiles of that value, so a calibration
    sees the smallest and the largest subnets as well as the middle. A policy the device cannot run (no
    supported config found) gives its turns to the others."""
    rng = np.random.default_rng(seed)
    res = sorted(resolutions)
    seen = set(exclude)
    pols = policies(space, quantize)
    pairs = _runnable_pairs(space, rng, supported, res[0]) if quantize else [(32, 32)]

    def draw(policy: str, k: int) -> list[SubnetConfig]:
        got: list[SubnetConfig] = []
        for _ in range(max_tries * max(k, 1)):
            if len(got) == k:
                break
            c = space.sample(rng, quantize=False).replace(resolution=res[int(rng.integers(len(res)))])
            if policy == MIXED:
                bits = [pairs[i] for i in rng.integers(0, len(pairs), c.n_blocks)]
                c = c.replace(weight_bits=tuple(b[0] for b in bits), act_bits=tuple(b[1] for b in bits))
            else:
                c = with_policy(c, policy)
            j = c.to_json()
            if j in seen or (supported is not None and not bool(supported([c])[0])):
                continue
            seen.add(j)
            got.append(c)
        return got

    def pick(policy: str, k: int) -> list[SubnetConfig]:
        if spread_by is None or k == 0:
            return draw(policy, k)
        cands = draw(policy, max(pool, k))
        if len(cands) <= k:
            return cands
        order = np.argsort(spread_by(cands), kind="stable")
        picks = {int(order[round(q)]) for q in np.linspace(0, len(cands) - 1, k)}
        seen.difference_update(cands[i].to_json() for i in range(len(cands)) if i not in picks)
        return [cands[i] for i in sorted(picks)]

    share = {p: n // len(pols) + (i < n % len(pols)) for i, p in enumerate(pols)}
    out = {p: pick(p, share[p]) for p in pols}
    for p in pols:  # turns a policy the device cannot run go to those it can
        missing = n - sum(len(v) for v in out.values())
        if missing > 0 and len(out[p]) == share[p]:
            out[p] += pick(p, missing)
    # round-robin over the policies, so a prefix of the list (and a chunk measured together) mixes them
    longest = max((len(v) for v in out.values()), default=0)
    return [out[p][i] for i in range(longest) for p in pols if i < len(out[p])]


def _runnable_pairs(space: SearchSpace, rng: np.random.Generator, supported,
                    resolution: int) -> list[tuple[int, int]]:
    """The (weight, activation) bit pairs the device runs, judged on one architecture at each uniform pair, so
    mixed subnets mix only what the device can run (a TensorRT table has no 4-bit convolutions)."""
    if supported is None:
        return list(space.bit_pairs)
    base = space.sample(rng, quantize=False).replace(resolution=resolution)
    ok = [p for p in space.bit_pairs if bool(supported([base.with_bits(*p)])[0])]
    return ok or [(32, 32)]
