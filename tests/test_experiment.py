"""The experiment file: the shipped ones validate, bad keys and values are named with their path."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nas.experiment import load_experiment, parse_experiment
from search_spaces import InputError

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {"name": "x", "space": "mbv3-tiny", "data": "digits", "budgets": [{"latency_ms": 1.0}]}


def test_shipped_experiments_validate():
    q = load_experiment(ROOT / "experiments" / "quickstart.yaml")
    assert q.space == "mbv3-tiny" and q.data == "shapes" and q.latency.backend == "ort-cpu" and q.ray.address is None
    c = load_experiment(ROOT / "experiments" / "imagenet-mbv3.yaml")
    assert c.space == "mbv3" and c.data.startswith("folder:") and c.store_url.startswith("postgresql://")
    assert c.search.workers > 1 and c.latency.backend in ("ort-trt", "tensorrt")


@pytest.mark.parametrize("change, message", [
    ({"search": {"trails": 5}}, "experiment: search.trails: unknown key"),
    ({"budgets": [{"latency_ms": -1}]}, "experiment: budgets[0]: latency_ms: got -1.0, allowed: a positive number"),
    ({"budgets": [{}]}, "budgets[0]: a budget needs at least one of latency_ms, latency_vs_reference, size_mb, "
                        "min_accuracy"),
    ({"budgets": [{"latency_ms": 1.0, "latency_vs_reference": 0.5}]},
     "budgets[0]: latency_vs_reference: got 0.5 beside latency_ms 1, allowed: one of the two"),
    ({"budgets": [{"latency_vs_reference": 0}]}, "budgets[0].latency_vs_reference: "),
    ({"budgets": []}, "experiment: budgets: List should have at least 1 item"),
    ({"space": "mbv4"}, "unknown search space 'mbv4'; known: mbv3, mbv3-tiny, mbv3-w1.2, vit-s, vit-tiny (closest: mbv3)"),
    ({"search": {"sampler": "cmaes"}}, "search.sampler: unknown sampler 'cmaes'; known: nsga2, tpe, random"),
    ({"predictor": {"kind": "svm"}}, "predictor.kind: allowed: one of gbt, mlp, ridge, stack, auto"),
    ({"latency": {"resolutions": [33]}}, "latency.resolutions: got [33], allowed: a non-empty subset of [16, 20"),
])
def test_bad_experiments_name_the_key(change, message):
    with pytest.raises(InputError) as e:
        parse_experiment({**MINIMAL, **change})
    assert message in str(e.value)


def test_latency_budgets_relative_to_the_tables_reference():
    """`latency_vs_reference` becomes latency_ms on a table (x its reference subnet's build-time latency); other
    budgets stay as they are; a table without a reference refuses it in one line."""
    exp = parse_experiment({**MINIMAL, "budgets": [{"name": "fast", "latency_vs_reference": 0.6},
                                                   {"latency_ms": 1.0, "min_accuracy": 80}, {"size_mb": 0.5}]})
    on = exp.on_table(0.7)
    assert [(b.latency_ms, b.latency_vs_reference) for b in on.budgets] == [(0.42, None), (1.0, None), (None, None)]
    assert on.budgets[0].label() == "fast" and on.budgets[1] == exp.budgets[1] and on.budgets[2] == exp.budgets[2]
    assert exp.budgets[0].latency_ms is None  # the experiment itself is unchanged (frozen)
    unnamed = parse_experiment({**MINIMAL, "budgets": [{"latency_vs_reference": 0.6}]})
    assert unnamed.budgets[0].label() == "latency_vs_reference<=0.6"
    assert parse_experiment(MINIMAL).on_table(None) == parse_experiment(MINIMAL)
    with pytest.raises(InputError, match="latency_vs_reference needs a latency table timed against a reference"):
        exp.on_table(None)


def _hwnas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas.cli.main", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_cluster_experiment_dry_runs_here():
    r = _hwnas("run", "experiments/imagenet-mbv3.yaml", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "experiment imagenet-mbv3: valid" in r.stdout
    assert "backend ort-trt:" in r.stdout and "[supernet] would run" in r.stdout


def test_run_rejects_bad_file_with_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**MINIMAL, "serch": {}}))
    r = _hwnas("run", str(bad), "--dry-run")
    assert r.returncode == 2 and "serch: unknown key" in r.stderr and "Traceback" not in r.stderr
    r = _hwnas("run", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "existing YAML file" in r.stderr
