"""Quantize an exported float ONNX model the way it is deployed: ONNX Runtime static QDQ.

Only the layers named in the policy are quantized (keys are module names as a family's `quantizable_layers` gives
them: convolutions such as `blocks.3.expand.conv`, linear layers (MatMul / Gemm) such as `blocks.2.attn.q.fc`);
every other node stays float.
- activations quantized (`act_bits` 8): static QDQ from `onnxruntime.quantization.quantize_static`, per-channel
  signed weights and *unsigned* 8-bit activations (on x86 signed activations fuse only half the convolutions and
  run 3-6x slower, as measured on ONNX Runtime here);
- activations float (`act_bits` 32): weight-only quantization -- the weight is stored as int8/int4 behind a
  `DequantizeLinear`, which is what a weight-only deployment runs;
- 4-bit weights need `DequantizeLinear` on INT4, i.e. opset >= 21: the model's opset is converted when needed, after
  the static quantizer ran at 8 bits (the values are the same either way; the order lets a 4- and an 8-bit variant
  of one model share that run).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from search_spaces.errors import HwnasError, bad_value
from search_spaces.files import atomic_path

INT4_OPSET = 21
WEIGHT_BITS = (4, 8)
ACT_BITS = (8, 32)


QUANT_OPS = ("Conv", "MatMul", "Gemm")  # the ops whose constant weight a policy quantizes


def onnx_conv_module_names(model: onnx.ModelProto) -> dict[str, str]:
    """Dotted module name -> ONNX node name for every Conv node, and every MatMul / Gemm with a constant weight
    (a linear layer). The TorchScript exporter names a conv `/blocks/blocks.3/expand/conv/Conv` for the module
    `blocks.3.expand.conv`: each scope repeats its parent's name as a prefix for container items, which is dropped
    here."""
    out: dict[str, str] = {}
    inits = {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in QUANT_OPS or not node.name.startswith("/"):
            continue
        if node.op_type != "Conv" and (len(node.input) < 2 or node.input[1] not in inits):
            continue  # activation x activation matmuls (attention) are not layers
        parts = [p for p in node.name.split("/")[1:-1] if p]
        dotted: list[str] = []
        for p in parts:
            prefix = ".".join(dotted)
            if dotted and p.startswith(prefix + "."):
                dotted = p.split(".")
            else:
                dotted.extend(p.split("."))
        out[".".join(dotted)] = node.name
    return out


def _inline_shared_initializers(model: onnx.ModelProto) -> None:
    """The exporter deduplicates identical weights into `Identity(initializer)` nodes; the quantizer needs each
    conv's weight to be an initializer of its own, so give every such Identity output a copy (in place)."""
    inits = {t.name: t for t in model.graph.initializer}
    keep: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            model.graph.initializer.append(t)
        else:
            keep.append(node)
    if len(keep) != len(model.graph.node):
        del model.graph.node[:]
        model.graph.node.extend(keep)
        _drop_unused_initializers(model)


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {i for n in model.graph.node for i in n.input}
    for t in [t for t in model.graph.initializer if t.name not in used]:
        model.graph.initializer.remove(t)


def _check_policy(policy: Mapping[str, tuple[int, int]]) -> None:
    for name, bits in policy.items():
        if not (isinstance(bits, (tuple, list)) and len(bits) == 2):
            raise bad_value(f"policy[{name!r}]", bits, "(weight_bits, act_bits)")
        w, a = int(bits[0]), int(bits[1])
        if w not in WEIGHT_BITS + (32,):
            raise bad_value(f"policy[{name!r}] weight bits", w, "4, 8 or 32")
        if a not in ACT_BITS:
            raise bad_value(f"policy[{name!r}] activation bits", a, "8 or 32")
        if a < 32 and w >= 32:
            raise bad_value(f"policy[{name!r}]", (w, a), "activations quantized only with quantized weights")


def _to_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if current >= opset:
        return model
    from onnx import version_converter

    converted = version_converter.convert_version(model, opset)
    converted.ir_version = max(converted.ir_version, 10)
    return converted


