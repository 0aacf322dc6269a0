"""`keep_signal_stack`: leave the calling thread's alternate signal stack as it was around native code that swaps
it and restores it in an order we do not control.

OpenVINO installs an alternate signal stack of its own on the thread that loads its CPU plugin into a `Core` (on
first use: listing devices, reading a property, compiling) and, when that Core goes, puts back the stack that was
installed before it. Two Cores deleted in the order they were made (first in, first out) leave the thread pointing
at the first one's freed stack; the next signal handled on it -- Python runs every handler it installs, SIGINT and
SIGCHLD included, on the alternate stack -- then kills the process with SIGSEGV (si_code SI_KERNEL: the kernel
cannot write the signal frame). That was the test suite's crash "while waiting for a child process": torch's
DataLoader installs a SIGCHLD handler, and a subprocess exiting after two OpenVINO Cores had come and gone
delivered the signal (reproduced in tests/test_signal_stack.py). Putting the previous stack back right after the
native call means every later restore by the library puts back that same, still valid, stack.

Linux only (the `stack_t` layout differs elsewhere); a no-op on other systems.
"""
from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _StackT(ctypes.Structure):  # struct stack_t on Linux: void *ss_sp; int ss_flags; size_t ss_size
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def current_signal_stack() -> tuple[int, int, int] | None:
    """(address, flags, size) of the calling thread's alternate signal stack; None where this cannot be read."""
    if _LIBC is None:
        return None
    st = _StackT()
    if _LIBC.sigaltstack(None, ctypes.byref(st)) != 0:
        return None
    return int(st.ss_sp or 0), int(st.ss_flags), int(st.ss_size)


@contextmanager
def keep_signal_stack() -> Iterator[None]:
    """Run the block, then reinstall the alternate signal stack the calling thread had before it."""
    if _LIBC is None:
        yield
        return
    before = _StackT()
    saved = _LIBC.sigaltstack(None, ctypes.byref(before)) == 0
    try:
        yield
    finally:
        # SS_ONSTACK is a status bit, not a flag sigaltstack accepts; a disabled stack is put back disabled
        if saved and not before.ss_flags & 1:
            _LIBC.sigaltstack(ctypes.byref(before), None)
