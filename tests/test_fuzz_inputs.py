"""Fuzzing the three doors bad input comes through -- the experiment YAML, the CLI's numeric and path options and
the HTTP query parameters -- with one assertion: success, or exit 2 (HTTP 4xx) with one line under 2 kB. Never a
traceback, never exit 1 (HTTP 500) for bad input. In-process (click's CliRunner, FastAPI's TestClient), so the
suite stays well under a minute."""
from __future__ import annotations

import copy
import json
import math
import platform
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from test_search import SPACE, search_assets  # noqa: E402,F401
from tiny_experiment import tiny_experiment  # noqa: E402

from nas.cli.main import cli  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def assert_clean(r: Any, ok: tuple[int, ...] = (0,)) -> None:
    """Success, or exit 2 with one short line; anything else (a traceback, exit 1 for bad input) fails."""
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"traceback: {r.exception!r}") from r.exception
    assert r.exit_code in (*ok, 2), (r.exit_code, r.output[-2000:])
    if r.exit_code == 2:
        out = r.output.strip()
        assert len(out.splitlines()) == 1 and len(out) < 2048 and out.startswith("error: "), out[:3000]


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def assets(search_assets):  # noqa: F811  (test_search's session fixture: built once for the session)
    return search_assets


# ---- the experiment YAML -------------------------------------------------------------------------------------
NASTY = st.one_of(
    st.booleans(), st.none(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.lists(st.integers(-3, 300), max_size=3),
    st.sampled_from(["../../../tmp/x", "foo://x/y", "postgresql+pg8000://u@h/x", "/nonexistent/s.pt", "-1",
                     "accuracy", ["accuracy"], ["accuracy", "accuracy"], {"x": 1}, 2**40]))


def _leaves(d: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(d, dict):
        return [p for k, v in d.items() for p in _leaves(v, (*prefix, k))] + [prefix + ("__new__",)]
    if isinstance(d, list):
        return [p for i, v in enumerate(d) for p in _leaves(v, (*prefix, i))] + [prefix]
    return [prefix]


def _set(d: Any, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        d = d[k]
    d[path[-1] if path[-1] != "__new__" else "surprise"] = value


@FUZZ
@given(data=st.data())
def test_fuzz_experiment_yaml(runner, tmp_path_factory, data) -> None:
    d = tmp_path_factory.mktemp("yaml")
    exp = tiny_experiment(d / "wd")
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _leaves(exp) if p and p[0] != "workdir"]
        path = data.draw(st.sampled_from(paths))
        try:
            # a copy: NASTY's lists and dicts are shared constants, and setting one inside itself makes a cycle
            _set(exp, path, copy.deepcopy(data.draw(NASTY)))
        except (TypeError, IndexError, KeyError):
            pass  # the path vanished under an earlier mutation
    f = d / "e.yaml"
    f.write_text(yaml.safe_dump(exp, allow_unicode=True))
    r = runner.invoke(cli, ["run", str(f), "--dry-run"])
    assert_clean(r)
    assert not (d / "wd").exists() or r.exit_code == 0


@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda s: s.encode("utf-8"))))
def test_fuzz_yaml_bytes(runner, tmp_path_factory, raw) -> None:
    f = tmp_path_factory.mktemp("raw") / "e.yaml"
    f.write_bytes(raw)
    r = runner.invoke(cli, ["run", str(f), "--dry-run"])
    assert_clean(r, ok=())


