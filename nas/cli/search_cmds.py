"""`hwnas search`: the joint architecture x pruning x bit-width search (see nas/search)."""
from __future__ import annotations

import os
import sys

import click

from nas.cli.options import MAX_POPULATION, SEED, LazyHelpOption, echo_json, one_of


def _samplers():  # noqa: ANN202 -- the registry (imports Optuna: only when --help or a search needs it)
    from nas.search.samplers import SAMPLERS

    return SAMPLERS


def _encoding_help() -> str:
    from nas.search.encoding import ENCODINGS

    defaults = ", ".join(f"{name}: {kind.default_encoding}" for name, kind in _samplers().items())
    return f"{one_of(ENCODINGS.names())}; default per sampler ({defaults})."


@click.command("search")
@click.option("--space", required=True, help="Search space name (hwnas spaces).")
@click.option("--predictor", "predictor", default=None, help="Accuracy predictor directory.")
@click.option("--table", default=None, help="Latency table file of the target device.")
@click.option("--objectives", default="accuracy,latency,size", show_default=True,
              help="Two or more of accuracy, latency, size.")
@click.option("--latency-ms", type=float, default=None, help="Latency budget (constraint), ms.")
@click.option("--size-mb", type=float, default=None, help="Size budget (constraint), MB = 10^6 bytes.")
@click.option("--min-accuracy", type=float, default=None, help="Accuracy floor (constraint), percent.")
@click.option("--sampler", default="nsga2", show_default=True, cls=LazyHelpOption,
              help_from=lambda: one_of(_samplers().names()) + ".")
@click.option("--trials", type=int, default=2000, show_default=True,
              help="Complete trials the study should hold (a rerun continues up to this).")
@click.option("--workers", type=int, default=None,
              help="Ray worker actors; default 0 (in this process) for predicted, 1 for measured.")
@click.option("--ray-address", default=None, help="Ray cluster address; default: start a local Ray.")
@click.option("--storage", default=None, help="Optuna storage: journal file path or RDB URL; default OUT/study.journal.")
@click.option("--study", "study", default=None, help="Study name; default hwnas-SPACE-DEVICE.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--evaluator", default="predicted", show_default=True, help="predicted or measured.")
@click.option("--verify-top", type=int, default=0, show_default=True,
              help="Re-score the K most accurate front entries with the measured evaluator.")
@click.option("--backend", default=None, help="Backend for measured latency (e.g. ort-cpu).")
@click.option("--supernet", default=None, help="Supernet checkpoint for measured accuracy.")
@click.option("--data", default=None, help="Data set for measured accuracy.")
@click.option("--encoding", default=None, cls=LazyHelpOption, help_from=lambda: _encoding_help())
@click.option("--batch-size", type=click.IntRange(1, MAX_POPULATION), default=None, help="Trials asked per batch (default per sampler).")
@click.option("--population-size", type=click.IntRange(2, MAX_POPULATION), default=50, show_default=True, help="NSGA-II population.")
@click.option("--float-only", is_flag=True, help="Search float subnets only (no bit-widths).")
@click.option("--no-pruning", is_flag=True, help="Search without channel pruning (keep ratio 1.0 everywhere).")
@click.option("--local-fraction", type=float, default=0.7, show_default=True,
              help="With a budget (nsga2): share of the trials spent by the budget local search after NSGA-II.")
@click.option("--resume", is_flag=True, help="Continue the study in --out even though its search settings differ.")
@click.option("--force-workers", is_flag=True,
              help="Run --workers Ray workers for the predicted evaluator too (by default it runs in this process).")
@click.option("--store", default=None, help="Results store URL/path: add the front to it (hwnas query reads it).")
@click.option("--dataset", default=None, help="Data set name recorded with the front in --store "
              "(default: the one the predictor was fitted on).")
@click.option("--out", required=True, help="Output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print n_trials, n_pareto, hypervolume, trials_per_second, best.")
def search(space: str, predictor: str | None, table: str | None, objectives: str, latency_ms: float | None,
           size_mb: float | None, min_accuracy: float | None, sampler: str, trials: int, workers: int | None,
           ray_address: str | None, storage: str | None, study: str | None, seed: int, evaluator: str,
           verify_top: int, backend: str | None, supernet: str | None, data: str | None, encoding: str | None,
           batch_size: int | None, population_size: int, float_only: bool, no_pruning: bool, local_fraction: float,
           resume: bool, force_workers: bool, store: str | None, dataset: str | None, out: str,
           as_json: bool) -> None:
    """Search the joint space for the accuracy / latency / size Pareto front on the table's device."""
    from nas.search.api import SearchConfig, run_search

    cfg = SearchConfig(space=space, out=out, predictor=predictor, table=table, objectives=objectives,  # type: ignore[arg-type]
                       latency_ms=latency_ms, size_mb=size_mb, min_accuracy=min_accuracy, sampler=sampler,
                       trials=trials, workers=workers, ray_address=ray_address, storage=storage, study=study,
                       seed=seed, evaluator=evaluator, verify_top=verify_top, backend=backend, supernet=supernet,
                       data=data, encoding=encoding, batch_size=batch_size, population_size=population_size,
                       quantize=not float_only, pruning=not no_pruning, local_fraction=local_fraction,
                       resume=resume, force_workers=force_workers)
    cfg.validate()
    bar = None
    if not as_json and sys.stderr.isatty() and not os.environ.get("TQDM_DISABLE"):
        from tqdm import tqdm

        bar = tqdm(total=trials, desc="search", unit="trial", file=sys.stderr)

    def progress(done: int, target: int) -> None:
        if bar is not None:
            bar.n = done
            bar.refresh()

    result = run_search(cfg, progress=progress)
    if bar is not None:
        bar.close()
    if store is not None:
        _add_to_store(store, result, dataset)
    if as_json:
        echo_json(result.to_json())
        return
    if result.summary["workers"].get("in_process"):
        click.echo(f"  workers: {result.summary['workers']['in_process']}", err=True)
    click.echo(f"study {result.study}: {result.n_trials} trials ({result.n_new} new), "
               f"{result.trials_per_second:.0f} trials/s, {result.n_pareto} on the front, "
               f"hypervolume {result.hypervolume:.4f}")
    for key, e in result.best.items():
        if e is None:
            click.echo(f"  best [{key}]: no feasible trial")
        else:
            click.echo(f"  best [{key}]: trial {e['trial']}: {e['accuracy']:.2f} %, {e['latency_ms']:.3f} ms, "
                       f"{e['size_bytes'] / 1e6:.3f} MB")
    click.echo(f"  wrote {result.out}/front.json, summary.json, run_config.json, pareto.png")


def _add_to_store(url: str, result: object, dataset: str | None) -> None:
    from nas.search.api import add_to_store

    front_id = add_to_store(result, url, dataset)  # type: ignore[arg-type]
    click.echo(f"  added the front to {url} as front {front_id}", err=True)
