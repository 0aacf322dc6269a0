"""Calibration is applied only when it predicts held-out subnets better than the plain block sum (leave-one-out
on the calibration subnets), and calibration / validation subnets cover float, uniform and mixed policies."""
from __future__ import annotations

import json

import numpy as np
import pytest

from latency_tables.calibration import Calibration, cross_validated_mape, select
from latency_tables.sampling import policies, policy_of, sample_configs
from search_spaces import get_space
from search_spaces.errors import InputError

OVERHEAD = 0.005


def _sums(n: int, seed: int) -> np.ndarray:
    """(n, 3) overhead-corrected block sums per weight-bit group, 0.3-3 ms in total: small to large subnets."""
    rng = np.random.default_rng(seed)
    total = np.linspace(0.3, 3.0, n)
    share = rng.dirichlet([2.0, 2.0, 2.0], n)
    return total[:, None] * share


def test_calibration_that_helps_is_applied() -> None:
    """Whole models 12 % slower than their block sums (cross-block effects): scaling predicts held-out subnets
    better, so it is chosen and the table's prediction is corrected."""
    x = _sums(12, 0)
    y = 1.12 * x.sum(axis=1) * np.random.default_rng(1).normal(1.0, 0.01, 12)
    cal = select(x, y, OVERHEAD)
    cv = cal.fitted_on["selection"]["cv_mape"]
    assert cal.applied and cal.method == "scale"
    assert cv["scale"] < 0.5 * cv["none"] and cv["none"] > 0.09
    assert cal.params["b"] == pytest.approx(1.12, abs=0.02)
    assert np.mean(np.abs(cal.apply(x) - y) / y) < 0.02


def test_calibration_that_hurts_is_skipped() -> None:
    """The block sum is right and only noise differs. Every fitted correction matches its own subnets at least as
    well (in-sample), but predicts held-out ones worse: leave-one-out keeps the plain sum."""
    x = _sums(8, 2)
    noise = np.array([1.04, 0.97, 1.05, 0.96, 1.03, 0.95, 1.05, 0.98])  # +-5 % timing noise, no trend
    y = (OVERHEAD + x.sum(axis=1)) * noise
    cal = select(x, y, OVERHEAD)
    cv = cal.fitted_on["selection"]["cv_mape"]
    assert not cal.applied and cal.method == "none" and set(cv) == {"none", "scale", "affine", "per-bits"}
    for method in ("affine", "per-bits"):
        in_sample = Calibration.fit(x, y, method, overhead_ms=OVERHEAD).fitted_on["mape_after"]
        assert in_sample <= cv["none"] < cv[method]  # looks better on its own subnets, is worse on others
    np.testing.assert_allclose(cal.apply(x), OVERHEAD + x.sum(axis=1))  # predictions: the plain sum
    assert cross_validated_mape(x, y, "none", OVERHEAD) == pytest.approx(cv["none"])


def test_selection_prefers_the_simpler_candidate_on_a_near_tie_and_can_be_forced() -> None:
    x = _sums(10, 3)
    y = 1.1 * x.sum(axis=1) * np.random.default_rng(4).normal(1.0, 0.002, 10)  # scale is exact up to noise
    cal = select(x, y, OVERHEAD)
    assert cal.method == "scale"  # affine and per-bits fit as well, but are not simpler
    forced = select(x, y, OVERHEAD, force="affine")
    assert forced.method == "affine" and forced.fitted_on["selection"]["chosen"] == "scale"
    again = Calibration.from_dict(json.loads(json.dumps(forced.to_dict())))
    np.testing.assert_allclose(again.apply(x), forced.apply(x))
    with pytest.raises(InputError, match="calibration method: got 'cubic'"):
        select(x, y, OVERHEAD, force="cubic")
    few = select(x[:3], y[:3], OVERHEAD)  # too few subnets for the others' leave-one-out fits
    assert set(few.fitted_on["selection"]["cv_mape"]) == {"none", "scale"}


def test_per_bits_absorbs_a_mismeasured_4bit_penalty() -> None:
    """Isolated 4-bit blocks 10 % slower than they are inside a whole model: one slope per weight bit-width
    fixes that, a single scale cannot."""
    x = _sums(16, 5)
    y = x[:, 0] + x[:, 1] + x[:, 2] / 1.10
    cal = select(x, y, OVERHEAD)
    cv = cal.fitted_on["selection"]["cv_mape"]
    assert cal.method == "per-bits" and cv["per-bits"] < 0.5 * min(cv["none"], cv["scale"])
    assert cal.params["b_w4"] == pytest.approx(1 / 1.10, rel=0.02)


