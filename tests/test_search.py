"""The joint search (issue 5): encodings, exact vectorised profiles, journal writes, end-to-end predicted search,
resume, budgets, CLI errors. Ray workers: tests/test_search_workers.py."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from search_spaces import InputError, SubnetConfig, get_space
from search_spaces.profile import block_counts

SPACE = "mbv3-tiny"


# ---- assets: a real latency table file and a real predictor directory (synthetic numbers) ----------------
def make_table(path: Path, space_name: str = SPACE) -> Path:
    """A latency table in the real file format; block latency from MACs and bits; 4-bit weights with float
    activations marked unsupported (so the `supported` constraint is exercised)."""
    from latency_tables.table import LatencyTable

    sp = get_space(space_name)
    specs = sp.all_block_specs()
    t = LatencyTable(space=space_name, device_tag="synthetic-test", backend="ort-cpu",
                     fingerprint={"device": "synthetic", "note": "test table: latency from MACs"},
                     protocol={}, resolutions=list(sp.spec.resolutions), expected_keys=len(specs))
    for b in specs:
        c = block_counts(b, sp.spec)
        speed = {32: 1.0, 8: 0.7, 4: 0.55}[b.weight_bits] * (0.9 if b.act_bits == 8 else 1.0)
        ms = 0.004 + c.macs * 2e-8 * speed
        if b.weight_bits == 4 and b.act_bits == 32:
            t.mark_unsupported(b.key, "synthetic: no int4 kernel with float activations")
        else:
            t.set_entry(b.key, ms, ms * 0.05, 5)
    t.save(path)
    return path


def make_predictor(directory: Path, space_name: str = SPACE, n: int = 300, seed: int = 0) -> Path:
    from predictors.bundle import FitConfig, fit_predictor
    from predictors.synthetic import synthetic_dataset

    pred, _ = fit_predictor(FitConfig(dataset=synthetic_dataset(get_space(space_name), n, seed), kind="mlp",
                                      seed=seed))
    pred.save(directory)
    return directory


@pytest.fixture(scope="session")
def search_assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("search-assets")
    return {"table": str(make_table(d / "table.json")), "predictor": str(make_predictor(d / "predictor"))}


def _config(assets, out, **kw):
    from nas.search import SearchConfig

    base = dict(space=SPACE, out=str(out), predictor=assets["predictor"], table=assets["table"], seed=0)
    base.update(kw)
    return SearchConfig(**base)


class CountingEvaluator:
    """Wraps a real evaluator and records every config it is asked to evaluate."""

    name = "predicted"

    def __init__(self, inner) -> None:
        self.inner = inner
        self.space = inner.space
        self.seen: list[SubnetConfig] = []

    def evaluate(self, configs):
        self.seen.extend(configs)
        return self.inner.evaluate(configs)

    def describe(self):
        return {"evaluator": "counting", **self.inner.describe()}


def _predicted(assets):
    from nas.search import PredictedEvaluator
    from nas.search.loaders import load_predictor, load_table

    return PredictedEvaluator(get_space(SPACE), load_predictor(assets["predictor"]), load_table(assets["table"]))


# ---- units ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mbv3-tiny", "mbv3"])
def test_profile_table_matches_space_profile_exactly(name) -> None:
    from nas.search import ProfileTable

    sp = get_space(name)
    configs = sp.sample_many(150, seed=1) + [sp.largest(), sp.smallest(4, 8), sp.largest(8, 32)]
    macs, params, size = ProfileTable(sp).compute(sp.to_indices(configs))
    for i, c in enumerate(configs):
        p = sp.profile(c)
        assert (macs[i], params[i], size[i]) == (p.macs, p.params, p.size_bytes)


@pytest.mark.parametrize("encoding", ["block", "block-dense", "field", "field-dense"])
def test_builtin_encodings_suggest_inert_genes_only_when_dense(encoding) -> None:
    """(Round trips and suggesting through Optuna: the encoding contract, tests/test_search_contract.py.)"""
    from nas.search import get_encoding

    sp = get_space(SPACE)
    enc = get_encoding(encoding, sp)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        t = study.ask()
        c = enc.suggest(t)
        n_block_params = sum(1 for k in t.params if k.startswith(("block_", "kernel_")))
        if encoding.endswith("-dense"):
            assert n_block_params == sp.spec.n_positions  # inert genes included
        else:  # conditional: blocks beyond a stage's depth are not suggested
            assert n_block_params == c.n_blocks
        study.tell(t, [0.0, 0.0])
    with pytest.raises(InputError, match="encoding"):
        get_encoding("packed", sp)


def test_journal_batch_write_reads_back_in_a_fresh_storage(tmp_path) -> None:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from nas.search.storage import open_storage, write_finished_trials

    path = tmp_path / "j.journal"
    st = open_storage(str(path))
    study = optuna.create_study(storage=st, study_name="s", directions=["maximize", "minimize"])
    d = optuna.distributions.CategoricalDistribution([3, 5, 7])
    trials = [optuna.trial.create_trial(params={"k": k}, distributions={"k": d}, values=[float(i), 2.0 * i],
                                        user_attrs={"metrics": {"accuracy": float(i)}},
                                        system_attrs={"constraints:latency_ms": -1.0 + i})
              for i, k in enumerate([3, 5, 7, 5])]
    write_finished_trials(st, study._study_id, trials)
    fresh = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path))))
    got = fresh.get_trials(states=(TrialState.COMPLETE,))
    assert [t.params["k"] for t in got] == [3, 5, 7, 5]
    assert [t.values for t in got] == [[0.0, 0.0], [1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]
    assert [t.constraints for t in got][1] == {"latency_ms": 0.0}
    assert got[2].user_attrs["metrics"] == {"accuracy": 2.0}
    assert len(path.read_text().splitlines()) == 1 + 4  # the study, then one line per trial (one append)


def test_hypervolume_and_pareto_on_known_points() -> None:
    from nas.search import Normalizer, hypervolume, pareto_mask

    objs = ("accuracy", "latency")
    v = np.array([[90.0, 10.0], [80.0, 5.0], [70.0, 8.0], [90.0, 10.0]])
    assert pareto_mask(v, objs).tolist() == [True, True, False, True]
    norm = Normalizer(objs, ideal=[100.0, 0.0], nadir=[0.0, 20.0], ref=1.0)
    # losses: (0.1, 0.5), (0.2, 0.25) -> 0.9*0.5 + (0.8*0.75 - 0.8*0.5) = 0.45 + 0.2
    assert hypervolume(v, norm) == pytest.approx(0.65)


def test_budget_validation_names_the_field() -> None:
    from nas.search import Budgets

    with pytest.raises(InputError, match=r"latency_ms: got -1.0, allowed: a positive number"):
        Budgets(latency_ms=-1.0)
    with pytest.raises(InputError, match=r"min_accuracy: got 101.0, allowed: a number in \[0, 100\]"):
        Budgets(min_accuracy=101.0)


def test_budget_mask_is_feasible_for_whole_columns() -> None:
    """The pipeline's baselines and the store query use `mask`; the search uses `feasible` (its constraints):
    the same subnets pass, boundaries included."""
    from nas.budgets import Budgets

    acc = np.array([70.0, 75.0, 80.0, 90.0])
    lat = np.array([1.0, 2.0, 2.0000001, 3.0])
    size = np.array([1_000_000, 2_000_000, 500_000, 2_000_001])
    for b in (Budgets(latency_ms=2.0), Budgets(size_mb=2.0), Budgets(min_accuracy=75.0), Budgets(2.0, 2.0, 75.0),
              Budgets(), Budgets(min_accuracy=0.0)):
        rows = [{"supported": True, "accuracy": a, "latency_ms": la, "size_bytes": int(sz)}
                for a, la, sz in zip(acc, lat, size)]
        assert b.mask(acc, lat, size).tolist() == [b.feasible(r) for r in rows], b
    assert Budgets(2.0, 2.0, 75.0).mask(acc, lat, size).tolist() == [False, True, False, False]


# ---- end to end -------------------------------------------------------------------------------------------
def test_search_end_to_end_predicted(search_assets, tmp_path) -> None:
    from nas.front import FrontEntry
    from nas.search import run_search
    from nas.search.storage import open_storage

    out = tmp_path / "out"
    cfg = _config(search_assets, out, trials=300, sampler="nsga2", latency_ms=0.25, size_mb=1.0, population_size=50)
    res = run_search(cfg)
    assert res.n_trials == 300 and res.n_new == 300 and res.trials_per_second > 0
    # a real Optuna study in the journal, readable by a fresh process-independent storage
    study = optuna.load_study(study_name=res.study, storage=open_storage(str(out / "study.journal")))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 300
    t0 = complete[0]
    assert "resolution" in t0.params and "kernel_s0b0" in t0.params  # the space's own parameters
    from nas.search import Budgets

    names = Budgets(latency_ms=0.25, size_mb=1.0).constraint_names()
    assert names == ["supported", "latency_ms", "size_mb"] == res.summary["constraint_names"]
    assert len(t0.system_attrs["constraints"]) == 3  # the list form optuna-dashboard shows
    m = t0.user_attrs["metrics"]
    assert dict(zip(names, t0.system_attrs["constraints"])) == pytest.approx(
        {"supported": 0.0 if m["supported"] else 1.0, "latency_ms": m["latency_ms"] - 0.25,
         "size_mb": m["size_bytes"] / 1e6 - 1.0})
    infeasible = [t for t in complete if any(v > 0 for v in t.constraints.values())]
    assert infeasible, "infeasible trials are kept (ranked by the sampler), not dropped"
    # outputs
    front = json.loads((out / "front.json").read_text())
    entries = [FrontEntry.from_dict(e) for e in front["entries"]]
    assert len(entries) == res.n_pareto > 0
    for e in entries:
        assert e.feasible and e.latency_ms <= 0.25 and e.size_bytes <= 1.0e6 and e.trial is not None
        assert get_space(SPACE).profile(e.config).size_bytes == e.size_bytes
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trials"] == 300 and summary["hypervolume"] == pytest.approx(res.hypervolume) and res.hypervolume > 0
    run_cfg = json.loads((out / "run_config.json").read_text())
    assert run_cfg["sampler"] == "nsga2" and run_cfg["latency_ms"] == 0.25
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # budgets respected in the reported best, and it is the most accurate feasible trial
    best = res.best["all"]
    assert best is not None and best["latency_ms"] <= 0.25 and best["size_bytes"] <= 1.0e6
    feas = [t for t in complete if all(v <= 0 for v in t.constraints.values())]
    assert best["accuracy"] == pytest.approx(max(t.user_attrs["metrics"]["accuracy"] for t in feas))
    assert res.best["latency_ms<=0.25"]["accuracy"] >= best["accuracy"]


def test_resume_continues_and_evaluates_nothing_twice(search_assets, tmp_path) -> None:
    from nas.search import run_search

    out = tmp_path / "out"
    ev = CountingEvaluator(_predicted(search_assets))
    r1 = run_search(_config(search_assets, out, trials=150, sampler="random", latency_ms=0.3), evaluator=ev)
    assert r1.n_trials == 150
    n_eval_1 = len(ev.seen)
    from nas.search.storage import open_storage

    st = open_storage(str(out / "study.journal"))
    first = [(t.number, t.params) for t in optuna.load_study(study_name=r1.study, storage=st).trials]
    r2 = run_search(_config(search_assets, out, trials=260, sampler="random", latency_ms=0.3), evaluator=ev)
    assert (r2.n_trials, r2.n_new) == (260, 110)
    assert len(ev.seen) == len(set(ev.seen)), "a config was evaluated twice"
    assert len(ev.seen) - n_eval_1 <= 110
    trials = optuna.load_study(study_name=r1.study, storage=open_storage(str(out / "study.journal"))).trials
    assert [(t.number, t.params) for t in trials[:150]] == first
    r3 = run_search(_config(search_assets, out, trials=260, sampler="random", latency_ms=0.3), evaluator=ev)
    assert r3.n_new == 0 and r3.n_trials == 260
    with pytest.raises(InputError, match="budgets"):
        run_search(_config(search_assets, out, trials=300, sampler="random", latency_ms=0.4))


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_other_samplers_run_with_sqlite(search_assets, tmp_path, sampler) -> None:
    from nas.search import run_search

    url = f"sqlite:///{tmp_path / 'study.db'}"
    res = run_search(_config(search_assets, tmp_path / "o", trials=60, sampler=sampler, storage=url,
                             objectives=("accuracy", "latency"), size_mb=1.5))
    study = optuna.load_study(study_name=res.study, storage=url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 60
    assert res.best["all"] is None or res.best["all"]["size_bytes"] <= 1.5e6


def test_evolution_baseline_respects_its_constraint(search_assets) -> None:
    """OFA's evolution as OFA runs it: candidates over the budget are re-drawn for free (the efficiency
    predictor), so every evaluated subnet meets the budget and the evaluation count is exact."""
    from nas.search import evolution_search
    from nas.search.evolution import evolve_once

    ev = _predicted(search_assets)
    idx, m = evolve_once(ev.space, ev, 600, 0.3, seed=0)
    assert len(idx) == len(m) == 600
    assert m.supported.all() and (m.latency_ms <= 0.3).all()
    idx, m = evolution_search(ev.space, ev, 600, latency_budgets=[0.15, 0.3], seed=0)
    assert len(idx) == 600 and (m.latency_ms <= 0.3).all()


# ---- CLI --------------------------------------------------------------------------------------------------
def _cli(args):
    from nas.cli.main import cli

    return CliRunner().invoke(cli, args, prog_name="hwnas")


def test_cli_search_json(search_assets, tmp_path) -> None:
    r = _cli(["search", "--space", SPACE, "--predictor", search_assets["predictor"], "--table",
              search_assets["table"], "--trials", "120", "--latency-ms", "0.3", "--sampler", "random",
              "--out", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output.strip().splitlines()[-1])
    assert d["n_trials"] == 120 and d["n_pareto"] > 0 and d["hypervolume"] > 0 and d["trials_per_second"] > 0
    assert d["best"]["all"]["latency_ms"] <= 0.3


@pytest.mark.parametrize("extra, needle", [
    (["--sampler", "cmaes"], "--sampler: got 'cmaes', allowed: nsga2, tpe, random"),
    (["--latency-ms", "-3"], "--latency-ms: got -3.0, allowed: a positive number"),
    (["--size-mb", "0"], "--size-mb: got 0.0, allowed: a positive number"),
    (["--objectives", "accuracy,speed"], "--objectives: got 'speed', allowed: accuracy, latency, size"),
    (["--trials", "0"], "Invalid value for '--trials': 0 is not in the range x>=1"),
])
def test_cli_bad_arguments_exit_2_with_one_line(search_assets, tmp_path, extra, needle) -> None:
    r = _cli(["search", "--space", SPACE, "--predictor", search_assets["predictor"], "--table",
              search_assets["table"], "--out", str(tmp_path / "o"), *extra])
    assert r.exit_code == 2, r.output
    assert needle in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_missing_table_and_unknown_space(search_assets, tmp_path) -> None:
    r = _cli(["search", "--space", SPACE, "--predictor", search_assets["predictor"], "--table",
              str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--table: got" in r.output and "nope.json" in r.output
    r = _cli(["search", "--space", "resnet", "--predictor", search_assets["predictor"], "--table",
              search_assets["table"], "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--space: got 'resnet'" in r.output


def test_postgres_storage(search_assets, tmp_path) -> None:
    url = os.environ.get("HWNAS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("HWNAS_TEST_POSTGRES_URL is unset (.ci/run starts PostgreSQL on loopback and sets it)")
    import uuid

    from nas.search import run_search

    name = f"pg-{uuid.uuid4().hex[:8]}"
    res = run_search(_config(search_assets, tmp_path / "o", trials=40, sampler="nsga2", storage=url, study=name,
                             population_size=10, latency_ms=0.3))
    study = optuna.load_study(study_name=name, storage=url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 40 == res.n_trials
    optuna.delete_study(study_name=name, storage=url)


def test_search_restricted_to_the_table_resolutions(tmp_path) -> None:
    """A table measured at one resolution: the search only proposes that resolution (else every trial fails)."""
    from latency_tables.table import LatencyTable

    from nas.search import run_search
    from nas.search.api import table_resolutions

    full = make_table(tmp_path / "full.json")
    t = LatencyTable.load(full)
    sp = get_space(SPACE)
    keep = {b.key for b in sp.all_block_specs(resolutions=[24])}
    t.entries = {k: v for k, v in t.entries.items() if k in keep}
    t.unsupported = {k: v for k, v in t.unsupported.items() if k in keep}
    t.resolutions = [24]
    t.expected_keys = len(keep)
    t.save(tmp_path / "r24.json")
    t24 = LatencyTable.load(tmp_path / "r24.json")
    assert table_resolutions(sp, t24) == (24,)
    pred = make_predictor(tmp_path / "p", n=120)
    res = run_search(_config({"table": str(tmp_path / "r24.json"), "predictor": str(pred)}, tmp_path / "o",
                             trials=120, sampler="nsga2", population_size=20))
    from nas.search.storage import open_storage

    trials = optuna.load_study(study_name=res.study, storage=open_storage(res.storage)).trials
    assert res.n_trials == len(trials) == 120 and {t.params["resolution"] for t in trials} == {24}


def test_cli_search_adds_its_front_to_the_results_store(search_assets, tmp_path) -> None:
    from nas.store import ResultsStore

    db = tmp_path / "results.db"
    r = _cli(["search", "--space", SPACE, "--predictor", search_assets["predictor"], "--table",
              search_assets["table"], "--trials", "100", "--latency-ms", "0.3", "--sampler", "random",
              "--out", str(tmp_path / "o"), "--store", str(db), "--dataset", "synthetic"])
    assert r.exit_code == 0, r.output
    with ResultsStore(str(db)) as store:
        (info,) = store.fronts()
        entries = store.entries(info.id)
    front = json.loads((tmp_path / "o" / "front.json").read_text())["entries"]
    assert len(entries) == len(front) > 0
    assert all(e.latency_ms <= 0.3 for e in entries)


def test_study_is_readable_by_optuna_dashboard(search_assets, tmp_path) -> None:
    """The shared study as optuna-dashboard serves it: every trial, the space's params, the constraints."""
    pytest.importorskip("optuna_dashboard")
    import wsgiref.util

    from optuna_dashboard import wsgi

    from nas.search import run_search
    from nas.search.storage import open_storage

    res = run_search(_config(search_assets, tmp_path / "o", trials=60, sampler="random", latency_ms=0.3))
    app = wsgi(open_storage(res.storage))

    def get(path):
        env: dict = {}
        wsgiref.util.setup_testing_defaults(env)
        env.update(PATH_INFO=path, REQUEST_METHOD="GET")
        status = {}
        body = b"".join(app(env, lambda s, h, e=None: status.setdefault("s", s)))
        assert status["s"].startswith("200"), status
        return json.loads(body)

    (summary,) = get("/api/studies")["study_summaries"]
    assert summary["study_name"] == res.study
    detail = get(f"/api/studies/{summary['study_id']}")
    assert len(detail["trials"]) == 60
    t = detail["trials"][0]
    assert {p["name"] for p in t["params"]} >= {"resolution", "depth_s0", "kernel_s0b0"}
    assert len(t["constraints"]) == 2  # supported, latency_ms


