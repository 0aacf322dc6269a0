"""`hwnas run` with several devices (`latency.backends: [ort-cpu, openvino-cpu]`): one supernet, accuracy data set
and predictor, then per device its own table, front and export (measured and verified on that runtime)."""
from __future__ import annotations

import json

import pytest

from latency_tables import BACKENDS
from nas.experiment import parse_experiment
from nas.pipeline.run import run_experiment
from nas.store import ResultsStore
from tests.tiny_experiment import tiny_experiment

pytestmark = pytest.mark.slow


def test_one_table_front_and_export_per_device(tmp_path):
    ok, reason = BACKENDS.get("openvino-cpu").available()
    if not ok:
        pytest.skip(reason)
    devices = ["ort-cpu", "openvino-cpu"]
    exp = parse_experiment(tiny_experiment(tmp_path, latency={"backends": devices, "calibrate": 2, "validate_n": 2},
                                           search={"trials": 200, "quantize": False, "verify_top": 0}))
    logs: list[str] = []
    result = run_experiment(exp, progress=False, log=logs.append)
    assert sorted(result["devices"]) == sorted(devices)
    ran = [line for line in logs if line.startswith("[supernet] done") or line.startswith("[predictor] done")]
    assert len(ran) == 2  # the device-independent stages ran once, not once per device
    tags = set()
    for name in devices:
        r = result["devices"][name]
        wd = tmp_path / name
        assert r["workdir"] == str(wd) and (wd / "report.md").is_file() and (wd / "model.onnx").is_file()
        table = json.loads(next(wd.glob("latency-*/table.json")).read_text())
        assert table["backend"] == name and table["fingerprint"]["backend"] == name
        card = json.loads((wd / "model.card.json").read_text())
        assert card["provenance"]["backend"]["name"] == name and card["verification"]["runtime"] == name
        assert card["verification"]["top1_agreement"] >= 98.0
        assert card["deployment"]["runtime"] == name
        tags.add(table["device_tag"])
        assert r["stages"]["supernet"]["key"] == result["devices"][devices[0]]["stages"]["supernet"]["key"]
    assert len(tags) == 2
    with ResultsStore(exp.store_url, create=False) as st:  # both fronts in the one store, by device
        assert {f.device_tag for f in st.fronts()} == tags


def test_devices_in_the_experiment_file_are_checked_before_anything_runs(tmp_path):
    from search_spaces import InputError

    base = tiny_experiment(tmp_path)
    exp = parse_experiment({**base, "latency": {"backends": ["ort-cpu", "openvino-cpu", "openvino-cpu:bf16"]}})
    assert [(d.latency.backend, d.latency.precision, d.workdir_path.name) for d in exp.per_device()] == [
        ("ort-cpu", "fp32", "ort-cpu"), ("openvino-cpu", "fp32", "openvino-cpu"),
        ("openvino-cpu", "bf16", "openvino-cpu-bf16")]
    assert {d.store_url for d in exp.per_device()} == {exp.store_url}
    for latency, want in [
        ({"backend": "openvino"}, "latency.backend: unknown latency backend 'openvino'; known: "),
        ({"backends": ["ort-cpu", "ort-cpu"]}, "latency.backends: got ['ort-cpu', 'ort-cpu'], allowed: each device"),
        ({"backend": "ort-cpu", "precision": "bf16"}, "latency.precision: precision 'bf16' is not run by ort-cpu; "
                                                      "allowed: fp32"),
        ({"backends": ["openvino-cpu", "ort-cpu:fp16"]}, "latency.backends[1]: precision 'fp16' is not run by "
                                                         "ort-cpu; allowed: fp32"),
    ]:
        with pytest.raises(InputError, match="^experiment: " + want.replace("[", r"\[").replace("]", r"\]")
                           .replace("(", r"\(").replace(")", r"\)")):
            parse_experiment({**base, "latency": latency})
