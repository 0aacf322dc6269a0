"""Where device work runs: in this process, or as Ray tasks on the nodes carrying the custom resource
`device:TAG` -- one task at a time per unit of that resource, so measurements never overlap on a device
(give each device node `device:TAG=1`)."""
from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

from search_spaces.errors import HwnasError, InputError

_REMOTE: dict[str, Any] = {}
CONNECT_TIMEOUT_S = 5.0


def check_ray_address(address: str) -> None:
    """Fail within seconds for a Ray `HOST:PORT` nobody listens on (`ray.init` waited minutes without a word),
    and bound Ray's own retries of a GCS that does not answer (~1 s each) unless the operator chose a budget."""
    target = address.removeprefix("ray://")
    if address in ("auto", "local") or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"ray_address: got {address!r}, allowed: auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise HwnasError(f"ray_address: cannot reach {address} within {CONNECT_TIMEOUT_S:g} s "
                         f"({e.strerror or type(e).__name__}); is the head node up (ray start --head)?") from None
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(int(CONNECT_TIMEOUT_S)))


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
            check_ray_address(address)
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        self.ray = ray
        self.resource = f"device:{device_tag}"
        have = ray.cluster_resources()
        if have.get(self.resource, 0) < 1:
            devices = sorted(k for k in have if k.startswith("device:")) or ["none"]
            raise InputError(f"device_tag: got {device_tag!r}, allowed: a device resource of the Ray cluster "
                             f"({', '.join(devices)})")

    def _remote(self, fn: Callable[..., Any]) -> Any:
        name = f"{fn.__module__}.{fn.__qualname__}"
        if name not in _REMOTE:  # wrap once per process: `ray.remote(f)` per call cost ~30 ms a task
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
