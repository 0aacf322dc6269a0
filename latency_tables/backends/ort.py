"""ONNX Runtime backends: CPU, CUDA and TensorRT execution providers.

Graph optimisation stays at ORT_ENABLE_ALL, as deployed (the extended level drops the NCHWc layout and is ~3x
slower on x86, measured on this project's machine). One intra-op thread by default, one inter-op thread, sequential execution.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, ClassVar

import numpy as np

from latency_tables.backends.base import BACKENDS, Backend, Runner, cpu_model
from latency_tables.protocol import Protocol


def _providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def gpu_facts(device_id: int = 0) -> dict[str, Any]:
    """GPU name and driver from nvidia-smi (empty when there is none)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {}
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader", f"-i={device_id}"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    name, _, driver = out.partition(",")
    return {"gpu": name.strip(), "driver": driver.strip()}


def convert_to_fp16(onnx_path: str | os.PathLike[str]) -> str:
    """`<stem>.fp16.onnx` beside `onnx_path`: float initializers and ops in fp16, graph inputs/outputs fp32,
    Quantize/DequantizeLinear left in fp32 (their scales stay float). Needs onnxconverter-common (hwnas[gpu])."""
    import onnx
    from onnxconverter_common import float16

    from search_spaces.errors import HwnasError

    out = str(onnx_path).removesuffix(".onnx") + ".fp16.onnx"
    try:
        model = float16.convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True,
                                                 op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST)
                                                 + ["QuantizeLinear", "DequantizeLinear"])
    except ValueError as e:  # onnxconverter-common 1.16 cannot clean up the casts around QDQ pairs
        raise HwnasError(f"no fp16 version of {os.path.basename(onnx_path)}: onnxconverter-common: {e}") from None
    onnx.save(model, out)
    return out


class OrtBackend(Backend):
    """Shared ONNX Runtime code; subclasses pick the execution provider."""

    provider: ClassVar[str]
    install_hint: ClassVar[str]
    resume_keys = ("execution_provider", "onnxruntime")

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            providers = _providers()
        except ImportError as e:
            return False, f"onnxruntime does not import ({e})"
        if cls.provider not in providers:
            return False, (f"onnxruntime here offers {', '.join(providers)}, not {cls.provider}; "
                           f"{cls.install_hint}")
        return True, ""

    def _device(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"device": cpu_model(), "cores": os.cpu_count(), "onnxruntime": ort.__version__,
                "execution_provider": self.provider, "graph_optimization": "ORT_ENABLE_ALL"}

    def session_options(self, protocol: Protocol) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.enable_cpu_mem_arena = protocol.cpu_mem_arena
        so.log_severity_level = 3
        return so

    def provider_list(self) -> list[Any]:
        return [self.provider]

    def computes_on_calling_thread(self) -> bool:
        # one intra-op thread on CPU: ONNX Runtime runs every kernel inline in the caller's thread
        return self.provider == "CPUExecutionProvider" and self.threads == 1

    def deployment(self) -> dict[str, Any]:
        return {**super().deployment(), "providers": [p if isinstance(p, str) else p[0] for p in self.provider_list()],
                "session_options": {"intra_op_num_threads": self.threads, "graph_optimization_level": "ORT_ENABLE_ALL"}}

    def infer(self, onnx_path: str | os.PathLike[str], x: Any) -> Any:
        """Logits for accuracy, not timing: on the CPU with every core (the same logits as one thread, bit for
        bit, measured on a 4-bit mbv3-tiny subnet; 1.7x faster on 2 cores)."""
        cpu = self.provider == "CPUExecutionProvider"
        sess = self._session(onnx_path, None, threads=max(self.threads, os.cpu_count() or 1) if cpu else None)
        name = sess.get_inputs()[0].name
        return np.concatenate([sess.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)])

    def _session(self, onnx_path: str | os.PathLike[str], protocol: Protocol | None,
                 threads: int | None = None) -> Any:
        """A session as the table measures with (`threads`: another intra-op thread count)."""
        import onnxruntime as ort

        so = self.session_options(protocol or Protocol())
        if threads is not None:
            so.intra_op_num_threads = threads
        return ort.InferenceSession(self.deployable(onnx_path), so, providers=self.provider_list())

    def open(self, onnx_path: str | os.PathLike[str], input_shape: tuple[int, ...], protocol: Protocol) -> Runner:
        import onnxruntime as ort

        sess = self._session(onnx_path, protocol)
        name = sess.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
        if self.provider == "CPUExecutionProvider":
            feed = {name: x}

            def run_cpu() -> None:
                sess.run(None, feed)

            return run_cpu
        binding = sess.io_binding()  # device-resident input and outputs: time the model, not host copies
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", self.device_id))
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cuda", self.device_id)

        def run() -> None:
            sess.run_with_iobinding(binding)

        return run


@BACKENDS.register("ort-cpu")
class OrtCpuBackend(OrtBackend):
    name = "ort-cpu"
    provider = "CPUExecutionProvider"
    install_hint = "pip install onnxruntime"


@BACKENDS.register("ort-cuda")
class OrtCudaBackend(OrtBackend):
    name = "ort-cuda"
    provider = "CUDAExecutionProvider"
    install_hint = "install onnxruntime-gpu (pip install hwnas[gpu]) on a machine with an NVIDIA GPU"
    precisions = ("fp32", "fp16")
    resume_keys = OrtBackend.resume_keys + ("gpu", "driver")

    def deployable(self, onnx_path: str | os.PathLike[str]) -> str:
        """The model as an fp16 deployment runs it: float tensors converted to fp16 (inputs and outputs stay
        fp32, so the same feed works); written next to the original. fp32: the file as it is."""
        if self.precision != "fp16":
            return str(onnx_path)
        return convert_to_fp16(onnx_path)

    def _device(self) -> dict[str, Any]:
        d = super()._device()
        d.update(gpu_facts(self.device_id))
        d["device"] = d.get("gpu", d["device"])
        return d

    def provider_list(self) -> list[Any]:
        return [(self.provider, {"device_id": self.device_id}), "CPUExecutionProvider"]


@BACKENDS.register("ort-trt")
class OrtTrtBackend(OrtCudaBackend):
    name = "ort-trt"
    provider = "TensorrtExecutionProvider"
    install_hint = ("needs onnxruntime-gpu and TensorRT libraries already installed (their wheels download from "
                    "NVIDIA's index at install time)")

    def deployable(self, onnx_path: str | os.PathLike[str]) -> str:
        return str(onnx_path)  # TensorRT lowers to fp16 itself (trt_fp16_enable)

    def provider_list(self) -> list[Any]:
        opts = {"device_id": self.device_id, "trt_fp16_enable": self.precision == "fp16", "trt_int8_enable": True}
        return [(self.provider, opts), ("CUDAExecutionProvider", {"device_id": self.device_id})]
