"""`hwnas --help` and every command's `--help` answer without importing torch, Optuna or Ray: the commands' options
are generated from their config dataclasses when first shown, and those configs import nothing heavy."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "optuna", "ray")
HELPS = [[], ["search"], ["latency", "build"], ["supernet", "train"], ["supernet", "import-ofa"],
         ["predictor", "dataset"], ["predictor", "fit"], ["query"], ["export"], ["run"]]
PROBE = ("import json, sys\n"
         "from nas.cli.main import cli\n"
         "try:\n"
         "    cli(sys.argv[1:] + ['--help'], prog_name='hwnas', standalone_mode=False)\n"
         "except SystemExit:\n"
         "    pass\n"
         f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")


@pytest.mark.parametrize("args", HELPS, ids=lambda a: " ".join(a) or "hwnas")
def test_help_imports_no_torch_optuna_or_ray(args: list[str]) -> None:
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    assert "Usage: hwnas" in r.stdout
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [], r.stdout[-500:]
