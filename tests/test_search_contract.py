"""Every registered sampler and encoding passes the contract suites shipped in `nas.search.testing`; a sampler
from another package (one file plus its entry point) is found by the YAML schema, `hwnas search --help` and the
suite without anything else changing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.search.encoding import ENCODINGS
from nas.search.samplers import SAMPLERS
from nas.search.testing import EncodingContract, SamplerContract

PLUGIN_DIR = Path(__file__).parent / "data" / "plugin_sampler"


class TestRegisteredSamplers(SamplerContract):
    @pytest.fixture(params=SAMPLERS.names())
    def sampler_name(self, request) -> str:
        return request.param


class TestRegisteredEncodings(EncodingContract):
    @pytest.fixture(params=ENCODINGS.names())
    def encoding_name(self, request) -> str:
        return request.param


def test_an_unknown_sampler_names_the_known_ones_and_the_closest() -> None:
    from search_spaces import InputError

    with pytest.raises(InputError, match=r"unknown sampler 'nsga'; known: nsga2, tpe, random \(closest: nsga2\)"):
        SAMPLERS.get("nsga")


def _install_plugin(site: Path) -> dict[str, str]:
    """What `pip install` of a one-file plugin leaves: the module plus its .dist-info with the entry point."""
    info = site / "hwnas_example_sampler-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hwnas-example-sampler\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text('[hwnas.samplers]\nexample-tpe = hwnas_example_sampler:EXAMPLE_TPE\n')
    path = os.pathsep.join([str(site), str(PLUGIN_DIR), str(Path(__file__).parents[1]),
                            os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "TQDM_DISABLE": "1"}


def test_a_plugin_sampler_is_picked_up_by_the_yaml_the_help_and_the_contract_suite(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path / "site")
    hwnas = str(Path(sys.executable).with_name("hwnas"))
    help_text = subprocess.run([hwnas, "search", "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert "nsga2, tpe, random or example-tpe." in " ".join(help_text.stdout.split()), help_text.stderr
    exp = tmp_path / "e.yaml"
    exp.write_text("name: t\nspace: mbv3-tiny\ndata: synthetic\nsearch: {sampler: example-tpe}\n"
                   "budgets: [{latency_ms: 1}]\n")
    dry = subprocess.run([hwnas, "run", str(exp), "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    exp.write_text(exp.read_text().replace("example-tpe", "example-tp"))
    bad = subprocess.run([hwnas, "run", str(exp), "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "(closest: example-tpe)" in bad.stderr, bad.stderr
    suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                            "-k", "TestRegisteredSamplers and example-tpe"], env=env, capture_output=True, text=True,
                           timeout=300, cwd=Path(__file__).parents[1])
    assert suite.returncode == 0 and "4 passed" in suite.stdout, suite.stdout[-2000:]


@pytest.mark.ray
def test_a_plugin_sampler_is_found_in_a_ray_worker(ray_local, tmp_path: Path) -> None:
    """A search worker on a node where the plugin is installed finds it, though the driver never imported it."""
    ray = ray_local
    env = _install_plugin(tmp_path / "site")

    @ray.remote(num_cpus=1, runtime_env={"env_vars": {"PYTHONPATH": env["PYTHONPATH"]}})
    def kind_there() -> str:
        from nas.search.samplers import SAMPLERS

        return SAMPLERS.get("example-tpe").default_encoding

    assert ray.get(kind_there.remote(), timeout=120) == "block"
    assert "example-tpe" not in SAMPLERS