def _yaml(tmp_path, text: str) -> Path:
    f = tmp_path / "e.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize("mutate, needle", [
    (lambda e: e["search"].update(trials=True), "search.trials"),
    (lambda e: e["supernet"].update(lr=math.inf), "supernet.lr"),
    (lambda e: e["budgets"][0].update(latency_ms=math.inf), "budgets[0].latency_ms"),
    (lambda e: e.update(seed=-1), "seed"),
    (lambda e: e["search"].update(objectives=["accuracy"]), "search.objectives"),
    (lambda e: e["search"].update(objectives=["accuracy", "accuracy"]), "distinct objectives"),
    (lambda e: e["search"].update(storage="foo://db/x"), "search.storage: got scheme 'foo'"),
    (lambda e: e.update(store="mongodb://h/x"), "store: got scheme 'mongodb'"),
    (lambda e: e.update(name="../../../tmp/x"), "name: allowed: letters, digits"),
    (lambda e: e["supernet"].update(checkpoint="/nonexistent/s.pt"), "supernet.checkpoint: got '/nonexistent"),
    (lambda e: e["latency"].update(table="/nonexistent/t.json"), "latency.table: got '/nonexistent"),
])
def test_yaml_refuses(runner, tmp_path, mutate, needle) -> None:
    exp = tiny_experiment(tmp_path / "wd")
    mutate(exp)
    r = runner.invoke(cli, ["run", str(_yaml(tmp_path, yaml.safe_dump(exp))), "--dry-run"])
    assert_clean(r, ok=())
    assert needle in r.output, r.output


def test_yaml_refuses_a_truncated_table_duplicate_keys_and_alias_bombs(runner, tmp_path, assets) -> None:
    torn = tmp_path / "torn.json"
    torn.write_text(Path(assets["table"]).read_text()[:300])
    exp = tiny_experiment(tmp_path / "wd", latency={"table": str(torn)})
    r = runner.invoke(cli, ["run", str(_yaml(tmp_path, yaml.safe_dump(exp))), "--dry-run"])
    assert_clean(r, ok=())
    assert "not valid JSON" in r.output

    text = yaml.safe_dump(tiny_experiment(tmp_path / "wd")) + "seed: 3\n"  # seed twice
    r = runner.invoke(cli, ["run", str(_yaml(tmp_path, text)), "--dry-run"])
    assert_clean(r, ok=())
    assert "duplicate key 'seed'" in r.output

    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    r = runner.invoke(cli, ["run", str(_yaml(tmp_path, bomb)), "--dry-run"])
    assert_clean(r, ok=())
    assert "alias" in r.output and len(r.output) < 400

    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    r = runner.invoke(cli, ["run", str(tmp_path / "latin1.yaml"), "--dry-run"])
    assert_clean(r, ok=())
    assert "not UTF-8" in r.output


# ---- CLI numeric options ---------------------------------------------------------------------------------------
NUMBER = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(repr), st.text(max_size=6),
                   st.sampled_from(["nan", "inf", "-inf", "1e400", "0x10", "", "1_000", "true", "-0", "1e-320"]))


def _as_int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


