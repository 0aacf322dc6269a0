"""Native TensorRT: build an engine from the ONNX (FP16 when asked, INT8 from the model's QDQ nodes, i.e.
TensorRT's explicit quantization) and time `execute_async_v3` on a CUDA stream.

Optional (`pip install hwnas[tensorrt]`); TensorRT's wheels fetch their libraries from NVIDIA's index at
install time, so this backend runs only where TensorRT is already installed. Needs `cuda-python` for device
memory and streams.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from latency_tables.backends.base import BACKENDS, Backend, Runner, cpu_model
from latency_tables.backends.ort import gpu_facts
from latency_tables.protocol import Protocol
from search_spaces.errors import HwnasError


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # type: ignore[no-redef]  # older cuda-python
    return cudart


def _check(result: Any) -> Any:
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise HwnasError(f"tensorrt: CUDA call failed with error {err}")
    return rest[0] if len(rest) == 1 else rest


@BACKENDS.register("tensorrt")
class TensorRTBackend(Backend):
    name = "tensorrt"
    precisions = ("fp32", "fp16")
    resume_keys = ("execution_provider", "tensorrt", "gpu", "driver")

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import tensorrt  # noqa: F401
        except Exception as e:  # noqa: BLE001 -- the stub wheels raise all sorts at import
            return False, (f"tensorrt does not import ({type(e).__name__}); install TensorRT where its libraries "
                           "can be fetched (pip install hwnas[tensorrt]) or use ort-cpu / ort-cuda")
        try:
            cudart = _cudart()
            if _check(cudart.cudaGetDeviceCount()) < 1:
                return False, "tensorrt: no CUDA device visible"
        except Exception as e:  # noqa: BLE001
            return False, f"tensorrt needs cuda-python and a CUDA device ({type(e).__name__}: {e})"
        return True, ""

    def _device(self) -> dict[str, Any]:
        import tensorrt as trt

        d: dict[str, Any] = {"device": cpu_model(), "tensorrt": trt.__version__, "execution_provider": "tensorrt"}
        d.update(gpu_facts(self.device_id))
        d["device"] = d.get("gpu", d["device"])
        return d

    def deployment(self) -> dict[str, Any]:
        return {**super().deployment(), "build": "trtexec --onnx=model.onnx" + (" --fp16" if self.precision == "fp16"
                                                                                 else "") + " (INT8 from the QDQ nodes)"}

    def supports(self, weight_bits: int, act_bits: int) -> tuple[bool, str]:
        if weight_bits == 4:
            return False, "TensorRT has no INT4 convolution (INT4 is weight-only for MatMul/Gemm)"
        return True, ""

    def build_engine(self, onnx_path: str | os.PathLike[str], input_shape: tuple[int, ...]) -> Any:
        import tensorrt as trt

        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        with open(onnx_path, "rb") as f:
            if not parser.parse(f.read()):
                errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise HwnasError(f"tensorrt: cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        has_qdq = any(network.get_layer(i).type == trt.LayerType.QUANTIZE for i in range(network.num_layers))
        if has_qdq:
            config.set_flag(trt.BuilderFlag.INT8)
        profile = builder.create_optimization_profile()
        inp = network.get_input(0)
        profile.set_shape(inp.name, input_shape, input_shape, input_shape)
        config.add_optimization_profile(profile)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise HwnasError(f"tensorrt: engine build failed for {onnx_path}")
        return trt.Runtime(logger).deserialize_cuda_engine(blob)

    def open(self, onnx_path: str | os.PathLike[str], input_shape: tuple[int, ...], protocol: Protocol) -> Runner:
        import tensorrt as trt

        cudart = _cudart()
        _check(cudart.cudaSetDevice(self.device_id))
        engine = self.build_engine(onnx_path, input_shape)
        context = engine.create_execution_context()
        stream = _check(cudart.cudaStreamCreate())
        buffers: list[Any] = []

        def close() -> None:  # device memory and the stream are not the garbage collector's
            while buffers:
                cudart.cudaFree(buffers.pop())
            cudart.cudaStreamDestroy(stream)

        try:
            for i in range(engine.num_io_tensors):
                tname = engine.get_tensor_name(i)
                if engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT:
                    context.set_input_shape(tname, input_shape)
                shape = tuple(context.get_tensor_shape(tname))
                nbytes = int(np.prod(shape)) * np.dtype(trt.nptype(engine.get_tensor_dtype(tname))).itemsize
                ptr = _check(cudart.cudaMalloc(nbytes))
                buffers.append(ptr)
                context.set_tensor_address(tname, int(ptr))
        except BaseException:
            close()
            raise

        def run() -> None:
            if not context.execute_async_v3(stream):
                raise HwnasError("tensorrt: execute_async_v3 failed")
            _check(cudart.cudaStreamSynchronize(stream))

        run._keep = (engine, context)  # type: ignore[attr-defined]  # keep alive with the runner
        run.close = close  # type: ignore[attr-defined]
        return run
