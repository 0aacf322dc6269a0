"""The `Family` contract, over every registered family (its smallest preset): the ABC's promises -- config
validation and JSON round trip, schema consistency, inert columns, Optuna parameters, features -- and
sample -> supernet -> extract -> ONNX -> ONNX Runtime with equal outputs, exact profiles against
`torch.utils.flop_counter`, latency-table keys that parse back and build."""
from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch

from search_spaces import FAMILIES, InputError, config_from_dict, get_space
from search_spaces.block_spec import parse_block_key
from search_spaces.family import PRESET_FAMILY
from search_spaces.testing import check_supernet_extract_onnx_agree, randomize_statistics

# the smallest preset of each family (parametrized over the registry, so a new family is checked as it registers)
PRESETS = {"mbv3": "mbv3-tiny", "vit": "vit-tiny"}
FAMILY_NAMES = FAMILIES.names()


def _preset(family: str) -> str:
    if family in PRESETS:
        return PRESETS[family]
    return sorted(p for p, f in PRESET_FAMILY.items() if f == family)[0]


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def family(request):
    space = get_space(_preset(request.param))
    torch.manual_seed(0)
    net = randomize_statistics(space.build_supernet().eval(), seed=1)
    return space, net


def test_every_family_has_a_preset_and_every_preset_a_family() -> None:
    assert set(PRESET_FAMILY.values()) == set(FAMILY_NAMES) >= {"mbv3", "vit"}


def test_config_validates_and_round_trips(family) -> None:
    space, _ = family
    cfgs = space.sample_many(30, seed=3)
    assert len(set(cfgs)) > 25
    for c in cfgs:
        assert type(c).from_json(c.to_json()) == c
        assert config_from_dict(json.loads(json.dumps(c.to_dict()))) == c
        assert c.to_dict()["version"] == type(c).version
    d = cfgs[0].to_dict()
    with pytest.raises(InputError, match="version"):
        config_from_dict({**d, "version": 99})
    with pytest.raises(InputError, match="unknown|config key"):
        config_from_dict({**d, "colour": 1})
    field = next(k for k, v in d.items() if isinstance(v, list))
    with pytest.raises(InputError, match=rf"{field}\[0\]"):
        config_from_dict({**d, field: [12345] + d[field][1:]})
    with pytest.raises(Exception):  # frozen
        cfgs[0].space = "other"  # type: ignore[misc]


def test_schema_is_consistent_and_inert_columns_hold_minus_one(family) -> None:
    space, _ = family
    sc = space.schema
    assert space.index_columns() == sc.names and len(set(sc.names)) == sc.n_columns
    cfgs = space.sample_many(40, seed=4) + [space.largest(), space.smallest()]
    idx = space.to_indices(cfgs)
    assert idx.shape == (len(cfgs), sc.n_columns) and idx.dtype == np.int16
    assert np.array_equal(idx < 0, sc.inert(idx))  # -1 exactly where the depths make a column inert
    assert (idx <= sc.col_max).all()
    assert space.from_indices(idx) == cfgs
    # changing an inert column's value changes nothing; an active one changes the config
    row = space.to_indices([space.smallest()])
    inert = np.flatnonzero(sc.inert(row)[0])
    assert inert.size and sc.n_global < inert[0]
    assert sc.active(row).sum() == space.smallest().n_blocks
    for f in sc.position_fields:
        assert sc.choices(f) == sc.columns[sc.field_columns(f)[0]].choices
    assert set(sc.position_fields) >= {"keep", "weight_bits", "act_bits"}  # what pruning / bits consumers read


def test_encode_is_one_hot_per_active_column(family) -> None:
    space, _ = family
    cfgs = space.sample_many(20, seed=4)
    idx = space.to_indices(cfgs)
    for quant in (True, False):
        x = space.encode(cfgs, quant=quant)
        assert x.shape == (20, space.n_features(quant)) and set(np.unique(x)) <= {0.0, 1.0}
        used = [not c.quant or quant for c in space.schema.columns]
        assert x.sum(axis=1).tolist() == ((idx >= 0) & np.asarray(used)).sum(axis=1).tolist()


def test_optuna_defines_only_active_parameters(family) -> None:
    space, _ = family
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    dists = space.distributions()
    for _ in range(10):
        trial = study.ask()
        c = space.suggest(trial)
        assert set(trial.params) <= set(dists) and set(trial.params) <= set(space.schema.names)
        assert space.config_from_params(trial.params) == c
        assert space.params_from_config(c) == trial.params
        study.tell(trial, 0.0)


def test_supernet_extract_onnx_agree(family, tmp_path) -> None:
    space, net = family
    cfgs = space.sample_many(3, seed=7)
    check_supernet_extract_onnx_agree(space, net, [cfgs[0].float_version(), *cfgs[1:]], tmp_path)
    for c in cfgs:
        sub = net.extract(c)
        assert set(space.quantizable_layers(sub)) <= {n for n, _ in sub.named_modules()}


def test_profile_macs_match_torch_flop_counter(family) -> None:
    space, net = family
    from torch.utils.flop_counter import FlopCounterMode

    for c in space.sample_many(3, seed=11) + [space.largest()]:
        sub = net.extract(c)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            sub(torch.zeros(space.input_shape(c, 1)))
        assert counter.get_total_flops() == 2 * space.profile(c).macs  # 2 FLOPs per multiply-accumulate


def test_blocks_are_keys_of_declared_op_kinds_that_build(family) -> None:
    space, _ = family
    kinds = space.op_kinds()
    every = set(space.all_block_specs())
    for c in space.sample_many(5, seed=5):
        blocks = space.blocks(c)
        assert set(blocks) <= every
        for b in blocks:
            assert b.op in kinds and parse_block_key(b.key) == b
    b = space.blocks(space.smallest())[len(space.blocks(space.smallest())) // 2]
    m = space.build_block(b).eval()
    with torch.no_grad():
        assert torch.isfinite(m(torch.randn(b.input_shape(1)))).all()
    with pytest.raises(InputError, match="block key"):
        parse_block_key("nonsense:1")


def test_a_family_is_one_folder_plus_one_registration() -> None:
    """Issue 17's proof that a family is an extension point, kept true: no module of the four packages outside
    `search_spaces/vit/` imports the vit family, except the one line of `search_spaces/__init__.py` that registers
    it. Every consumer (tables, predictors, encodings, operators, baselines, export) reaches it through the
    `Family` interface and the registry."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    importers = []
    for pkg in ("search_spaces", "latency_tables", "predictors", "nas"):
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith("search_spaces/vit/"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [f"{'.' * node.level}{node.module or ''}"] + [a.name for a in node.names]
                         if isinstance(node, ast.ImportFrom) else [])
                if any("vit" in n.split(".") or n.startswith("ViT") for n in names):
                    importers.append(rel)
    assert importers == ["search_spaces/__init__.py"], importers
    assert "vit" in FAMILIES.names()
