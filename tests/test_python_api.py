"""The front door: `import nas` lists the verbs, stays cheap, and the README's Python API block runs as written."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERBS = ("train_supernet", "run_training", "import_ofa", "build_table", "collect_labels", "fit_predictor",
         "run_search", "query", "export_subnet", "run_experiment")


def readme_python_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section holds exactly one python block"
    return blocks[0]


def test_import_nas_is_cheap_and_lists_every_verb() -> None:
    code = ("import sys, nas; print([n for n in dir(nas) if not n.startswith('__')] == sorted(nas.__all__)); "
            "print('torch' in sys.modules, 'optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "False"]
    import nas

    for verb in VERBS:
        assert verb in nas.__all__ and callable(getattr(nas, verb))


@pytest.mark.parametrize("name", ["ImportConfig", "TableConfig", "CollectConfig", "FitConfig", "QueryConfig",
                                  "ExportConfig", "TrainRun"])
def test_generated_configs_are_frozen_and_keyword_only(name: str) -> None:
    import nas

    cls = getattr(nas, name)
    required = {f.name: "x" for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    cfg = cls(**required)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, next(iter(required)), "y")
    with pytest.raises(TypeError):
        cls(*required.values())
    with pytest.raises(TypeError, match="no_such_field"):
        cls(**required, no_such_field=1)


def test_readme_python_block_runs(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_python_block())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"\d+ subnets on the front; exported one at 16 px: [\d.]+ % measured", r.stdout), r.stdout
    work = tmp_path / "runs" / "api"
    for name in ("supernet.pt", "table.json", "labels.jsonl", "predictor", "search/front.json", "results.db",
                 "model.onnx", "model.card.json"):
        assert (work / name).exists(), name
