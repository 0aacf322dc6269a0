"""`hwnas predictor dataset`: evaluate sampled subnets of a supernet into a resumable JSON-lines file.

Its options are `CollectConfig`'s fields (`nas/collect_config.py`), in `--help` order."""
from __future__ import annotations

from typing import Any

import click

from nas.cli.fields import ConfigCommand, Flag, config_options, ints_callback
from nas.cli.options import echo_json


def _config() -> type:
    from nas.collect_config import CollectConfig

    return CollectConfig


OPTIONS: list[Any] = [
    ("supernet", Flag(type=click.Path(dir_okay=False))), ("data_name", Flag("--data")), "n",
    ("out", Flag(type=click.Path(dir_okay=False))), "seed", "quantized_fraction", "uniform_fraction", "split", "calib_batches",
    "workers", "ray_address", "threads", ("resolutions", Flag(callback=ints_callback("resolutions"))), "max_images",
    click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
    ("progress", Flag("--quiet", off="No progress bar.")), "device", "amp", "gpus_per_task",
]


@click.command("dataset", cls=ConfigCommand)
@config_options(_config, OPTIONS)
def dataset(as_json: bool, **settings: Any) -> None:
    """Evaluate N sampled subnets (float and quantized) on the holdout split, appending to OUT; rerunning
    resumes (configs already in OUT are skipped)."""
    from nas.accuracy_dataset import CollectConfig, collect

    res = collect(CollectConfig(**settings))
    if as_json:
        echo_json(res)
    else:
        click.echo(f"{res['out']}: {res['n']} subnets ({res['existing']} already there, {res['new']} new in "
                   f"{res['seconds']:.0f} s)")
