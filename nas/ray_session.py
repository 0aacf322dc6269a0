"""Joining or starting Ray, one way for every part of nas that runs Ray tasks or actors."""
from __future__ import annotations

import functools
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


@functools.cache
def remote_once(target: Any, **options: Any) -> Any:
    """`ray.remote(**options)(target)`, made once per process: re-wrapping a function costs ~30 ms a task
    (FACTS.md), and ray is imported only by the callers that use it."""
    import ray

    return ray.remote(**options)(target)
