"""The cluster recipe, for real: a two-node Ray cluster on loopback (head + a node tagged `device:tiny-cpu`), and
the tiny experiment submitted with `ray job submit -- hwnas run ...`: the latency table is measured by tasks on
the tagged node, the search runs two Ray workers."""
from __future__ import annotations

import json
import sys

import pytest

from tests.local_cluster import local_cluster, submit_job
from tests.tiny_experiment import tiny_experiment, write_experiment

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_two_node_cluster_runs_an_experiment_job(tmp_path):
    wd = tmp_path / "work"
    exp = tiny_experiment(wd, latency={"device_tag": "tiny-cpu"}, search={"workers": 2})
    path = write_experiment(tmp_path / "tiny.yaml", exp)
    with local_cluster(tmp_path, {"device:tiny-cpu": 1}) as cluster:
        r = submit_job(cluster, [sys.executable, "-m", "nas.cli.main", "run", str(path), "--no-progress"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "succeeded" in (r.stdout + r.stderr)
    table = json.loads(next(wd.glob("latency-*/table.json")).read_text())
    assert table["device_tag"] == "tiny-cpu"
    search = json.loads(next(wd.glob("search-*/stage.json")).read_text())
    assert search["settings"]["workers"] == 2 and search["outputs"]["n_trials"] >= 300
    assert (wd / "model.onnx").is_file() and (wd / "report.md").is_file()
