"""Export a module to ONNX the one way every part of hwnas does it (tables, validation, export).

TorchScript-based exporter (`dynamo=False`): opset 17, one self-contained file, ~1 s for a MobileNet, where the
dynamo exporter takes 7-8 s and cannot write opset 17 (torch 2.13). Written atomically.
"""
from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from search_spaces.files import atomic_path

OPSET = 17


def export_onnx(module: nn.Module, input_shape: tuple[int, ...], path: str | os.PathLike[str],
                dynamic_batch: bool = True, opset: int = OPSET) -> None:
    module = module.eval()
    x = torch.randn(*input_shape)
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
