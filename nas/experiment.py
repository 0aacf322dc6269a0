"""The experiment file behind `hwnas run`: one validated YAML describing the whole pipeline.

Unknown keys and bad values are rejected with the key path named (`search.trials: ...`), before anything runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from search_spaces import InputError
from search_spaces.presets import SPACE_SPECS

PosInt = Annotated[int, Field(ge=1)]
PosFloat = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SupernetSection(_Section):
    epochs: PosInt = 8
    batch_size: PosInt = 128
    lr: PosFloat | None = None  # None: the trainer's default (AdamW 4e-3, warm-up then cosine)
    checkpoint: str | None = None  # use this trained supernet instead of training one


class LatencySection(_Section):
    backend: str = "ort-cpu"
    threads: PosInt = 1
    batch_size: PosInt = 1
    resolutions: list[int] | None = None  # None: all of the space's resolutions
    calibrate: Annotated[int, Field(ge=0)] = 8  # end-to-end measurements for the calibration fit
    validate_n: Annotated[int, Field(ge=0)] = 10  # held-out subnets measured end to end to report fidelity
    table: str | None = None  # reuse this table instead of building one
    device_tag: str | None = None


class AccuracySection(_Section):
    n: PosInt = 400
    quantized_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    workers: PosInt = 1


class PredictorSection(_Section):
    # predictors.bundle.fit_predictor; auto: the kind that ranks best in cross-validation on the collected data
    kind: Literal["mlp", "gbt", "ridge", "stack", "auto"] = "auto"


class SearchSection(_Section):
    sampler: Literal["nsga2", "tpe", "random"] = "nsga2"
    trials: PosInt = 2000
    workers: PosInt = 1
    objectives: list[Literal["accuracy", "latency", "size"]] = ["accuracy", "latency", "size"]
    storage: str | None = None  # default: a journal file in the workdir
    verify_top: Annotated[int, Field(ge=0)] = 0
    quantize: bool = True  # search bit-widths too (False: architecture and pruning only, float tables)
    pruning: bool = True  # search channel keep ratios too (False: every block keeps all its channels)


class Budget(_Section):
    name: str | None = None
    latency_ms: PosFloat | None = None
    size_mb: PosFloat | None = None
    min_accuracy: Annotated[float, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Budget:
        if self.latency_ms is None and self.size_mb is None and self.min_accuracy is None:
            raise ValueError("a budget needs at least one of latency_ms, size_mb, min_accuracy")
        return self

    def label(self) -> str:
        if self.name:
            return self.name
        parts = [f"{k}<={v:g}" for k, v in (("latency_ms", self.latency_ms), ("size_mb", self.size_mb)) if v]
        parts += [f"accuracy>={self.min_accuracy:g}"] if self.min_accuracy is not None else []
        return ", ".join(parts)


class ExportSection(_Section):
    float: bool = True
    quantized: bool = True
    verify_n: PosInt = 256  # test images for ORT vs PyTorch agreement


class RaySection(_Section):
    address: str | None = None  # None: a local Ray instance
    num_cpus: PosInt | None = None


class Experiment(_Section):
    name: str
    space: str
    data: str
    seed: int = 0
    workdir: str | None = None  # default: runs/<name>
    store: str | None = None  # default: sqlite in the workdir
    supernet: SupernetSection = SupernetSection()
    latency: LatencySection = LatencySection()
    accuracy: AccuracySection = AccuracySection()
    predictor: PredictorSection = PredictorSection()
    search: SearchSection = SearchSection()
    budgets: Annotated[list[Budget], Field(min_length=1)]
    export: ExportSection = ExportSection()
    ray: RaySection = RaySection()

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
        if kind == "folder" and not arg:
            raise ValueError("folder data needs a path: folder:PATH (PATH/train/CLASS/*.jpg, PATH/val/CLASS/*.jpg)")
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
    msg = err["msg"].removeprefix("Value error, ")
    if not path:  # a whole-experiment check: its message names the key itself
        return f"{source}: {msg}"
    if err["type"] == "extra_forbidden":
        return f"{source}: {path}: unknown key"
    if err["type"] == "missing":
        return f"{source}: {path}: missing"
    return f"{source}: {path}: {msg} (got {err.get('input')!r})"


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
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InputError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_experiment(data, source=str(p))
