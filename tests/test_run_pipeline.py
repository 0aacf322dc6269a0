"""`hwnas run` end to end on a tiny experiment: every artefact is real, a rerun is cached, a changed setting
reruns only the stages that depend on it."""
from __future__ import annotations

import json
import time

import numpy as np
import onnxruntime as ort
import pytest

from nas.experiment import parse_experiment
from nas.pipeline.run import run_experiment
from tests.tiny_experiment import tiny_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("run")
    exp = parse_experiment(tiny_experiment(wd))
    logs: list[str] = []
    result = run_experiment(exp, progress=False, log=logs.append)
    return wd, exp, result, logs


def test_artefacts_are_real(first_run):
    wd, exp, result, logs = first_run
    assert not any(s["cached"] for s in result["stages"].values())
    model, card = wd / "model.onnx", wd / "model.card.json"
    assert result["primary"]["model"] == str(model)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, 1, 16, 16), dtype=np.float32)
    assert sess.run(None, {sess.get_inputs()[0].name: x})[0].shape == (3, 4)  # synthetic data has 4 classes
    c = json.loads(card.read_text())
    assert c["config"]["resolution"] == 16 and c["config"]["space"] == "mbv3-tiny"
    assert (wd / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (wd / "report.md").read_text()
    assert "## Chosen subnets per budget" in report and "| fast |" in report
    rows = {r["budget"]: r for r in result["summary"]}
    assert rows["impossible"]["subnet"] == "nothing meets the budget"
    fast = rows["fast"]
    # its latency_vs_reference of 10 became ms on the table, for the searches and the export alike
    reference_ms = json.loads(next(wd.glob("latency-*/table.json")).read_text())["reference_ms"]
    limit = round(10.0 * reference_ms, 4)
    export_settings = json.loads(next(wd.glob("export-*/stage.json")).read_text())["settings"]
    assert export_settings["budgets"][0]["latency_ms"] == limit
    assert float(fast["pred ms"]) <= limit and fast["test % (int / fp)"].split(" / ")[1] != "-"
    assert any("[baselines] done" in line for line in logs)


def test_predictions_hold_on_the_exports(first_run):
    """What was predicted for the exported subnet is what its ONNX model measures, within what the tiny
    experiment's sizes allow: the binomial noise of its holdout (labels) and test split (measurement) plus twice
    the predictor's held-out RMSE for accuracy; a loose 50 % for the latency of a 16 px subnet timed in ~0.1 ms."""
    wd, exp, result, _ = first_run
    def outputs(stage: str) -> dict:
        return json.loads((wd / f"{stage}-{result['stages'][stage]['key']}" / "stage.json").read_text())["outputs"]

    export = outputs("export")["budgets"]["fast"]
    rep = export["float"]
    pred = outputs("predictor")["report"]
    card = json.loads((wd / "model.card.json").read_text())
    first, end = card["measured"]["holdout_images"]  # the holdout images that chose nothing
    n_hold, n_test = end - first, card["provenance"]["data"]["splits"]["test"]
    assert first > 0 and end == card["provenance"]["data"]["splits"]["holdout"]
    p = rep["accuracy"] / 100
    binomial = 100 * np.sqrt(max(p * (1 - p), 0.05) * (1 / n_hold + 1 / n_test))
    tolerance = 3 * binomial + 2 * pred["rmse"]
    assert abs(rep["accuracy"] - export["entry"]["accuracy"]) <= tolerance, (rep, tolerance)
    assert abs(rep["holdout_accuracy"] - rep["accuracy"]) <= 3 * binomial
    # latency as the table claims it: the export timed next to the table's reference, at the build's speed (the
    # plain median moves with the shared machine's load: +52 % once on CI); the drift is what separates the two
    assert rep["latency_at_table_speed_ms"] == pytest.approx(export["entry"]["latency_ms"], rel=0.5)
    reference = card["measured"]["reference"]
    assert reference["ms_at_build"] > 0 and rep["reference_drift"] == pytest.approx(reference["drift"])
    assert rep["latency_ms"] == pytest.approx(rep["latency_at_table_speed_ms"] * (1 + rep["reference_drift"]),
                                              rel=0.3)
    assert export["entry"]["accuracy_lower"] < export["entry"]["accuracy"]  # a lower bound came with it
    # the exported subnet is the most accurate of the checked candidates (by the prediction, which learnt every
    # check), which are the best that meet the budget once the export's round measured them, of candidates that
    # include the best predicted one of the front and of the budget's own search
    checked = export["holdout_checked"]
    assert 1 <= len(checked) <= 3 and all(c["ranked_by"] == "predicted" for c in checked)
    assert export["entry"]["entry_id"] == max(checked, key=lambda c: c["predicted"])["entry_id"]
    considered = export["considered"]
    assert len(considered) == 6 and {c["entry_id"] for c in checked} <= {c["entry_id"] for c in considered
                                                                            if c["meets"]}
    budgeted = {b["budget"]: b for b in outputs("search")["budgeted"]}
    assert budgeted.keys() == {"fast", "impossible"} and budgeted["impossible"]["best_predicted"] is None
    best = max(v for v in (budgeted["fast"]["best_predicted"], budgeted["fast"]["front_best_predicted"]) if v)
    assert max(c["searched_accuracy"] for c in considered) == pytest.approx(best)


def test_label_rounds_correct_the_predictor_where_the_search_chose(first_run):
    """The label round measured the budget's best predicted subnets as the labels were measured, appended them
    as `chosen` records and corrected the predictor with their residuals, which it then predicts (nearly: the
    correction keeps some label noise); the export uses that predictor and the front carries its figures."""
    from nas.front import FrontEntry
    from predictors import load_predictor
    from nas.pipeline.label_rounds import SETTLE_ROUNDS, known_checks
    from predictors.dataset import load_accuracy_dataset
    from search_spaces import config_from_dict

    wd, exp, result, _ = first_run

    def outputs(stage: str) -> dict:
        return json.loads((wd / f"{stage}-{result['stages'][stage]['key']}" / "stage.json").read_text())["outputs"]

    search, first_predictor = outputs("search"), outputs("predictor")["predictor"]
    rounds = json.loads(open(search["label_rounds"]).read())["rounds"]
    # one round, so the last, then settling ones while the correction lifts unchecked subnets into the best 2
    assert 1 <= len(rounds) <= 1 + SETTLE_ROUNDS and 1 <= rounds[0]["labelled"] <= 2  # label_picks 2 of `fast`
    assert all(1 <= r["labelled"] <= 2 and r["images"] == rounds[0]["images"] for r in rounds)
    picks = rounds[0]["picks"]
    assert {p["budget"] for p in picks} == {"fast"} and all(0 <= p["holdout"] <= 100 for p in picks)
    assert rounds[0]["mean_error"] == pytest.approx(np.mean([p["predicted"] - p["holdout"] for p in picks]), abs=1e-3)
    labels = [json.loads(line) for line in open(search["labels"])]
    base = [json.loads(line) for line in open(outputs("accuracy")["dataset"])]
    assert labels[: len(base)] == base and len(labels) == len(base) + sum(r["labelled"] for r in rounds)
    chosen = labels[len(base):]
    # measured on the export's check images, which the export reuses
    first, end = rounds[0]["images"]  # the check images: the verification starts after them
    assert end == json.loads((wd / "model.card.json").read_text())["measured"]["holdout_images"][0]
    assert all(r["chosen"] and r["max_images"] == end - first and r["skip_images"] == first
               and r["supernet"] == base[0]["supernet"] for r in chosen)
    measured = {json.dumps(r["config"], sort_keys=True): r["accuracy"] for r in chosen}
    assert {json.dumps(c.to_dict(), sort_keys=True): a for c, a in known_checks(search["label_rounds"]).items()} \
        == measured
    for c in outputs("export")["budgets"]["fast"]["holdout_checked"]:
        key = json.dumps(c["config"], sort_keys=True)
        assert c["holdout"] == measured.get(key, c["holdout"])  # a candidate the round measured: not again
    assert load_accuracy_dataset(search["labels"]).chosen.sum() == len(chosen)
    corrected = search["predictor"]
    assert corrected != first_predictor and (wd / corrected).joinpath("predictor.json").is_file()
    fixed, base = load_predictor(corrected), load_predictor(first_predictor)
    assert fixed.correction is not None and base.correction is None
    configs = [config_from_dict(r["config"]) for r in chosen]
    labels_of = np.array([r["accuracy"] for r in chosen])
    assert np.abs(fixed.predict(configs) - labels_of).mean() <= np.abs(base.predict(configs) - labels_of).mean()
    card = json.loads((wd / "model.card.json").read_text())
    # the export's round corrected it once more where it checked candidates the rounds had not
    assert card["provenance"]["predictor"]["path"] == outputs("export")["round"]["predictor"]
    # the front's figures are the corrected predictor's
    front = [FrontEntry.from_dict(d) for d in json.loads(open(search["front"]).read())]
    again = fixed.predict([e.config for e in front])
    assert np.allclose([e.accuracy for e in front], np.asarray(again).ravel(), atol=1e-6)


def test_pick_timing_corrects_the_table_where_the_search_chose(first_run):
    """The label round timed the latency budget's picks whole on the table's backend and corrected the table
    around them: it predicts the timed picks closer to their timings than the latency stage's table did and
    random subnets shifted by the picks' mean residual; the front and the export's card carry the corrected
    table's figures."""
    from latency_tables import LatencyTable
    from nas.front import FrontEntry
    from search_spaces import config_from_dict, get_space

    wd, exp, result, _ = first_run

    def outputs(stage: str) -> dict:
        return json.loads((wd / f"{stage}-{result['stages'][stage]['key']}" / "stage.json").read_text())["outputs"]

    search = outputs("search")
    timing = json.loads(open(search["pick_timing"]).read())
    assert timing["rounds"] and all(p["budget"] == "fast" for r in timing["rounds"] for p in r["picks"])
    assert all(1 <= r["timed"] <= 2 for r in timing["rounds"])  # label_picks 2 of `fast`; none twice
    configs = [config_from_dict(t["config"]) for t in timing["timed"]]
    ms = np.array([t["measured_ms"] for t in timing["timed"]])
    assert len(set(configs)) == len(configs) and (ms > 0).all()
    base, fixed = LatencyTable.load(outputs("latency")["table"]), LatencyTable.load(search["table"])
    assert base.correction is None and fixed.correction.summary()["timed"] == len(configs)

    def rms_log_error(t: LatencyTable) -> float:
        return float(np.sqrt(np.mean(np.log(t.predict(configs) / ms) ** 2)))

    assert rms_log_error(fixed) <= rms_log_error(base)
    far = get_space("mbv3-tiny").sample_many(20, 123, quantize=False)
    far = [c.replace(resolution=16) for c in far]  # random subnets: moved by the picks' mean residual
    mean = fixed.correction.summary()["mean"]
    np.testing.assert_allclose(fixed.predict(far) / base.predict(far), np.exp(mean / 100), rtol=0.03)
    front = [FrontEntry.from_dict(d) for d in json.loads(open(search["front"]).read())]
    np.testing.assert_allclose([e.latency_ms for e in front], fixed.predict([e.config for e in front]), rtol=1e-6)
    card = json.loads((wd / "model.card.json").read_text())
    # and the export's round once more, around the candidates no round had timed
    export_round = outputs("export")["round"]
    assert card["provenance"]["table"]["path"] == export_round["table"]
    assert card["provenance"]["table"]["correction"]["timed"] > len(configs)
    assert "Pick timing:" in (wd / "report.md").read_text()


def test_the_export_measures_what_it_exports(first_run):
    """Whatever the rounds left unmeasured, the export's candidates are timed and checked before one is chosen, and
    the exported subnet is predicted by the table and predictor corrected with those measurements: no prediction
    of an export comes from a subnet nothing measured."""
    from latency_tables import LatencyTable
    from nas.pipeline.label_rounds import known_checks
    from predictors import load_predictor
    from search_spaces import config_from_dict

    wd, exp, result, _ = first_run

    def outputs(stage: str) -> dict:
        return json.loads((wd / f"{stage}-{result['stages'][stage]['key']}" / "stage.json").read_text())["outputs"]

    search, export = outputs("search"), outputs("export")
    round_ = export["round"]
    table, predictor = LatencyTable.load(round_["table"]), load_predictor(round_["predictor"])
    before = json.loads(open(search["pick_timing"]).read())["timed"]
    after = json.loads((wd / round_["table"]).parent.joinpath("pick_timing.json").read_text())["timed"]
    # the rounds' timings kept, every candidate timed (again) once; the table learnt them all
    assert after[: len(before)] == before and len(after) > len(before)
    again = [json.dumps(t["config"], sort_keys=True) for t in after[len(before):]]
    assert len(set(again)) == len(again) <= len(export["budgets"]["fast"]["considered"])
    assert table.correction.summary()["timed"] == len(after)
    fast = export["budgets"]["fast"]
    checked = {json.dumps(c["config"], sort_keys=True) for c in fast["holdout_checked"]}
    assert checked <= set(again)
    if round_["labelled"]:  # the predictor learnt the new checks, as it had learnt the rounds'
        learnt = {json.dumps(c.to_dict(), sort_keys=True) for c in known_checks(
            str((wd / round_["predictor"]).parent / "label_rounds.json"))}
        assert checked <= learnt
    entry = fast["entry"]
    config = config_from_dict(entry["config"])
    assert entry["latency_ms"] == pytest.approx(float(table.predict([config])[0]), rel=1e-6)
    # (float32 networks: a batch of candidates and a batch of one round differently, by ~1e-6 at 75 %)
    assert entry["accuracy"] == pytest.approx(float(np.ravel(predictor.predict([config]))[0]), abs=1e-4)
    limit = json.loads(next(wd.glob("export-*/stage.json")).read_text())["settings"]["budgets"][0]["latency_ms"]
    assert entry["latency_ms"] <= limit
    assert "Export round:" in (wd / "report.md").read_text()


def test_rerun_is_cached_and_a_change_reruns_only_dependents(first_run):
    wd, exp, _, _ = first_run
    t0 = time.perf_counter()
    again = run_experiment(exp, progress=False, log=lambda m: None)
    assert all(s["cached"] for s in again["stages"].values()) and time.perf_counter() - t0 < 20
    changed = parse_experiment(tiny_experiment(wd, search={"trials": 350}))
    third = run_experiment(changed, progress=False, log=lambda m: None)
    cached = {k for k, s in third["stages"].items() if s["cached"]}
    assert cached == {"supernet", "latency", "accuracy", "predictor"}
