"""Shared fixtures. One local Ray instance per test session (started lazily, stopped by this process only)."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see search_spaces/__init__.py
os.environ.setdefault("TQDM_DISABLE", "1")
# folder-index caches of the trees tests generate go to a throwaway folder, not the user's ~/.cache
os.environ.setdefault("HWNAS_CACHE", tempfile.mkdtemp(prefix="hwnas-test-cache-"))


def pytest_collection_modifyitems(config, items) -> None:
    """Every test that uses the session's Ray instance is marked `ray`, so `make test-fast` (-m "not slow and not
    ray") leaves Ray out without anyone remembering to mark it."""
    for item in items:
        if "ray_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance for the whole session; `ray.shutdown()` ends the processes this driver started."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 resources={"device:test-cpu": 1})
        started = True
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_space():
    from search_spaces import get_space

    return get_space("mbv3-tiny")
