"""The family refactor changes no behaviour of `mbv3`: fixed-seed predicted searches (every encoding, a budgeted
NSGA-II with its local search, TPE, the evolution baseline), latency-table keys, index rows, features and exact
profiles of a few subnets are stored in `tests/data/mbv3_tiny_front_seed0.json` (written by the code before the
refactor) and must come out the same: configs, keys, indices and counts exactly, floats to 1e-12 relative (their
last bits move with the CPU's BLAS kernels: on one host a ridge prediction differed by one ulp, and so did the
fronts' accuracies, with the same subnets on every front).

Regenerate (only when a behaviour change is intended): `.venv/bin/python tests/test_family_regression.py --write`.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE = Path(__file__).parent / "data" / "mbv3_tiny_front_seed0.json"
SPACE = "mbv3-tiny"


def _table(path: Path) -> Path:
    """Block latency from exact MACs and bits (a real table file); int4 weights with float activations
    unsupported."""
    from latency_tables.table import LatencyTable
    from search_spaces import get_space
    from search_spaces.profile import block_counts

    sp = get_space(SPACE)
    specs = sp.all_block_specs()
    t = LatencyTable(space=SPACE, device_tag="regression", backend="ort-cpu", fingerprint={"device": "synthetic"},
                     protocol={}, resolutions=list(sp.spec.resolutions), expected_keys=len(specs))
    for b in specs:
        ms = 0.004 + block_counts(b, sp.spec).macs * 2e-8 * {32: 1.0, 8: 0.7, 4: 0.55}[b.weight_bits]
        if b.weight_bits == 4 and b.act_bits == 32:
            t.mark_unsupported(b.key, "synthetic")
        else:
            t.set_entry(b.key, ms, ms * 0.05, 5)
    t.save(path)
    return path


REL = 1e-12


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _float_digest(a: np.ndarray) -> str:
    """A digest that does not see the last bits (rounded to 6 decimals; the values are accuracies and ms)."""
    return _digest(np.round(np.asarray(a, dtype=np.float64), 6))


def compute_reference() -> dict[str, Any]:
    from nas.search import SearchConfig, run_search
    from nas.search.evolution import evolve_once
    from nas.search.evaluators import PredictedEvaluator
    from nas.search.loaders import load_predictor, load_table
    from predictors.bundle import FitConfig, fit_predictor
    from predictors.synthetic import synthetic_accuracy, synthetic_dataset
    from search_spaces import get_space

    sp = get_space(SPACE)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        table = str(_table(root / "table.json"))
        pred, _ = fit_predictor(FitConfig(dataset=synthetic_dataset(sp, 160, 0), kind="ridge", seed=0))
        pred.save(root / "pred")
        predictor = str(root / "pred")
        runs = {
            "nsga2-field-dense": dict(sampler="nsga2", trials=120, population_size=20),
            "nsga2-block-dense": dict(sampler="nsga2", trials=80, population_size=20, encoding="block-dense"),
            "nsga2-budget-local": dict(sampler="nsga2", trials=120, population_size=20, latency_ms=0.25),
            "tpe-field": dict(sampler="tpe", trials=30),
            "random-block": dict(sampler="random", trials=60),
        }
        for name, kw in runs.items():
            r = run_search(SearchConfig(space=SPACE, out=str(root / name), predictor=predictor, table=table, seed=0,
                                        workers=0, **kw))
            out[f"front:{name}"] = sorted(json.dumps({"config": e.config.to_dict(), "accuracy": e.accuracy,
                                                      "latency_ms": e.latency_ms, "size_bytes": e.size_bytes},
                                                     sort_keys=True) for e in r.front)
        ev = PredictedEvaluator(sp, load_predictor(predictor), load_table(table))
        idx, m = evolve_once(sp, ev, 200, 0.3, seed=0)
        out["evolution"] = {"indices": _digest(idx.astype(np.int16)), "accuracy": _float_digest(m.accuracy),
                            "latency": _float_digest(m.latency_ms)}
        configs = sp.sample_many(6, seed=0) + [sp.largest(), sp.smallest(8, 8)]
        tab = load_table(table)
        out["subnets"] = [{
            "config": c.to_dict(),
            "keys": [b.key for b in sp.blocks(c)],
            "indices": sp.to_indices([c])[0].tolist(),
            "profile": sp.profile(c).to_dict(),
            "latency_ms": float(tab.predict([c])[0]),
            "predicted": float(ev.predictor.predict([c])[0]),
            "synthetic": float(synthetic_accuracy(sp, [c], seed=0)[0]),
        } for c in configs]
        out["features"] = _digest(sp.encode(configs))
        out["index_columns"] = sp.index_columns()
        out["n_table_keys"] = len(sp.all_block_specs())
    return out


def _dump(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=1, sort_keys=True) + "\n"


def _differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Where `got` departs from `want`: exactly, except floats (to `REL`); front entries are JSON strings, compared
    as the objects they hold, in config order."""
    if isinstance(got, float) or isinstance(want, float):
        close = isinstance(got, (int, float)) and isinstance(want, (int, float)) and \
            math.isclose(got, want, rel_tol=REL, abs_tol=1e-300)
        return [] if close else [f"{path}: {got!r} != {want!r}"]
    if isinstance(got, dict) and isinstance(want, dict):
        if set(got) != set(want):
            return [f"{path}: keys {sorted(set(got) ^ set(want))}"]
        return [d for k in sorted(got) for d in _differences(got[k], want[k], f"{path}.{k}")]
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} items != {len(want)}"]
        if got and all(isinstance(x, str) and x.startswith("{") for x in got + want):
            key = lambda e: json.dumps(e["config"], sort_keys=True)  # noqa: E731
            got, want = sorted(map(json.loads, got), key=key), sorted(map(json.loads, want), key=key)
        return [d for i, (a, b) in enumerate(zip(got, want)) for d in _differences(a, b, f"{path}[{i}]")]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


