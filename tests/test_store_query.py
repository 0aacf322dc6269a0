"""Results store and budget queries: answers checked against a brute-force scan of the same entries."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import nas
from nas.cli.main import cli
from nas.front import FrontEntry
from nas.lookup import query
from nas.query_config import QueryConfig
from nas.store import ResultsStore, fingerprint_hash
from search_spaces import InputError, get_space

SPACE = "mbv3-tiny"
FP = {"backend": "ort-cpu", "device": "test-cpu", "threads": 1}


def make_entries(n: int, seed: int) -> list[FrontEntry]:
    """Entries with metrics that trade off like a front (faster/smaller = less accurate) plus noise."""
    sp = get_space(SPACE)
    rng = np.random.default_rng(seed)
    configs = sp.sample_many(min(n, 64), seed)
    out = []
    for i in range(n):
        lat = float(rng.uniform(0.2, 5.0))
        size = int(rng.integers(50_000, 2_000_000))
        acc = float(np.clip(60 + 6 * math.log(lat) + 4 * math.log(size / 5e4) + rng.normal(0, 2), 0, 100))
        out.append(FrontEntry(configs[i % len(configs)], acc, lat, size, int(rng.integers(1e6, 1e8)), trial=i))
    return out


def brute_force(entries: list[FrontEntry], latency_ms=None, size_mb=None, min_accuracy=None, objective="accuracy"):
    ok = [e for e in entries
          if (latency_ms is None or e.latency_ms <= latency_ms)
          and (size_mb is None or e.size_bytes <= size_mb * 1e6)
          and (min_accuracy is None or e.accuracy >= min_accuracy)]
    if not ok:
        return None
    key = {"accuracy": lambda e: (-e.accuracy, e.latency_ms, e.size_bytes),
           "latency": lambda e: (e.latency_ms, -e.accuracy, e.size_bytes),
           "size": lambda e: (e.size_bytes, -e.accuracy, e.latency_ms)}[objective]
    return min(ok, key=key)


@pytest.fixture
def filled(tmp_path):
    entries = make_entries(400, seed=1)
    store = ResultsStore(tmp_path / "results.db")
    fid = store.add_front(entries, space=SPACE, device_tag="test-cpu", device_fingerprint=FP, dataset="digits",
                          predictor="mlp-v1", table_fingerprint={"table": "t1"}, source={"study": "s1"})
    # another device's front must never leak into test-cpu answers
    store.add_front(make_entries(50, seed=2), space=SPACE, device_tag="other-gpu", device_fingerprint="gpu-fp",
                    dataset="digits", predictor="mlp-v1")
    yield store, entries, fid
    store.close()


def test_roundtrip_and_provenance(filled):
    store, entries, fid = filled
    assert store.count() == 450
    assert store.entries(fid) == entries  # configs, metrics, trial numbers survive JSON
    info = store.front(fid)
    assert (info.space, info.device_tag, info.dataset, info.predictor) == (SPACE, "test-cpu", "digits", "mlp-v1")
    assert info.device_fingerprint == fingerprint_hash(FP) and info.device_fingerprint_full == FP
    assert info.source == {"study": "s1"} and info.n_entries == 400


def test_feasible_queries_match_brute_force(filled):
    store, entries, fid = filled
    rng = np.random.default_rng(7)
    for i in range(60):
        budgets = {"latency_ms": float(rng.uniform(0.3, 5)) if i % 3 != 0 else None,
                   "size_mb": float(rng.uniform(0.1, 2)) if i % 3 != 1 else None,
                   "min_accuracy": float(rng.uniform(50, 80)) if i % 4 == 0 else None}
        objective = ("accuracy", "latency", "size")[i % 3]
        want = brute_force(entries, objective=objective, **budgets)
        r = query(QueryConfig(store=store, space=SPACE, device="test-cpu", objective=objective, **budgets))
        if want is None:
            assert not r.found and r.best is None
            continue
        assert r.found, r.message
        assert r.best.entry == want
        assert r.best.front.id == fid and r.best.front.device_tag == "test-cpu"
        assert r.n_entries == 400
        assert r.n_feasible == sum(1 for e in entries
                                   if (budgets["latency_ms"] is None or e.latency_ms <= budgets["latency_ms"])
                                   and (budgets["size_mb"] is None or e.size_bytes <= budgets["size_mb"] * 1e6)
                                   and (budgets["min_accuracy"] is None or e.accuracy >= budgets["min_accuracy"]))


def test_nothing_meets_the_budgets(filled):
    store, entries, _ = filled
    r = nas.query(nas.QueryConfig(store=store, space=SPACE, device="test-cpu", latency_ms=0.05, size_mb=0.01))
    assert not r.found and r.best is None and r.n_feasible == 0
    assert r.message.startswith("nothing meets these budgets")
    assert len(r.closest) == 3
    scores = []
    for c in r.closest:  # every candidate really misses, and they come nearest-first
        assert set(c.violations) == {"latency_ms", "size_mb"}
        assert c.violations["latency_ms"]["value"] == c.entry.latency_ms > 0.05
        scores.append(c.entry.latency_ms / 0.05 - 1 + c.entry.size_bytes / 1e4 - 1)
    assert scores == sorted(scores)
    best_possible = min(e.latency_ms / 0.05 - 1 + e.size_bytes / 1e4 - 1 for e in entries)
    assert scores[0] == pytest.approx(best_possible)
    d = r.to_dict()
    assert d["found"] is False and len(d["closest"]) == 3 and json.dumps(d)


def test_new_front_is_seen_by_the_next_query(filled):
    store, entries, _ = filled
    before = query(QueryConfig(store=store, space=SPACE, device="test-cpu", latency_ms=1.0))
    better = FrontEntry(entries[0].config, 99.9, 0.5, 60_000, 1_000_000)
    store.add_front([better], space=SPACE, device_tag="test-cpu", device_fingerprint=FP, dataset="digits",
                    predictor="mlp-v2")
    after = query(QueryConfig(store=store, space=SPACE, device="test-cpu", latency_ms=1.0))
    assert before.best.entry != better and after.best.entry == better and after.best.front.predictor == "mlp-v2"
    again = query(QueryConfig(store=store, space=SPACE, device="test-cpu", latency_ms=1.0, predictor="mlp-v1"))
    assert again.best.entry == before.best.entry
    # one front by its id: the same predictor's later front (a stage run again) does not answer for it
    first = before.best.front.id
    later = store.add_front([better], space=SPACE, device_tag="test-cpu", device_fingerprint=FP, dataset="digits",
                            predictor="mlp-v1")
    only = query(QueryConfig(store=store, space=SPACE, device="test-cpu", latency_ms=1.0, front_id=first))
    assert only.best.entry == before.best.entry and only.best.front.id == first != later
    with pytest.raises(InputError, match=r"front_id: got 999, allowed: one of \["):
        query(QueryConfig(store=store, space=SPACE, device="test-cpu", latency_ms=1.0, front_id=999))


def test_several_datasets_need_a_choice(filled):
    store, _, _ = filled
    e = make_entries(5, seed=3)
    store.add_front(e, space=SPACE, device_tag="test-cpu", device_fingerprint=FP, dataset="mnist-5k", predictor="p")
    with pytest.raises(InputError, match=r"dataset: not given.*digits, mnist-5k"):
        query(QueryConfig(store=store, space=SPACE, device="test-cpu"))
    r = query(QueryConfig(store=store, space=SPACE, device="test-cpu", dataset="mnist-5k"))
    assert r.found and r.n_entries == 5 and r.best.entry == brute_force(e)


@pytest.mark.parametrize("kwargs, match", [
    ({"space": "resnet"}, r"^space: got 'resnet', allowed: one of \{mbv3-tiny\}$"),
    ({"device": "jetson"}, r"^device: got 'jetson', allowed: one of \{other-gpu, test-cpu\}$"),
    ({"latency_ms": -1.0}, r"^latency_ms: got -1.0, allowed: a positive number"),
    ({"latency_ms": 0}, r"^latency_ms: got 0, allowed: a positive number"),
    ({"size_mb": float("nan")}, r"^size_mb: got nan"),
    ({"min_accuracy": 101}, r"^min_accuracy: got 101, allowed: a number in \[0, 100\]"),
    ({"objective": "speed"}, r"^objective: got 'speed', allowed: one of \{accuracy, latency, size\}$"),
    ({"dataset": "cifar"}, r"^dataset: got 'cifar', allowed: one of \{digits\}$"),
    ({"latency_ms": "5"}, r"^latency_ms: got '5', allowed: a number"),
])
def test_bad_queries_name_field_value_and_allowed(filled, kwargs, match):
    store, _, _ = filled
    args = {"space": SPACE, "device": "test-cpu", **kwargs}
    with pytest.raises(InputError, match=match):
        query(QueryConfig(store=store, **args))


def test_store_errors(tmp_path):
    with pytest.raises(InputError, match="store: got .*allowed: an existing results store"):
        ResultsStore(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    empty = ResultsStore(tmp_path / "empty.db")
    with pytest.raises(InputError, match="space: got 'mbv3-tiny', allowed: none -- the store holds no fronts"):
        query(QueryConfig(store=empty, space=SPACE, device="x"))
    with pytest.raises(InputError, match="entries: got an empty front"):
        empty.add_front([], space=SPACE, device_tag="d", device_fingerprint="f", dataset="digits", predictor="p")
    e = make_entries(1, 0)
    with pytest.raises(InputError, match=r"entries\[0\].config.space: got 'mbv3-tiny', allowed: 'mbv3'"):
        empty.add_front(e, space="mbv3", device_tag="d", device_fingerprint="f", dataset="digits", predictor="p")
    with pytest.raises(InputError, match="device_tag: got ''"):
        empty.add_front(e, space=SPACE, device_tag="", device_fingerprint="f", dataset="digits", predictor="p")
    assert empty.count() == 0 and empty.revision() == 0  # nothing half-written


def test_cli_query(filled, tmp_path):
    store, entries, _ = filled
    url = store.url
    runner = CliRunner()
    res = runner.invoke(cli, ["query", "--store", url, "--space", SPACE, "--device", "test-cpu", "--latency-ms", "2",
                              "--size-mb", "1", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    want = brute_force(entries, latency_ms=2, size_mb=1)
    assert d["found"] and d["best"]["config"] == want.config.to_dict() and d["best"]["accuracy"] == want.accuracy
    assert d["best"]["provenance"]["device_tag"] == "test-cpu" and d["best"]["provenance"]["dataset"] == "digits"

    res = runner.invoke(cli, ["query", "--store", url, "--space", SPACE, "--device", "test-cpu", "--latency-ms",
                              "0.01", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["found"] is False

    res = runner.invoke(cli, ["query", "--store", url, "--space", SPACE, "--device", "nope", "--json"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == ["error: --device: got 'nope', allowed: one of {other-gpu, test-cpu}"]

    res = runner.invoke(cli, ["query", "--store", url, "--space", SPACE, "--device", "test-cpu", "--size-mb", "-3"])
    assert res.exit_code == 2 and "--size-mb: got -3.0, allowed: a positive number" in res.output

    res = runner.invoke(cli, ["query", "--store", str(tmp_path / "none.db"), "--space", SPACE, "--device", "x"])
    assert res.exit_code == 2 and "allowed: an existing results store" in res.output
