"""The experiment file behind `hwnas run`: one validated YAML describing the whole pipeline.

Unknown keys and bad values are rejected with the key path named (`search.trials: ...`), before anything runs.
The schema is strict (a boolean is not a count, `.inf` is not a budget), the files it names must exist and be
readable, and the YAML itself is read with a loader that refuses duplicate keys and alias expansion beyond a small
bound (a 286-byte alias bomb must not become megabytes of objects or of error message).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from search_spaces import InputError
from search_spaces.presets import SPACE_SPECS
from search_spaces.settings import Seed, values, yaml_fields

PosInt = Annotated[int, Field(ge=1)]
PosFloat = Annotated[float, Field(gt=0)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # a run's name is a folder under runs/: no separators, no ..
MAX_YAML_NODES = 10_000  # an experiment file has ~100 nodes; aliases may not expand it past this
MAX_ERROR_INPUT = 120  # characters of the offending value quoted in an error


class _Section(BaseModel):
    # strict: `trials: true` or `epochs: "8"` are refused instead of coerced; an int is still a valid float
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _existing_file(field: str, v: str | None) -> str | None:
    if v is not None and not Path(v).is_file():
        raise ValueError(f"{field}: got {v!r}, allowed: an existing file")
    return v


def _url_scheme(field: str, v: str | None, journal: bool) -> str | None:
    """A storage / store URL: a path, or a URL whose scheme hwnas can open (refused here, not after training)."""
    if v is None or "://" not in v:
        return v
    from nas.store import URL_SCHEMES

    scheme = v.split("://", 1)[0].split("+", 1)[0].lower()
    allowed = (*URL_SCHEMES, "journal") if journal else URL_SCHEMES
    if scheme not in allowed:
        raise ValueError(f"{field}: got scheme {scheme!r}, allowed: a file path or one of "
                         f"{', '.join(s + '://' for s in allowed)}")
    return v


# `supernet:` keys that are `TrainConfig` fields (type, bounds, help from there; fewer epochs by default), and
# `TrainRun` fields (`RUN_YAML_FIELDS`: workers, use_gpu, device, amp, data_workers)
TRAIN_FIELDS = ("epochs", "batch_size", "lr", "holdout")


class _SupernetOverrides(_Section):
    """The `supernet:` keys the pipeline has and `TrainConfig` / `TrainRun` do not."""

    checkpoint: str | None = None  # use this trained supernet instead of training one
    import_ofa: str | None = None  # or convert Once-for-All's published supernet (space mbv3 / mbv3-w1.2)

    def train_config(self, **rest: Any) -> Any:
        """The `TrainConfig` of this section (`rest`: what the experiment adds -- space, data, seeds)."""
        from nas.train_config import TrainConfig

        return TrainConfig(**values(self, *TRAIN_FIELDS), **rest)

    def train_run(self, **rest: Any) -> Any:
        """The `TrainRun` of this section (`rest`: what the pipeline adds -- out, resume, ray_address)."""
        from nas.train_config import RUN_YAML_FIELDS, TrainRun

        return TrainRun(**values(self, *RUN_YAML_FIELDS), **rest)

    @model_validator(mode="after")
    def _one_source(self) -> _SupernetOverrides:
        if self.checkpoint is not None and self.import_ofa is not None:
            raise ValueError("supernet: give one of checkpoint (an hwnas supernet) or import_ofa (Once-for-All's), "
                             "not both")
        try:  # the run's rules (use_gpu only with workers > 1), checked on reading, not when the stage starts
            self.train_run(out="supernet.pt")
        except InputError as e:
            raise ValueError(str(e)) from None
        return self

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint_exists(cls, v: str | None) -> str | None:
        return _existing_file("supernet.checkpoint", v)


def _supernet_section() -> type[_Section]:
    from nas.train_config import RUN_YAML_FIELDS, TrainConfig, TrainRun

    return create_model("SupernetSection", __base__=_SupernetOverrides, __module__=__name__,
                        **yaml_fields(TrainConfig, *TRAIN_FIELDS, epochs=8), **yaml_fields(TrainRun, *RUN_YAML_FIELDS))


SupernetSection = _supernet_section()


# `latency:` keys that are `TableConfig` fields (type, bounds, help from there; the defaults below where the
# pipeline's differ: fewer calibration subnets, every run measures its own table)
TABLE_FIELDS = ("backend", "precision", "threads", "batch_size", "calibrate", "device_tag")
# `latency:` keys that are `Protocol` fields: many short rounds outvote bursts of load that a few long ones cannot
# (experiments/results/vit-tiny.md)
PROTOCOL_FIELDS = ("rounds", "repeats")


class _LatencyOverrides(_Section):
    """The `latency:` keys the pipeline has and `TableConfig` does not (or spells otherwise)."""

    # several devices: one table, one front and one export per entry (NAME or NAME:PRECISION, e.g. openvino-cpu:bf16;
    # each in <workdir>/<name>[-<precision>]), sharing the supernet, the accuracy data set, the predictor and the
    # store; `backend` is then not used
    backends: Annotated[list[str], Field(min_length=1)] | None = None
    resolutions: list[int] | None = None  # None: all of the space's resolutions
    validate_n: Annotated[int, Field(ge=0)] = 10  # held-out subnets measured end to end to report fidelity
    table: str | None = None  # reuse this table instead of building one
    # time a whole reference subnet between rounds and store latencies relative to it (cancels slow load drift on
    # a shared machine); off, a table holds the plain timings a user of a quiet machine measures
    # (`Protocol.reference`)
    load_reference: bool = True

    @field_validator("table")
    @classmethod
    def _table_readable(cls, v: str | None) -> str | None:
        if _existing_file("latency.table", v) is not None:
            from latency_tables import LatencyTable

            LatencyTable.load(v)  # a truncated or corrupt table is refused before anything runs
        return v

    def table_config(self, **rest: Any) -> Any:
        """The `TableConfig` of this section's device (`rest`: what the run adds -- space, out, quantize, ...)."""
        from latency_tables import Protocol, TableConfig

        return TableConfig(**values(self, *TABLE_FIELDS), resolutions=self.resolutions,
                           protocol=Protocol(reference=self.load_reference, **values(self, *PROTOCOL_FIELDS)), **rest)


