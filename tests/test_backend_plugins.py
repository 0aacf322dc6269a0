"""Backends from other packages: the `hwnas.backends` entry-point group, in a fresh process and in a Ray worker.
The plugin lives in tests/data/plugin_backend (a package plus the .dist-info that `pip install` would write), put on
the path of the processes that should see it -- as installing it on a node would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).parent / "data" / "plugin_backend"
FIND = """
from latency_tables import Protocol, get_backend, list_backends
from latency_tables.models import export_overhead_model
import tempfile
be = get_backend("example-ort")
with tempfile.TemporaryDirectory() as d:
    m = be.measure(*export_overhead_model(d + "/m.onnx"), Protocol.quick())
print(type(be).__name__, be.fingerprint()["plugin"], m.median_ms > 0, "example-ort" in list_backends(True))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")])}


def test_entry_point_backend_is_found_by_name_in_a_fresh_process() -> None:
    out = subprocess.run([sys.executable, "-c", FIND], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ExampleOrtBackend", "hwnas-example-backend", "0.1", "True", "True"]


def test_a_broken_plugin_is_listed_as_unavailable_not_a_crash() -> None:
    hwnas = Path(sys.executable).with_name("hwnas")
    out = subprocess.run([str(hwnas), "latency", "backends"], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()}
    assert lines["example-ort"].split()[1] == "available"
    assert "unavailable: entry point example-broken = hwnas_example_backend:NoSuchBackend failed to load " \
           "(AttributeError" in lines["example-broken"]
    assert "ort-cpu" in lines  # the built-in backends are still there


def test_without_the_plugin_the_name_is_unknown() -> None:
    from latency_tables import BACKENDS, get_backend
    from search_spaces.errors import InputError

    if "example-ort" in BACKENDS:
        pytest.skip("the example plugin is on this process's path")
    with pytest.raises(InputError, match="unknown latency backend 'example-ort'; known: .*openvino-cpu"):
        get_backend("example-ort")


@pytest.mark.ray
def test_entry_point_backend_is_found_in_a_ray_worker(ray_local) -> None:
    """A measuring task on a node where the plugin is installed finds it, though the driver never imported it."""
    ray = ray_local

    @ray.remote(num_cpus=1, runtime_env={"env_vars": {"PYTHONPATH": str(PLUGIN_DIR)}})
    def fingerprint_there() -> dict:
        from latency_tables.device_tasks import device_fingerprint

        return device_fingerprint("example-ort", {"threads": 1, "batch_size": 1})

    fp = ray.get(fingerprint_there.remote(), timeout=120)
    assert fp["backend"] == "example-ort" and fp["plugin"] == "hwnas-example-backend 0.1"
