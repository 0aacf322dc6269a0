"""`hwnas search`: the joint architecture x pruning x bit-width search (see nas/search).

Its options are `SearchConfig`'s fields (`nas/search/config.py`: types, defaults, help); `OPTIONS` below lists
them in `--help` order, with the flags that are not `--field-name` (`nas.cli.fields.flag_of`)."""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from nas.cli.fields import ConfigCommand, Flag, config_options
from nas.cli.options import MAX_POPULATION, echo_json

# the options in `--help` order: `SearchConfig` fields (by name; a `Flag` where the flag is not `--field-name` or
# the type not the annotation's) and the command's own. Fields not listed (init, mutation, mutation_prob,
# crossover: the operators' choices, for benchmarks) are set from Python only.
OPTIONS: list[Any] = [
    "space", "predictor", "table", "objectives",
    "latency_ms", "size_mb", "min_accuracy",
    "sampler", "trials", "workers", "ray_address", "storage", "study",
    "seed", "evaluator", "verify_top", "backend", "supernet", "data",
    "encoding",
    ("batch_size", Flag(type=click.IntRange(1, MAX_POPULATION))),
    ("population_size", Flag(type=click.IntRange(2, MAX_POPULATION))),
    ("quantize", Flag("--float-only", off="Search float subnets only (no bit-widths).")),
    ("pruning", Flag("--no-pruning", off="Search without channel pruning (keep ratio 1.0 everywhere).")),
    "local_fraction", "resume", "force_workers",
    click.option("--store", default=None, help="Results store URL/path: add the front to it (hwnas query reads it)."),
    click.option("--dataset", default=None, help="Data set name recorded with the front in --store "
                 "(default: the one the predictor was fitted on)."),
    "out",
    click.option("--json", "as_json", is_flag=True,
                 help="Print n_trials, n_pareto, hypervolume, trials_per_second, best."),
]


def _config() -> type:
    from nas.search.config import SearchConfig

    return SearchConfig


@click.command("search", cls=ConfigCommand)
@config_options(_config, OPTIONS)
def search(store: str | None, dataset: str | None, as_json: bool, **settings: Any) -> None:
    """Search the joint space for the accuracy / latency / size Pareto front on the table's device."""
    from nas.search.api import SearchConfig, run_search

    cfg = SearchConfig(**settings)
    cfg.validate()
    bar = None
    if not as_json and sys.stderr.isatty() and not os.environ.get("TQDM_DISABLE"):
        from tqdm import tqdm

        bar = tqdm(total=cfg.trials, desc="search", unit="trial", file=sys.stderr)

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
