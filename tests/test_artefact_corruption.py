"""Every artefact kind is validated on load: a corrupt one is refused with one line naming what is wrong (or
recovered where that is safe: a torn study journal, a torn stage marker). No silent wrong answer."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_search import SPACE, _config, search_assets  # noqa: E402,F401

from search_spaces import HwnasError, InputError  # noqa: E402


@pytest.fixture(scope="module")
def assets(search_assets):  # noqa: F811  (test_search's session fixture: built once for the session)
    return {"table": Path(search_assets["table"]), "predictor": Path(search_assets["predictor"])}


# ---- latency table ----------------------------------------------------------------------------------------
def _edited_table(assets, tmp_path, edit) -> Path:
    d = json.loads(assets["table"].read_text())
    edit(d)
    p = tmp_path / "t.json"
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize("edit, needle", [
    (lambda d: next(iter(d["entries"].values())).update(median_ms=-0.5), "median_ms: got -0.5"),
    (lambda d: next(iter(d["entries"].values())).update(ref_ratio=-2.0), "ref_ratio: got -2.0"),
    (lambda d: d.update(calibration={"method": "scale", "params": {"b": -1.0}}), "calibration.params.b: got -1.0"),
    (lambda d: d.update(calibration={"method": "affine", "params": {"a": 0.1, "b": float("nan")}}), "a finite"),
])
def test_table_with_impossible_numbers_is_refused(assets, tmp_path, edit, needle) -> None:
    from latency_tables import LatencyTable

    with pytest.raises(InputError, match=needle.replace("(", r"\(")):
        LatencyTable.load(_edited_table(assets, tmp_path, edit))


def test_table_predicting_a_non_positive_latency_refuses_to_answer(assets) -> None:
    from latency_tables import LatencyTable
    from latency_tables.calibration import Calibration
    from search_spaces import get_space

    t = LatencyTable.load(assets["table"])
    t.calibration = Calibration("affine", {"a": -1e6, "b": 1.0})  # an intercept no measurement can have
    with pytest.raises(HwnasError, match="allowed: a positive latency"):
        t.predict(get_space(SPACE).sample_many(3, 0, quantize=False))


def test_truncated_table_is_one_line(assets, tmp_path) -> None:
    from latency_tables import LatencyTable

    p = tmp_path / "t.json"
    p.write_bytes(assets["table"].read_bytes()[:500])
    with pytest.raises(InputError, match="not valid JSON"):
        LatencyTable.load(p)


# ---- predictor --------------------------------------------------------------------------------------------
def _pred_copy(assets, tmp_path) -> Path:
    d = tmp_path / "pred"
    shutil.copytree(assets["predictor"], d)
    return d


def _edit_manifest(d: Path, edit) -> None:
    m = json.loads((d / "predictor.json").read_text())
    edit(m)
    (d / "predictor.json").write_text(json.dumps(m))


@pytest.mark.parametrize("edit, needle", [
    (lambda m: m["models"]["fp"].update(file="../../../../etc/passwd"), "allowed: a file name inside"),
    (lambda m: m["models"]["fp"].update(file="/etc/passwd"), "allowed: a file name inside"),
    (lambda m: m.update(models=[1, 2]), "models: got"),
    (lambda m: m["models"].update(fp="x"), "allowed: an object with file and kind"),
])
def test_predictor_manifest_damage_is_refused(assets, tmp_path, edit, needle) -> None:
    from predictors import load_predictor

    d = _pred_copy(assets, tmp_path)
    _edit_manifest(d, edit)
    with pytest.raises(InputError, match=needle):
        load_predictor(d)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "nan", "wrong-shape"])
def test_predictor_safetensors_damage_is_refused(assets, tmp_path, damage) -> None:
    from predictors import load_predictor
    from safetensors.numpy import load_file, save_file

    d = _pred_copy(assets, tmp_path)
    f = d / "fp.safetensors"
    if damage == "truncated":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif damage == "garbage":
        f.write_bytes(os.urandom(4096))
    else:
        arrays = load_file(str(f))
        k = max((k for k in arrays if arrays[k].dtype.kind == "f"), key=lambda k: arrays[k].size)
        if damage == "nan":
            arrays[k] = arrays[k].copy()
            arrays[k].flat[0] = np.nan
        else:
            arrays[k] = np.ascontiguousarray(arrays[k].reshape(-1)[: max(1, arrays[k].size // 2)])
        save_file(arrays, str(f))
    with pytest.raises(InputError, match="fp.safetensors|models.fp"):
        load_predictor(d)


# ---- supernet checkpoint ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from nas.checkpoint import save_supernet
    from search_spaces import get_space

    p = tmp_path_factory.mktemp("ckpt") / "s.pt"
    save_supernet(p, get_space(SPACE, num_classes=4).build_supernet(), {"data": "synthetic"})
    return p


def _edited_checkpoint(checkpoint, tmp_path, edit) -> Path:
    payload = torch.load(checkpoint, weights_only=True)
    edit(payload)
    p = tmp_path / "bad.pt"
    torch.save(payload, p)
    return p


@pytest.mark.parametrize("edit, needle", [
    (lambda p: p.update(num_classes=7), "does not match its header.*7 classes"),
    (lambda p: p.update(space="mbv3"), "does not match its header.*'mbv3'"),
    (lambda p: next(v for v in p["state_dict"].values() if v.is_floating_point()).fill_(float("nan")),
     "non-finite weights"),
])
def test_checkpoint_for_another_space_or_class_count_is_refused(checkpoint, tmp_path, edit, needle) -> None:
    from nas.checkpoint import load_supernet

    with pytest.raises(InputError, match=needle):
        load_supernet(_edited_checkpoint(checkpoint, tmp_path, edit))


def test_torn_checkpoint_is_one_line(checkpoint, tmp_path) -> None:
    from nas.checkpoint import load_supernet

    p = tmp_path / "torn.pt"
    p.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(InputError, match="not a readable hwnas checkpoint"):
        load_supernet(p)


# ---- results store ----------------------------------------------------------------------------------------
def test_store_rows_with_impossible_metrics_are_refused(tmp_path) -> None:
    from nas.front import FrontEntry
    from nas.lookup import query
    from nas.query_config import QueryConfig
    from nas.store import ResultsStore
    from search_spaces import get_space

    db = tmp_path / "r.db"
    cfgs = get_space(SPACE).sample_many(3, 0)
    with ResultsStore(db) as st:
        st.add_front([FrontEntry(c, 90.0 + i, 1.0 + i, 1000, 1000) for i, c in enumerate(cfgs)], space=SPACE,
                     device_tag="dev", device_fingerprint={"x": 1}, dataset="d", predictor="p")
        assert query(QueryConfig(store=st, space=SPACE, device="dev", latency_ms=5)).found
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE hwnas_entries SET latency_ms = -0.28 WHERE id = 2")
    with ResultsStore(db, create=False) as st:
        with pytest.raises(HwnasError, match=r"entry 2 \(front 1\) is corrupt.*latency_ms -0.28"):
            query(QueryConfig(store=st, space=SPACE, device="dev", latency_ms=5))
        with pytest.raises(HwnasError, match="is corrupt"):
            st.entries(1)


@pytest.mark.parametrize("url, needle", [("postgresql+pg8000://u@localhost/x", "needs its database driver"),
                                         ("foo://x/y", "allowed: a file path or one of")])
def test_store_url_without_driver_or_unknown_scheme_is_one_line(url, needle) -> None:
    from nas.store import ResultsStore

    with pytest.raises(InputError, match=needle):
        ResultsStore(url)


# ---- stage marker -----------------------------------------------------------------------------------------
def test_torn_stage_marker_reruns_the_stage(tmp_path) -> None:
    from nas.pipeline.cache import StageRunner

    logs: list[str] = []
    runs = []
    runner = StageRunner(tmp_path, log=logs.append)
    r1 = runner.run("s", {"a": 1}, [], lambda folder: runs.append(1) or {"out": 1})
    marker = r1.folder / "stage.json"
    marker.write_text(marker.read_text()[:20])  # torn
    r2 = StageRunner(tmp_path, log=logs.append).run("s", {"a": 1}, [], lambda folder: runs.append(2) or {"out": 2})
    assert runs == [1, 2] and r2.outputs == {"out": 2} and not r2.cached
    assert any("unreadable" in line and "running the stage again" in line for line in logs)
    r3 = StageRunner(tmp_path, log=logs.append).run("s", {"a": 1}, [], lambda folder: runs.append(3) or {})
    assert r3.cached and runs == [1, 2]


# ---- study journal ----------------------------------------------------------------------------------------
def test_torn_journal_resumes_with_the_valid_prefix(assets, tmp_path) -> None:
    import optuna

    from nas.search import run_search
    from nas.search.storage import JournalRepairWarning, open_storage

    cfg = _config({"table": str(assets["table"]), "predictor": str(assets["predictor"])}, tmp_path / "o",
                  trials=60, sampler="random", batch_size=20)
    first = run_search(cfg)
    journal = Path(first.storage)
    raw = journal.read_bytes()
    journal.write_bytes(raw[:-40])  # the last append was torn
    with pytest.warns(JournalRepairWarning, match=r"dropped 1\d\d\d* bytes|dropped \d+ bytes"):
        st = open_storage(str(journal))
    n_left = len(optuna.load_study(study_name=first.study, storage=st).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,)))
    assert 0 < n_left < 60
    # torn again, another append glued onto the torn line and one more after it: the bad line is now in the
    # middle, where Optuna alone fails with a JSONDecodeError
    raw = journal.read_bytes()
    last_line = raw[raw.rfind(b"\n", 0, len(raw) - 1) + 1:]
    journal.write_bytes(raw[:-40] + raw[-1500:] + last_line)
    with pytest.raises(json.JSONDecodeError):
        optuna.load_study(study_name=first.study, storage=optuna.storages.journal.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))))
    with pytest.warns(JournalRepairWarning, match="undecodable"):
        resumed = run_search(_config({"table": str(assets["table"]), "predictor": str(assets["predictor"])},
                                     tmp_path / "o", trials=80, sampler="random", batch_size=20))
    assert resumed.n_trials == 80
    assert Path(f"{journal}.torn").stat().st_size > 0  # what was cut is kept, not lost


# ---- study identity -----------------------------------------------------------------------------------------
def test_resuming_a_study_with_another_table_is_refused(assets, tmp_path) -> None:
    from nas.search import run_search

    other = _edited_table(assets, tmp_path, lambda d: [e.update(median_ms=e["median_ms"] * 2)
                                                       for e in d["entries"].values()])
    base = {"table": str(assets["table"]), "predictor": str(assets["predictor"])}
    run_search(_config(base, tmp_path / "o", trials=20, sampler="random", batch_size=20))
    with pytest.raises(InputError, match=r"scorers.table is 'sha256:.*got 'sha256:.*new `study` name"):
        run_search(_config({**base, "table": str(other)}, tmp_path / "o", trials=40, sampler="random",
                           batch_size=20))
    # the same scorers resume
    assert run_search(_config(base, tmp_path / "o", trials=40, sampler="random", batch_size=20)).n_trials == 40


# ---- training ---------------------------------------------------------------------------------------------
def test_training_stops_on_a_non_finite_loss(tmp_path) -> None:
    from nas.data import load_data
    from nas.train import TrainConfig, train_supernet

    out = tmp_path / "s.pt"
    cfg = TrainConfig(space=SPACE, data="synthetic", epochs=1, batch_size=72, n_random=0, warmup_epochs=0.0,
                      lr=1e30, grad_clip=0.0, optimizer="sgd")
    with pytest.raises(HwnasError, match="training diverged"):
        train_supernet(cfg, out, progress=False, threads=1, data=load_data("synthetic", seed=0))
    assert not out.exists()
    with pytest.raises(InputError, match="lr"):
        TrainConfig(space=SPACE, data="synthetic", epochs=1, lr=float("inf"))


# ---- writes -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_writes_honour_the_umask_and_fsync_before_rename(tmp_path, monkeypatch, mask) -> None:
    from search_spaces import files

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(files.os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    old = os.umask(mask)
    try:
        files.atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert events.index("fsync") < events.index("replace") and events[-1] == "fsync"  # data, then directory


def test_model_and_card_are_never_a_mismatched_pair(tmp_path, monkeypatch) -> None:
    from search_spaces import files

    model, card = tmp_path / "m.onnx", tmp_path / "m.card.json"
    model.write_text("old model")
    card.write_text("old card")
    new_model, new_card = tmp_path / "nm", tmp_path / "nc"
    new_model.write_text("new model")
    new_card.write_text("new card")
    real = files.publish
    calls = []

    def crash_after_the_model(tmp, dest):
        calls.append(dest)
        if len(calls) == 2:
            raise OSError("crash")
        real(tmp, dest)

    monkeypatch.setattr(files, "publish", crash_after_the_model)
    with pytest.raises(OSError):
        files.publish_pair(new_model, model, new_card, card)
    assert model.read_text() == "new model" and not card.exists()  # no old card beside the new model


# ---- accuracy data set --------------------------------------------------------------------------------------
def _records(n: int) -> list[str]:
    from search_spaces import get_space

    return [json.dumps({"config": c.to_dict(), "accuracy": 90.0 + i / 10, "quantized": c.is_quantized,
                        "split": "holdout", "data": "d", "supernet": "sha256:x", "seconds": 0.1})
            for i, c in enumerate(get_space(SPACE).sample_many(n, 0))]


def test_accuracy_dataset_torn_tail_recovers_and_bad_records_are_refused(tmp_path) -> None:
    from predictors import load_accuracy_dataset

    lines = _records(4)
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(lines[:3]) + "\n" + lines[3][:50])  # an interrupted append
    ds = load_accuracy_dataset(p)
    assert len(ds) == 3 and ds.skipped_torn_line
    p.write_text(lines[0] + "\n" + lines[1][:50] + "\n" + lines[2] + "\n")  # damage in the middle: refused
    with pytest.raises(InputError, match="line 2 is not JSON"):
        load_accuracy_dataset(p)
    bad = json.loads(lines[0])
    bad["accuracy"] = 250.0
    p.write_text(json.dumps(bad) + "\n" + lines[1] + "\n")
    with pytest.raises(InputError, match="accuracy: got 250.0, allowed: a top-1 accuracy in percent"):
        load_accuracy_dataset(p)


@pytest.mark.parametrize("url, needle", [("postgresql+pg8000://u@localhost/x", "needs its database driver"),
                                         ("foo://x", "allowed: a journal file path")])
def test_study_storage_url_without_driver_or_unknown_scheme_is_one_line(url, needle) -> None:
    from nas.search.storage import open_storage

    with pytest.raises(InputError, match=needle):
        open_storage(url)
