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
    wd = exp.workdir_path
    wd.mkdir(parents=True, exist_ok=True) if not dry_run else None
    run = StageRunner(wd, log=log, dry_run=dry_run)
    ray_address = ray_address_for(exp)
    supernet = supernet_stage(run, exp, progress, ray_address)
    latency = latency_stage(run, exp, progress, ray_address)
    if dry_run and not supernet.cached:
        log("[accuracy] [predictor] [search] [store] [export] [baselines] would run after the supernet")
        return {"dry_run": True, "stages": {k: {"key": v.key, "cached": v.cached} for k, v in run.results.items()}}
    accuracy = accuracy_stage(run, exp, supernet, progress, ray_address)
    predictor = predictor_stage(run, exp, accuracy)
    search = search_stage(run, exp, predictor, latency, supernet, ray_address)
    store = store_stage(run, exp, search, latency, predictor)
    export = export_stage(run, exp, store, supernet, latency, predictor)
    baselines = baselines_stage(run, exp, predictor, latency, search)
    if dry_run:
        return {"dry_run": True, "stages": {k: {"key": v.key, "cached": v.cached} for k, v in run.results.items()}}
    rows = report.summary_rows(exp, export, baselines)
    report.plot_front(exp, search, export, wd / "pareto.png")
    primary = report.copy_primary_model(exp, export)
    path = report.write_report(exp, run.results, rows, primary)
    log("")
    log(report.format_table(rows))
    log("")
    log(f"report: {path}   plot: {wd / 'pareto.png'}" + (f"   model: {primary['model']}" if primary else ""))
    return {"workdir": str(wd), "report": str(path), "plot": str(wd / "pareto.png"), "primary": primary,
            "summary": rows, "stages": {k: {"key": v.key, "cached": v.cached, "seconds": v.seconds}
                                        for k, v in run.results.items()}}