def _latency_section() -> type[_Section]:
    from latency_tables.protocol import Protocol
    from latency_tables.table_config import TableConfig

    return create_model("LatencySection", __base__=_LatencyOverrides, __module__=__name__,
                        **yaml_fields(TableConfig, *TABLE_FIELDS, backend="ort-cpu", calibrate=8),
                        **yaml_fields(Protocol, *PROTOCOL_FIELDS))


LatencySection = _latency_section()


# `accuracy:` keys that are `CollectConfig` fields (type, bounds, help from there)
COLLECT_FIELDS = ("n", "quantized_fraction", "uniform_fraction", "workers", "calib_batches", "device", "amp",
                  "gpus_per_task")


# `accuracy:` keys named for what they mean in the pipeline: `label_images`, the first N holdout images each label
# is measured on (None: all) -- more subnets for the same time, while the rest of the holdout verifies the subnets
# chosen for export
COLLECT_RENAMED = {"label_images": "max_images"}


class _AccuracyOverrides(_Section):
    """The `accuracy:` section: `CollectConfig` fields (`COLLECT_FIELDS`, `COLLECT_RENAMED`)."""

    def collect_config(self, **rest: Any) -> Any:
        """The `CollectConfig` of this section (`rest`: what the run adds -- supernet, out, seed, ...)."""
        from nas.collect_config import CollectConfig

        return CollectConfig(**values(self, *COLLECT_FIELDS),
                             **{field: getattr(self, key) for key, field in COLLECT_RENAMED.items()}, **rest)


def _accuracy_section() -> type[_Section]:
    from nas.collect_config import CollectConfig

    return create_model("AccuracySection", __base__=_AccuracyOverrides, __module__=__name__,
                        **yaml_fields(CollectConfig, *COLLECT_FIELDS, renamed=COLLECT_RENAMED, n=400))


AccuracySection = _accuracy_section()


class _PredictorChecks(_Section):
    @field_validator("kind", check_fields=False)
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from predictors.fit_config import kind_choices

        if v not in kind_choices():
            raise ValueError(f"allowed: one of {', '.join(kind_choices())}")
        return v


def _predictor_section() -> type[_Section]:
    from predictors.fit_config import FitConfig

    # `FitConfig.kind`; auto: the kind that ranks best in cross-validation on the collected data
    return create_model("PredictorSection", __base__=_PredictorChecks, __module__=__name__,
                        **yaml_fields(FitConfig, "kind"))


PredictorSection = _predictor_section()


# `search:` keys that are `SearchConfig` fields (type, bounds, help from there), handed to it as they are
SEARCH_FIELDS = ("objectives", "sampler", "trials", "workers", "storage", "verify_top", "quantize", "pruning")


