"""Make `import ofa` (the Once-for-All PyPI package) work without torchvision.

`ofa` imports torchvision at package import time (for `RandomResizedCrop` and `transforms.functional`), and the
only torchvision wheel the registry has for torch 2.13 is a CUDA build that fails to import here (FACTS.md). The
benchmarks use `ofa` for its search code and its network definitions only, which need none of torchvision, so a
minimal stand-in package is enough: `torchvision/transforms/__init__.py` with an empty `RandomResizedCrop`
class, and an empty `torchvision/transforms/functional.py`.

`enable_ofa()` puts such a stand-in on `sys.path` (in a per-user cache directory, written once) unless a real
torchvision imports, then imports `ofa` and returns it.
"""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from search_spaces.files import atomic_write_text

STUB_FILES = {
    "torchvision/__init__.py": '"""Stand-in for torchvision (experiments/ofa_compat.py): enough for `import ofa`."""\n'
                               "from . import transforms  # noqa: F401\n",
    "torchvision/transforms/__init__.py": "class RandomResizedCrop:\n"
                                          '    """Stand-in: ofa subclasses it; never instantiated here."""\n',
    "torchvision/transforms/functional.py": "",
}


def stub_dir() -> Path:
    """Where the stand-in package lives (created on first use)."""
    base = Path(os.environ.get("HWNAS_OFA_STUB_DIR") or Path(tempfile.gettempdir()) / f"hwnas-ofa-stub-{os.getuid()}")
    for rel, text in STUB_FILES.items():
        p = base / rel
        if not p.is_file() or p.read_text() != text:
            p.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(p, text)
    return base


def _real_torchvision() -> bool:
    if "torchvision" in sys.modules:
        return True
    try:
        importlib.import_module("torchvision.transforms")
        return True
    except Exception:  # missing, or the CUDA wheel that fails to load its libraries
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        return False


def enable_ofa() -> ModuleType:
    """Import and return the `ofa` package, with the torchvision stand-in if no real torchvision imports.
    Raises ImportError (with the install hint) when `ofa` itself is missing."""
    if not _real_torchvision():
        d = str(stub_dir())
        if d not in sys.path:
            sys.path.insert(0, d)
    try:
        return importlib.import_module("ofa")
    except ImportError as e:
        raise ImportError(f"the Once-for-All package is needed: pip install -e '.[bench]' ({e})") from None
