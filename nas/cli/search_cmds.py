"""`hwnas search`: the joint architecture x pruning x bit-width search (see nas/search).

Its options are `SearchConfig`'s fields (`nas/search/config.py`: types, defaults, help); `FLAGS` below is the one
place that says which field is which flag, in `--help` order."""
from __future__ import annotations

import os
import sys
from dataclasses import MISSING, fields
from typing import Any, Callable

import click

from nas.cli.options import MAX_POPULATION, SEED, FieldErrors, LazyHelpOption, echo_json

# field -> flag, click type and (for an inverted on/off field) the flag's own help. `SearchConfig` fields not
# listed (init, mutation, mutation_prob, crossover) are Python / experiment-file settings only.
FLAGS: dict[str, dict[str, Any]] = {
    "space": {"flag": "--space"},
    "predictor": {"flag": "--predictor"},
    "table": {"flag": "--table"},
    "objectives": {"flag": "--objectives"},
    "latency_ms": {"flag": "--latency-ms", "type": float},
    "size_mb": {"flag": "--size-mb", "type": float},
    "min_accuracy": {"flag": "--min-accuracy", "type": float},
    "sampler": {"flag": "--sampler"},
    "trials": {"flag": "--trials", "type": int},
    "workers": {"flag": "--workers", "type": int},
    "ray_address": {"flag": "--ray-address"},
    "storage": {"flag": "--storage"},
    "study": {"flag": "--study"},
    "seed": {"flag": "--seed", "type": SEED},
    "evaluator": {"flag": "--evaluator"},
    "verify_top": {"flag": "--verify-top", "type": int},
    "backend": {"flag": "--backend"},
    "supernet": {"flag": "--supernet"},
    "data": {"flag": "--data"},
    "encoding": {"flag": "--encoding"},
    "batch_size": {"flag": "--batch-size", "type": click.IntRange(1, MAX_POPULATION)},
    "population_size": {"flag": "--population-size", "type": click.IntRange(2, MAX_POPULATION)},
    "quantize": {"flag": "--float-only", "off": "Search float subnets only (no bit-widths)."},
    "pruning": {"flag": "--no-pruning", "off": "Search without channel pruning (keep ratio 1.0 everywhere)."},
    "local_fraction": {"flag": "--local-fraction", "type": float},
    "resume": {"flag": "--resume"},
    "force_workers": {"flag": "--force-workers"},
}
CLI_ONLY = ("store", "dataset", "out", "as_json")  # after the fields above, in this order (`out` is a field)


def _field_option(name: str) -> Callable[[Any], Any]:
    from nas.search.config import SearchConfig, help_of

    f = {f.name: f for f in fields(SearchConfig)}[name]
    spec = FLAGS.get(name, {"flag": "--" + name.replace("_", "-")})
    # `` `field` `` in a help text: that field's flag
    flags = {n: s["flag"] for n, s in FLAGS.items()} | {"out": "--out"}

    def text() -> str:
        import re

        return re.sub(r"`(\w+)`", lambda m: flags.get(m.group(1), m.group(0)), help_of(f))

    kw: dict[str, Any] = {}
    if isinstance(f.default, bool):  # an on/off field: a flag that turns it from its default
        kw.update(is_flag=True, flag_value=not f.default, default=f.default)
        if "off" in spec:
            kw["help"] = spec["off"]
        else:
            kw.update(cls=LazyHelpOption, help_from=text)
        return click.option(spec["flag"], name, **kw)
    if f.default is MISSING:
        kw["required"] = True
    else:
        kw["default"] = ",".join(f.default) if isinstance(f.default, tuple) else f.default
        kw["show_default"] = f.default is not None
    if "type" in spec:
        kw["type"] = spec["type"]
    return click.option(spec["flag"], name, cls=LazyHelpOption, help_from=text, **kw)


def _options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Every option of `hwnas search`, in `--help` order (decorators apply bottom-up: reversed)."""
    opts = [_field_option(n) for n in FLAGS] + [
        click.option("--store", default=None,
                     help="Results store URL/path: add the front to it (hwnas query reads it)."),
        click.option("--dataset", default=None, help="Data set name recorded with the front in --store "
                     "(default: the one the predictor was fitted on)."),
        _field_option("out"),
        click.option("--json", "as_json", is_flag=True,
                     help="Print n_trials, n_pareto, hypervolume, trials_per_second, best.")]
    for o in reversed(opts):
        f = o(f)
    return f


@click.command("search", cls=FieldErrors)
@_options
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
