"""Every registered latency backend passes the contract shipped in `latency_tables.testing`; backend options."""
from __future__ import annotations

import pytest

from latency_tables import BACKENDS, Protocol, get_backend, list_backends
from latency_tables.testing import PROTOCOL, BackendContract
from search_spaces.errors import HwnasError, InputError


def test_registry_names() -> None:
    assert set(list_backends()) >= {"ort-cpu", "ort-cuda", "ort-trt", "tensorrt", "openvino-cpu"}
    assert "ort-cpu" in list_backends(available_only=True)
    with pytest.raises(InputError, match="closest: ort-cpu"):
        get_backend("ort-cpux")


class TestRegisteredBackends(BackendContract):
    @pytest.fixture(params=list_backends())
    def backend_name(self, request) -> str:
        return request.param


def test_backend_bad_options() -> None:
    with pytest.raises(InputError, match="threads: got 0"):
        get_backend("ort-cpu", threads=0)
    with pytest.raises(InputError, match="precision: got 'int3'"):
        get_backend("ort-cpu", precision="int3")
    # a 16-bit precision is offered only by the backends that run it
    with pytest.raises(InputError, match="precision: got 'bf16', allowed: for ort-cpu: fp32$"):
        get_backend("ort-cpu", precision="bf16")
    assert BACKENDS.get("openvino-cpu").precisions == ("fp32", "bf16")
    assert BACKENDS.get("ort-cuda").precisions == BACKENDS.get("tensorrt").precisions == ("fp32", "fp16")


def test_protocol_validation() -> None:
    assert Protocol.from_dict(PROTOCOL.to_dict()) == PROTOCOL
    with pytest.raises(InputError, match="protocol.statistic: got 'mean'"):
        Protocol(statistic="mean")
    with pytest.raises(InputError, match="protocol key 'repeat'"):
        Protocol.from_dict({"repeat": 3})


def test_measure_many_closes_every_runner_it_opened(tmp_path) -> None:
    """Runners holding device memory (TensorRT's CUDA buffers and stream) are closed once measured, and also when
    the reference model cannot be opened; a model that failed to open has nothing to close."""
    from latency_tables.backends.base import Backend

    closed: list[str] = []

    class Fake(Backend):
        name = "fake"

        @classmethod
        def available(cls) -> tuple[bool, str]:
            return True, ""

        def _device(self) -> dict:
            return {"kind": "fake"}

        def open(self, onnx_path, input_shape, protocol):
            if "broken" in str(onnx_path):
                raise RuntimeError("cannot open")

            def run() -> None:
                pass

            run.close = lambda: closed.append(str(onnx_path))
            return run

    be = Fake()
    out = be.measure_many([("a.onnx", (1,)), ("broken.onnx", (1,))], PROTOCOL, reference=("ref.onnx", (1,)))
    assert closed == ["a.onnx", "ref.onnx"] and isinstance(out[1], RuntimeError) and out[0].median_ms >= 0
    closed.clear()
    with pytest.raises(HwnasError, match="cannot run the reference model"):
        be.measure_many([("a.onnx", (1,))], PROTOCOL, reference=("broken-ref.onnx", (1,)))
    assert closed == ["a.onnx"]


def test_cli_bad_backend_input_is_one_line(tmp_path) -> None:
    """An unknown backend, a precision the backend does not run, a table of another runtime for --backend: one
    line each, exit 2, nothing written."""
    from click.testing import CliRunner

    from latency_tables import LatencyTable
    from nas.cli.main import cli

    runner = CliRunner()
    out = tmp_path / "t.json"
    cases = [
        (["latency", "build", "--space", "mbv3-tiny", "--backend", "openvino", "--out", str(out)],
         "unknown latency backend 'openvino'; known: ", "(closest: openvino-cpu)"),
        (["latency", "build", "--space", "mbv3-tiny", "--backend", "ort-cpu", "--precision", "bf16", "--out",
          str(out)], "precision: got 'bf16', allowed: for ort-cpu: fp32", ""),
        (["latency", "build", "--space", "mbv3-tiny", "--backend", "openvino-cpu", "--precision", "fp16", "--out",
          str(out)], "precision: got 'fp16', allowed: for openvino-cpu: fp32 or bf16", ""),
    ]
    fp = {"backend": "ort-cpu", "device": "test", "threads": 1, "batch_size": 1, "precision": "fp32"}
    table = tmp_path / "ort.json"
    LatencyTable("mbv3-tiny", "test-cpu", "ort-cpu", fp, PROTOCOL.to_dict(), [32]).save(table)
    pred = tmp_path / "pred"
    pred.mkdir()
    cases.append((["search", "--space", "mbv3-tiny", "--predictor", str(pred), "--table", str(table),
                   "--backend", "openvino-cpu", "--out", str(tmp_path / "s")],
                  "--backend: got 'openvino-cpu', but the latency table was measured with 'ort-cpu'", ""))
    for args, want, tail in cases:
        res = runner.invoke(cli, args)
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1, res.output
        assert want in lines[0] and lines[0].endswith(tail), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ort.json", "pred"]
