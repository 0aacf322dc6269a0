"""A real two-node Ray cluster on loopback for tests: `ray start --head` plus a second `ray start --address`,
each with `--block` as a child process in its own process group, stopped by those ids only (never Ray's own stop command,
which kills every Ray process on the machine).

Found on Ray 2.60: `--node-ip-address=127.0.0.1` is replaced by the machine's address, 127.0.0.2 stays on
loopback. Whether a head enables token authentication depends on whether `~/.ray/auth_token` exists (any local
`ray.init` creates it), so the cluster runs with token authentication explicitly, from a token of its own
(`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN_PATH`); every client of it needs `Cluster.env`.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
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
    env: dict[str, str]  # what a client (ray job submit, ray status) needs: the token
    procs: list[subprocess.Popen[bytes]]


def _wait_for_nodes(address: str, n: int, env: dict[str, str], timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run([ray_bin(), "status", "--address", address], capture_output=True, text=True, env=env,
                           timeout=60)
        alive = r.stdout.split("Pending:")[0].count(" node_") if r.returncode == 0 else 0
        if alive >= n:
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
    token = tmp / "ray_auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env.pop("RAY_ADDRESS", None)
    common = ["--node-ip-address", HOST, "--num-cpus", "1", "--block"]

    def own_ports() -> list[str]:
        # each node's agents on free ports: the defaults may be held by another Ray instance on this machine
        # (the test session's own local Ray), and then the head's job agent never comes up
        return ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port()),
                "--ray-client-server-port", str(free_port())]
    procs: list[subprocess.Popen[bytes]] = []
    logs = [open(tmp / "ray-head.log", "wb"), open(tmp / "ray-worker.log", "wb")]
    try:
        procs.append(subprocess.Popen(
            [ray_bin(), "start", "--head", "--port", str(port), "--dashboard-host", HOST, "--dashboard-port",
             str(dash), *own_ports(), *common], stdout=logs[0], stderr=subprocess.STDOUT, env=env, start_new_session=True))
        address = f"{HOST}:{port}"
        _wait_for_nodes(address, 1, env)
        procs.append(subprocess.Popen(
            [ray_bin(), "start", "--address", address, "--resources", json.dumps(worker_resources), *own_ports(),
             *common],
            stdout=logs[1], stderr=subprocess.STDOUT, env=env, start_new_session=True))
        _wait_for_nodes(address, 2, env)
        yield Cluster(address, f"http://{HOST}:{dash}", env, procs)
    finally:
        for p in reversed(procs):
            _stop(p)
        for f in logs:
            f.close()


def submit_job(cluster: Cluster, entrypoint: list[str], timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    """`ray job submit` to the cluster. The head's job agent starts a little after the node is up, and until it
    does the dashboard answers 'No available agent to submit job, please try again later': retry that only."""
    cmd = [ray_bin(), "job", "submit", "--address", cluster.dashboard_url, "--", *entrypoint]
    deadline = time.time() + 90
    while True:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=cluster.env)
        if r.returncode == 0 or "No available agent" not in r.stdout + r.stderr or time.time() > deadline:
            return r
        time.sleep(3)