def test_sampled_subnets_cover_float_uniform_and_mixed_policies() -> None:
    sp = get_space("mbv3-tiny")
    assert policies(sp) == ["float", "w8a8", "w4a8", "mixed"] and policies(sp, quantize=False) == ["float"]
    cfgs = sample_configs(sp, 10, seed=0, resolutions=[24, 32])
    assert [policy_of(c) for c in cfgs[:4]] == ["float", "w8a8", "w4a8", "mixed"]  # round-robin: any prefix mixes
    assert sorted(policy_of(c) for c in cfgs).count("float") == 3 and len({c.to_json() for c in cfgs}) == 10
    held = sample_configs(sp, 8, seed=1, resolutions=[32], exclude={c.to_json() for c in cfgs})
    assert not {c.to_json() for c in held} & {c.to_json() for c in cfgs}
    # spread over sizes: with a size measure the picks include the pool's smallest and largest
    size = lambda cs: np.array([sp.profile(c).macs for c in cs], dtype=float)  # noqa: E731
    spread = sample_configs(sp, 8, seed=2, resolutions=[32], spread_by=size, pool=40)
    rand = sample_configs(sp, 8, seed=2, resolutions=[32])
    floats = [c for c in spread if policy_of(c) == "float"]
    assert np.ptp(size(floats)) > np.ptp(size([c for c in rand if policy_of(c) == "float"]))
    # a policy the device cannot run gives its turns to the others
    no_w4 = lambda cs: np.array([4 not in c.weight_bits for c in cs])  # noqa: E731
    cfgs = sample_configs(sp, 8, seed=3, resolutions=[32], supported=no_w4)
    assert len(cfgs) == 8 and "w4a8" not in {policy_of(c) for c in cfgs}


def test_cpu_clock_ignores_time_the_thread_does_not_run() -> None:
    """ort-cpu at one thread times runs by the thread's CPU time: waiting for a core (here: sleeping) does not
    count; other backends and thread counts, and tables written before the clock existed, use wall time."""
    import time

    from latency_tables import Protocol, get_backend
    from latency_tables.backends.base import _measure_interleaved

    assert get_backend("ort-cpu").clock(Protocol()) is time.thread_time_ns
    assert get_backend("ort-cpu", threads=2).clock(Protocol()) is time.perf_counter_ns
    assert get_backend("ort-cpu").clock(Protocol(clock="wall")) is time.perf_counter_ns
    old = {k: v for k, v in Protocol().to_dict().items() if k != "clock"}
    assert Protocol.from_dict(old).clock == "wall"
    with pytest.raises(InputError, match="protocol.clock: got 'gps'"):
        Protocol(clock="gps")
    proto = Protocol(warmup=0, repeats=3, rounds=1)
    waits = [lambda: time.sleep(0.005)]
    cpu = _measure_interleaved(waits, None, proto, time.thread_time_ns)[0]
    wall = _measure_interleaved(waits, None, proto, time.perf_counter_ns)[0]
    assert wall.median_ms >= 5.0 and cpu.median_ms < 1.0


def test_a_cost_per_block_is_found_when_whole_models_pay_one() -> None:
    """Whole models that pay 0.012 ms per block beyond their overhead-corrected sum (the error grows with the
    number of blocks, not with their size: what an Intel host showed): `per-block` is chosen, recovers the cost, and
    survives a JSON round trip; without the block counts it is no candidate, and applying it needs them."""
    x = _sums(12, 3)
    n = np.array([14, 23, 18, 16, 21, 17, 22, 15, 19, 20, 14, 23], dtype=float)
    y = (x.sum(axis=1) - 0.15 + 0.012 * n) * np.random.default_rng(4).normal(1.0, 0.005, 12)
    cal = select(x, y, OVERHEAD, n_blocks=n)
    cv = cal.fitted_on["selection"]["cv_mape"]
    assert cal.method == "per-block", cv
    assert cal.params["c"] == pytest.approx(0.012, abs=0.003) and cal.params["a"] == pytest.approx(-0.15, abs=0.06)
    assert cv["per-block"] < 0.5 * min(cv["none"], cv["scale"], cv["affine"])
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_allclose(again.apply(x, n), cal.apply(x, n))
    assert "per-block" not in select(x, y, OVERHEAD).fitted_on["selection"]["cv_mape"]
    with pytest.raises(ValueError, match="block counts"):
        cal.apply(x)


def test_a_cost_per_weight_is_found_when_whole_models_read_their_weights() -> None:
    """Whole models that pay 0.25 ms per million parameters beyond their block sum (a block timed alone keeps its
    weights in cache; a whole model reads them all once per inference), with parameter counts that do not follow
    the block sum: `weights` is chosen and recovers the cost; without the counts it is no candidate, applying it
    needs them, and a fit whose weight slope comes out negative (noise) falls back to `affine`."""
    x = _sums(16, 6)
    w = np.random.default_rng(7).uniform(0.15, 0.6, 16)
    y = (0.02 + 1.05 * x.sum(axis=1) + 0.25 * w) * np.random.default_rng(8).normal(1.0, 0.005, 16)
    cal = select(x, y, OVERHEAD, weights_m=w)
    cv = cal.fitted_on["selection"]["cv_mape"]
    assert cal.method == "weights", cv
    assert cal.params["d"] == pytest.approx(0.25, abs=0.04) and cal.params["b"] == pytest.approx(1.05, abs=0.03)
    assert cv["weights"] < 0.5 * min(cv["none"], cv["scale"], cv["affine"])
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_allclose(again.apply(x, weights_m=w), cal.apply(x, weights_m=w))
    assert "weights" not in select(x, y, OVERHEAD).fitted_on["selection"]["cv_mape"]
    with pytest.raises(ValueError, match="parameter counts"):
        cal.apply(x)
    lighter = 1.05 * x.sum(axis=1) + 0.3 - 0.25 * w  # more weights, faster: not physics
    fell = Calibration.fit(x, lighter, "weights", weights_m=w)
    assert fell.method == "affine" and "d < 0" in fell.fitted_on["note"]
    with pytest.raises(InputError, match="calibration.params.d"):
        Calibration.from_dict({"method": "weights", "params": {"a": 0.0, "b": 1.0, "d": -0.1}})
