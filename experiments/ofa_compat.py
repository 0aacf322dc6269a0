"""Make `import ofa` (the Once-for-All PyPI package) work without torchvision -- one stand-in for the benchmarks
(`experiments/ofa_baseline.py`) and the import-equivalence test (`tests/test_ofa_import.py`).

`ofa` imports torchvision at package import time (for `RandomResizedCrop` and `transforms.functional`), and the
only torchvision wheel the registry has for torch 2.13 is a CUDA build that fails to import on a machine without CUDA libraries. Its
search code and network definitions need none of torchvision, so stand-in modules registered in `sys.modules` are
enough (nothing in them is ever called), plus `torch._six`, which torch 2.x dropped and OFA's loaders still import.
"""
from __future__ import annotations

import importlib
import sys
import types
from types import ModuleType


def _standin(name: str, **attrs: object) -> ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def install_standins() -> None:
    """Register torchvision and torch._six stand-ins unless real ones import."""
    try:
        import torchvision.transforms  # noqa: F401
    except Exception:  # absent, or a CUDA build that fails to load here
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]
        transforms = _standin("torchvision.transforms", RandomResizedCrop=type("RandomResizedCrop", (), {}))
        functional = _standin("torchvision.transforms.functional")
        transforms.functional = functional  # type: ignore[attr-defined]
        tv = _standin("torchvision", transforms=transforms)
        sys.modules.update({"torchvision": tv, "torchvision.transforms": transforms,
                            "torchvision.transforms.functional": functional})
    import torch

    if not hasattr(torch, "_six") and "torch._six" not in sys.modules:
        sys.modules["torch._six"] = _standin("torch._six", string_classes=(str, bytes))


def enable_ofa() -> ModuleType:
    """Import and return the `ofa` package, with the stand-ins where no real torchvision imports.
    Raises ImportError (with the install hint) when `ofa` itself is missing."""
    install_standins()
    try:
        return importlib.import_module("ofa")
    except ImportError as e:
        raise ImportError(f"the Once-for-All package is needed: pip install -e '.[bench]' ({e})") from None


def ofa_mbv3_class() -> type:
    """`ofa.imagenet_classification.elastic_nn.networks.OFAMobileNetV3` (ImportError when `ofa` is missing)."""
    enable_ofa()
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    return OFAMobileNetV3
