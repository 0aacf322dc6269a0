"""The HTTP endpoint, answered by a real uvicorn server (`hwnas serve`) on a free loopback port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from nas.lookup import query
from nas.query_config import QueryConfig
from nas.store import ResultsStore
from tests.test_store_query import FP, SPACE, brute_force, make_entries

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("serve") / "results.db"
    entries = make_entries(300, seed=4)
    with ResultsStore(db) as st:
        st.add_front(entries, space=SPACE, device_tag="test-cpu", device_fingerprint=FP, dataset="digits",
                     predictor="mlp-v1")
    port = free_port()
    log = open(db.parent / "server.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli.main", "serve", "--store", str(db), "--port", str(port),
         "--log-level", "warning"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"server exited with {proc.returncode}: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /health within 60 s")
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10.0) as client:
            yield client, entries, db
    finally:
        proc.terminate()  # this process only, by handle
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_best_subnet_over_http(server):
    client, entries, db = server
    params = {"space": SPACE, "device": "test-cpu", "latency_ms": 2.5, "size_mb": 0.8}
    r = client.get("/subnets", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    want = brute_force(entries, latency_ms=2.5, size_mb=0.8)
    assert body["found"] is True
    assert body["best"]["config"] == want.config.to_dict()
    assert body["best"]["latency_ms"] == want.latency_ms and body["best"]["size_bytes"] == want.size_bytes
    assert body["best"]["provenance"]["device_tag"] == "test-cpu"
    with ResultsStore(db, create=False) as st:  # the same answer as the Python API
        want = query(QueryConfig(store=st, space=SPACE, device="test-cpu", latency_ms=2.5, size_mb=0.8))
        assert body == want.to_dict()
    r = client.get("/subnets", params={**params, "objective": "latency"})
    assert r.status_code == 200 and r.json()["best"]["latency_ms"] == brute_force(
        entries, latency_ms=2.5, size_mb=0.8, objective="latency").latency_ms


def test_nothing_meets_is_404_with_closest(server):
    client, _, _ = server
    r = client.get("/subnets", params={"space": SPACE, "device": "test-cpu", "latency_ms": 0.01})
    assert r.status_code == 404
    body = r.json()
    assert body["found"] is False and body["message"].startswith("nothing meets these budgets")
    assert len(body["closest"]) == 3 and all(c["violations"]["latency_ms"]["value"] > 0.01 for c in body["closest"])


@pytest.mark.parametrize("params, status, text", [
    ({"space": "nope", "device": "test-cpu"}, 400, "space: got 'nope', allowed: one of {mbv3-tiny}"),
    ({"space": SPACE, "device": "tpu"}, 400, "device: got 'tpu', allowed: one of {test-cpu}"),
    ({"space": SPACE, "device": "test-cpu", "latency_ms": -2}, 400, "latency_ms: got -2.0, allowed: a positive"),
    ({"space": SPACE, "device": "test-cpu", "min_accuracy": 250}, 400, "min_accuracy: got 250.0"),
    ({"space": SPACE, "device": "test-cpu", "objective": "fast"}, 400, "objective: got 'fast'"),
    ({"space": SPACE, "device": "test-cpu", "size_mb": "big"}, 422, "size_mb: got 'big'"),
    ({"space": SPACE}, 422, "device: got None"),
])
def test_bad_queries_are_4xx_with_a_clear_message(server, params, status, text):
    client, _, _ = server
    r = client.get("/subnets", params=params)
    assert r.status_code == status, r.text
    assert text in r.json()["error"]


def test_openapi_and_fronts(server):
    client, _, _ = server
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/subnets"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"space", "device", "latency_ms", "size_mb", "min_accuracy", "objective"} <= names
    # each parameter is described by its `QueryConfig` field's help: the HTTP API, `hwnas query` and the Python
    # config say the same thing, written once
    from nas.query_config import QueryConfig
    from search_spaces.settings import field_map, help_of

    fields = field_map(QueryConfig)
    for p in op["parameters"]:
        assert p["description"].startswith(help_of(fields[p["name"]])), p
    assert {"200", "400", "404", "422"} <= set(op["responses"])
    fronts = client.get("/fronts").json()
    assert len(fronts) == 1 and fronts[0]["n_entries"] == 300 and fronts[0]["device_tag"] == "test-cpu"
