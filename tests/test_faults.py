"""Faults and hangs: a killed driver leaves no Ray process hwnas started, what used to hang answers within
seconds (more search workers than CPUs, an unreachable Ray address, an unbounded sample count), and a second
`serve` on a taken port is one line."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_search import _config, search_assets  # noqa: E402,F401  (session fixture)

from nas.cli.main import cli  # noqa: E402
from search_spaces import HwnasError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.ray
@pytest.mark.slow
def test_sigkilled_driver_leaves_no_ray_process_it_started(tmp_path) -> None:
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from nas.ray_session import ensure_ray
        assert ensure_ray(None, num_cpus=1)
        print("up", flush=True)
        time.sleep(600)
    """)], cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "up"
        time.sleep(2.0)  # Ray starts its agents after init returns
        me = psutil.Process(driver.pid)
        started = {p.pid: p.create_time() for p in me.children(recursive=True)}
        reaper = [p for p in me.children() if "ray_reaper.py" in " ".join(p.cmdline())]
        assert len(started) >= 4 and reaper, started
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        deadline = time.time() + 15
        left: list[int] = []
        while time.time() < deadline:
            left = [pid for pid, t in started.items() if _alive(pid, t)]
            if not left:
                break
            time.sleep(0.5)
        assert not left, [psutil.Process(p).cmdline()[:2] for p in left if psutil.pid_exists(p)]
    finally:
        if driver.poll() is None:
            driver.kill()


def _alive(pid: int, created: float) -> bool:
    try:
        p = psutil.Process(pid)
        return abs(p.create_time() - created) < 1e-3 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_ray_shutdown_stops_the_reaper_without_killing_anything() -> None:
    from nas import ray_session

    ray_session._REAPER.append(subprocess.Popen([sys.executable, str(REPO / "nas" / "ray_reaper.py"),
                                                 str(os.getpid())], stdin=subprocess.PIPE))
    p = ray_session._REAPER[0]
    ray_session._stop_reaper()
    assert p.wait(5) == 0 and not ray_session._REAPER


@pytest.mark.ray
def test_more_workers_than_cpus_finish(ray_local, search_assets, tmp_path) -> None:  # noqa: F811
    from nas.search import run_search

    assert ray_local.cluster_resources()["CPU"] == 2
    t0 = time.perf_counter()
    res = run_search(_config(search_assets, tmp_path / "o", trials=60, workers=3, sampler="random", batch_size=20))
    assert res.n_trials == 60
    assert time.perf_counter() - t0 < 60  # it never finished (killed after 180 s) before


@pytest.mark.ray
def test_a_device_resource_no_node_has_is_a_clear_error(ray_local) -> None:
    from nas.ray_session import cluster_fit
    from search_spaces import InputError

    with pytest.raises(InputError, match="no node offers 'device:jetson'.*device:test-cpu"):
        cluster_fit(1, 1.0, {"device:jetson": 1})
    assert cluster_fit(4, 1.0) == 0.5


def test_unreachable_ray_address_fails_within_seconds() -> None:
    from latency_tables.executor import check_ray_address

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(HwnasError, match=f"cannot reach 127.0.0.1:{port} within 5 s"):
        check_ray_address(f"127.0.0.1:{port}")
    assert time.perf_counter() - t0 < 10


def test_huge_sample_count_is_refused_at_once() -> None:
    t0 = time.perf_counter()
    r = CliRunner().invoke(cli, ["sample", "--space", "mbv3-tiny", "--n", "100000000000"])
    assert r.exit_code == 2 and "--n" in r.output and len(r.output.strip().splitlines()) == 1
    assert time.perf_counter() - t0 < 10


def test_serve_on_a_taken_port_is_one_line(tmp_path) -> None:
    from nas.store import ResultsStore

    ResultsStore(tmp_path / "r.db").close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = CliRunner().invoke(cli, ["serve", "--store", str(tmp_path / "r.db"), "--port", str(port)])
    assert r.exit_code == 1, r.output
    assert f"cannot listen on 127.0.0.1:{port}" in r.output and len(r.output.strip().splitlines()) == 1
