"""`hwnas spaces / sample / profile` as a user runs them (a real subprocess: exit codes, no tracebacks)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from search_spaces import SubnetConfig


def hwnas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_spaces_lists_sizes():
    r = hwnas("spaces", "--json")
    assert r.returncode == 0, r.stderr
    rows = {d["name"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert rows["mbv3"]["size"] > rows["mbv3"]["size_float"] > 10**19  # OFA's float space alone is ~1e19+
    assert rows["mbv3-tiny"]["resolutions"] == [16, 20, 24, 28, 32]


def test_sample_is_reproducible_json_lines():
    a, b = hwnas("sample", "--space", "mbv3-tiny", "--n", "3", "--seed", "5"), hwnas(
        "sample", "--space", "mbv3-tiny", "--n", "3", "--seed", "5")
    assert a.returncode == 0 and a.stdout == b.stdout
    cfgs = [SubnetConfig.from_json(line) for line in a.stdout.splitlines()]
    assert len(cfgs) == 3 and all(c.space == "mbv3-tiny" for c in cfgs)


def test_profile_of_ofa_largest_subnet():
    ofa = json.dumps({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224})
    r = hwnas("profile", "--space", "mbv3", "--ofa", ofa, "--json")
    assert r.returncode == 0, r.stderr
    # Once-for-All's largest MobileNetV3 (w1.0) subnet at 224 px, as its own counters report it
    assert json.loads(r.stdout) == {"macs": 566170656, "params": 7664760, "size_bytes": 7664760 * 4}


def test_profile_from_config_file(tmp_path, tiny_space):
    c = tiny_space.sample(1)
    f = tmp_path / "c.json"
    f.write_text(c.to_json())
    r = hwnas("profile", "--space", "mbv3-tiny", "--config", str(f), "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == tiny_space.profile(c).to_dict()


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "--space", "mbv4"], "unknown search space 'mbv4'"),
        (["profile", "--space", "mbv3", "--ofa", '{"ks": [9]}'], "e: missing"),
        (["profile", "--space", "mbv3", "--ofa", "{"], "--ofa: not valid JSON"),
        (["profile", "--space", "mbv3"], "exactly one of --config FILE or --ofa JSON"),
        (["sample", "--space", "mbv3-tiny", "--n", "0"], "0 is not in the range"),
        (["profile", "--space", "mbv3-tiny", "--config", "/nonexistent.json"], "--config"),
        (["sampel"], "closest: sample"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    r = hwnas(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
