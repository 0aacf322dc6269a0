"""Turn what a table measures into ONNX files as deployed: one block (`BlockSpec`), a whole subnet, and the
trivial model that measures the backend's per-inference overhead. Quantized parts go through
`quantize_onnx` exactly as an exported subnet does."""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from latency_tables.quantize import quantize_onnx
from search_spaces import BlockSpec, SearchSpace, SubnetConfig, config_from_dict
from search_spaces.onnx_export import export_onnx

_SUPERNETS: dict[str, nn.Module] = {}
# float ONNX of a block's shape -> its bytes. A table's keys are sorted, so a shape's bit-width variants (w32a32,
# w4a32, ..., w8a8) are measured one after another: exporting the float graph once for all of them cut a
# quickstart table's exports from 1,049 to 233 (experiments/results/latency.md)
_FLOAT_BLOCKS: OrderedDict[str, bytes] = OrderedDict()
FLOAT_BLOCK_CACHE = 32


def calibration_inputs(shape: tuple[int, ...], n: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Random inputs for static quantization: latency does not depend on the values, only on the graph."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def export_block(space: SearchSpace, b: BlockSpec, directory: str | os.PathLike[str], batch: int = 1,
                 seed: int = 0) -> tuple[Path, tuple[int, int, int, int]]:
    """ONNX of one block as deployed (quantized per its bits); returns (path, input shape)."""
    d = Path(directory)
    shape = b.input_shape(batch)
    stem = b.key.replace(":", "_")
    float_path = d / f"{stem}.float.onnx"
    _export_float_block(space, b, shape, float_path, seed)
    policy = b.quant_policy()
    if not policy:
        return float_path, shape
    q_path = d / f"{stem}.onnx"
    quantize_onnx(float_path, q_path, policy, calibration_inputs(shape, seed=seed))
    return q_path, shape


def _export_float_block(space: SearchSpace, b: BlockSpec, shape: tuple[int, ...], path: Path, seed: int) -> None:
    """Write the float graph of `b` (its `float_version`: builders read only the shape) to `path`, exported once per
    process for each shape, batch and seed (the weights drawn from `seed`, without touching the caller's random
    state, so a cached and a fresh export leave it alike)."""
    key = f"{space.spec!r}|{b.float_version().key}|{shape}|{seed}"
    data = _FLOAT_BLOCKS.get(key)
    if data is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            export_onnx(space.build_block(b), shape, path)
        _FLOAT_BLOCKS[key] = path.read_bytes()
        while len(_FLOAT_BLOCKS) > FLOAT_BLOCK_CACHE:
            _FLOAT_BLOCKS.popitem(last=False)
        return
    _FLOAT_BLOCKS.move_to_end(key)
    path.write_bytes(data)


def random_supernet(space: SearchSpace, seed: int = 0) -> nn.Module:
    """A random-init supernet for timing only, with non-degenerate BatchNorm scales (the training init zeroes
    the last BN of each block, which would make whole weight tensors zero)."""
    key = f"{space.name}:{space.spec.num_classes}:{space.spec.in_channels}:{seed}"
    if key not in _SUPERNETS:
        torch.manual_seed(seed)
        net = space.build_supernet().eval()
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
        _SUPERNETS[key] = net
    return _SUPERNETS[key]


def export_subnet(space: SearchSpace, config: SubnetConfig, directory: str | os.PathLike[str], batch: int = 1,
                  seed: int = 0) -> tuple[Path, tuple[int, int, int, int]]:
    """The whole subnet as deployed: extracted, exported float, quantized per `Subnet.quant_policy()`."""
    space.check(config)
    net = random_supernet(space, seed)
    sub = net.extract(config, fake_quant=False)  # the float graph that ONNX Runtime quantizes
    policy = space.quantizable_layers(sub)
    d = Path(directory)
    shape = space.input_shape(config, batch)
    name = "subnet-" + hashlib.sha1(config.to_json().encode()).hexdigest()[:12]
    float_path = d / f"{name}.float.onnx"
    export_onnx(sub, shape, float_path)
    if not policy:
        return float_path, shape
    q_path = d / f"{name}.onnx"
    quantize_onnx(float_path, q_path, policy, calibration_inputs(shape, seed=seed))
    return q_path, shape


REFERENCE_BLOCK = "mbconv:in16x16:c16-48-16:k3:s1:relu:se0:w32a32"  # tables written before `reference_model`


def reference_config(space: SearchSpace, resolutions: Sequence[int]) -> SubnetConfig:
    """The reference timed alongside everything a table measures (protocol.reference): a whole, mid-sized float
    subnet of the table's own space (`Family.middle`: the middle choice everywhere) at the middle of the table's
    resolutions. A whole model of the same kind as the ones predicted slows down with the machine's load as they
    do; a tiny block mostly times the per-call overhead, which does not (measured: experiments/results/latency.md)."""
    res = sorted(resolutions)
    return space.middle(res[(len(res) - 1) // 2])


def reference_model_spec(space: SearchSpace, resolutions: Sequence[int]) -> dict[str, Any]:
    """What a new table stores as its `reference_model`."""
    return {"kind": "subnet", "config": reference_config(space, resolutions).to_dict()}


LEGACY_REFERENCE = {"kind": "block", "key": REFERENCE_BLOCK}


def export_reference_model(directory: str | os.PathLike[str], batch: int = 1,
                           reference: Mapping[str, Any] | None = None) -> tuple[Path, tuple[int, ...]]:
    """The reference model of a table (`reference_model_spec`), seed 0; without one, the fixed float block that
    tables written before whole-subnet references used."""
    from search_spaces import get_space

    ref = dict(reference or LEGACY_REFERENCE)
    if ref.get("kind") == "subnet":
        config = config_from_dict(ref["config"])
        return export_subnet(get_space(config.space), config, directory, batch=batch)
    return export_block(get_space("mbv3-tiny"), BlockSpec.from_key(ref["key"]), directory, batch=batch)


def export_overhead_model(path: str | os.PathLike[str], batch: int = 1) -> tuple[Path, tuple[int, int, int, int]]:
    """The smallest real model (one Relu on a 1x1x1 input): its latency is the per-inference overhead that every
    isolated block pays once and a whole model pays once in total."""
    shape = (batch, 1, 1, 1)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 1, 1])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, 1, 1])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["logits"], name="relu")], "overhead", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.save(model, str(path))
    return Path(path), shape
