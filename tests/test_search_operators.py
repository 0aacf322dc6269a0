"""NSGA-II's informed first generation (`spread_configs`), its field-wise mutation of packed block options, and
the dense encodings' inert genes: the seeded configs are the study's first trials, valid, and seed-determined."""
from __future__ import annotations

import numpy as np
import optuna
import pytest

from search_spaces import InputError, get_space

from test_search import SPACE, CountingEvaluator, _config, _predicted, search_assets  # noqa: F401  (fixture)


def _digits(v: int, radices: tuple[int, ...]) -> list[int]:
    out = []
    for r in reversed(radices):
        out.append(v % r)
        v //= r
    return out[::-1]


@pytest.mark.parametrize("name", ["mbv3-tiny", "mbv3"])
def test_spread_configs_are_valid_distinct_and_span_the_space(name) -> None:
    from nas.search.operators import spread_configs

    sp = get_space(name)
    res = (sp.spec.resolutions[-1],)
    searched = get_space(name, resolutions=res)  # e.g. what a one-resolution latency table allows
    a = spread_configs(searched, 50, seed=3)
    assert len(a) == 50 and len(set(a)) == 50
    for c in a:
        sp.check(c)
        assert c.resolution == res[0]
    # the extremes at every bit pair, then a spread of sizes between them
    for w, x in sp.bit_pairs:
        assert sp.smallest(w, x).replace(resolution=res[0]) in a
        assert sp.largest(w, x).replace(resolution=res[0]) in a
    # the configs between the extremes spread wider in size than uniform random ones (whose ~20 independent
    # block choices concentrate around the middle)
    spread = np.log([sp.profile(c).size_bytes for c in a[2 * len(sp.bit_pairs):]])
    rand = np.log([sp.profile(c).size_bytes for c in sp.sample_many(400, seed=0)])
    assert spread.std() > 1.2 * rand.std(), (spread.std(), rand.std())
    assert spread_configs(searched, 50, seed=3) == a
    assert spread_configs(searched, 50, seed=4) != a
    assert all(not c.is_quantized for c in spread_configs(sp, 20, seed=0, quantize=False))


@pytest.mark.parametrize("step", [True, False])
def test_block_field_mutation_changes_exactly_one_field(step) -> None:
    from nas.search.operators import BlockFieldMutation

    radices = (3, 3, 3, 5)
    m = BlockFieldMutation(radices, step=step)
    rng = np.random.RandomState(0)
    bounds = np.array([-0.5, m.n - 0.5])
    changed = set()
    for _ in range(2000):
        v = int(rng.randint(m.n))
        out = m.mutation(float(v), rng, None, bounds)  # type: ignore[arg-type]
        assert out == int(out) and 0 <= out < m.n
        a, b = _digits(v, radices), _digits(int(out), radices)
        diff = [i for i in range(4) if a[i] != b[i]]
        assert len(diff) == 1
        if step:
            assert abs(a[diff[0]] - b[diff[0]]) == 1
        changed.add((diff[0], b[diff[0]]))
    assert {f for f, _ in changed} == {0, 1, 2, 3}
    assert len(changed) == sum(radices)  # every value of every field is reachable
    # an integer parameter that is not a block option is re-drawn within its own range
    assert all(0 <= m.mutation(1.0, rng, None, np.array([-0.5, 6.5])) <= 6 for _ in range(50))  # type: ignore[arg-type]


def test_block_field_crossover_takes_each_field_from_a_parent() -> None:
    from nas.search.operators import BlockFieldCrossover

    radices = (3, 3, 3, 5)
    x = BlockFieldCrossover(radices)
    rng = np.random.RandomState(1)
    # columns: two block options (0..134) and one other integer parameter (0..2)
    bounds = np.array([[-0.5, 134.5], [-0.5, 134.5], [-0.5, 2.5]])
    mixed = 0
    for _ in range(500):
        a = np.array([rng.randint(135), rng.randint(135), rng.randint(3)], dtype=float)
        b = np.array([rng.randint(135), rng.randint(135), rng.randint(3)], dtype=float)
        c = x.crossover(np.stack([a, b]), rng, None, bounds)  # type: ignore[arg-type]
        assert c[2] in (a[2], b[2])
        for j in range(2):
            da, db, dc = (_digits(int(v[j]), radices) for v in (a, b, c))
            assert all(dc[f] in (da[f], db[f]) for f in range(4))
            mixed += c[j] not in (a[j], b[j])  # a new block: fields from both parents
    assert mixed > 300


