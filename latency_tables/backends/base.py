"""`Backend`: measures an ONNX model on one device and says what that device is (its fingerprint).

Each backend is registered by name in `BACKENDS` (`get_backend(name, ...)`, `list_backends()`); one shared
contract test runs every registered backend. The timing loop lives here, once: open every model, warm each up,
then visit them round-robin (`Protocol.rounds` x `Protocol.repeats` timed runs each) so that load bursts on the
machine hit all models alike; a backend only says how to open a model into a callable that runs it once.
"""
from __future__ import annotations

import os
import platform
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from latency_tables.measurement import Measurement
from latency_tables.protocol import Protocol
from search_spaces.errors import HwnasError, bad_value
from search_spaces.registry import Registry, one_line

Runner = Callable[[], None]  # may carry a `close()` attribute: device memory to free once measured


def _plugins() -> Any:
    from latency_tables.backends import plugins

    return plugins


# other packages' backends: the `hwnas.backends` entry points (`plugins.py`)
BACKENDS: Registry[type[Backend]] = Registry(
    "latency backend", entry_points="hwnas.backends",
    check=lambda name, obj: _plugins().check_backend(name, obj),
    on_broken=lambda name, value, reason: _plugins().broken_backend(name, value, reason))


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def slug(text: str, limit: int = 32) -> str:
    s = re.sub(r"\((r|tm)\)|cpu|@.*$|processor", "", text.lower())
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:limit].strip("-") or "device"


def device_tag_from_fingerprint(fp: dict[str, Any]) -> str:
    """A short device name derived from a fingerprint, e.g. `intel-xeon-platinum-8481c-ort-cpu-t1`; a precision
    other than fp32 is a device of its own (`...-openvino-cpu-t1-bf16`): its latencies differ."""
    tag = f"{slug(str(fp.get('device', 'device')), 28)}-{fp.get('backend', 'backend')}-t{fp.get('threads', 1)}"
    precision = fp.get("precision", "fp32")
    return tag if precision == "fp32" else f"{tag}-{precision}"


# every backend's fingerprint has these (the contract test checks them; tables, device tags and validation read them)
REQUIRED_FINGERPRINT_KEYS = ("backend", "device", "threads", "batch_size", "precision")


