"""Import Once-for-All's own `OFAMobileNetV3` (PyPI `ofa`) on a machine without torchvision.

`ofa` imports torchvision for its data loaders only; no CPU torchvision wheel exists for this torch, so stand-in
modules are registered in `sys.modules` (nothing in them is ever called), plus `torch._six`, which torch 2.x
dropped and OFA's loader still imports. `ofa_mbv3_class()` returns the class, or raises ImportError saying why.
"""
from __future__ import annotations

import sys
import types


def _standin(name: str, **attrs: object) -> types.ModuleType:
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


def ofa_mbv3_class() -> type:
    """`ofa.imagenet_classification.elastic_nn.networks.OFAMobileNetV3` (ImportError when `ofa` is missing)."""
    install_standins()
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    return OFAMobileNetV3
