"""The stages of `hwnas run`, in order, each a function of the experiment and the results it depends on.

supernet -> latency -> accuracy -> predictor -> search -> store -> export -> baselines -> report
"""
from __future__ import annotations

import hashlib
import platform
import shutil
from pathlib import Path
from typing import Any

from nas.experiment import Budget, Experiment
from nas.pipeline.cache import StageResult, StageRunner


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def supernet_stage(run: StageRunner, exp: Experiment, progress: bool) -> StageResult:
    s = exp.supernet
    if s.checkpoint is not None:
        settings: dict[str, Any] = {"checkpoint": str(Path(s.checkpoint).resolve()), "sha256": _sha256(s.checkpoint)}

        def use(folder: Path) -> dict[str, Any]:
            from nas.checkpoint import load_supernet

            load_supernet(s.checkpoint, space=exp.space)  # fails clearly for another space
            return {"checkpoint": settings["checkpoint"], "trained_here": False}

        return run.run("supernet", settings, [], use)
    settings = {"space": exp.space, "data": exp.data, "seed": exp.seed, "epochs": s.epochs,
                "batch_size": s.batch_size, "lr": s.lr}

    def train(folder: Path) -> dict[str, Any]:
        from nas.data import load_data
        from nas.train import TrainConfig, evaluate_references, train_supernet

        cfg = TrainConfig(space=exp.space, data=exp.data, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                          seed=exp.seed, data_seed=exp.seed)
        ckpt = folder / "supernet.pt"
        result = train_supernet(cfg, ckpt, resume=ckpt.exists(), progress=progress)
        from nas.checkpoint import load_supernet

        net, _ = load_supernet(ckpt)
        data = load_data(exp.data, seed=exp.seed, in_channels=net.spec.in_channels,
                         image_size=max(net.spec.resolutions))
        refs = evaluate_references(net, data, split="test")
        return {"checkpoint": str(ckpt.resolve()), "trained_here": True, "epochs": result.epochs_done,
                "train_seconds": result.seconds, "test_accuracy": refs}

    return run.run("supernet", settings, [], train)


def latency_stage(run: StageRunner, exp: Experiment, progress: bool) -> StageResult:
    lat = exp.latency
    if lat.table is not None:
        settings: dict[str, Any] = {"table": str(Path(lat.table).resolve()), "sha256": _sha256(lat.table)}

        def reuse(folder: Path) -> dict[str, Any]:
            from latency_tables import LatencyTable

            t = LatencyTable.load(lat.table, space=exp.space)
            return {"table": settings["table"], "device_tag": t.device_tag, "built_here": False}

        return run.run("latency", settings, [], reuse)
    # a table belongs to a machine: the host and the backend's fingerprint are part of its key
    from latency_tables import get_backend

    fingerprint = get_backend(lat.backend, threads=lat.threads, batch_size=lat.batch_size).fingerprint()
    settings = {"space": exp.space, "backend": lat.backend, "threads": lat.threads, "batch_size": lat.batch_size,
                "resolutions": lat.resolutions, "calibrate": lat.calibrate, "validate_n": lat.validate_n,
                "device_tag": lat.device_tag, "host": platform.node(), "fingerprint": fingerprint,
                "ray_address": exp.ray.address}

    def build(folder: Path) -> dict[str, Any]:
        from latency_tables import build_table, validate_table

        out = folder / "table.json"
        table = build_table(exp.space, lat.backend, out, resolutions=lat.resolutions, threads=lat.threads,
                            batch_size=lat.batch_size, device_tag=lat.device_tag, ray_address=exp.ray.address,
                            calibrate=lat.calibrate, progress=progress)
        validation = None
        if lat.validate_n:
            v = validate_table(table, n=lat.validate_n, seed=exp.seed + 1, ray_address=exp.ray.address,
                               progress=progress)
            validation = {k: v[k] for k in ("n", "within_5pct", "within_10pct", "mape", "rmse_ms") if k in v}
            validation["uncalibrated"] = v.get("uncalibrated")
        return {"table": str(out.resolve()), "device_tag": table.device_tag, "built_here": True,
                "keys": len(table.entries), "validation": validation}

    return run.run("latency", settings, [], build)


def accuracy_stage(run: StageRunner, exp: Experiment, supernet: StageResult, progress: bool) -> StageResult:
    a = exp.accuracy
    settings = {"data": exp.data, "n": a.n, "quantized_fraction": a.quantized_fraction, "seed": exp.seed}

    def collect_(folder: Path) -> dict[str, Any]:
        from nas.accuracy_dataset import collect

        out = folder / "accuracy.jsonl"
        info = collect(supernet.outputs["checkpoint"], exp.data, a.n, out, seed=exp.seed,
                       quantized_fraction=a.quantized_fraction, workers=a.workers, ray_address=exp.ray.address,
                       progress=progress)
        return {"dataset": str(out.resolve()), "n": a.n, "mean_accuracy": info.get("mean_accuracy")}

    return run.run("accuracy", settings, [supernet], collect_)


def predictor_stage(run: StageRunner, exp: Experiment, accuracy: StageResult) -> StageResult:
    settings = {"kind": exp.predictor.kind, "seed": exp.seed}

    def fit(folder: Path) -> dict[str, Any]:
        from predictors import fit_predictor, load_accuracy_dataset

        ds = load_accuracy_dataset(accuracy.outputs["dataset"], space=exp.space)
        pred, report = fit_predictor(ds, kind=exp.predictor.kind, seed=exp.seed)
        out = folder / "predictor"
        if out.exists():  # an interrupted earlier attempt: fitting is cheap, start again
            shutil.rmtree(out)
        pred.save(out)
        return {"predictor": str(out.resolve()), "report": report}

    return run.run("predictor", settings, [accuracy], fit)


def search_stage(run: StageRunner, exp: Experiment, predictor: StageResult, latency: StageResult,
                 progress: bool) -> StageResult:
    s = exp.search
    settings = {"sampler": s.sampler, "trials": s.trials, "workers": s.workers, "objectives": s.objectives,
                "storage": s.storage, "seed": exp.seed, "verify_top": s.verify_top}

    def search(folder: Path) -> dict[str, Any]:
        from nas.search.api import SearchConfig, run_search

        cfg = SearchConfig(space=exp.space, out=str(folder), predictor=predictor.outputs["predictor"],
                           table=latency.outputs["table"], objectives=tuple(s.objectives), sampler=s.sampler,
                           trials=s.trials, workers=s.workers if s.workers > 1 else 0,
                           ray_address=exp.ray.address, storage=s.storage, seed=exp.seed,
                           study=f"{exp.name}-{run.key_of('search', settings, [predictor, latency])}")
        result = run_search(cfg)
        summary = result.summary() if hasattr(result, "summary") else {}
        return {"out": str(folder.resolve()), "summary": summary}

    return run.run("search", settings, [predictor, latency], search)


def budget_slug(b: Budget, i: int) -> str:
    raw = b.name or f"budget{i}"
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in raw)


__all__ = ["accuracy_stage", "budget_slug", "latency_stage", "predictor_stage", "search_stage", "supernet_stage"]
