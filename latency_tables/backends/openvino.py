"""OpenVINO on the CPU: the same ONNX block models ort-cpu measures, read by OpenVINO's ONNX frontend (QDQ
included: its low-precision transformations turn Quantize/DequantizeLinear pairs around a Conv into an int8
convolution) and compiled for the CPU plugin with the latency hint, a fixed thread count and an explicit inference
precision, then run by a synchronous infer request.

The precision is explicit because the plugin's default is not fixed: on CPUs with AMX it computes float layers in
bf16 unless told otherwise. `precision` fp32 sets the hint to f32; bf16 sets it to bf16 (16-bit: float layers run
in bfloat16, int8 layers stay int8) and needs a CPU that reports BF16. Optional: `pip install hwnas[openvino]`.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from latency_tables.backends.base import BACKENDS, Backend, Runner
from latency_tables.protocol import Protocol
from search_spaces.errors import HwnasError
from search_spaces.signal_stack import keep_signal_stack

# hwnas precision -> OpenVINO's INFERENCE_PRECISION_HINT
_HINT = {"fp32": "f32", "bf16": "bf16"}


def compile_config(threads: int, precision: str) -> dict[str, Any]:
    """The compile properties every measurement (and a deployment that wants the measured latency) uses.

    No CPU pinning: the plugin's default under the latency hint pins its threads to cores, and on a machine that
    other work shares, a pinned thread waits for its busy core instead of moving -- with pinning, whole subnets
    measured 0.6-15.7x their blocks' sum on one loaded 2-core machine, without it 0.6-1.5x
    (experiments/results/latency.md). ONNX Runtime does not pin either."""
    return {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": _HINT[precision], "ENABLE_CPU_PINNING": False}


def _core() -> Any:
    """A Core with its device plugins loaded. Loading the CPU plugin into a Core swaps the calling thread's alternate
    signal stack for one the Core owns, and deleting the Core puts back the stack it found; Cores deleted out of
    order would leave the thread pointing at freed memory, and the next signal a Python handler catches (SIGCHLD,
    SIGINT) then crashes the process. So the plugins load here, inside `keep_signal_stack` (compiling on a Core
    whose plugins are loaded leaves the stack alone)."""
    import openvino as ov

    with keep_signal_stack():
        core = ov.Core()
        core.available_devices  # noqa: B018 -- the property loads the plugins
    return core


@BACKENDS.register("openvino-cpu")
class OpenVinoCpuBackend(Backend):
    name = "openvino-cpu"
    precisions = ("fp32", "bf16")
    resume_keys = ("openvino", "inference_precision_hint", "performance_hint", "cpu_pinning", "calling_thread")

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            core = _core()
        except ImportError as e:
            return False, f"openvino does not import ({e}); pip install hwnas[openvino]"
        if "CPU" not in core.available_devices:
            return False, f"OpenVINO here offers {', '.join(core.available_devices) or 'no device'}, not CPU"
        return True, ""

    def __init__(self, threads: int = 1, batch_size: int = 1, device_id: int = 0, precision: str = "fp32") -> None:
        super().__init__(threads=threads, batch_size=batch_size, device_id=device_id, precision=precision)
        self._ov_core: Any = None

    @property
    def core(self) -> Any:
        if self._ov_core is None:
            self._ov_core = _core()
        return self._ov_core

    def capabilities(self) -> list[str]:
        return [str(c) for c in self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]

    def _device(self) -> dict[str, Any]:
        import openvino as ov

        return {"device": str(self.core.get_property("CPU", "FULL_DEVICE_NAME")), "cores": os.cpu_count(),
                "openvino": ov.get_version(), "execution_provider": "openvino:CPU",
                "inference_precision_hint": _HINT[self.precision], "performance_hint": "LATENCY",
                "cpu_pinning": False,
                # which clock `Protocol.clock == "cpu"` times with: tables timed by wall clock never resume
                "calling_thread": self.computes_on_calling_thread(),
                "capabilities": self.capabilities()}

    def computes_on_calling_thread(self) -> bool:
        # one inference thread: a synchronous request runs every kernel on the caller's thread (measured: that
        # thread's CPU time 0.565 ms of 0.567 ms wall per run), so its CPU time is the cost without preemption
        return self.threads == 1

    def precision_unavailable(self) -> str | None:
        if self.precision == "bf16" and "BF16" not in self.capabilities():
            return f"{self.name}: this CPU reports {', '.join(self.capabilities())}, no BF16; use precision fp32"
        return None

    def _check_bf16(self) -> None:
        reason = self.precision_unavailable()
        if reason is not None:
            raise HwnasError(reason)

    def deployment(self) -> dict[str, Any]:
        cfg = compile_config(self.threads, self.precision)
        return {**super().deployment(), "compile_config": cfg,
                "how": f"openvino.Core().compile_model('model.onnx', 'CPU', {cfg}) then a synchronous infer request"}

    def infer(self, onnx_path: str | os.PathLike[str], x: Any) -> Any:
        self._check_bf16()
        compiled = self.core.compile_model(str(onnx_path), "CPU", compile_config(self.threads, self.precision))
        out = compiled.output(0)
        return np.concatenate([compiled(np.ascontiguousarray(x[i : i + 256], np.float32))[out]
                               for i in range(0, len(x), 256)])

    def open(self, onnx_path: str | os.PathLike[str], input_shape: tuple[int, ...], protocol: Protocol) -> Runner:
        import openvino as ov

        self._check_bf16()
        model = self.core.read_model(str(onnx_path))
        model.reshape({model.input(0): ov.PartialShape(list(input_shape))})
        compiled = self.core.compile_model(model, "CPU", compile_config(self.threads, self.precision))
        request = compiled.create_infer_request()
        x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
        request.set_input_tensor(ov.Tensor(x))

        def run() -> None:
            request.infer()  # synchronous: returns when the outputs are written

        run._keep = compiled  # type: ignore[attr-defined]  # the request needs its compiled model alive
        return run