class Backend(ABC):
    """One way of running ONNX on one device. Subclasses set `name` and implement `available`, `_device`
    and `open`; everything else (protocol, interleaving, statistics) is shared.

    What the shared contract test (`tests/test_latency_backends.py`) requires of every registered backend:
    - `available()` is (True, "") or (False, one line saying why), and `get_backend` then raises that line;
    - `fingerprint()` has every key of `REQUIRED_FINGERPRINT_KEYS` and of `resume_keys`, `backend` is `name`;
    - `open()` of a float block and (where `supports` says so) of an int8 QDQ block gives a runner that
      `measure_many` times; a model that cannot be opened comes back as an exception, not a crash;
    - a precision outside `precisions` is refused by the constructor with one line.
    """

    name: ClassVar[str]
    # what `precision` may be: the float format the device computes non-quantized layers in
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    # fingerprint keys that must be equal for a build to extend an existing table (besides REQUIRED_...)
    resume_keys: ClassVar[tuple[str, ...]] = ()
    precision: str

    def __init__(self, threads: int = 1, batch_size: int = 1, device_id: int = 0, precision: str = "fp32") -> None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise bad_value("threads", threads, "an integer >= 1")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise bad_value("batch_size", batch_size, "an integer >= 1")
        if not isinstance(device_id, int) or device_id < 0:
            raise bad_value("device_id", device_id, "an integer >= 0")
        self.check_precision(precision)
        self.threads, self.batch_size, self.device_id, self.precision = threads, batch_size, device_id, precision

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threads={self.threads}, batch_size={self.batch_size})"

    # ---- what a backend says about itself -----------------------------------------------------------
    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(True, "") when this machine can run the backend, else (False, one line saying why)."""

    @abstractmethod
    def _device(self) -> dict[str, Any]:
        """Device and library facts for the fingerprint."""

    def fingerprint(self) -> dict[str, Any]:
        """Everything that makes two tables comparable or not: device, libraries, threads, batch, precision."""
        fp = {"backend": self.name, "host": platform.node(), "os": f"{platform.system()} {platform.release()}",
              "python": platform.python_version(), "threads": self.threads, "batch_size": self.batch_size,
              "precision": self.precision}
        fp.update(self._device())
        return fp

    @classmethod
    def check_precision(cls, precision: str) -> None:
        """One line naming the precisions this backend runs, for any other."""
        if precision not in cls.precisions:
            raise bad_value("precision", precision, f"for {cls.name}: {' or '.join(cls.precisions)}")

    def precision_unavailable(self) -> str | None:
        """Why this machine cannot run the backend at its (declared) precision, or None: a CPU without bf16
        units, a GPU without fp16 tensor cores. Measuring then fails with this reason."""
        return None

    @classmethod
    def same_device_keys(cls) -> tuple[str, ...]:
        """The fingerprint keys two tables must agree on to be one table (a resumed build checks them)."""
        return REQUIRED_FINGERPRINT_KEYS + tuple(k for k in cls.resume_keys if k not in REQUIRED_FINGERPRINT_KEYS)

    def default_device_tag(self) -> str:
        return device_tag_from_fingerprint(self.fingerprint())

    def computes_on_calling_thread(self) -> bool:
        """True when `open`'s runner computes on the thread that calls it, so that thread's CPU time is the
        model's cost (`Protocol.clock == "cpu"`); False (the default) times wall clock."""
        return False

    def clock(self, protocol: Protocol) -> Callable[[], int]:
        """The nanosecond clock runs are timed with under `protocol` (see `Protocol.clock`)."""
        if protocol.clock == "cpu" and self.computes_on_calling_thread():
            return time.thread_time_ns
        return time.perf_counter_ns

    def supports(self, weight_bits: int, act_bits: int) -> tuple[bool, str]:
        """Whether blocks at these bits can run at all here (False marks them unsupported in the table)."""
        return True, ""

    # ---- deploying ------------------------------------------------------------------------------
    def deployable(self, onnx_path: str | os.PathLike[str]) -> str:
        """The file a user of this runtime deploys for the model at `onnx_path` (what `open` runs): the ONNX as it
        is, or a converted copy beside it (fp16 for ort-cuda)."""
        return str(onnx_path)

    def deployment(self) -> dict[str, Any]:
        """How to run the exported model so it behaves as measured (written into the model card)."""
        return {"runtime": self.name, "precision": self.precision, "threads": self.threads}

    def infer(self, onnx_path: str | os.PathLike[str], x: Any) -> Any:
        """The model's first output for the batch `x` (float32 NCHW) as this runtime computes it, to verify an
        export where it is deployed; None where the backend has no such path (verification then uses ORT CPU)."""
        return None

    # ---- measuring -------------------------------------------------------------------------------
    @abstractmethod
    def open(self, onnx_path: str | os.PathLike[str], input_shape: tuple[int, ...], protocol: Protocol) -> Runner:
        """Load the model for this device and return a callable that runs one inference (synchronously). A
        runner holding resources the garbage collector does not free (CUDA buffers, streams) sets `run.close`;
        `measure_many` calls it when done."""

    def measure(self, onnx_path: str | os.PathLike[str], input_shape: tuple[int, ...],
                protocol: Protocol | None = None,
                reference: tuple[str | os.PathLike[str], tuple[int, ...]] | None = None) -> Measurement:
        """One model (`measure_many` of one): with `reference`, timed between rounds of that model."""
        result = self.measure_many([(onnx_path, input_shape)], protocol, reference)[0]
        if isinstance(result, BaseException):
            raise HwnasError(f"{self.name}: cannot run {Path(onnx_path).name}: {one_line(result)}")
        return result

    def measure_many(self, items: Sequence[tuple[str | os.PathLike[str], tuple[int, ...]]],
                     protocol: Protocol | None = None,
                     reference: tuple[str | os.PathLike[str], tuple[int, ...]] | None = None
                     ) -> list[Measurement | Exception]:
        """Measure several models interleaved (round-robin). A model the backend cannot open gives its
        exception in place of a measurement, so one unsupported block does not stop a build. With `reference`,
        that model is timed (warm, `reference_runs(protocol)` runs) before the first round, between rounds and
        after the last, so each model's round median is divided by the median of the reference runs right before
        and right after that round (`Measurement.ref_ratio`). The reference is a whole subnet (milliseconds), so
        it brackets rounds rather than each model's runs: that keeps its cost near the blocks' own."""
        protocol = protocol or Protocol()
        runners: list[Runner | Exception] = []
        ref_run: Runner | None = None
        try:
            for path, shape in items:
                try:
                    runners.append(self.open(path, tuple(shape), protocol))
                except Exception as e:  # noqa: BLE001 -- recorded per model: the backend cannot run it
                    runners.append(e)
            if reference is not None:
                try:
                    ref_run = self.open(reference[0], tuple(reference[1]), protocol)
                except Exception as e:  # noqa: BLE001
                    raise HwnasError(f"{self.name}: cannot run the reference model: {one_line(e)}") from None
            return _measure_interleaved(runners, ref_run, protocol, self.clock(protocol))
        finally:
            for r in [*runners, ref_run]:
                close = getattr(r, "close", None)
                if callable(close) and not isinstance(r, Exception):
                    close()