class _SearchOverrides(_Section):
    """The `search:` keys that mean something else in an experiment file than in `SearchConfig`, or that only the
    pipeline has; the others are `SearchConfig`'s own fields (`SearchSection` below)."""

    # per budget with a latency or size limit, a budgeted search of this many trials after the front's (NSGA-II,
    # then the budget local search, `nas.search.local`): the front spreads its trials over every trade-off, the
    # budget's best subnet lies at its boundary. Its best feasible subnets join the front. 0: the front only.
    # (the pipeline's setting, not one search's: no `SearchConfig` field)
    budget_trials: Annotated[int, Field(ge=0)] = 0
    # after the budget searches: rounds of labelling each budget's `label_picks` best predicted subnets as the
    # accuracy labels were, correcting the predictor with them and searching the budgets again; the last round
    # measures its picks on the export's check images and they are the answers (`nas.pipeline.label_rounds`: a
    # search's best predicted subnets are its most over-predicted). 0: none. Needs `budget_trials`.
    label_rounds: Annotated[int, Field(ge=0, le=10)] = 0
    label_picks: Annotated[int, Field(ge=1, le=50)] = 3
    # in every label round, also time the picks whole on the table's backend and correct the table around them
    # (`nas.pipeline.pick_timing`: a latency budget search's picks are the ones the table under-predicts)
    time_picks: bool = True

    @model_validator(mode="after")
    def _rounds_need_budget_searches(self) -> Any:
        if self.label_rounds and not self.budget_trials:
            raise ValueError(f"label_rounds: got {self.label_rounds}, allowed: 0 unless budget_trials > 0 (the "
                             "rounds label what the budget searches choose)")
        return self

    @field_validator("sampler", check_fields=False)
    @classmethod
    def _known_sampler(cls, v: str) -> str:
        from nas.search.sampler_kinds import SAMPLERS

        if v not in SAMPLERS:
            raise ValueError(SAMPLERS.unknown_message(v))
        return v

    @field_validator("objectives", check_fields=False)
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"got {v}, allowed: two or three distinct objectives of accuracy, latency, size")
        return v

    @field_validator("storage", check_fields=False)
    @classmethod
    def _storage_scheme(cls, v: str | None) -> str | None:
        return _url_scheme("search.storage", v, journal=True)


def _search_section() -> type[_Section]:
    from nas.search.config import SearchConfig

    return create_model("SearchSection", __base__=_SearchOverrides, __module__=__name__,
                        **yaml_fields(SearchConfig, *SEARCH_FIELDS))


SearchSection = _search_section()


class _BudgetBase(_Section):
    """One entry of `budgets:`: a name and the `BudgetSettings` fields (added by `_budget_section`)."""

    name: str | None = None
    # a latency limit as a multiple of the latency table's reference subnet (a whole mid-sized subnet) as timed
    # during the table's build: a budget that means the same on a faster or slower device, or on a shared machine
    # whose speed drifts between runs; the pipeline turns it into latency_ms once the table exists
    latency_vs_reference: PosFloat | None = None

    @model_validator(mode="after")
    def _checked(self) -> Budget:
        from nas.budgets import Budgets

        if (self.latency_ms is None and self.latency_vs_reference is None and self.size_mb is None
                and self.min_accuracy is None):
            raise ValueError("a budget needs at least one of latency_ms, latency_vs_reference, size_mb, "
                             "min_accuracy")
        if self.latency_ms is not None and self.latency_vs_reference is not None:
            raise ValueError(f"latency_vs_reference: got {self.latency_vs_reference:g} beside latency_ms "
                             f"{self.latency_ms:g}, allowed: one of the two")
        Budgets.of(self)  # an InputError is a ValueError: one line
        return self

    def on_table(self, reference_ms: float) -> Budget:
        """This budget with `latency_vs_reference` as latency_ms on a table whose reference took `reference_ms`."""
        if self.latency_vs_reference is None:
            return self
        return self.model_copy(update={"latency_ms": round(self.latency_vs_reference * reference_ms, 4),
                                       "latency_vs_reference": None})

    def label(self) -> str:
        if self.name:
            return self.name
        parts = [f"{k}<={v:g}" for k, v in (("latency_ms", self.latency_ms), ("size_mb", self.size_mb),
                                            ("latency_vs_reference", self.latency_vs_reference)) if v]
        parts += [f"accuracy>={self.min_accuracy:g}"] if self.min_accuracy is not None else []
        return ", ".join(parts)


