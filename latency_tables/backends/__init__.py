"""Backends that measure an ONNX model on a device, registered by name (`ort-cpu`, `ort-cuda`, `ort-trt`,
`tensorrt`, `openvino-cpu`, and any other package's through the `hwnas.backends` entry points)."""
from latency_tables.backends import openvino as _openvino  # noqa: F401  -- registers `openvino-cpu`
from latency_tables.backends import ort as _ort  # noqa: F401  -- registers the ONNX Runtime backends
from latency_tables.backends import tensorrt as _tensorrt  # noqa: F401  -- registers `tensorrt`
from latency_tables.backends.base import BACKENDS, Backend, Runner, get_backend, list_backends

__all__ = ["BACKENDS", "Backend", "Runner", "get_backend", "list_backends"]
