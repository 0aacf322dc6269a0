"""A real two-node Ray cluster on loopback for tests: `ray start --head` plus a second `ray start --address`,
each with `--block` as a child process in its own process group, stopped by those ids only (never `ray stop`,
which kills every Ray process on the machine).

Found on Ray 2.60: `--node-ip-address=127.0.0.1` is replaced by the machine's address, 127.0.0.2 stays on
loopback; with token authentication off on the head (its default here), the second node must not ask for it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def ray_bin() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else (shutil.which("ray") or "ray")


@dataclass
class Cluster:
    gcs_address: str
    dashboard_url: str
    procs: list[subprocess.Popen[bytes]]


def _wait_for_nodes(address: str, n: int, env: dict[str, str], timeout: float = 90.0) -> None:
    code = ("import ray, json; ray.init(address=%r, logging_level='ERROR'); "
            "print(json.dumps(sum(1 for x in ray.nodes() if x['Alive'])))" % address)
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        if r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1]) >= n:
            return
        time.sleep(2)
    raise TimeoutError(f"Ray cluster at {address} did not reach {n} nodes in {timeout:.0f} s")


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)  # gcs_server may ignore SIGTERM
        p.wait(timeout=10)


@contextlib.contextmanager
def local_cluster(tmp: Path, worker_resources: dict[str, float]) -> Iterator[Cluster]:
    port, dash = free_port(), free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    common = ["--node-ip-address", HOST, "--num-cpus", "1", "--block"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = [open(tmp / "ray-head.log", "wb"), open(tmp / "ray-worker.log", "wb")]
    try:
        procs.append(subprocess.Popen(
            [ray_bin(), "start", "--head", "--port", str(port), "--dashboard-host", HOST, "--dashboard-port",
             str(dash), *common], stdout=logs[0], stderr=subprocess.STDOUT, env=env, start_new_session=True))
        address = f"{HOST}:{port}"
        _wait_for_nodes(address, 1, env)
        procs.append(subprocess.Popen(
            [ray_bin(), "start", "--address", address, "--resources", json.dumps(worker_resources), *common],
            stdout=logs[1], stderr=subprocess.STDOUT, env=env, start_new_session=True))
        _wait_for_nodes(address, 2, env)
        yield Cluster(address, f"http://{HOST}:{dash}", procs)
    finally:
        for p in reversed(procs):
            _stop(p)
        for f in logs:
            f.close()