def _budget_section() -> type[_Section]:
    from nas.budgets import BudgetSettings

    return create_model("Budget", __base__=_BudgetBase, __module__=__name__,
                        **yaml_fields(BudgetSettings, "latency_ms", "size_mb", "min_accuracy"))


Budget = _budget_section()


class _ExportOverrides(_Section):
    """The `export:` keys the pipeline has and `ExportConfig` does not: which versions of each budget's pick."""

    float: bool = True
    quantized: bool = True


def _export_section() -> type[_Section]:
    from nas.export_config import ExportConfig

    # the pipeline compares logits on 1,000 test images (its accuracy is measured on all of them either way)
    return create_model("ExportSection", __base__=_ExportOverrides, __module__=__name__,
                        **yaml_fields(ExportConfig, "verify_n", verify_n=1000))


ExportSection = _export_section()


class RaySection(_Section):
    address: str | None = None  # None: a local Ray instance
    num_cpus: PosInt | None = None


class Experiment(_Section):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    space: str
    data: str
    seed: Seed = 0
    workdir: str | None = None  # default: runs/<name>
    store: str | None = None  # default: sqlite in the workdir
    supernet: SupernetSection = SupernetSection()  # type: ignore[valid-type]
    latency: LatencySection = LatencySection()  # type: ignore[valid-type]
    accuracy: AccuracySection = AccuracySection()  # type: ignore[valid-type]
    predictor: PredictorSection = PredictorSection()  # type: ignore[valid-type]
    search: SearchSection = SearchSection()  # type: ignore[valid-type]
    budgets: Annotated[list[Budget], Field(min_length=1)]
    export: ExportSection = ExportSection()
    ray: RaySection = RaySection()

    @field_validator("store")
    @classmethod
    def _store_scheme(cls, v: str | None) -> str | None:
        return _url_scheme("store", v, journal=False)

    @field_validator("space")
    @classmethod
    def _known_space(cls, v: str) -> str:
        if v not in SPACE_SPECS:
            raise ValueError(SPACE_SPECS.unknown_message(v))
        return v

    @field_validator("data")
    @classmethod
    def _known_data(cls, v: str) -> str:
        from nas.data import DATASETS

        kind, sep, arg = v.partition(":")
        if kind not in DATASETS:
            raise ValueError(DATASETS.unknown_message(kind))
        if kind in ("folder", "folder-mem") and not arg:
            raise ValueError(f"{kind} data needs a path: {kind}:PATH (PATH/train/CLASS/*.jpg, PATH/val/CLASS/*.jpg)")
        return v

    @model_validator(mode="after")
    def _resolutions_in_space(self) -> Experiment:
        if self.latency.resolutions is not None:
            allowed = SPACE_SPECS.get(self.space).resolutions
            bad = [r for r in self.latency.resolutions if r not in allowed]
            if bad or not self.latency.resolutions:
                raise ValueError(f"latency.resolutions: got {self.latency.resolutions}, allowed: a non-empty "
                                 f"subset of {list(allowed)}")
        return self

    @model_validator(mode="after")
    def _ofa_space(self) -> Experiment:
        from nas.import_config import OFA_SPACES

        if self.supernet.import_ofa is not None and self.space not in OFA_SPACES:
            raise ValueError(f"supernet.import_ofa: space is {self.space!r}, allowed: one of {', '.join(OFA_SPACES)} "
                             "(Once-for-All's published MobileNetV3 supernets)")
        return self

    def devices(self) -> list[tuple[str, str]]:
        """(backend, precision) of every device: `latency.backends` entries are NAME or NAME:PRECISION (e.g.
        openvino-cpu:bf16, the 16-bit device of a BF16 CPU); else `latency.backend` at `latency.precision`."""
        if not self.latency.backends:
            return [(self.latency.backend, self.latency.precision)]
        out = []
        for item in self.latency.backends:
            name, _, precision = item.partition(":")
            out.append((name, precision or self.latency.precision))
        return out

    @model_validator(mode="after")
    def _backends_known(self) -> Experiment:
        from latency_tables import BACKENDS

        devices = self.devices()
        if len(set(devices)) != len(devices):
            raise ValueError(f"latency.backends: got {self.latency.backends}, allowed: each device once")
        for i, (name, precision) in enumerate(devices):
            field = f"latency.backends[{i}]" if self.latency.backends else "latency.backend"
            if name not in BACKENDS:
                raise ValueError(f"{field}: {BACKENDS.unknown_message(name)}")
            allowed = BACKENDS.get(name).precisions
            if precision not in allowed:
                field = f"latency.backends[{i}]" if self.latency.backends and ":" in self.latency.backends[i] \
                    else "latency.precision"
                raise ValueError(f"{field}: precision {precision!r} is not run by {name}; allowed: "
                                 f"{' or '.join(allowed)}")
        return self

    def per_device(self) -> list[Experiment]:
        """This experiment once per device (`latency.backends`), each in its own workdir (`<workdir>/<backend>`,
        `<workdir>/<backend>-<precision>` for a 16-bit one) with the shared store; the experiment itself when it
        names one backend."""
        if not self.latency.backends:
            return [self]
        return [self.model_copy(update={
            "latency": self.latency.model_copy(update={"backend": b, "precision": p, "backends": None}),
            "workdir": str(self.workdir_path / (b if p == "fp32" else f"{b}-{p}")), "store": self.store_url})
            for b, p in self.devices()]

    def on_table(self, reference_ms: float | None) -> Experiment:
        """The budgets' `latency_vs_reference` as latency_ms on a table whose reference took `reference_ms`
        (None: a table without a reference subnet, where such a budget is an error)."""
        if not any(b.latency_vs_reference is not None for b in self.budgets):
            return self
        if reference_ms is None:
            raise InputError("budgets: latency_vs_reference needs a latency table timed against a reference "
                             "subnet (latency.load_reference: true); this one has none")
        return self.model_copy(update={"budgets": [b.on_table(reference_ms) for b in self.budgets]})

    @property
    def workdir_path(self) -> Path:
        return Path(self.workdir or f"runs/{self.name}")

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{(self.workdir_path / 'results.db').as_posix()}"