def weight_axis(node: onnx.NodeProto) -> int:
    """The output-channel axis of a node's weight (input 1): 0 for Conv and Gemm(transB=1), 1 for MatMul."""
    if node.op_type == "MatMul":
        return 1
    if node.op_type == "Gemm":
        return 0 if any(a.name == "transB" and a.i == 1 for a in node.attribute) else 1
    return 0


def _channel_shape(w: np.ndarray, axis: int) -> list[int]:
    return [-1 if i == axis else 1 for i in range(w.ndim)]


def _per_channel_symmetric(w: np.ndarray, bits: int, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Signed symmetric per-output-channel quantization (as the QDQ quantizer does for weights)."""
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale.reshape(_channel_shape(w, axis))), -qmax, qmax).astype(np.int8)
    return q, scale


def _int_tensor(name: str, q: np.ndarray, bits: int) -> onnx.TensorProto:
    """`q` (integers in the `bits` range) as an INT8 or INT4 initializer in raw bytes: one byte per int8, two int4
    per byte (first element in the low nibble, as ONNX packs INT4). A list of ints (`make_tensor`'s default)
    would be stored as int32_data, 4 bytes per weight: an 8-bit weight-only file grew 1.61 -> 1.94 MB that way."""
    flat = np.asarray(q).astype(np.int8).ravel()
    if bits == 8:
        return helper.make_tensor(name, onnx.TensorProto.INT8, q.shape, flat.tobytes(), raw=True)
    if bits != 4:
        raise ValueError(f"bits: got {bits}, allowed: 4 or 8")
    nib = (flat.view(np.uint8) & 0x0F).astype(np.uint8)
    if len(nib) % 2:
        nib = np.append(nib, np.uint8(0))
    packed = nib[0::2] | (nib[1::2] << 4)
    return helper.make_tensor(name, onnx.TensorProto.INT4, q.shape, packed.tobytes(), raw=True)


def _int_weight(base: str, w: np.ndarray, bits: int, axis: int = 0) -> list[onnx.TensorProto]:
    """`w` quantized per output channel, symmetric: [integers `base`, `base`_scale, zero point `base`_zero]."""
    q, scale = _per_channel_symmetric(w, bits, axis)
    return [_int_tensor(base, q, bits), numpy_helper.from_array(scale, f"{base}_scale"),
            _int_tensor(f"{base}_zero", np.zeros(scale.shape[0], np.int8), bits)]


def _weight_only(model: onnx.ModelProto, nodes: Mapping[str, int]) -> None:
    """Replace the float weight of each named Conv by an int8/int4 initializer + DequantizeLinear (in place)."""
    inits = {t.name: t for t in model.graph.initializer}
    by_name = {n.name: n for n in model.graph.node}
    new_nodes: list[onnx.NodeProto] = []
    for node_name, bits in nodes.items():
        node = by_name[node_name]
        wname = node.input[1]
        if wname not in inits:
            raise HwnasError(f"quantize: the weight of {node_name} is not a constant initializer")
        w = numpy_helper.to_array(inits[wname]).astype(np.float32)
        base = f"{wname}_wq{bits}"
        axis = weight_axis(node)
        qt, st, zt = _int_weight(base, w, bits, axis)
        model.graph.initializer.extend([qt, st, zt])
        dq = helper.make_node("DequantizeLinear", [base, st.name, zt.name], [f"{base}_dq"],
                              name=f"{node_name}_weight_DequantizeLinear", axis=axis)
        node.input[1] = dq.output[0]
        new_nodes.append(dq)
    # DequantizeLinear nodes first: the graph stays topologically sorted (their inputs are initializers)
    kept = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(new_nodes + kept)
    _drop_unused_initializers(model)


def _requantize_weights(model: onnx.ModelProto, nodes: Mapping[str, int]) -> None:
    """Re-store the int8 weights the static quantizer wrote for these Conv nodes at `bits` (int4), per channel,
    symmetric: the quantizer takes one weight type per model, a policy may mix 4- and 8-bit blocks."""
    inits = {t.name: t for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    by_name = {n.name: n for n in model.graph.node}
    for node_name, bits in nodes.items():
        dq = producers.get(by_name[node_name].input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            raise HwnasError(f"quantize: expected a quantized weight on {node_name}, found none")
        q8 = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float32)
        scale8 = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
        axis = weight_axis(by_name[node_name])
        w = q8 * scale8.reshape(_channel_shape(q8, axis))
        base = f"{dq.input[0]}_w{bits}"
        model.graph.initializer.extend(_int_weight(base, w, bits, axis))
        dq.input[0], dq.input[1] = base, f"{base}_scale"
        if len(dq.input) > 2:
            dq.input[2] = f"{base}_zero"
        else:
            dq.input.append(f"{base}_zero")
    _drop_unused_initializers(model)


class _Reader:
    """Calibration data reader over a list of input arrays."""

    def __init__(self, input_name: str, arrays: Sequence[np.ndarray]) -> None:
        self._it = iter([{input_name: np.asarray(a, dtype=np.float32)} for a in arrays])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


_STATIC_QDQ: OrderedDict[str, bytes] = OrderedDict()
STATIC_QDQ_CACHE = 16


def _static_qdq(model: onnx.ModelProto, nodes: Sequence[str], calibration: list[np.ndarray]) -> onnx.ModelProto:
    """`model` with `nodes` quantized by ONNX Runtime's static QDQ quantizer (8-bit weights and activations;
    4-bit weights are re-stored afterwards). Cached per process by model, nodes and calibration data: a table
    block's w8a8 and w4a8 variants run the quantizer once between them."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    digest = hashlib.sha1(model.SerializeToString())
    digest.update("|".join(sorted(nodes)).encode())
    for a in calibration:
        digest.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    key = digest.hexdigest()
    if key not in _STATIC_QDQ:
        with tempfile.TemporaryDirectory(prefix="hwnas-q-") as tmp:
            cur = Path(tmp) / "float.onnx"
            onnx.save(model, str(cur))
            pre = Path(tmp) / "pre.onnx"
            try:  # shape inference (+ basic optimization) helps the quantizer find every tensor's type
                quant_pre_process(str(cur), str(pre), skip_optimization=True)
                cur = pre
            except Exception:  # noqa: BLE001 -- pre-processing is an aid, not a requirement
                pass
            qpath = Path(tmp) / "static.onnx"
            quantize_static(
                str(cur), str(qpath), _Reader(model.graph.input[0].name, calibration),
                quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, nodes_to_quantize=list(nodes), op_types_to_quantize=list(QUANT_OPS),
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
            _STATIC_QDQ[key] = qpath.read_bytes()
        while len(_STATIC_QDQ) > STATIC_QDQ_CACHE:
            _STATIC_QDQ.popitem(last=False)
    _STATIC_QDQ.move_to_end(key)
    return onnx.load_from_string(_STATIC_QDQ[key])


def quantize_onnx(float_onnx: str | os.PathLike[str], out_onnx: str | os.PathLike[str],
                  policy: Mapping[str, tuple[int, int]], calibration: list[np.ndarray]) -> None:
    """Write `out_onnx`: `float_onnx` with the policy's convolutions quantized as deployed (static QDQ,
    per-channel signed weights, U8 activations; weight-only where activations stay float). Atomic."""
    _check_policy(policy)
    model = onnx.load(str(float_onnx))
    _inline_shared_initializers(model)
    convs = onnx_conv_module_names(model)
    missing = [k for k in policy if k not in convs]
    if missing:
        known = ", ".join(sorted(convs)[:6])
        raise HwnasError(f"quantize: policy names layer {missing[0]!r}, not in {Path(float_onnx).name} "
                         f"(its layers: {known}, ...)")
    static = {convs[k]: int(w) for k, (w, a) in policy.items() if int(w) < 32 and int(a) < 32}
    weight_only = {convs[k]: int(w) for k, (w, a) in policy.items() if int(w) < 32 and int(a) >= 32}
    if static and not calibration:
        raise bad_value("calibration", "[]", "at least one input array (activations are quantized)")
    if static:
        model = _static_qdq(model, list(static), calibration)
    if any(int(w) == 4 for w, a in policy.values()):
        model = _to_opset(model, INT4_OPSET)
    four = {n: b for n, b in static.items() if b == 4}
    if four:
        _requantize_weights(model, four)
    if weight_only:
        _weight_only(model, weight_only)
    with atomic_path(out_onnx) as out_tmp:
        onnx.save(model, str(out_tmp))
