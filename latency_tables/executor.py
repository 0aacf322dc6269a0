"""Where device work runs: in this process, or as Ray tasks on the nodes carrying the custom resource
`device:TAG` -- one task at a time per unit of that resource, so measurements never overlap on a device
(give each device node `device:TAG=1`)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from search_spaces.errors import InputError

_REMOTE: dict[str, Any] = {}


class LocalExecutor:
    """Runs each call here, in order."""

    def map(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        for i, args in enumerate(calls):
            yield i, fn(*args)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


class RayExecutor:
    """Runs each call as a Ray task that needs one `device:TAG`; results come back as tasks finish."""

    def __init__(self, address: str, device_tag: str) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        self.ray = ray
        self.resource = f"device:{device_tag}"
        have = ray.cluster_resources()
        if have.get(self.resource, 0) < 1:
            devices = sorted(k for k in have if k.startswith("device:")) or ["none"]
            raise InputError(f"--device-tag: got {device_tag!r}, allowed: a device resource of the Ray cluster "
                             f"({', '.join(devices)})")

    def _remote(self, fn: Callable[..., Any]) -> Any:
        name = f"{fn.__module__}.{fn.__qualname__}"
        if name not in _REMOTE:  # wrap once per process: re-wrapping costs ~30 ms a task (FACTS.md)
            _REMOTE[name] = self.ray.remote(fn)
        return _REMOTE[name].options(resources={self.resource: 1}, num_cpus=1, max_retries=1)

    def map(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        remote = self._remote(fn)
        refs = [remote.remote(*args) for args in calls]
        index = {r.hex(): i for i, r in enumerate(refs)}
        pending = list(refs)
        try:
            while pending:
                done, pending = self.ray.wait(pending, num_returns=1)
                yield index[done[0].hex()], self.ray.get(done[0])
        finally:
            for r in pending:
                self.ray.cancel(r)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.ray.get(self._remote(fn).remote(*args))