def test_refactored_code_reproduces_the_stored_mbv3_behaviour() -> None:
    moved = _differences(json.loads(_dump(compute_reference())), json.loads(FIXTURE.read_text()))
    assert not moved, f"mbv3-tiny behaviour changed in {len(moved)} places, first: {moved[:5]}"


def test_the_comparison_sees_a_changed_subnet_and_forgives_the_last_bits() -> None:
    want = {"front:x": [json.dumps({"config": {"d": [2, 3]}, "accuracy": 88.73795455541534})], "n": 3}
    last_bit = {"front:x": [json.dumps({"config": {"d": [2, 3]}, "accuracy": 88.73795455541533})], "n": 3}
    other = {"front:x": [json.dumps({"config": {"d": [2, 4]}, "accuracy": 88.73795455541534})], "n": 3}
    assert _differences(last_bit, want) == []
    assert _differences(other, want) and _differences({**want, "n": 4}, want)
    assert _differences({**want, "front:x": [json.dumps({"config": {"d": [2, 3]}, "accuracy": 88.74})]}, want)


LEGACY = Path(__file__).parent / "data" / "legacy_mbv3_tiny"  # written by the code before the refactor


def test_artefacts_written_before_the_refactor_load_and_predict_the_same(tmp_path) -> None:
    """A predictor and a latency table saved by the pre-family code load unchanged (same feature names, same block
    keys) and predict exactly what they predicted then; a future format fails with one line naming the version."""
    import shutil

    import pytest

    from latency_tables.table import LatencyTable
    from nas.search.loaders import load_predictor
    from search_spaces import InputError, config_from_dict

    want = json.loads((LEGACY / "expected.json").read_text())
    configs = [config_from_dict(d) for d in want["configs"]]
    assert load_predictor(str(LEGACY / "predictor")).predict(configs).tolist() == want["predicted"]
    assert LatencyTable.load(LEGACY / "table.json").predict(configs).tolist() == want["latency_ms"]
    t = json.loads((LEGACY / "table.json").read_text())
    (tmp_path / "t.json").write_text(json.dumps({**t, "version": 99}))
    with pytest.raises(InputError, match="version: got 99"):
        LatencyTable.load(tmp_path / "t.json")
    shutil.copytree(LEGACY / "predictor", tmp_path / "p")
    m = json.loads((tmp_path / "p" / "predictor.json").read_text())
    (tmp_path / "p" / "predictor.json").write_text(json.dumps({**m, "format_version": 99}))
    with pytest.raises(InputError, match="format_version"):
        load_predictor(str(tmp_path / "p"))


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: tests/test_family_regression.py --write")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    FIXTURE.write_text(_dump(compute_reference()))
    print(f"wrote {FIXTURE}")
