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
