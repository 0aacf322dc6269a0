"""Joining or starting Ray, one way for every part of nas that runs Ray tasks or actors."""
from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from search_spaces import HwnasError, InputError

_REAPER: list[subprocess.Popen[bytes]] = []  # the watchdog of the local Ray this process started (if any)


def _start_reaper() -> None:
    """Watch this driver: if it dies without `ray.shutdown()`, the local Ray it started is ended too."""
    script = Path(__file__).with_name("ray_reaper.py")
    _REAPER.append(subprocess.Popen([sys.executable, str(script), str(os.getpid())], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))


def _stop_reaper() -> None:
    while _REAPER:
        p = _REAPER.pop()
        try:
            assert p.stdin is not None
            p.stdin.write(b"stop")
            p.stdin.close()
            p.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            p.kill()


def cluster_fit(workers: int, num_cpus: float, resources: dict[str, float] | None = None) -> float:
    """CPUs per worker so that `workers` actors can all start on the connected Ray: Ray holds an actor that
    needs more CPUs than the cluster has free forever (`--workers 3` on 2 CPUs never finished). Fewer CPUs
    per worker share the machine instead; a custom resource no node has is a clear error, not a hang."""
    import ray

    total = ray.cluster_resources()
    for name, need in (resources or {}).items():
        if total.get(name, 0) < need:
            have = sorted(k for k in total if k.startswith("device:")) or ["none"]
            raise InputError(f"ray resources: no node offers {name!r} (device resources here: {', '.join(have)})")
    cpus = float(total.get("CPU", 0))
    if cpus <= 0:
        raise HwnasError("ray: the cluster has no CPUs to run workers on")
    return min(num_cpus, cpus / max(1, workers))


def ensure_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to `address`, or start a local Ray; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        from latency_tables.executor import check_ray_address  # one probe for every part of hwnas that joins Ray

        check_ray_address(address)
    try:
        if address:
            ray.init(address=address, **kw)
        else:  # a new local instance, even when another Ray runs on this machine
            ray.init(address="local", num_cpus=num_cpus, **kw)
            _start_reaper()
    except Exception as e:
        raise HwnasError(f"ray_address: cannot connect to {address or 'a new local Ray'} "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return True


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[bool]:
    """Ray for the duration of the block (yields whether it started it); a Ray this block found running is left
    alone, one it started or joined is shut down (or disconnected) at the end. Nested blocks share the outer one:
    `hwnas search --workers N --verify-top K` starts Ray once, not once per stage."""
    started = ensure_ray(address, num_cpus)
    try:
        yield started
    finally:
        if started:
            import ray

            ray.shutdown()
            _stop_reaper()


@functools.cache
def remote_once(target: Any, **options: Any) -> Any:
    """`ray.remote(**options)(target)`, made once per process: re-wrapping a function costs ~30 ms a task
    (measured on Ray 2.60), and ray is imported only by the callers that use it."""
    import ray

    return ray.remote(**options)(target)
