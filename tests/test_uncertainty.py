"""Predicted accuracy with a stated confidence: conformal margins, lower bounds through the predictor, the front,
the store (including a store written before the bound existed) and query, and the holdout-verified choice."""
from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from nas.front import CONFIDENCE, FrontEntry, with_lower_bounds
from nas.lookup import query
from nas.query_config import QueryConfig
from nas.pipeline.stages import verified_choice
from nas.experiment import Budget
from nas.store import ResultsStore
from predictors import FitConfig, fit_predictor, load_accuracy_dataset, load_predictor
from predictors.uncertainty import Margins, conformal_margin
from search_spaces import InputError, get_space
from tests.test_predictors import _write_dataset

SPACE = "mbv3-tiny"


def test_conformal_margin_covers_at_its_confidence():
    """Over many draws, a new residual exceeds the margin of n earlier ones at most 1 - c of the time."""
    rng = np.random.default_rng(0)
    for n, c in ((40, 0.9), (200, 0.8)):
        misses = 0
        trials = 2000
        for _ in range(trials):
            r = rng.standard_t(4, n + 1)  # heavy-tailed: nothing assumes normal errors
            misses += r[-1] > conformal_margin(r[:-1], c)
        assert misses / trials <= 1 - c + 0.02, (n, c, misses / trials)
        assert misses / trials >= 1 - c - 0.06  # and it is not vacuously wide
    assert conformal_margin([0.1, 0.2], 0.9) == float("inf")  # 2 residuals cannot promise 90 %
    with pytest.raises(InputError, match="confidence"):
        conformal_margin([1.0], 1.5)


def test_margins_per_role_pool_when_few_and_round_trip():
    m = Margins({"fp": list(np.linspace(-1, 1, 50)), "qa": [5.0] * 5})
    assert m.margin("fp", 0.9) == pytest.approx(np.sort(np.linspace(-1, 1, 50))[45])
    pooled = m.for_role("qa")  # 5 quantized residuals: too few alone, so all 55 together
    assert len(pooled) == 55
    assert Margins.from_dict(m.to_dict()).margin("qa", 0.9) == m.margin("qa", 0.9)
    with pytest.raises(InputError, match="uncertainty.residuals.xx"):
        Margins.from_dict({"residuals": {"xx": [1.0]}})


def test_fitted_predictor_bounds_survive_save_and_hold_on_held_out(tmp_path):
    space = get_space(SPACE)
    p = tmp_path / "acc.jsonl"
    _write_dataset(p, space, 200, 120)
    ds = load_accuracy_dataset(p)
    bundle, report = fit_predictor(FitConfig(dataset=ds, kind="ridge", seed=0, test_fraction=0.3))
    assert set(report["margin_90"]) == {"fp", "qa"} and all(v > 0 for v in report["margin_90"].values())
    bundle.save(tmp_path / "pred")
    loaded = load_predictor(tmp_path / "pred")
    configs = [ds.configs[i] for i in range(len(ds))]
    lower = loaded.lower_bound(configs, 0.9)
    pred = loaded.predict(configs)
    assert np.all(lower < pred)
    gap = pred - lower
    q = np.array([c.is_quantized for c in configs])
    assert np.allclose(gap[~q], report["margin_90"]["fp"], atol=1e-3)
    assert np.allclose(gap[q], report["margin_90"]["qa"], atol=1e-3)
    # fresh synthetic subnets, labelled the same way: the bound holds for about 90 % of them
    from predictors.synthetic import synthetic_accuracy

    fresh = space.sample_many(300, 99, quantize=False)
    y = synthetic_accuracy(space, fresh, noise=0.1)
    assert np.mean(y >= loaded.lower_bound(fresh, 0.9)) >= 0.85


def _entries(n: int = 30) -> list[FrontEntry]:
    sp = get_space(SPACE)
    cs = sp.sample_many(n, 3, quantize=False)
    return [FrontEntry(c, accuracy=90.0 + i * 0.2, latency_ms=0.1 + 0.01 * i, size_bytes=1000 + i, macs=1,
                       accuracy_lower=88.0 + i * 0.1) for i, c in enumerate(cs)]