@FUZZ
@given(n=NUMBER, seed=NUMBER)
def test_fuzz_sample_numbers(runner, n, seed) -> None:
    if (v := _as_int(n)) is not None and v > 5:
        n = "5"  # a valid large count succeeds (streamed); keep the output small
    assert_clean(runner.invoke(cli, ["sample", "--space", SPACE, "--n", n, "--seed", seed]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opts=st.dictionaries(st.sampled_from(["--population-size", "--batch-size", "--seed", "--latency-ms",
                                             "--size-mb", "--min-accuracy", "--trials", "--workers", "--verify-top"]),
                            NUMBER, min_size=1, max_size=3))
def test_fuzz_search_numbers(runner, assets, tmp_path_factory, opts) -> None:
    clamp = {"--population-size": 30, "--batch-size": 30, "--trials": 30, "--workers": 0, "--verify-top": 0}
    for k, hi in clamp.items():  # a valid value runs a real search: keep it tiny and in this process
        if k in opts and (v := _as_int(opts[k])) is not None and v > hi:
            opts[k] = str(hi)
    args = ["search", "--space", SPACE, "--predictor", assets["predictor"], "--table", assets["table"],
            "--trials", "30", "--out", str(tmp_path_factory.mktemp("s") / "o")]
    for k, v in opts.items():
        args += [k, v]
    assert_clean(runner.invoke(cli, args))


@FUZZ
@given(lat=NUMBER, size=NUMBER, acc=NUMBER)
def test_fuzz_query_numbers(runner, store, lat, size, acc) -> None:
    r = runner.invoke(cli, ["query", "--store", str(store), "--space", SPACE, "--device", "dev",
                            "--latency-ms", lat, "--size-mb", size, "--min-accuracy", acc])
    assert_clean(r, ok=(0, 1))  # 1: a valid query nothing meets
    if r.exit_code == 1:
        assert "closest" in r.output or "no stored" in r.output.lower() or "meets" in r.output, r.output


# ---- CLI path options ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_paths(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("paths")
    (d / "dir").mkdir()
    (d / "file").write_text("{}\n")
    (d / "latin1").write_bytes("{\"caf\xe9\": 1}\n".encode("latin-1"))
    (d / "garbage").write_bytes(bytes(range(256)) * 4)
    (d / "empty").write_bytes(b"")
    return {"missing": d / "nope" / "x", "dir": d / "dir", "file": d / "file", "latin1": d / "latin1",
            "garbage": d / "garbage", "empty": d / "empty"}


READS = [  # commands that read the path given last
    ["profile", "--space", SPACE, "--config"],
    ["query", "--space", SPACE, "--device", "dev", "--store"],
    ["latency", "validate", "--table"],
    ["search", "--space", SPACE, "--out", "{out}", "--predictor", "{pred}", "--table"],
    ["search", "--space", SPACE, "--out", "{out}", "--table", "{table}", "--predictor"],
    ["supernet", "eval", "--supernet"],
    ["predictor", "fit", "--out", "{out}", "--dataset"],
    ["predictor", "dataset", "--n", "1", "--out", "{out}/d.jsonl", "--supernet"],
    ["export", "--config", "{cfg}", "--out", "{out}/m.onnx", "--supernet"],
    ["run", "--dry-run"],
]


@pytest.mark.parametrize("kind", ["missing", "dir", "latin1", "garbage", "empty"])
@pytest.mark.parametrize("cmd", READS, ids=lambda c: " ".join(c[:2]))
def test_bad_input_paths_are_exit_2(runner, assets, bad_paths, tmp_path, cmd, kind) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"version": 1, **json.loads(
        CliRunner().invoke(cli, ["sample", "--space", SPACE]).output)}))
    subst = {"{out}": str(tmp_path / "o"), "{pred}": assets["predictor"], "{table}": assets["table"],
             "{cfg}": str(cfg)}
    args = [subst.get(a, a.replace("{out}", str(tmp_path / "o"))) for a in cmd]
    r = runner.invoke(cli, [*args, str(bad_paths[kind])])
    assert_clean(r, ok=())


@pytest.mark.parametrize("cmd", [
    ["search", "--space", SPACE, "--predictor", "{pred}", "--table", "{table}", "--trials", "10", "--out"],
    ["predictor", "fit", "--dataset", "{file}", "--out"],
    ["latency", "build", "--space", SPACE, "--backend", "ort-cpu", "--resolutions", "16", "--out"],
])
@pytest.mark.parametrize("kind", ["file", "dir"])
def test_out_of_the_wrong_kind_is_exit_2(runner, assets, bad_paths, cmd, kind) -> None:
    subst = {"{pred}": assets["predictor"], "{table}": assets["table"], "{file}": str(bad_paths["file"])}
    r = runner.invoke(cli, [*(subst.get(a, a) for a in cmd), str(bad_paths[kind])])
    assert_clean(r, ok=(0,))  # a directory is right for some --out: then it must succeed or say why


