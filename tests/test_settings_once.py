"""Each setting is defined once: an experiment file's section takes its keys, types, bounds and help from the
verb's config dataclass, the CLI makes its options from the same fields, and the pipeline hands a section to its
config by those field names. A key declared again in `nas/experiment.py` fails here."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from latency_tables.protocol import Protocol
from latency_tables.table_config import TableConfig
from nas import experiment as ex
from nas.cli.main import cli
from nas.collect_config import CollectConfig
from nas.export_config import ExportConfig
from nas.search.config import SearchConfig
from nas.train_config import RUN_YAML_FIELDS, TrainConfig, TrainRun
from predictors.fit_config import FitConfig
from search_spaces.settings import field_map, help_of

# (section, config, {key in the file: field of the config})
SECTIONS = [
    (ex.SupernetSection, TrainConfig, {k: k for k in ex.TRAIN_FIELDS}),
    (ex.SupernetSection, TrainRun, {k: k for k in RUN_YAML_FIELDS}),
    (ex.SearchSection, SearchConfig, {k: k for k in ex.SEARCH_FIELDS}),
    (ex.AccuracySection, CollectConfig, {**{k: k for k in ex.COLLECT_FIELDS}, **ex.COLLECT_RENAMED}),
    (ex.LatencySection, TableConfig, {k: k for k in ex.TABLE_FIELDS}),
    (ex.LatencySection, Protocol, {k: k for k in ex.PROTOCOL_FIELDS}),
    (ex.PredictorSection, FitConfig, {"kind": "kind"}),
    (ex.ExportSection, ExportConfig, {"verify_n": "verify_n"}),
]


@pytest.mark.parametrize("section, config, keys", SECTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_section_keys_are_their_configs_fields(section, config, keys) -> None:
    fields = field_map(config)
    for key, name in keys.items():
        assert key in section.model_fields, f"{section.__name__} lacks {key}"
        h = fields[name].metadata.get("help", "")
        if isinstance(h, str) and h:
            assert section.model_fields[key].description == h, key


@pytest.mark.parametrize("section, config, keys", SECTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_no_section_declares_a_config_field_again(section, config, keys) -> None:
    """A section's own class (the base its config's fields are added to) declares only the pipeline's keys."""
    own = {name for cls in section.__mro__[1:] if cls.__module__ == ex.__name__
           for name in cls.__dict__.get("__annotations__", {})}
    assert not own & set(keys), sorted(own & set(keys))


def test_a_section_becomes_its_config_by_field_name() -> None:
    exp = ex.parse_experiment({"name": "t", "space": "mbv3-tiny", "data": "synthetic",
                               "supernet": {"epochs": 3, "lr": 0.01, "workers": 2, "use_gpu": True, "amp": "bf16"},
                               "accuracy": {"label_images": 100, "device": "cpu"},
                               "budgets": [{"latency_ms": 1.0}]})
    cfg = exp.supernet.train_config(space=exp.space, data=exp.data)
    run = exp.supernet.train_run(out="sn.pt")
    assert (cfg.epochs, cfg.lr) == (3, 0.01)
    assert (run.workers, run.use_gpu, run.amp, run.distributed) == (2, True, "bf16", True)
    collect = exp.accuracy.collect_config(supernet="sn.pt", out="a.jsonl")
    assert (collect.max_images, collect.device) == (100, "cpu")
    assert ex.ExportSection().verify_n == 1000 and ExportConfig.verify_n is None  # the pipeline's own default


def test_run_rules_hold_in_the_file_the_library_and_the_cli(tmp_path: Path) -> None:
    with pytest.raises(ex.InputError, match=r"supernet: use_gpu: got True, allowed: true only with `workers` > 1"):
        ex.parse_experiment({"name": "t", "space": "mbv3-tiny", "data": "synthetic", "supernet": {"use_gpu": True},
                             "budgets": [{"latency_ms": 1.0}]})
    with pytest.raises(ex.InputError, match=r"device: got 'gpu', allowed: auto, cpu, cuda or cuda:N"):
        TrainRun(out="sn.pt", device="gpu")
    with pytest.raises(ex.InputError, match=r"overwrite: got True, allowed: false with `resume`"):
        TrainRun(out="sn.pt", resume=True, overwrite=True)
    r = CliRunner().invoke(cli, ["supernet", "train", "--space", "mbv3-tiny", "--data", "synthetic", "--epochs", "1",
                                 "--out", str(tmp_path / "sn.pt"), "--use-gpu"])
    assert r.exit_code == 2, r.output
    assert "--use-gpu: got True, allowed: true only with --workers > 1 or a --ray-address" in r.output
    assert not (tmp_path / "sn.pt").exists()


def test_train_help_shows_every_run_field_with_its_help() -> None:
    text = " ".join(CliRunner().invoke(cli, ["supernet", "train", "--help"], terminal_width=200).output.split())
    for f in dataclasses.fields(TrainRun):
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, flag
        first_words = " ".join(re.sub(r"`(\w+)`", lambda m: "--" + m.group(1).replace("_", "-"),
                                      help_of(f)).split()[:4])
        assert first_words in text, (flag, first_words)


def test_budget_searches_follow_samplers_that_say_they_may() -> None:
    """Which samplers the pipeline's per-budget search follows is the sampler's own `generational` flag, so a
    plugin NSGA-II variant gets it without the pipeline naming it."""
    from nas.pipeline.stages import budgeted_searches
    from nas.search.sampler_kinds import SAMPLERS, SamplerKind

    def exp(sampler: str) -> ex.Experiment:
        return ex.parse_experiment({"name": "t", "space": "mbv3-tiny", "data": "synthetic",
                                    "search": {"sampler": sampler, "budget_trials": 100},
                                    "budgets": [{"name": "fast", "latency_ms": 1.0}, {"min_accuracy": 90.0}]})

    assert [slug for slug, _ in budgeted_searches(exp("nsga2"))] == ["fast"]
    assert budgeted_searches(exp("tpe")) == []
    SAMPLERS.register("test-generational", SamplerKind(SAMPLERS.get("nsga2").build, default_encoding="field-dense",
                                                       generational=True))
    try:
        assert [slug for slug, _ in budgeted_searches(exp("test-generational"))] == ["fast"]
    finally:
        SAMPLERS.unregister("test-generational")
