"""Ends a local Ray instance whose driver died without shutting it down (SIGKILL, OOM killer).

Ray's own processes outlive a SIGKILLed driver (`ray::DashboardAgent` and `ray::RuntimeEnvAgent` kept running
without this; `test_sigkilled_driver_leaves_no_ray_process_it_started` checks). `nas.ray_session` starts this
script beside every local Ray it starts, with a pipe on its stdin: while the driver lives it records the driver's
process tree every half second; when the pipe closes without the word "stop" (the driver died), it terminates
every recorded process that still runs -- and only those: a process is matched by pid *and* start time, so a
reused pid is never hit. Run as a plain script (no package imports), so it
costs ~15 MB and starts in milliseconds.

    python nas/ray_reaper.py DRIVER_PID
"""
from __future__ import annotations

import os
import select
import sys

import psutil

POLL_S = 0.5


def snapshot(driver: psutil.Process) -> dict[int, float]:
    try:
        kids = driver.children(recursive=True)
    except psutil.Error:
        return {}
    out = {}
    for p in kids:
        try:
            if p.pid != os.getpid():
                out[p.pid] = p.create_time()
        except psutil.Error:
            pass
    return out


def reap(seen: dict[int, float]) -> list[int]:
    procs = []
    for pid, started in seen.items():
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - started) < 1e-3:
                procs.append(p)
        except psutil.Error:
            pass
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=3)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    return [p.pid for p in procs]


def main(driver_pid: int) -> int:
    try:
        driver = psutil.Process(driver_pid)
    except psutil.Error:
        return 0
    seen: dict[int, float] = {}
    buf = b""
    while True:
        seen.update(snapshot(driver))
        ready, _, _ = select.select([sys.stdin.buffer], [], [], POLL_S)
        if ready:
            chunk = os.read(sys.stdin.fileno(), 64)
            buf += chunk
            if b"stop" in buf:
                return 0  # the driver shut Ray down itself
            if not chunk:  # EOF without "stop": the driver is gone
                break
        elif not driver.is_running():
            break
    reap(seen)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
