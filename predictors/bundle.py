"""`AccuracyPredictor`: what `hwnas predictor fit` writes and the search loads -- a full-precision model and,
when the data had quantized subnets, a quantization-aware one -- saved as a directory:

    DIR/predictor.json       format, space, the models and their metadata, held-out metrics, data provenance
    DIR/fp.safetensors       the full-precision model's arrays (its metadata also in the safetensors header)
    DIR/qa.safetensors       the quantization-aware model's arrays (optional)
    DIR/correction.safetensors   a `residual-gp` added to every prediction (optional; `with_correction`)

`predict` sends float configs to the fp model and quantized ones to the qa model (to the fp model -- which ignores
bits -- when there is none). No pickle anywhere.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from search_spaces import HwnasError, InputError, get_space
from search_spaces.errors import bad_value
from search_spaces.files import inside, publish, shared_mode

from predictors.base import FORMAT_VERSION, PREDICTORS, Predictor, create_predictor
from predictors.features import ConfigsOrIndices, FeatureLayout
from predictors.fit_config import AUTO, FitConfig
from predictors.metrics import binomial_variance, cv_kendall_tau, label_reliability, rank_metrics
from predictors.quant_fit import fit_quant_model
from predictors.uncertainty import Margins

MANIFEST = "predictor.json"
FORMAT = "hwnas-accuracy-predictor"
ROLES = ("fp", "qa", "correction")


class AccuracyPredictor:
    """The fp model plus an optional quantization-aware model and an optional correction, for one space."""

    def __init__(self, fp: Predictor, qa: Predictor | None = None, info: dict[str, Any] | None = None,
                 correction: Predictor | None = None) -> None:
        if fp.quant:
            raise bad_value("fp model", f"{fp.kind} with bit features", "a full-precision model (quant=False)")
        if qa is not None and (not qa.quant or qa.space != fp.space):
            raise bad_value("qa model", f"{qa.kind} quant={qa.quant} space={qa.space}",
                            f"a quantization-aware model of space {fp.space}")
        if correction is not None and (not correction.quant or correction.space != fp.space):
            raise bad_value("correction model", f"{correction.kind} quant={correction.quant}",
                            f"a model on the quantization-aware features of space {fp.space}")
        self.fp, self.qa = fp, qa
        # added to every prediction: the residuals of subnets a search chose (`with_correction`)
        self.correction = correction
        self.space: str = fp.space
        self.search_space = fp.search_space
        self._layout = FeatureLayout(self.search_space, quant=True)
        self.info: dict[str, Any] = dict(info or {})

    def __repr__(self) -> str:
        return (f"AccuracyPredictor(space={self.space!r}, fp={self.fp.kind!r}, qa={self.qa.kind if self.qa else None!r}"
                f"{', corrected' if self.correction is not None else ''})")

    @property
    def kind(self) -> str:
        return self.fp.kind

    @property
    def has_std(self) -> bool:
        return self.fp.has_std and (self.qa is None or self.qa.has_std)

    def _route(self, x: ConfigsOrIndices) -> tuple[np.ndarray, np.ndarray]:
        idx = self._layout.as_indices(x)
        sc = self.search_space.schema
        w32, a32 = sc.choices("weight_bits").index(32), sc.choices("act_bits").index(32)
        wb, ab = sc.field(idx, "weight_bits"), sc.field(idx, "act_bits")
        quantized = (((wb >= 0) & (wb != w32)) | ((ab >= 0) & (ab != a32))).any(axis=1)
        return idx, quantized

    @property
    def margins(self) -> Margins | None:
        """Held-out residuals (`fit_predictor` records them); None for a predictor saved without them."""
        u = self.info.get("uncertainty")
        return None if u is None else Margins.from_dict(u)

    def lower_bound(self, x: ConfigsOrIndices, confidence: float = 0.9) -> np.ndarray:
        """Per config, the accuracy (percent) it reaches with probability >= `confidence`: the prediction minus
        the split-conformal margin of its role's held-out residuals (`predictors.uncertainty`)."""
        margins = self.margins
        if margins is None:
            raise InputError("predictor: it records no held-out residuals, allowed: a predictor fitted by this "
                             "hwnas (hwnas predictor fit)")
        idx, quantized = self._route(x)
        mean = self._predict(idx, with_std=False)[0]
        # residuals are per kind of subnet (float / quantized held-out records), whichever model scored them
        return mean - np.where(quantized, margins.margin("qa", confidence), margins.margin("fp", confidence))

    def predict_with_std(self, x: ConfigsOrIndices) -> tuple[np.ndarray, np.ndarray]:
        """(mean, spread) top-1 accuracy in percent; quantized configs go to the qa model when there is one."""
        if not self.has_std:
            raise HwnasError(f"predictor kind {self.kind!r} gives no spread; use predict()")
        return self._predict(x, with_std=True)

    def predict(self, x: ConfigsOrIndices) -> np.ndarray:
        """Top-1 accuracy in percent, one per config (configs, a `to_indices` matrix or one config)."""
        return self._predict(x, with_std=False)[0]

    def _predict(self, x: ConfigsOrIndices, with_std: bool) -> tuple[np.ndarray, np.ndarray]:
        idx, quantized = self._route(x)
        mean, std = np.empty(idx.shape[0]), np.zeros(idx.shape[0])
        if self.qa is not None:
            parts = [(~quantized, self.fp), (quantized, self.qa)]
        else:
            parts = [(np.ones_like(quantized), self.fp)]
        for rows, model in parts:
            if rows.any():
                sub = idx[rows] if not rows.all() else idx
                if with_std:
                    mean[rows], std[rows] = model.predict_with_std(sub)
                else:
                    mean[rows] = model.predict(sub)
        if self.correction is not None and len(idx):
            mean += self.correction.predict(idx)
        return mean, std

    def with_correction(self, configs: ConfigsOrIndices, accuracy: Any, seed: int = 0,
                        images: Any = None) -> AccuracyPredictor:
        """This predictor plus a `residual-gp` fitted on `configs`' residuals (their measured `accuracy` minus
        this predictor's figures, any earlier correction left out): the subnets a search chose, labelled.
        `images`: how many images each accuracy was measured on (one number or one per label), which gives each
        label its binomial variance; None fits one noise for all."""
        from predictors.residual_gp import ResidualGP

        base = AccuracyPredictor(self.fp, self.qa, self.info)
        idx = self._layout.as_indices(configs)
        acc = np.asarray(accuracy, dtype=np.float64).ravel()
        residual = acc - base.predict(idx)
        precision = None if images is None else 1.0 / binomial_variance(acc, images)
        gp = ResidualGP(self.search_space, seed=seed).fit(idx, residual, sample_weight=precision)
        return AccuracyPredictor(self.fp, self.qa, self.info, correction=gp)

    # ---- persistence -----------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write DIR atomically: a temporary sibling directory is filled, then renamed onto DIR (an existing DIR
        is replaced only once the new one is complete)."""
        dest = Path(directory)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        try:
            shared_mode(tmp)  # mkdtemp makes it private; the result is an ordinary directory (umask)
            models: dict[str, Any] = {}
            for role, model in (("fp", self.fp), ("qa", self.qa), ("correction", self.correction)):
                if model is None:
                    continue
                tensors, meta = model.state()
                save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / f"{role}.safetensors"),
                          metadata={"hwnas": json.dumps(meta)})
                models[role] = {"file": f"{role}.safetensors", **meta}
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "space": self.space, "kind": self.kind,
                        "models": models, **self.info}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
            old = None
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.monotonic_ns()}")
                os.replace(dest, old)
            publish(tmp, dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest


def load_predictor(directory: str | os.PathLike[str], space: str | None = None) -> AccuracyPredictor:
    """The predictor `hwnas predictor fit` wrote in DIR; with `space`, it must be a predictor for that space."""
    d = Path(directory)
    manifest_path = d / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"predictor: got {str(directory)!r}, allowed: a directory written by `hwnas predictor fit` "
                         f"(with {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"predictor: {manifest_path} is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"predictor: {manifest_path} format: got "
                         f"{manifest.get('format') if isinstance(manifest, dict) else manifest!r}, allowed: {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise bad_value("predictor format_version", manifest.get("format_version"), str(FORMAT_VERSION))
    saved_space = manifest.get("space")
    if space is not None and saved_space != space:
        raise InputError(f"predictor space: got {saved_space!r} (in {d}), allowed: {space!r} (the space asked for)")
    sp = get_space(saved_space)
    models: dict[str, Predictor] = {}
    if not isinstance(manifest.get("models"), dict):
        raise InputError(f"predictor: {manifest_path} models: got {manifest.get('models')!r:.100}, allowed: an "
                         "object role -> {file, kind, ...}")
    for role, entry in manifest["models"].items():
        if role not in ROLES:
            raise bad_value("predictor model role", role, f"one of {', '.join(ROLES)}")
        models[role] = _load_model(d, role, entry, sp)
    if "fp" not in models:
        raise InputError(f"predictor: {manifest_path} has no 'fp' model")
    info = {k: v for k, v in manifest.items() if k not in ("format", "format_version", "space", "kind", "models")}
    return AccuracyPredictor(models["fp"], models.get("qa"), info, models.get("correction"))


def _load_model(d: Path, role: str, entry: Any, sp: Any) -> Predictor:
    """One model of a bundle: its file must lie inside the directory, read as safetensors, and hold finite
    arrays of the shapes its kind expects (checked by `from_state`); any damage is one line naming the file."""
    field = f"predictor: {d / MANIFEST}: models.{role}"
    if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
        raise InputError(f"{field}: got {entry!r}, allowed: an object with file and kind")
    path = inside(d, entry.get("file"), f"{field}.file")
    if not path.is_file():
        raise InputError(f"predictor: {path} is missing (the directory is incomplete)")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # truncated / garbage: safetensors raises its own error types
        raise InputError(f"predictor: {path} is not a readable safetensors file ({str(e).splitlines()[0][:200]}); "
                         "refit it with `hwnas predictor fit`") from None
    for k, v in tensors.items():
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise InputError(f"predictor: {path}: array {k!r} has non-finite values; refit it")
    cls = PREDICTORS.get(entry["kind"])
    try:
        model = cls.from_state(sp, tensors, entry)
        probe = model.predict(sp.sample_many(2, 0, quantize=model.quant))  # arrays of the wrong shape fail here
        if probe.shape != (2,) or not np.isfinite(probe).all():
            raise ValueError(f"predicts {probe!r:.80} for 2 configs")
        return model
    except InputError as e:
        raise InputError(f"predictor: {path}: {e}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
        raise InputError(f"{field}: does not match {path.name} ({type(e).__name__}: {str(e)[:200]}); "
                         "refit it with `hwnas predictor fit`") from None


# ---- fitting from a dataset ------------------------------------------------------------------------------
def fp_kinds() -> list[str]:
    """The registered kinds `fit_predictor` can fit (`Predictor.full_precision`), besides `auto`."""
    return [name for name, cls in PREDICTORS.items() if cls.full_precision]


# what `auto` chooses between: the stack already weighs gbt against ridge by cross-validation, and offering them
# alone too only adds chances to pick a kind by noise (the quickstart's 156 float samples: ridge won CV by 0.005
# over the stack, then ranked its held-out subnets at 0.587 against the stack's 0.687)
AUTO_KINDS = ("mlp", "stack")
CV_FOLDS = 4


def choose_kind(idx: np.ndarray, y: np.ndarray, space: str, seed: int = 0,
                folds: int = CV_FOLDS) -> tuple[str, dict[str, Any]]:
    """The kind of `AUTO_KINDS` with the best mean Kendall tau over `folds`-fold cross-validation on these
    (training) records. Which wins depends on the labels: on the synthetic target (smooth in capacity) the mlp, on
    the real supernets' labels the stack, so `auto` measures it on the user's data instead of guessing."""
    def fitter(kind: str) -> Callable[[np.ndarray], Predictor]:
        return lambda rows: create_predictor(kind, space, seed=seed).fit(idx[rows], y[rows])

    taus = {kind: cv_kendall_tau(fitter(kind), np.arange(len(y)), idx, y, folds, seed) for kind in AUTO_KINDS}
    best = max(AUTO_KINDS, key=lambda k: taus[k])  # ties: the first listed
    return best, {"cv_folds": folds, "kendall_tau": taus, "chosen": best}


def fit_predictor(config: FitConfig) -> tuple[AccuracyPredictor, dict[str, Any]]:
    """Split held-out architectures, fit the fp model on float samples and -- when there are quantized samples --
    the quantization-aware one (transferred from the fp model, or the same kind fitted jointly on all samples,
    whichever ranks held-out quantized records better: `predictors.quant_fit`). `kind="auto"` picks the fp kind by
    cross-validation on the training records (`choose_kind`). Returns the predictor and its held-out report; with
    `config.out`, the predictor is saved there too."""
    config.validate()
    dataset = config.load_dataset()
    kind, seed, test_fraction, min_train = config.kind, config.seed, config.test_fraction, config.min_train
    train, test = dataset.split(test_fraction, seed)
    if len(test) < 2:
        raise InputError(f"test_fraction: {test_fraction} holds out {len(test)} of {len(dataset)} records, "
                         "allowed: enough records that at least 2 are held out")
    q = dataset.quantized
    fp_train = train[~q[train]]
    if len(fp_train) < min_train:
        raise InputError(f"dataset: {len(fp_train)} float records to train on, allowed: at least {min_train} "
                         "(the fp model is trained on float subnets)")
    idx = dataset.indices()
    y = dataset.accuracy
    start = time.perf_counter()
    selection = None
    if kind == AUTO:
        kind, selection = choose_kind(idx[fp_train], y[fp_train], dataset.space, seed)
    fp = create_predictor(kind, dataset.space, seed=seed).fit(idx[fp_train], y[fp_train])
    qa: Predictor | None = None
    qa_selection = None
    q_train = train[q[train]]
    if len(q_train) >= 2:
        qa, qa_selection = fit_quant_model(fp, idx, y, fp_train, q_train)
    seconds = time.perf_counter() - start
    bundle = AccuracyPredictor(fp, qa)
    pred = bundle.predict(idx[test])
    report: dict[str, Any] = {"space": dataset.space, "kind": kind, "seed": seed, "test_fraction": test_fraction,
                              **_metrics(y[test], pred), "n_train": int(len(train)), "n_test": int(len(test)),
                              "fit_seconds": round(seconds, 2), "kind_selection": selection,
                              "qa_selection": qa_selection}
    models: dict[str, Any] = {}
    for role, model, rows_train, mask in (("fp", fp, fp_train, ~q[test]), ("qa", qa, q_train, q[test])):
        if model is None:
            continue
        rows = test[mask]
        entry: dict[str, Any] = {"kind": model.kind, "n_train": int(len(rows_train)), "n_test": int(len(rows))}
        if len(rows) >= 2:
            entry.update(_metrics(y[rows], model.predict(idx[rows])))
        models[role] = entry
    if qa is None and q[test].sum() >= 2:  # quantized held-out records scored by the fp model (bits ignored)
        rows = test[q[test]]
        models["qa"] = {"kind": None, "n_train": 0, "n_test": int(len(rows)),
                        **_metrics(y[rows], fp.predict(idx[rows]))}
    report["models"] = models
    # how far the held-out tau can go with these labels (all records: the noise is the data set's, not the split's)
    reliability = label_reliability(dataset.halves)
    report["label_reliability"] = reliability if reliability["n"] >= 3 else None
    margins = Margins.from_held_out(pred, y[test], q[test])
    report["margin_90"] = {r: round(margins.margin(r, 0.9), 4) for r in ("fp", "qa") if r in margins.residuals}
    bundle.info = {"metrics": report, "dataset": {"n": len(dataset), "n_quantized": int(q.sum()), **dataset.sources},
                   "uncertainty": margins.to_dict()}
    if config.out is not None:
        bundle.save(config.out)
    return bundle, report


def _metrics(t: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    m = rank_metrics(t, p)
    return {"kendall_tau": round(m["kendall_tau"], 4), "spearman": round(m["spearman"], 4),
            "rmse": round(m["rmse"], 4), "mae": round(m["mae"], 4)}
