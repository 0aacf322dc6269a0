"""A table corrected around subnets timed whole (`LatencyTable.with_correction`): near a timed subnet its
prediction moves to the timing, far from every one by their mean residual; the correction survives the file and
a damaged one is refused in one line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_search import SPACE, make_table  # noqa: E402

from latency_tables import LatencyTable  # noqa: E402
from search_spaces import InputError, get_space  # noqa: E402


def _sample(n: int, seed: int, quantize: bool = True) -> list:
    """`n` random subnets float, w8a8 and w4a8 in turn (`quantize`; else all float): ones the table can run (it
    marks 4-bit weights with float activations unsupported)."""
    bits = [(32, 32), (8, 8), (4, 8)] if quantize else [(32, 32)]
    configs = get_space(SPACE).sample_many(n, seed, quantize=False)
    return [c.with_bits(*bits[i % len(bits)]) for i, c in enumerate(configs)]


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> LatencyTable:
    return LatencyTable.load(make_table(tmp_path_factory.mktemp("lc") / "table.json"))


def _changed(config, i: int):
    """`config` with block i's kernel changed: one choice apart."""
    return config.replace(kernel=tuple(k if j != i else (3 if k != 3 else 5) for j, k in enumerate(config.kernel)))


def test_timed_subnets_and_their_neighbours_move_the_rest_by_the_mean(table, tmp_path) -> None:
    """Picks the table under-predicts by 8-22 % (a search's winner's curse): after the correction each is within
    the timing's noise of its timing, a neighbour one choice away moves most of the way, and random subnets move
    by the picks' mean residual, shrunk by its uncertainty."""
    sp = get_space(SPACE)
    picks = _sample(6, 1)
    before = table.predict(picks)
    slower = np.array([1.08, 1.22, 1.15, 1.10, 1.20, 1.15])
    fixed = table.with_correction(picks, slower * before, seed=0)
    np.testing.assert_allclose(fixed.predict(picks) / before, slower, rtol=0.04)
    near = [_changed(c, 0) for c in picks]
    ratio = fixed.predict(near) / table.predict(near)
    assert np.all(ratio > 1.07), ratio
    far = _sample(40, 99)
    shift = fixed.predict(far) / table.predict(far)
    mean = fixed.correction.summary()["mean"]
    assert 8 < mean < 15.5 and np.allclose(shift, np.exp(mean / 100), rtol=0.02), (mean, shift)
    np.testing.assert_allclose(fixed.predict(picks, corrected=False), before)
    np.testing.assert_allclose(fixed.predict(picks, calibrated=False), table.predict(picks, calibrated=False))
    assert table.correction is None  # the original is untouched
    summary = fixed.correction.summary()
    assert summary["timed"] == 6 and summary["mean_error_pct"] == pytest.approx(100 * (slower.mean() - 1), abs=0.01)

    path = tmp_path / "corrected.json"
    fixed.save(path)
    again = LatencyTable.load(path)
    np.testing.assert_allclose(again.predict(picks + far), fixed.predict(picks + far))
    assert len(json.loads(path.read_text())["correction"]["timed"]) == 6


def test_noisy_timings_are_shrunk_not_taken_at_their_word(table) -> None:
    """Six near-equal subnets (one choice apart) timed with 4 % noise around the table's figure: the corrected
    figures spread less than the timings do (a search would keep the luckiest)."""
    base = _sample(1, 3, quantize=False)[0]
    group = [base] + [_changed(base, i) for i in range(5)]
    pred = table.predict(group)
    timed = pred * np.random.default_rng(0).normal(1.0, 0.04, len(group))
    fixed = table.with_correction(group, timed, seed=0)
    assert np.std(np.log(fixed.predict(group) / pred)) < 0.8 * np.std(np.log(timed / pred))


def test_bad_timings_and_damaged_corrections_are_one_line(table, tmp_path) -> None:
    sp = get_space(SPACE)
    picks = _sample(3, 2, quantize=False)
    with pytest.raises(InputError, match=r"measured_ms\[1\]: got 0.0"):
        table.with_correction(picks, [1.0, 0.0, 1.0])
    with pytest.raises(InputError, match="one timing per config"):
        table.with_correction(picks, [1.0, 1.0])
    d = table.with_correction(picks, 1.1 * table.predict(picks)).to_dict()
    d["correction"]["x"][0] = [10 ** 6]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(InputError, match="correction.x.0.: feature indices outside") as e:
        LatencyTable.load(path)
    assert "\n" not in str(e.value)
    d = table.with_correction(picks, 1.1 * table.predict(picks)).to_dict()
    d["correction"]["timed"][1]["measured_ms"] = float("nan")
    path.write_text(json.dumps(d))
    with pytest.raises(InputError, match=r"correction.timed\[1\]: measured_ms nan"):
        LatencyTable.load(path)
