"""The contract every latency backend passes: it skips with the backend's own reason where the machine cannot run
it, and otherwise measures real ONNX models (a float and a quantized block) in every precision it declares. A
backend from another package gets the same checks by subclassing `BackendContract` and giving `backend_name`:

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend_name(self) -> str:
            return "my-npu"

The base's name does not start with `Test`, so pytest collects only the subclasses."""
from __future__ import annotations

import pytest

from latency_tables.backends import BACKENDS, get_backend
from latency_tables.backends.base import REQUIRED_FINGERPRINT_KEYS, Backend
from latency_tables.models import export_block
from latency_tables.protocol import Protocol
from search_spaces import BlockSpec, get_space
from search_spaces.errors import HwnasError, InputError

PROTOCOL = Protocol(warmup=2, repeats=4, rounds=2, interleave=4)
FLOAT_BLOCK = "mbconv:in8x8:c24-72-32:k3:s1:hswish:se0:w32a32"
QUANT_BLOCK = "mbconv:in8x8:c24-72-32:k3:s1:hswish:se0:w8a8"


class BackendContract:
    @pytest.fixture
    def backend_name(self) -> str:  # pragma: no cover - the subclass gives it
        raise NotImplementedError("override the `backend_name` fixture")

    def test_backend_contract(self, backend_name: str, tmp_path) -> None:
        name = backend_name
        cls = BACKENDS.get(name)
        ok, reason = cls.available()
        if not ok:
            assert reason and "\n" not in reason
            with pytest.raises(HwnasError, match="not available here") as e:
                get_backend(name)
            assert "\n" not in str(e.value)
            pytest.skip(reason)
        be = get_backend(name, threads=1, batch_size=1)
        fp = be.fingerprint()
        for field in (*REQUIRED_FINGERPRINT_KEYS, *cls.resume_keys):
            assert field in fp, field
        assert set(cls.same_device_keys()) >= set(REQUIRED_FINGERPRINT_KEYS)
        assert fp["backend"] == name and fp["threads"] == 1 and fp["precision"] == "fp32"
        assert cls.precisions[0] == "fp32"
        with pytest.raises(InputError, match=f"precision: got 'int3', allowed: for {name}: "):
            get_backend(name, precision="int3")
        assert be.default_device_tag().endswith(f"{name}-t1")
        sp = get_space("mbv3-tiny")
        items = []
        for key in (FLOAT_BLOCK, QUANT_BLOCK):
            b = BlockSpec.from_key(key)
            if be.supports(b.weight_bits, b.act_bits)[0]:
                items.append(export_block(sp, b, tmp_path))
        results = be.measure_many(items + [(tmp_path / "missing.onnx", (1, 24, 8, 8))], PROTOCOL)
        assert isinstance(results[-1], Exception)  # a model the backend cannot open is reported, not fatal
        for m in results[:-1]:
            assert not isinstance(m, Exception), m
            assert m.count == PROTOCOL.repeats * PROTOCOL.rounds
            assert 0 < m.p10_ms <= m.median_ms <= m.p90_ms
        if be.computes_on_calling_thread():  # its CPU clock then sees the whole run (Protocol.clock "cpu")
            _assert_computes_on_calling_thread(be, items[0])
        with pytest.raises(HwnasError, match="missing.onnx"):
            be.measure(tmp_path / "missing.onnx", (1, 24, 8, 8), PROTOCOL)
        for precision in cls.precisions[1:]:  # every 16-bit format the backend declares runs the same blocks
            be16 = get_backend(name, precision=precision)
            fp16 = be16.fingerprint()
            assert fp16["precision"] == precision and be16.default_device_tag().endswith(f"-t1-{precision}")
            assert [k for k in cls.same_device_keys() if fp16.get(k) != fp.get(k)]  # never resumes an fp32 table
            reason = be16.precision_unavailable()  # this machine lacks the units: a clear refusal instead
            for m in be16.measure_many(items, PROTOCOL):
                if reason is not None:
                    assert isinstance(m, HwnasError) and str(m) == reason, m
                    continue
                assert not isinstance(m, Exception), m
                assert m.median_ms > 0


def _assert_computes_on_calling_thread(be: Backend, item: tuple) -> None:
    """The calling thread's CPU time is (nearly) all the CPU time the process spends on the runs: no other
    thread computes. Load on the machine stretches both alike, so the ratio holds on a busy one too."""
    import time

    run = be.open(item[0], tuple(item[1]), PROTOCOL)
    try:
        for _ in range(20):
            run()
        thread0, process0 = time.thread_time_ns(), time.process_time_ns()
        for _ in range(200):
            run()
        thread, process = time.thread_time_ns() - thread0, time.process_time_ns() - process0
    finally:
        close = getattr(run, "close", None)
        if callable(close):
            close()
    assert thread >= 0.9 * process, (be.name, thread, process)
