"""`hwnas run EXPERIMENT.yaml`: the whole pipeline from one validated file."""
from __future__ import annotations

import json

import click


@click.command()
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate the file and show which stages would run; run nothing.")
@click.option("--workdir", help="Override the experiment's workdir.")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON at the end.")
def run(experiment: str, dry_run: bool, workdir: str | None, no_progress: bool, as_json: bool) -> None:
    """Train the supernet, build the latency table, fit the predictors, search, store, query, export, report.
    Each stage is cached by its inputs: a rerun skips what is done; an interrupted run resumes."""
    from nas.experiment import load_experiment  # pydantic and the schema: when a file is read, not for --help

    exp = load_experiment(experiment)
    if workdir:
        exp = exp.model_copy(update={"workdir": workdir})
    from nas.pipeline.run import run_experiment

    if dry_run:
        _check_here(exp)
    result = run_experiment(exp, dry_run=dry_run, progress=not no_progress,
                            log=lambda m: click.echo(m, err=as_json))
    if as_json:
        click.echo(json.dumps(result, default=str))


def _check_here(exp) -> None:  # type: ignore[no-untyped-def]
    """What a dry run can check on this machine without the cluster: names resolve, backend availability."""
    from latency_tables import BACKENDS
    from nas.data import DATASETS

    DATASETS.get(exp.data.partition(":")[0])
    click.echo(f"experiment {exp.name}: valid; workdir {exp.workdir_path}; store {exp.store_url}")
    for name, precision in exp.devices():
        ok, reason = BACKENDS.get(name).available()
        at = "" if precision == "fp32" else f" at {precision}"
        click.echo(f"backend {name}{at}: " + ("available here" if ok else f"not available here ({reason})"))
