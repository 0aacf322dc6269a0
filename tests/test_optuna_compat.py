"""The private Optuna names hwnas relies on (`nas.search.optuna_compat`) exist in the installed Optuna; when an
upgrade removes one, this fails naming it."""
from __future__ import annotations

import optuna
import pytest

from nas.search import optuna_compat


def test_every_private_optuna_name_hwnas_uses_exists() -> None:
    missing = optuna_compat.check()
    assert not missing, f"Optuna {optuna.__version__} lacks {', '.join(missing)}: update nas/search/optuna_compat.py"


@pytest.mark.parametrize("owner, name, expected", [
    ("optuna.trial.Trial", "_suggest", "optuna.trial.Trial._suggest"),
    ("optuna.study._tell", "_tell_with_warning", "optuna.study._tell._tell_with_warning"),
])
def test_a_removed_name_is_reported_by_its_name(monkeypatch, owner, name, expected) -> None:
    import importlib

    module, _, attr = owner.rpartition(".")
    try:
        target = importlib.import_module(owner)
    except ModuleNotFoundError:
        target = getattr(importlib.import_module(module), attr)
    monkeypatch.delattr(target, name)
    assert optuna_compat.check() == [expected]


def test_no_other_module_imports_optuna_privately() -> None:
    """Only the compatibility module may name Optuna's private modules."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = []
    for pkg in ("nas", "search_spaces", "latency_tables", "predictors"):
        for f in (root / pkg).rglob("*.py"):
            if f.name == "optuna_compat.py":
                continue
            if re.search(r"from optuna[\w.]*\._\w+ import|import optuna[\w.]*\._", f.read_text(encoding="utf-8")):
                offenders.append(str(f.relative_to(root)))
    assert not offenders
