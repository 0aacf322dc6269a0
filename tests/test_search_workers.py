"""Ray worker actors sharing one study: exact trial counts on a journal file and on SQLite, and a worker killed
mid-run (a real SIGKILL of its process) losing no completed trial."""
from __future__ import annotations

import os
import signal

import optuna
import pytest
from optuna.trial import TrialState

from test_search import SPACE, _config, search_assets  # noqa: F401  (session fixture)

pytestmark = pytest.mark.ray


def _complete(url_or_storage, name):
    from nas.search.storage import open_storage

    st = open_storage(url_or_storage) if isinstance(url_or_storage, str) else url_or_storage
    return optuna.load_study(study_name=name, storage=st).get_trials(states=(TrialState.COMPLETE,))


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_workers_share_one_study_with_exact_count(ray_local, search_assets, tmp_path, kind) -> None:  # noqa: F811
    from nas.search import run_search
    from nas.search.engine import UID_ATTR, WORKER_ATTR

    storage = str(tmp_path / "shared.journal") if kind == "journal" else f"sqlite:///{tmp_path / 'shared.db'}"
    target = 160 if kind == "journal" else 40
    res = run_search(_config(search_assets, tmp_path / "o", trials=target, workers=2, force_workers=True, storage=storage,
                             sampler="nsga2", population_size=20, batch_size=20, latency_ms=0.3))
    assert res.n_trials == target
    trials = _complete(storage, res.study)
    assert len(trials) == target
    uids = [t.system_attrs[UID_ATTR] for t in trials]
    assert len(set(uids)) == target, "a trial was written twice"
    workers = {t.system_attrs[WORKER_ATTR] for t in trials}
    assert workers == {"w0", "w1"}, workers
    info = res.summary["workers"]
    assert info["workers"] == 2 and info["lost_workers"] == [] and len(info["stats"]) == 2
    assert sum(s["completed"] for s in info["stats"]) == target
    assert ray_local.is_initialized()


def test_killed_worker_loses_no_completed_trial(ray_local, search_assets, tmp_path) -> None:  # noqa: F811
    from nas.search import SearchConfig, run_search  # noqa: F401
    from nas.search.engine import UID_ATTR
    from nas.search.workers import run_workers

    storage = str(tmp_path / "kill.journal")
    cfg = _config(search_assets, tmp_path / "o", trials=1000, workers=2, force_workers=True, storage=storage, sampler="random",
                  batch_size=10, latency_ms=0.3)
    from nas.search.engine import open_study
    from nas.search.loaders import load_table

    r = cfg.resolved(load_table(search_assets["table"]).device_tag)
    spec = r.run_spec()
    open_study(spec, create=True)
    state: dict = {}

    def progress(p) -> None:
        if "killed" not in state and p.complete >= 100 and "w0" in p.worker_pids:
            before = {t.system_attrs[UID_ATTR] for t in _complete(storage, spec.study)}
            assert p.worker_pids["w0"] != os.getpid()
            os.kill(p.worker_pids["w0"], signal.SIGKILL)  # a real process kill, mid-run
            state.update(killed=p.worker_pids["w0"], before=before)

    rep = run_workers(spec, 1000, 2, progress=progress, poll_s=0.05)
    assert "killed" in state, "the worker finished before it could be killed"
    assert "w0" in rep.lost_workers and rep.rounds >= 2
    trials = _complete(storage, spec.study)
    uids = [t.system_attrs[UID_ATTR] for t in trials]
    assert len(trials) == 1000, "the run must still complete the requested number of trials"
    assert len(set(uids)) == len(uids), "no trial duplicated"
    assert state["before"] <= set(uids), "a trial completed before the kill was lost"
    with pytest.raises(ProcessLookupError):
        os.kill(state["killed"], 0)


def test_verify_top_measures_front_entries_on_the_backend(ray_local, search_assets, tmp_path) -> None:  # noqa: F811
    import json

    from nas.front import FrontEntry
    from nas.search import run_search

    res = run_search(_config(search_assets, tmp_path / "o", trials=80, sampler="random", latency_ms=0.3,
                             verify_top=2, backend="ort-cpu"))
    front = [FrontEntry.from_dict(e) for e in json.loads((tmp_path / "o" / "front.json").read_text())["entries"]]
    assert len(front) == res.n_pareto >= 1
    verified = [e for e in front if e.measured]
    assert len(verified) == min(2, len(front))
    for e in verified:  # a real ONNX Runtime measurement of the exported subnet, next to the predicted value
        assert e.measured["latency_ms"] > 0 and e.measured["latency_ms"] != e.latency_ms
        assert e.measured["accuracy"] == pytest.approx(e.accuracy)  # no supernet given: the predictor's value


def test_ray_session_leaves_a_running_ray_alone(ray_local) -> None:
    """Nested stages (workers, then --verify-top) share the outer Ray instead of stopping and starting it."""
    import ray

    from nas.ray_session import ray_session

    with ray_session(None) as started:
        assert started is False and ray.is_initialized()
        with ray_session(None) as inner:
            assert inner is False
    assert ray.is_initialized()


def test_two_worker_predicted_search_runs_in_process_at_full_speed(search_assets, tmp_path) -> None:  # noqa: F811
    """`workers: 2` with the predicted evaluator: exactly the requested trials, run in this process (and the
    summary says so), no slower than an in-process run beyond a factor of 2 (timing noise on a shared machine;
    the throughput figures are in experiments/bench_search_scaling.py)."""
    from nas.search import run_search

    base = run_search(_config(search_assets, tmp_path / "w0", trials=600, workers=0))
    two = run_search(_config(search_assets, tmp_path / "w2", trials=600, workers=2))
    assert two.n_trials == two.n_new == len(two.trials) == 600
    info = two.summary["workers"]
    assert info["requested"] == 2 and info["workers"] == 0 and "in this process" in info["in_process"]
    assert two.trials_per_second >= base.trials_per_second / 2
    assert [t.config for t in two.trials] == [t.config for t in base.trials]  # the same search, seed for seed
