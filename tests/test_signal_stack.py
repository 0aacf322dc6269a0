"""The alternate signal stack survives native code that swaps it: `keep_signal_stack` on its own, and OpenVINO
backends and models deleted in the order they were made, which without it left the thread on a freed stack so that
the next Python-handled signal (here SIGCHLD from a subprocess) killed the process with SIGSEGV."""
from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import pytest

from search_spaces.signal_stack import _StackT, current_signal_stack, keep_signal_stack

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is read through glibc")


@linux_only
def test_the_previous_stack_is_back_after_the_block() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    before = current_signal_stack()
    other = ctypes.create_string_buffer(64 * 1024)
    with keep_signal_stack():
        st = _StackT(ctypes.cast(other, ctypes.c_void_p), 0, len(other))
        assert libc.sigaltstack(ctypes.byref(st), None) == 0
        assert current_signal_stack()[0] == ctypes.addressof(other)  # the block really swapped it
    assert current_signal_stack() == before


@linux_only
def test_openvino_backends_and_models_deleted_first_in_first_out_leave_signals_working(tmp_path) -> None:
    from latency_tables import BACKENDS

    ok, reason = BACKENDS.get("openvino-cpu").available()
    if not ok:
        pytest.skip(reason)
    # in a child process: a regression kills it, not the test session
    script = textwrap.dedent(f"""
        import faulthandler, gc, signal, subprocess, sys
        faulthandler.enable()  # as pytest does: Python's handlers then run on faulthandler's alternate stack
        from latency_tables import get_backend
        from latency_tables.models import export_block
        from latency_tables.protocol import Protocol
        from search_spaces import BlockSpec, get_space
        from search_spaces.signal_stack import current_signal_stack
        path, shape = export_block(get_space("mbv3-tiny"),
                                   BlockSpec.from_key("mbconv:in8x8:c24-72-32:k3:s1:hswish:se0:w32a32"), {str(tmp_path)!r})
        before = current_signal_stack()
        backends = [get_backend("openvino-cpu") for _ in range(2)]  # two Cores, each loading the CPU plugin
        for be in backends:
            be.fingerprint()
        runs = [be.open(path, shape, Protocol.quick()) for be in backends for _ in range(2)]
        for run in runs:
            run()
        while runs:  # first in, first out
            del runs[0]; gc.collect()
        while backends:
            del backends[0]; gc.collect()
        assert current_signal_stack() == before, (current_signal_stack(), before)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # as torch's DataLoader does
        for _ in range(10):
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        print("signals handled")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("signals handled"), (r.returncode, r.stderr[-2000:])
