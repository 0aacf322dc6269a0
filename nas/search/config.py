"""`SearchConfig`: every setting of one search, defined once -- name, type, default and help
(`search_spaces.settings`).

`hwnas search` makes its options from these fields (`nas/cli/search_cmds.py` maps each field to its flag), the
engine's `RunSpec` takes the fields it needs from here, and errors name the field (the CLI shows the flag).
Importing it imports no Optuna (`hwnas search --help` reads it): the registries are read when a help text or a
check needs them."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from search_spaces import InputError, get_space, list_spaces
from search_spaces.errors import bad_value, one_of
from search_spaces.settings import Seed, check_bounds, check_choice, setting

from nas.budgets import BudgetSettings, Budgets
from nas.front import Objective

if TYPE_CHECKING:  # pragma: no cover
    from nas.search.engine import RunSpec

EVALUATORS = ("predicted", "measured")


def _sampler_help() -> str:
    from nas.search.sampler_kinds import SAMPLERS

    return f"{one_of(SAMPLERS.names())}."


def _encoding_help() -> str:
    from nas.search.encoding import ENCODINGS
    from nas.search.sampler_kinds import SAMPLERS

    defaults = ", ".join(f"{name}: {kind.default_encoding}" for name, kind in SAMPLERS.items())
    return f"{one_of(ENCODINGS.names())}; default per sampler ({defaults})."


@dataclass(frozen=True, kw_only=True)
class SearchConfig(BudgetSettings):
    """One search. `trials` is the study's total: rerunning with the same storage and study continues it."""

    space: str = setting(help="Search space name (hwnas spaces).", required=True)
    out: str = setting(help="Output directory.", required=True)
    predictor: str | None = setting(help="Accuracy predictor directory.")
    table: str | None = setting(help="Latency table file of the target device.")
    # a tuple of names, or their comma-separated text (the CLI's); `validate` parses and checks it
    objectives: Annotated[tuple[Objective, ...], Field(min_length=2)] = setting(
        ("accuracy", "latency", "size"), "Two or more of accuracy, latency, size.")
    sampler: str = setting("nsga2", _sampler_help)
    trials: Annotated[int, Field(ge=1)] = setting(
        2000, "Complete trials the study should hold (a rerun continues up to this).")
    # why the predicted evaluator runs in this process by default: `run_search`
    workers: Annotated[int, Field(ge=0)] | None = setting(
        help="Ray worker actors; default 0 (in this process) for predicted, 1 for measured.")
    force_workers: bool = setting(False, "Run `workers` Ray workers for the predicted evaluator too (by default it "
                                         "runs in this process).")
    ray_address: str | None = setting(help="Ray cluster address; default: start a local Ray.")
    storage: str | None = setting(help="Optuna storage: journal file path or RDB URL; default OUT/study.journal.")
    study: str | None = setting(help="Study name; default hwnas-SPACE-DEVICE.")
    seed: Seed = setting(0)
    evaluator: str = setting("predicted", f"{one_of(list(EVALUATORS))}.")
    verify_top: Annotated[int, Field(ge=0)] = setting(
        0, "Re-score the K most accurate front entries with the measured evaluator.")
    backend: str | None = setting(help="Backend for measured latency (e.g. ort-cpu).")
    supernet: str | None = setting(help="Supernet checkpoint for measured accuracy.")
    data: str | None = setting(help="Data set for measured accuracy.")
    encoding: str | None = setting(help=_encoding_help)
    # None: the sampler's `SamplerKind.default_batch` (its population size for nsga2), 1 for the measured evaluator
    batch_size: Annotated[int, Field(ge=1)] | None = setting(help="Trials asked per batch (default per sampler).")
    # 100, not Optuna's 50: on the quickstart's predictor, a higher hypervolume at 1k and 5k trials than 25, 50 or 200,
    # and at 20k than 50 (experiments/results/search.md)
    population_size: Annotated[int, Field(ge=2)] = setting(100, "NSGA-II population.")
    quantize: bool = setting(True, "Search bit-widths too (False: float subnets only).")
    pruning: bool = setting(True, "Search channel keep ratios too (False: every block keeps all its channels).")
    init: str = setting("spread", lambda: f"nsga2's first generation: {one_of(list(_ops().INITS))} (random: "
                                          "Optuna's).")
    # nsga2 on the packed `block`/`block-dense` encodings: field-wise mutation / crossover of a block's option
    # (`redraw` / `uniform`: Optuna's). The field encodings' genes are fields already, so Optuna's own operators
    # act field-wise there.
    mutation: str = setting("field", lambda: "nsga2's mutation of packed block options: "
                                             f"{one_of(list(_ops().MUTATIONS))}.")
    mutation_prob: Annotated[float, Field(ge=0, le=1)] | None = setting(
        help="nsga2's mutation probability; default 1 / number of parameters.")
    crossover: str = setting("field", lambda: "nsga2's crossover of packed block options: "
                                              f"{one_of(list(_ops().CROSSOVERS))}.")
    # 0: NSGA-II throughout (`local.py`)
    local_fraction: Annotated[float, Field(ge=0, lt=1)] = setting(
        0.7, "With a budget (nsga2): share of the trials spent by the budget local search after NSGA-II.")
    # without it, a rerun continues only a study searched with the same settings (`trials` excepted: the target)
    resume: bool = setting(False, "Continue the study in `out` even though its search settings differ.")

    def validate(self) -> SearchConfig:
        from nas.search.encoding import ENCODINGS
        from nas.search.objectives import parse_objectives
        from nas.search.sampler_kinds import SAMPLERS

        check_choice(self, "space", list_spaces())
        objectives = parse_objectives(self.objectives)
        check_choice(self, "sampler", SAMPLERS)
        check_choice(self, "evaluator", EVALUATORS)
        check_bounds(self)
        ops = _ops()
        check_choice(self, "init", ops.INITS)
        check_choice(self, "mutation", ops.MUTATIONS)
        check_choice(self, "crossover", ops.CROSSOVERS)
        if self.encoding is not None:
            check_choice(self, "encoding", ENCODINGS)
        Budgets.of(self)  # validates
        if self.evaluator == "predicted":
            if self.predictor is None:
                raise InputError("predictor: missing, allowed: a predictor directory (needed by `evaluator` predicted)")
            if self.table is None:
                raise InputError("table: missing, allowed: a latency table file (needed by `evaluator` predicted)")
        if self.predictor is not None and not Path(self.predictor).exists():
            raise InputError(f"predictor: got {self.predictor!r}, allowed: an existing predictor directory")
        if self.table is not None and not Path(self.table).is_file():
            raise InputError(f"table: got {self.table!r}, allowed: an existing latency table file")
        if self.verify_top and self.backend is None and self.supernet is None:
            raise InputError("verify_top: needs `backend` NAME and/or `supernet` FILE to measure with")
        if self.study is not None and not self.study.strip():
            raise bad_value("study", self.study, "a non-empty name")
        return replace(self, objectives=objectives)

    def resolved(self, device_tag: str | None = None) -> SearchConfig:
        from nas.search.sampler_kinds import SAMPLERS
        from nas.search.storage import default_storage_url, journal_path

        c = self.validate()
        out = str(Path(c.out).resolve())
        storage = c.storage or default_storage_url(out)
        jp = journal_path(storage)
        if jp is not None:
            storage = str(jp.resolve())
        elif storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
            storage = "sqlite:///" + str(Path(storage[len("sqlite:///"):]).resolve())
        workers = c.workers if c.workers is not None else (0 if c.evaluator == "predicted" else 1)
        kind = SAMPLERS.get(c.sampler)
        encoding = c.encoding or kind.default_encoding
        if c.batch_size is not None:
            batch = c.batch_size
        elif c.evaluator == "measured":
            batch = 1
        else:
            batch = kind.default_batch or c.population_size
        study = c.study or f"hwnas-{c.space}" + (f"-{device_tag}" if device_tag else "")
        return replace(c, out=out, storage=storage, workers=workers, encoding=encoding, batch_size=batch,
                       study=study, predictor=_abs(c.predictor), table=_abs(c.table), supernet=_abs(c.supernet))

    def run_spec(self, resolutions: tuple[int, ...] | None = None) -> RunSpec:
        from nas.search.engine import RunSpec

        assert self.storage and self.study and self.encoding and self.batch_size is not None
        return RunSpec(space=self.space, objectives=tuple(self.objectives),
                       budgets=Budgets.of(self).to_dict(),
                       sampler=self.sampler, encoding=self.encoding, storage=self.storage, study=self.study,
                       seed=self.seed, evaluator=self.evaluator, predictor=self.predictor, table=self.table,
                       backend=self.backend, supernet=self.supernet, data=self.data, quantize=self.quantize,
                       batch_size=self.batch_size, population_size=self.population_size,
                       sync_every_batch=bool(self.workers and self.workers > 1), resolutions=resolutions,
                       init=self.init, mutation=self.mutation, crossover=self.crossover,
                       mutation_prob=None if self.mutation_prob is None else float(self.mutation_prob),
                       local_from=self.local_from(),
                       keep=None if self.pruning else (max(get_space(self.space).spec.keep_choices),))

    def local_from(self) -> int | None:
        """The study's trial count from which the budget local search proposes (None: it never does)."""
        from nas.search.sampler_kinds import SAMPLERS

        if not SAMPLERS.get(self.sampler).generational or not self.local_fraction or not Budgets.of(self).any():
            return None
        return max(self.population_size, self.trials - int(round(self.local_fraction * self.trials)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["objectives"] = list(self.objectives)
        if d.get("storage"):
            from nas.search.storage import describe_url

            d["storage"] = describe_url(d["storage"])
        return d


def _ops() -> Any:
    """nsga2's operator names (`nas.search.operators`, which imports Optuna: read when needed)."""
    from nas.search import operators

    return operators


def _abs(p: str | None) -> str | None:
    return None if p is None else str(Path(p).resolve())
