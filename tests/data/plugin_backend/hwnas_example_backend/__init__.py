"""A third-party latency backend, as another package would ship it: found through its `hwnas.backends` entry
point (declared in the `.dist-info` beside it, which is what `pip install` writes), never imported by hwnas."""
from latency_tables.backends.ort import OrtCpuBackend


class ExampleOrtBackend(OrtCpuBackend):
    """ONNX Runtime's CPU provider under another name, with one fingerprint fact of its own."""

    name = "example-ort"
    resume_keys = (*OrtCpuBackend.resume_keys, "plugin")

    def _device(self) -> dict:
        return {**super()._device(), "plugin": "hwnas-example-backend 0.1"}
