"""Joining or starting Ray, one way for every part of nas that runs Ray tasks or actors."""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from search_spaces import HwnasError


def ensure_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to `address`, or start a local Ray; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **kw)
        else:  # a new local instance, even when another Ray runs on this machine
            ray.init(address="local", num_cpus=num_cpus, **kw)
    except Exception as e:
        raise HwnasError(f"--ray-address: cannot connect to {address or 'a new local Ray'} "
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


@functools.cache
def remote_once(target: Any, **options: Any) -> Any:
    """`ray.remote(**options)(target)`, made once per process: re-wrapping a function costs ~30 ms a task
    (FACTS.md), and ray is imported only by the callers that use it."""
    import ray

    return ray.remote(**options)(target)