@pytest.mark.parametrize("encoding", ["block-dense", "field-dense"])
def test_inert_genes_repeat_the_stages_last_block(encoding) -> None:
    from nas.search import get_encoding

    sp = get_space("mbv3")
    enc = get_encoding(encoding, sp)
    c = sp.smallest(8, 8)  # every stage at its minimum depth: inert positions in every stage
    p = enc.params_from_config(c)
    deeper = dict(p)
    deeper["depth_s0"] = c.depths[0] + 1  # a child that inherits a deeper stage 0 repeats its last block
    d = enc.config_from_params(deeper)
    assert d.depths[0] == c.depths[0] + 1
    i = c.depths[0]
    for f in ("kernel", "expand", "keep", "weight_bits", "act_bits"):
        assert getattr(d, f)[i] == getattr(d, f)[i - 1] == getattr(c, f)[i - 1]
    assert enc.config_from_params(p) == c


def test_seeded_first_generation_is_the_studys_first_trials(search_assets, tmp_path) -> None:  # noqa: F811
    from nas.search import run_search
    from nas.search.engine import _seed_for
    from nas.search.operators import BlockFieldMutation, spread_configs
    from nas.search.storage import open_storage

    pop = 12
    ev = CountingEvaluator(_predicted(search_assets))
    r = run_search(_config(search_assets, tmp_path / "s", trials=3 * pop, population_size=pop, workers=0), evaluator=ev)
    sp = get_space(SPACE)
    want = spread_configs(sp, pop, _seed_for(0, "driver", 0))
    assert ev.seen[:pop] == want  # the first generation, evaluated first, in order
    study = optuna.load_study(study_name=r.study, storage=open_storage(r.storage))
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    assert len(trials) == 3 * pop
    assert [sp.config_from_params(t.params) for t in trials[:pop]] == want
    for t in trials:
        sp.check(sp.config_from_params(t.params))
    # the default encoding spells every field as its own parameter (Optuna's operators then work field-wise); on
    # the packed `block-dense` encoding the default mutation and crossover are the field-wise ones;
    # `init="random"` leaves the first generation to Optuna
    from nas.search.engine import SearchEngine
    from nas.search.operators import BlockFieldCrossover

    def strategy(**kw):
        spec = _config(search_assets, tmp_path / "x", population_size=pop, **kw).resolved("t").run_spec()
        engine = SearchEngine(spec, evaluator=ev, study=optuna.create_study(
            directions=["maximize", "minimize", "minimize"]))
        return engine.encoding.name, engine.mirror.sampler._child_generation_strategy

    name, default = strategy()
    assert name == "field-dense" and default._mutation is None  # Optuna's: re-draws one field
    _, packed = strategy(encoding="block-dense")
    assert isinstance(packed._mutation, BlockFieldMutation) and isinstance(packed._crossover, BlockFieldCrossover)
    ev2 = CountingEvaluator(_predicted(search_assets))
    run_search(_config(search_assets, tmp_path / "r", trials=pop, population_size=pop, workers=0, init="random",
                       mutation="redraw"), evaluator=ev2)
    assert ev2.seen[:pop] != want


@pytest.mark.parametrize("field,value", [("init", "lhs"), ("mutation", "gauss"), ("mutation_prob", 1.5),
                                         ("crossover", "sbx")])
def test_operator_options_are_validated(search_assets, tmp_path, field, value) -> None:  # noqa: F811
    with pytest.raises(InputError, match=f"^{field}: got"):
        _config(search_assets, tmp_path, **{field: value}).validate()
