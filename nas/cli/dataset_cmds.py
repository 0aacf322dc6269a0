"""`hwnas predictor dataset`: evaluate sampled subnets of a supernet into a resumable JSON-lines file."""
from __future__ import annotations

import click

from nas.cli.options import SEED, echo_json, parse_ints


@click.command("dataset")
@click.option("--supernet", "supernet_path", type=click.Path(dir_okay=False), required=True,
              help="Supernet checkpoint (hwnas supernet train).")
@click.option("--data", "data_name", default=None, help="Data set (default: the one the supernet was trained on).")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of subnets in the file when done.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="JSON-lines file (appended, resumable).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the sampled config sequence.")
@click.option("--quantized-fraction", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Fraction of subnets sampled with quantized blocks.")
@click.option("--split", type=click.Choice(["holdout", "test", "train"]), default="holdout", show_default=True)
@click.option("--calib-batches", type=click.IntRange(min=1), default=8, show_default=True,
              help="Training batches for BN / activation-range recalibration per subnet.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Evaluate as Ray tasks on this many CPUs (local Ray) when > 1.")
@click.option("--ray-address", default=None, help="Join this Ray cluster (e.g. auto) and evaluate there.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads when evaluating here.")
@click.option("--resolutions", default=None,
              help="Sample only these resolutions, e.g. 32 (those the search will look at; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def dataset(supernet_path: str, data_name: str | None, n: int, out: str, seed: int, quantized_fraction: float,
            split: str, calib_batches: int, workers: int, ray_address: str | None, threads: int | None,
            resolutions: str | None, as_json: bool, quiet: bool) -> None:
    """Evaluate N sampled subnets (float and quantized) on the holdout split, appending to OUT; rerunning
    resumes (configs already in OUT are skipped)."""
    from nas.accuracy_dataset import collect

    res = collect(supernet_path, data_name, n, out, seed=seed, quantized_fraction=quantized_fraction, split=split,
                  workers=workers, ray_address=ray_address, calib_batches=calib_batches, progress=not quiet,
                  threads=threads, resolutions=parse_ints(resolutions, "--resolutions"))
    if as_json:
        echo_json(res)
    else:
        click.echo(f"{res['out']}: {res['n']} subnets ({res['existing']} already there, {res['new']} new in "
                   f"{res['seconds']:.0f} s)")