def test_min_accuracy_is_met_on_the_lower_bound(tmp_path):
    entries = _entries()
    with ResultsStore(tmp_path / "r.db") as st:
        st.add_front(entries, space=SPACE, device_tag="d", device_fingerprint="fp", dataset="x", predictor="p")
        q = query(QueryConfig(store=st, space=SPACE, device="d", min_accuracy=90.0, objective="latency",
                              n_ranked=3))
        # predicted >= 90 for all; the lower bound 88 + 0.1 i >= 90 only from i = 20
        assert q.found and q.best.entry.accuracy_lower == pytest.approx(90.0)
        assert f"{CONFIDENCE:.0%} confidence" in q.message
        assert [c.entry.accuracy_lower for c in q.ranked] == pytest.approx([90.0, 90.1, 90.2])
        none = query(QueryConfig(store=st, space=SPACE, device="d", min_accuracy=95.0))
        assert not none.found and none.closest[0].violations["min_accuracy"]["value"] == pytest.approx(90.9)
        assert st.entries(1)[5].accuracy_lower == pytest.approx(88.5)


def test_store_written_before_lower_bounds_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    with ResultsStore(path) as st:
        st.add_front(_entries(5), space=SPACE, device_tag="d", device_fingerprint="fp", dataset="x", predictor="p")
    eng = sa.create_engine(f"sqlite:///{path}")
    with eng.begin() as conn:  # make it a v1 store: no column, version 1
        conn.execute(sa.text("ALTER TABLE hwnas_entries DROP COLUMN accuracy_lower"))
        conn.execute(sa.text("UPDATE hwnas_revision SET schema_version = 1"))
    eng.dispose()
    with ResultsStore(path, create=False) as st:
        e = st.entries(1)[0]
        assert e.accuracy_lower is None and e.accuracy_for_budget == e.accuracy
        fast = query(QueryConfig(store=st, space=SPACE, device="d", min_accuracy=90.5, objective="latency"))
        assert fast.best.entry.accuracy == pytest.approx(90.6)


def test_with_lower_bounds_uses_the_predictor_or_leaves_entries_alone(tmp_path):
    space = get_space(SPACE)
    p = tmp_path / "acc.jsonl"
    _write_dataset(p, space, 120, 40)
    bundle, _ = fit_predictor(FitConfig(dataset=load_accuracy_dataset(p), kind="ridge", seed=0))
    plain = [FrontEntry(c, 90.0, 1.0, 1, 1) for c in space.sample_many(4, 1)]
    bounded = with_lower_bounds(plain, bundle)
    assert all(b.accuracy_lower is not None and b.accuracy_lower < bundle.predict([b.config])[0] for b in bounded)
    assert with_lower_bounds(plain, object()) == plain


def test_verified_choice_exports_the_best_checked_candidate_that_meets_the_budget(tmp_path):
    entries = _entries()
    with ResultsStore(tmp_path / "r.db") as st:
        st.add_front(entries, space=SPACE, device_tag="d", device_fingerprint="fp", dataset="x", predictor="p")
        q = query(QueryConfig(store=st, space=SPACE, device="d", min_accuracy=90.0, n_ranked=5))
    holdout = (89.0, 89.5, 92.0, 91.0, 92.0)
    measured = {c.entry.config: a for c, a in zip(q.ranked, holdout)}
    chosen, checked = verified_choice(q, Budget(min_accuracy=90.0), measured.__getitem__)
    # every candidate is checked; of the two at 92.0 the better predicted (earlier ranked) one is exported
    assert [c["holdout"] for c in checked] == list(holdout) and chosen is q.ranked[2]
    assert [c["entry_id"] for c in checked] == [c.entry_id for c in q.ranked]
    nothing, checked = verified_choice(q, Budget(min_accuracy=99.0), measured.__getitem__)
    assert nothing is None and len(checked) == 5
    # no min_accuracy: the most accurate as checked, although the query ranks it third
    assert verified_choice(q, Budget(latency_ms=1.0), measured.__getitem__)[0] is q.ranked[2]
    # checks the predictor learnt rank by its figure (their checks shrunk), the others by the check: the first
    # candidate's prediction beats the unlearnt 92.0 checks, although its own check is the lowest
    learnt = {q.ranked[0].entry.config, q.ranked[1].entry.config}
    chosen, checked = verified_choice(q, Budget(latency_ms=1.0), measured.__getitem__, learnt)
    assert [c["ranked_by"] for c in checked] == ["predicted"] * 2 + ["holdout"] * 3
    assert q.ranked[0].entry.accuracy > 92.0 and chosen is q.ranked[0]
    # and min_accuracy is met as checked, whatever ranks
    chosen, _ = verified_choice(q, Budget(min_accuracy=90.0), measured.__getitem__, learnt)
    assert chosen is q.ranked[2]