def test_same_seed_same_front_in_process(search_assets, tmp_path) -> None:
    """Seeds are explicit: two in-process searches with the same seed find the same front, another seed differs."""
    from nas.search import run_search

    def front(name: str, seed: int) -> list[str]:
        r = run_search(_config(search_assets, tmp_path / name, trials=300, seed=seed, workers=0))
        return sorted(e.config.to_json() for e in r.front)

    a, b, c = front("a", 3), front("b", 3), front("c", 4)
    assert a == b and len(a) > 3
    assert a != c


def test_measured_latency_is_scaled_like_its_table(tmp_path) -> None:
    """With a load-normalized table of the same backend, a measured latency is ratio-to-reference x the table's
    reference latency (what the table's own figures are), not a raw median; without one it is the raw median."""
    from latency_tables.table import LatencyTable
    from nas.search.evaluators import MeasuredEvaluator
    from predictors import load_predictor

    sp = get_space(SPACE)
    table = LatencyTable.load(make_table(tmp_path / "t.json"))
    table.protocol = {"warmup": 2, "repeats": 3, "rounds": 2, "interleave": 1, "reference": True}
    for key in list(table.entries)[:3]:  # the reference model's typical latency: 1,000x anything real here
        table.entries[key]["ref_ms"] = 1000.0
    table._ref = None
    assert table.normalized and table.reference_ms == 1000.0
    pred = load_predictor(make_predictor(tmp_path / "p", n=60))
    config = sp.smallest()
    scaled = MeasuredEvaluator(sp, predictor=pred, table=table, backend="ort-cpu").evaluate([config]).latency_ms[0]
    raw = MeasuredEvaluator(sp, predictor=pred, backend="ort-cpu").evaluate([config]).latency_ms[0]
    assert 0 < raw < 50 and scaled > 20 * raw, (raw, scaled)  # ratio (a fraction of the reference) x 1,000 ms


