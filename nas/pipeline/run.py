"""`run_experiment`: the whole pipeline of one experiment file, stage by stage, cached."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from nas.experiment import Experiment
from nas.pipeline import report
from nas.pipeline.cache import StageRunner
from nas.pipeline.stages import (accuracy_stage, baselines_stage, export_stage, latency_stage, predictor_stage,
                                 search_stage, store_stage, supernet_stage)


def ray_address_for(exp: Experiment) -> str | None:
    """The experiment's Ray address; inside `ray job submit` (RAY_ADDRESS set) the job's cluster."""
    if exp.ray.address:
        return exp.ray.address
    return "auto" if os.environ.get("RAY_ADDRESS") else None


def run_experiment(exp: Experiment, dry_run: bool = False, progress: bool = True,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """The pipeline; with `latency.backends`, the device-independent stages (supernet, accuracy, predictor) once
    and the device stages (latency ... report) once per backend, each in `<workdir>/<backend>`."""
    wd = exp.workdir_path
    wd.mkdir(parents=True, exist_ok=True) if not dry_run else None
    run = StageRunner(wd, log=log, dry_run=dry_run)
    ray_address = ray_address_for(exp)
    supernet = supernet_stage(run, exp, progress, ray_address)
    devices = exp.per_device()
    if len(devices) == 1:
        return _device_stages(exp, run, run, supernet, None, None, dry_run, progress, log, ray_address)
    accuracy = predictor = None
    if not dry_run or supernet.cached:
        accuracy = accuracy_stage(run, exp, supernet, progress, ray_address)
        predictor = predictor_stage(run, exp, accuracy)
    results = {}
    for d in devices:
        log(f"== device {d.latency.backend} at {d.latency.precision} ({d.workdir_path})")
        d.workdir_path.mkdir(parents=True, exist_ok=True) if not dry_run else None
        d_run = StageRunner(d.workdir_path, log=log, dry_run=dry_run)
        results[d.workdir_path.name] = _device_stages(d, run, d_run, supernet, accuracy, predictor, dry_run,
                                                    progress, log, ray_address)
    return {"workdir": str(wd), "devices": results}


def _device_stages(exp: Experiment, run: StageRunner, d_run: StageRunner, supernet: Any, accuracy: Any,
                   predictor: Any, dry_run: bool, progress: bool, log: Callable[[str], None],
                   ray_address: str | None) -> dict[str, Any]:
    """latency ... report for one device, in `d_run`'s workdir; supernet, accuracy and predictor run by `run`
    (the same runner when the experiment names one backend)."""
    wd = exp.workdir_path

    def stages() -> dict[str, Any]:
        return {**run.results, **d_run.results}

    latency = latency_stage(d_run, exp, progress, ray_address)
    if latency.outputs:  # relative latency budgets become ms on this table (a dry run before it: left as they are)
        from latency_tables import LatencyTable

        exp = exp.on_table(LatencyTable.load(latency.outputs["table"]).reference_ms)
    if dry_run and not supernet.cached:
        log("[accuracy] [predictor] [search] [store] [export] [baselines] would run after the supernet")
        return {"dry_run": True, "stages": {k: {"key": v.key, "cached": v.cached} for k, v in stages().items()}}
    if predictor is None:
        accuracy = accuracy_stage(run, exp, supernet, progress, ray_address)
        predictor = predictor_stage(run, exp, accuracy)
    search = search_stage(d_run, exp, accuracy, predictor, latency, supernet, ray_address, progress)
    store = store_stage(d_run, exp, search, latency, predictor)
    export = export_stage(d_run, exp, store, supernet, latency, predictor, search)
    baselines = baselines_stage(d_run, exp, predictor, latency, search)
    if dry_run:
        return {"dry_run": True, "stages": {k: {"key": v.key, "cached": v.cached} for k, v in stages().items()}}
    rows = report.summary_rows(exp, export, baselines)
    report.plot_front(exp, search, export, wd / "pareto.png")
    primary = report.copy_primary_model(exp, export)
    path = report.write_report(exp, stages(), rows, primary)
    log("")
    log(report.format_table(rows))
    log("")
    log(f"report: {path}   plot: {wd / 'pareto.png'}" + (f"   model: {primary['model']}" if primary else ""))
    return {"workdir": str(wd), "report": str(path), "plot": str(wd / "pareto.png"), "primary": primary,
            "summary": rows, "stages": {k: {"key": v.key, "cached": v.cached, "seconds": v.seconds}
                                        for k, v in stages().items()}}
