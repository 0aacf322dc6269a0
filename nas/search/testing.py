"""Contract suites for search extensions: subclass them in a test module and give the name, and a third-party
sampler or encoding gets the checks every built-in one passes (as Optuna ships `optuna.testing`).

    import pytest
    from nas.search.testing import SamplerContract

    class TestMySampler(SamplerContract):
        @pytest.fixture
        def sampler_name(self) -> str:
            return "my-sampler"

The base classes' names do not start with `Test`, so pytest collects only the subclasses."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from search_spaces import SearchSpace, SubnetConfig, get_space

from nas.search.encoding import ENCODINGS, get_encoding
from nas.search.engine import RunSpec, SearchEngine, count_complete, open_study
from nas.search.evaluators import Evaluator, Metrics, ProfileTable
from nas.search.samplers import SAMPLERS, SamplerKind, make_sampler

CONTRACT_SPACE = "mbv3-tiny"


class SyntheticEvaluator(Evaluator):
    """Cheap, deterministic metrics with the real trade-off's shape: accuracy from `predictors.synthetic` (grows
    with capacity, costs points for low bits), latency proportional to MACs, exact size."""

    name = "synthetic"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.profiles = ProfileTable(space)

    def evaluate(self, configs: list[SubnetConfig]) -> Metrics:  # type: ignore[override]
        from predictors.synthetic import synthetic_accuracy

        idx = self.space.to_indices(configs)
        macs, _, size = self.profiles.compute(idx)
        acc = synthetic_accuracy(self.space, idx, seed=0, noise=0.0)
        return Metrics(acc, macs / 1e7, size, macs, np.ones(len(idx), dtype=bool))


class EncodingContract:
    """What every registered encoding must do: params <-> config round trip, and suggest through Optuna."""

    @pytest.fixture
    def encoding_name(self) -> str:  # pragma: no cover - the subclass gives it
        raise NotImplementedError("override the `encoding_name` fixture")

    def test_round_trips_configs(self, encoding_name: str) -> None:
        sp = get_space(CONTRACT_SPACE)
        enc = get_encoding(encoding_name, sp)
        assert enc.name == encoding_name
        for c in sp.sample_many(30, seed=2) + [sp.largest(), sp.smallest()]:
            assert enc.config_from_params(enc.params_from_config(c)) == c

    def test_suggests_valid_configs_through_optuna(self, encoding_name: str) -> None:
        sp = get_space(CONTRACT_SPACE)
        enc = get_encoding(encoding_name, sp)
        dists = enc.distributions()
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(20):
            t = study.ask()
            c = enc.suggest(t)
            sp.check(c)
            assert enc.config_from_params(t.params) == c
            assert set(t.params) <= set(dists)
            if enc.dense:  # a static search space: every parameter, every trial
                assert set(t.params) == set(dists)
            study.tell(t, [0.0, 0.0])


class SamplerContract:
    """What every registered sampler must do inside hwnas's engine: build, search the space with every kind of
    trial the engine gives it, record valid trials with their constraints, and repeat itself for a fixed seed."""

    trials = 24
    population_size = 8

    @pytest.fixture
    def sampler_name(self) -> str:  # pragma: no cover - the subclass gives it
        raise NotImplementedError("override the `sampler_name` fixture")

    def _run(self, name: str, out: Path, seed: int = 0, latency_ms: float | None = None) -> optuna.Study:
        kind = SAMPLERS.get(name)
        spec = RunSpec(space=CONTRACT_SPACE, objectives=("accuracy", "latency"),
                       budgets={"latency_ms": latency_ms, "size_mb": None, "min_accuracy": None}, sampler=name,
                       encoding=kind.default_encoding, storage=str(out / "study.journal"), study="contract",
                       seed=seed, batch_size=self.population_size, population_size=self.population_size)
        study = open_study(spec, create=True)
        SearchEngine(spec, worker="driver", evaluator=SyntheticEvaluator(get_space(CONTRACT_SPACE)),
                     study=study).run(self.trials)
        return study

    def test_is_a_well_formed_kind(self, sampler_name: str) -> None:
        kind = SAMPLERS.get(sampler_name)
        assert isinstance(kind, SamplerKind)
        assert kind.default_encoding in ENCODINGS
        assert kind.default_batch is None or kind.default_batch >= 1
        assert isinstance(make_sampler(sampler_name, seed=0, population_size=self.population_size),
                          optuna.samplers.BaseSampler)

    def test_searches_valid_trials_with_constraints(self, sampler_name: str, tmp_path: Path) -> None:
        from nas.budgets import Budgets

        budgets = Budgets(latency_ms=5.0)
        study = self._run(sampler_name, tmp_path, latency_ms=budgets.latency_ms)
        assert count_complete(study) == self.trials
        sp = get_space(CONTRACT_SPACE)
        enc = get_encoding("field", sp)
        for t in study.get_trials(deepcopy=False):
            sp.check(enc.config_from_params(t.params))
            assert len(t.values) == 2 and t.user_attrs["metrics"]["accuracy"] == t.values[0]
            assert len(t.system_attrs[constraints_key()]) == len(budgets.constraint_names())
        distinct = {json_key(t.params) for t in study.get_trials(deepcopy=False)}
        assert len(distinct) > 1, "the sampler proposes more than one subnet"

    def test_a_fixed_seed_repeats_the_search(self, sampler_name: str, tmp_path: Path) -> None:
        runs = [[json_key(t.params) for t in self._run(sampler_name, tmp_path / str(i)).get_trials(deepcopy=False)]
                for i in range(2)]
        assert runs[0] == runs[1]

    def test_listed_where_choices_are_listed(self, sampler_name: str) -> None:
        from click.testing import CliRunner

        from nas.cli.main import cli
        from nas.experiment import parse_experiment

        help_text = " ".join(CliRunner().invoke(cli, ["search", "--help"]).output.split())
        assert sampler_name in help_text
        exp = parse_experiment({"name": "t", "space": CONTRACT_SPACE, "data": "synthetic",
                                "search": {"sampler": sampler_name}, "budgets": [{"latency_ms": 1.0}]})
        assert exp.search.sampler == sampler_name


def json_key(params: dict[str, Any]) -> str:
    import json

    return json.dumps(params, sort_keys=True)


def constraints_key() -> str:
    from nas.search.optuna_compat import CONSTRAINTS_KEY

    return CONSTRAINTS_KEY