def test_hypervolume_matches_moocore_and_stays_in_the_box() -> None:
    """The library's hypervolume against an independent implementation (moocore's), on normalised losses; and a
    point beyond the normaliser's ideal cannot lift the value above 1."""
    moocore = pytest.importorskip("moocore")
    from nas.search import Normalizer, hypervolume

    objs = ("accuracy", "latency", "size")
    rng = np.random.default_rng(3)
    v = np.column_stack([rng.uniform(80, 98, 60), rng.uniform(1, 10, 60), rng.uniform(1, 5, 60)])
    norm = Normalizer(objs, ideal=[98.0, 1.0, 1.0], nadir=[80.0, 10.0, 5.0], ref=1.1)
    loss = norm(v)
    want = moocore.hypervolume(loss, ref=[1.1, 1.1, 1.1]) / 1.1**3
    assert hypervolume(v, norm) == pytest.approx(want, rel=1e-12)
    beyond = np.vstack([v, [[120.0, 0.0, 0.0]]])  # better than the ideal in every objective
    assert hypervolume(beyond, norm) == pytest.approx(1.0)
    assert 0.0 < hypervolume(v, norm) < 1.0


def test_budgeted_search_uses_its_budget(search_assets, tmp_path) -> None:
    """With a latency budget the search returns only feasible subnets, and its best under the budget is no worse
    than what the unconstrained search of the same size found under it (the budget phase, `local.py`)."""
    from nas.search import run_search

    free = run_search(_config(search_assets, tmp_path / "free", trials=500, population_size=20))
    lat = sorted(t.metrics["latency_ms"] for t in free.trials if t.metrics["supported"])
    budget = lat[len(lat) // 4]
    free_best = max(t.metrics["accuracy"] for t in free.trials
                    if t.metrics["supported"] and t.metrics["latency_ms"] <= budget)
    res = run_search(_config(search_assets, tmp_path / "budget", trials=500, population_size=20, latency_ms=budget))
    assert res.n_trials == 500 and len(res.trials) == 500
    assert res.front and all(e.latency_ms <= budget for e in res.front)
    assert res.best["all"]["accuracy"] >= free_best
    # the budget phase proposed most of the trials, and nearly all of them meet the budget
    tail = res.trials[res.config.local_from():]
    assert sum(t.feasible for t in tail) >= 0.95 * len(tail)


@pytest.mark.parametrize("encoding", ["field", "field-dense", "block", "block-dense"])
def test_nsga2_runs_every_encoding_with_and_without_a_budget(search_assets, tmp_path, encoding) -> None:
    """Every registered encoding runs under NSGA-II's light trials, the budget phase's fixed trials included (the
    `field` encoding asks through the public `suggest_categorical`); the budget phase keeps to the budget."""
    from nas.search import run_search
    from nas.search.encoding import ENCODINGS

    assert set(ENCODINGS.names()) == {"field", "field-dense", "block", "block-dense"}  # a new one joins above
    free = run_search(_config(search_assets, tmp_path / "free", trials=120, population_size=20, encoding=encoding))
    assert free.n_trials == 120 and free.front
    lat = sorted(t.metrics["latency_ms"] for t in free.trials if t.metrics["supported"])
    res = run_search(_config(search_assets, tmp_path / "budget", trials=120, population_size=20, encoding=encoding,
                             latency_ms=lat[len(lat) // 2]))
    assert res.n_trials == 120 and res.front and all(e.latency_ms <= lat[len(lat) // 2] for e in res.front)
    tail = res.trials[res.config.local_from():]
    assert tail and sum(t.feasible for t in tail) >= 0.9 * len(tail)


def test_refine_for_budget_starts_from_the_front_and_stays_feasible(search_assets, tmp_path) -> None:
    """The per-budget refinement after a front (`nas.search.refine`): every subnet it returns meets the budget,
    the best is at least the front's best under it, it makes exactly the evaluations asked for, and with the
    same seed it returns the same subnets."""
    from nas.budgets import Budgets
    from nas.search import run_search
    from nas.search.refine import refine_for_budget

    free = run_search(_config(search_assets, tmp_path / "free", trials=300, population_size=20))
    lat = sorted(t.metrics["latency_ms"] for t in free.trials if t.metrics["supported"])
    budget = Budgets(latency_ms=lat[len(lat) // 5])
    start = [(t.config, t.metrics) for t in free.trials]
    front_best = max(t.metrics["accuracy"] for t in free.trials if budget.feasible(t.metrics))
    class Counting(CountingEvaluator):  # with the cost model, which the refinement screens children by
        def evaluate_cost(self, idx):
            return self.inner.evaluate_cost(idx)

    ev = Counting(_predicted(search_assets))
    best, n_new = refine_for_budget(get_space(SPACE), ev, budget, start, 200, seed=1, quantize=True, keep=5)
    assert n_new == 200 == len(ev.seen) and len(best) == 5
    assert all(e.latency_ms <= budget.latency_ms for e in best)
    assert [e.accuracy for e in best] == sorted((e.accuracy for e in best), reverse=True)
    assert best[0].accuracy >= front_best
    again, _ = refine_for_budget(get_space(SPACE), _predicted(search_assets), budget, start, 200, seed=1,
                                 quantize=True, keep=5)
    assert [e.config for e in again] == [e.config for e in best]


def test_refine_for_budget_float_first_searches_the_float_subspace_then_the_joint_one(search_assets,
                                                                                       tmp_path) -> None:
    """`float_first`: the first share of the evaluations goes to float, unpruned subnets only, the rest to the
    joint space; the count is still exact, every answer meets the budget, and the best is at least the start's
    best float subnet under it (the float phase starts there)."""
    from nas.budgets import Budgets
    from nas.search import run_search
    from nas.search.adaptive import is_float_unpruned
    from nas.search.refine import refine_for_budget

    free = run_search(_config(search_assets, tmp_path / "free", trials=200, population_size=20))
    lat = sorted(t.metrics["latency_ms"] for t in free.trials if t.metrics["supported"])
    budget = Budgets(latency_ms=lat[len(lat) // 3])
    start = [(t.config, t.metrics) for t in free.trials]

    class Counting(CountingEvaluator):
        def evaluate_cost(self, idx):
            return self.inner.evaluate_cost(idx)

    ev = Counting(_predicted(search_assets))
    best, n_new = refine_for_budget(get_space(SPACE), ev, budget, start, 200, seed=2, quantize=True, keep=3,
                                    float_first=0.5, project=20)
    assert n_new == 200 == len(ev.seen)
    assert all(is_float_unpruned(c) for c in ev.seen[:100])
    assert not all(is_float_unpruned(c) for c in ev.seen[100:])
    assert all(e.latency_ms <= budget.latency_ms for e in best)
    float_best = max((t.metrics["accuracy"] for t in free.trials
                      if budget.feasible(t.metrics) and is_float_unpruned(t.config)), default=-1.0)
    assert best[0].accuracy >= float_best
    assert is_float_unpruned(get_space(SPACE).largest()) and not is_float_unpruned(get_space(SPACE).smallest(8, 8))


def test_refine_for_budget_adaptive_gives_the_evaluations_to_the_space_that_pays(search_assets, tmp_path) -> None:
    """`adaptive`: the float subspace's search and the joint one share the evaluations by what each has raised the
    best feasible accuracy by lately. Where bits and keep ratios cost 5 points (a predictor that rates them low),
    far more evaluations go to float, unpruned subnets than where they gain 5. The count stays exact, and every
    answer meets the budget."""
    import dataclasses

    from nas.budgets import Budgets
    from nas.search import run_search
    from nas.search.adaptive import is_float_unpruned
    from nas.search.refine import refine_for_budget

    free = run_search(_config(search_assets, tmp_path / "free", trials=200, population_size=20))
    lat = sorted(t.metrics["latency_ms"] for t in free.trials if t.metrics["supported"])
    budget = Budgets(latency_ms=lat[len(lat) * 3 // 4])  # loose: float subnets meet it too

    class Shifted(CountingEvaluator):  # the real predicted evaluator, quantized or pruned subnets moved by `shift`
        def __init__(self, inner, shift: float) -> None:
            super().__init__(inner)
            self.shift = shift

        def evaluate(self, configs):
            m = super().evaluate(configs)
            moved = [0.0 if is_float_unpruned(c) else self.shift for c in configs]
            return dataclasses.replace(m, accuracy=m.accuracy + np.array(moved))

        def evaluate_cost(self, idx):
            return self.inner.evaluate_cost(idx)

    share = {}
    for shift in (-5.0, 5.0):
        ev = Shifted(_predicted(search_assets), shift)
        start = list(zip([t.config for t in free.trials], [ev.evaluate([t.config]).row(0) for t in free.trials]))
        ev.seen.clear()
        best, n_new = refine_for_budget(get_space(SPACE), ev, budget, start, 600, seed=3, quantize=True, keep=3,
                                        adaptive=True)
        assert n_new == 600 == len(ev.seen)
        assert best and all(e.latency_ms <= budget.latency_ms for e in best)
        share[shift] = sum(map(is_float_unpruned, ev.seen)) / len(ev.seen)
    assert share[-5.0] >= share[5.0] + 0.2, share


def test_the_budget_phase_is_adaptive_where_the_space_has_a_float_subspace() -> None:
    """`run_search`'s budget phase and the refinement share `budget_local_search`: the joint space gets the
    adaptive search (a float arm beside the joint one), a float, unpruned space the plain one."""
    from nas.budgets import Budgets
    from nas.search.adaptive import AdaptiveLocalSearch, budget_local_search
    from nas.search.local import BudgetLocalSearch

    b = Budgets(latency_ms=1.0)
    assert isinstance(budget_local_search(get_space(SPACE), b, True, 0), AdaptiveLocalSearch)
    assert isinstance(budget_local_search(get_space(SPACE), b, False, 0), AdaptiveLocalSearch)  # keep ratios
    plain = budget_local_search(get_space(SPACE, keep=(1.0,)), b, False, 0)
    assert type(plain) is BudgetLocalSearch
    assert type(budget_local_search(get_space(SPACE), b, True, 0, adaptive=False)) is BudgetLocalSearch


def test_fast_journal_replay_equals_optunas(search_assets, tmp_path) -> None:
    """`FastJournalStorage` replays a search's journal into the same trials as Optuna's own `JournalStorage`."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from nas.search import run_search
    from nas.search.journal import FastJournalStorage

    res = run_search(_config(search_assets, tmp_path / "o", trials=120, latency_ms=0.3))
    path = str(tmp_path / "o" / "study.journal")
    got = optuna.load_study(study_name=res.study, storage=FastJournalStorage(JournalFileBackend(path))).trials
    want = optuna.load_study(study_name=res.study, storage=JournalStorage(JournalFileBackend(path))).trials
    assert len(got) == len(want) == 120
    for a, b in zip(got, want):
        assert (a.number, a.state, a.params, a.distributions, a.values, a.user_attrs, a.system_attrs,
                a.datetime_start, a.datetime_complete) == (b.number, b.state, b.params, b.distributions, b.values,
                                                           b.user_attrs, b.system_attrs, b.datetime_start,
                                                           b.datetime_complete)


def test_rerun_with_other_settings_needs_resume(search_assets, tmp_path) -> None:
    """A rerun into the same --out continues only the same search (more trials are fine); other settings are a
    clear error unless --resume asks for the continuation."""
    from nas.search import run_search

    out = tmp_path / "o"
    run_search(_config(search_assets, out, trials=60, sampler="random"))
    assert run_search(_config(search_assets, out, trials=80, sampler="random")).n_new == 20
    with pytest.raises(InputError, match=r"seed=0 \(got 3\).*`resume`"):
        run_search(_config(search_assets, out, trials=100, sampler="random", seed=3))
    res = run_search(_config(search_assets, out, trials=100, sampler="random", seed=3, resume=True))
    assert (res.n_trials, res.n_new) == (100, 20)
    r = _cli(["search", "--space", SPACE, "--predictor", search_assets["predictor"], "--table",
              search_assets["table"], "--trials", "120", "--sampler", "random", "--seed", "5", "--out", str(out)])
    assert r.exit_code == 2 and "--resume" in r.output and "Traceback" not in r.output


def test_cli_float_only_and_no_pruning_restrict_the_space(search_assets, tmp_path) -> None:
    from nas.search import run_search

    res = run_search(_config(search_assets, tmp_path / "o", trials=120, quantize=False, pruning=False))
    assert all(not t.config.is_quantized and set(t.config.keep) == {1.0} for t in res.trials)
    r = _cli(["search", "--space", SPACE, "--predictor", search_assets["predictor"], "--table",
              search_assets["table"], "--trials", "60", "--float-only", "--no-pruning", "--sampler", "random",
              "--out", str(tmp_path / "c"), "--json"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "c" / "run_config.json").read_text())
    assert cfg["quantize"] is False and cfg["pruning"] is False