def test_query_serve_export_without_a_store_are_one_line(runner, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./hwnas-results.db here
    r = runner.invoke(cli, ["query", "--space", SPACE, "--device", "dev"])
    assert_clean(r, ok=())
    assert "existing results store" in r.output
    r = runner.invoke(cli, ["serve", "--port", "1"])
    assert_clean(r, ok=())
    from nas.checkpoint import save_supernet
    from search_spaces import get_space

    save_supernet(tmp_path / "s.pt", get_space(SPACE, num_classes=4).build_supernet(), {"data": "synthetic"})
    r = runner.invoke(cli, ["export", "--supernet", "s.pt", "--query", "--device", "dev", "--out", "m.onnx"])
    assert_clean(r, ok=())
    assert not (tmp_path / "m.onnx").exists()


# ---- HTTP query parameters -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    from nas.front import FrontEntry
    from nas.store import ResultsStore
    from search_spaces import get_space

    d = tmp_path_factory.mktemp("store")
    cfgs = get_space(SPACE).sample_many(5, 0)
    with ResultsStore(d / "r.db") as s:
        s.add_front([FrontEntry(c, 90.0 + i, 0.5 + i, 10**5 * (5 - i), 10**6) for i, c in enumerate(cfgs)],
                    space=SPACE, device_tag="dev", device_fingerprint={"host": platform.node(), "cpu": "x"},
                    dataset="d", predictor=str(d / "pred"), source={"cwd": str(d), "table": str(d / "t.json")})
    return d / "r.db"


@pytest.fixture(scope="module")
def client(store):
    from fastapi.testclient import TestClient

    from nas.serve import create_app

    return TestClient(create_app(store))


PARAMS = ["space", "device", "latency_ms", "size_mb", "min_accuracy", "objective", "dataset", "predictor"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.one_of(st.sampled_from(PARAMS), st.text(min_size=1, max_size=8)),
                              st.one_of(st.text(max_size=10), st.floats().map(repr), st.integers().map(str),
                                        st.sampled_from([SPACE, "dev", "accuracy", "latency"])), max_size=5))
def test_fuzz_http_query_parameters(client, store, params) -> None:
    assume(all(k.isprintable() for k in params))
    r = client.get("/subnets", params=params)
    assert r.status_code in (200, 400, 404, 422), (r.status_code, r.text[:500])
    body = r.json()
    if r.status_code in (400, 422):
        assert set(body) == {"error"} and len(body["error"]) < 2048 and "\n" not in body["error"], body
    unknown = [k for k in params if k not in PARAMS]
    if unknown:
        assert r.status_code == 400 and "unknown, allowed: " in body["error"], body
    assert str(store.parent) not in r.text and platform.node() not in r.text


def test_http_unknown_parameter_names_it_and_the_allowed_ones(client) -> None:
    r = client.get("/subnets", params={"space": SPACE, "device": "dev", "lat_ms": "0.001"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("query parameter 'lat_ms': unknown, allowed: dataset, device, latency_ms")


def test_http_paths_and_hosts_only_on_request(client, store) -> None:
    from fastapi.testclient import TestClient

    from nas.serve import create_app

    r = client.get("/subnets", params={"space": SPACE, "device": "dev"})
    assert r.status_code == 200 and r.json()["best"]["provenance"]["predictor"] == "pred"
    assert str(store.parent) not in r.text and platform.node() not in r.text
    local = TestClient(create_app(store, disclose=True)).get("/subnets", params={"space": SPACE, "device": "dev"})
    assert str(store.parent) in local.text and platform.node() in local.text


@pytest.mark.parametrize("opt, value", [("--lr", "inf"), ("--lr", "nan"), ("--lr", "-1"), ("--epochs", "0"),
                                        ("--seed", "-5"), ("--data-seed", "-1"), ("--batch-size", "1e9"),
                                        ("--holdout", "nan"), ("--kd-weight", "inf")])
def test_train_numbers_are_exit_2_before_training(runner, tmp_path, opt, value) -> None:
    args = ["supernet", "train", "--space", SPACE, "--data", "synthetic", "--epochs", "1", "--out",
            str(tmp_path / "s.pt"), opt, value]
    r = runner.invoke(cli, args)
    assert_clean(r, ok=())
    assert opt.lstrip("-").split("-")[0] in r.output and not (tmp_path / "s.pt").exists()