def reference_runs(protocol: Protocol) -> int:
    """Timed runs of the reference at each round boundary."""
    return max(5, protocol.repeats // 2)


def _measure_interleaved(runners: list[Runner | Exception], ref_run: Runner | None, protocol: Protocol,
                         clock: Callable[[], int] = time.perf_counter_ns) -> list[Measurement | Exception]:
    """Warm every runner, then time them round-robin (see `Backend.measure_many`)."""
    live = [(i, r) for i, r in enumerate(runners) if not isinstance(r, Exception)]
    for _, run in live + ([(-1, ref_run)] if ref_run is not None else []):
        for _ in range(protocol.warmup):
            run()
    timings: dict[int, list[list[float]]] = {i: [] for i, _ in live}
    ref_timings: dict[int, list[list[float]]] = {i: [] for i, _ in live}

    def timed(run: Runner, n: int) -> list[float]:
        ts = []
        for _ in range(n):
            t0 = clock()
            run()
            ts.append((clock() - t0) / 1e6)
        return ts

    k = reference_runs(protocol)
    before = timed(ref_run, k) if ref_run is not None else []
    for _ in range(protocol.rounds):
        for i, run in live:
            timings[i].append(timed(run, protocol.repeats))
        after = timed(ref_run, k) if ref_run is not None else []
        for i, _ in live:
            ref_timings[i].append(before + after)
        before = after
    out: list[Measurement | Exception] = []
    for i, r in enumerate(runners):
        if isinstance(r, Exception):
            out.append(r)
            continue
        m = Measurement.from_timings(timings[i], protocol)
        if ref_run is not None:
            m = m.with_reference(timings[i], ref_timings[i])
        out.append(m)
    return out


def get_backend(name: str, threads: int = 1, batch_size: int = 1, device_id: int = 0,
                precision: str = "fp32") -> Backend:
    """The registered backend `name`, configured; a backend this machine cannot run raises one line why."""
    cls = BACKENDS.get(name)
    ok, reason = cls.available()
    if not ok:
        raise HwnasError(f"backend {name!r} is not available here: {reason}")
    return cls(threads=threads, batch_size=batch_size, device_id=device_id, precision=precision)


def list_backends(available_only: bool = False) -> list[str]:
    return [n for n in BACKENDS.names() if not available_only or BACKENDS.get(n).available()[0]]