def _format_error(e: ValidationError, source: str) -> str:
    err = e.errors()[0]
    path = ""
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    msg = err["msg"].removeprefix("Value error, ")[:400]
    if err["type"] == "string_pattern_mismatch" and path == "name":
        msg = "allowed: letters, digits, '.', '_' and '-' (a folder name under runs/, at most 64 characters)"
    if not path:  # a whole-experiment check: its message names the key itself
        return f"{source}: {msg}"
    if err["type"] == "extra_forbidden":
        return f"{source}: {path}: unknown key"
    if err["type"] == "missing":
        return f"{source}: {path}: missing"
    got = repr(err.get("input"))
    if len(got) > MAX_ERROR_INPUT:
        got = got[:MAX_ERROR_INPUT] + "..."
    return f"{source}: {path}: {msg} (got {got})"


def parse_experiment(data: Any, source: str = "experiment") -> Experiment:
    if not isinstance(data, dict):
        raise InputError(f"{source}: got {type(data).__name__}, allowed: a mapping of keys (name, space, data, ...)")
    try:
        return Experiment.model_validate(data)
    except ValidationError as e:
        raise InputError(_format_error(e, source)) from None


def load_experiment(path: str | Path) -> Experiment:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"experiment: got {str(path)!r}, allowed: an existing YAML file")
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except UnicodeDecodeError:
        raise InputError(f"{p}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise InputError(f"{p}: not valid YAML ({str(e).splitlines()[0][:300]})") from None
    return parse_experiment(data, source=str(p))


class _StrictLoader(yaml.SafeLoader):
    """yaml's SafeLoader, refusing duplicate keys (the last one would silently win) and documents whose aliases
    expand past `MAX_YAML_NODES` nodes (or refer to themselves)."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, set())
        return self.construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r:.60}",
                                                        key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], path: set[int]) -> int:
    """Nodes of `node` with every alias expanded (memoised, so a bomb is measured without expanding it)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in path:
        raise yaml.YAMLError("an alias refers to itself (recursive data is not an experiment)")
    path.add(key)
    n = 1
    if isinstance(node, yaml.SequenceNode):
        n += sum(_expanded_size(c, sizes, path) for c in node.value)
    elif isinstance(node, yaml.MappingNode):
        n += sum(_expanded_size(k, sizes, path) + _expanded_size(v, sizes, path) for k, v in node.value)
    path.discard(key)
    if n > MAX_YAML_NODES:
        raise yaml.YAMLError(f"aliases expand the document past {MAX_YAML_NODES} nodes (an alias bomb?)")
    sizes[key] = n
    return n
