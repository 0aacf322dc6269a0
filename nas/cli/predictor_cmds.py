"""`hwnas predictor fit` (and `hwnas predictor dataset`, from `nas.cli.dataset_cmds`, when it is installed)."""
from __future__ import annotations

from typing import Any

import click

from nas.cli.fields import ConfigCommand, Flag, config_options
from nas.cli.options import echo_json


def _config() -> type:
    from predictors.fit_config import FitConfig

    return FitConfig


# `FitConfig` fields in `--help` order (`dataset` is the file on the command line)
FIT_OPTIONS: list[Any] = [
    ("dataset", Flag(type=click.Path(dir_okay=False))), ("out", Flag(type=click.Path(file_okay=False), required=True)),
    "kind", "seed", "test_fraction", "space",
    click.option("--json", "as_json", is_flag=True, help="Print the held-out report as one JSON object."),
]


@click.group()
def predictor() -> None:
    """Accuracy predictors: collect (subnet, accuracy) data, fit full-precision and quantization-aware models."""


@predictor.command(cls=ConfigCommand)
@config_options(_config, FIT_OPTIONS)
def fit(as_json: bool, **settings: Any) -> None:
    """Fit the fp predictor on float samples and the quantization-aware one on quantized samples; report Kendall
    tau, Spearman and RMSE (accuracy points) on held-out subnets."""
    from predictors import FitConfig, fit_predictor

    out = settings["out"]
    _, report = fit_predictor(FitConfig(**settings))
    report = {**report, "out": out}
    if as_json:
        echo_json(report)
        return
    click.echo(f"{report['kind']} predictor for {report['space']}: {report['n_train']} train / {report['n_test']} "
               f"held-out subnets -> {out}")
    sel = report.get("kind_selection")
    if sel:
        taus = ", ".join(f"{k} tau {v:.3f}" for k, v in sel["kendall_tau"].items())
        click.echo(f"  kind chosen by {sel['cv_folds']}-fold cross-validation: {taus}")
    qsel = report.get("qa_selection")
    if qsel and qsel["kendall_tau"]:
        taus = ", ".join(f"{k} tau {v:.3f}" for k, v in qsel["kendall_tau"].items())
        click.echo(f"  quantization-aware model by {qsel['cv_folds']}-fold cross-validation on quantized records: "
                   f"{qsel['chosen']} ({taus})")
    click.echo(f"  all  kendall_tau {report['kendall_tau']:.3f}  spearman {report['spearman']:.3f}  "
               f"rmse {report['rmse']:.3f} points")
    for role, m in report["models"].items():
        if "kendall_tau" in m:
            click.echo(f"  {role:<4} kendall_tau {m['kendall_tau']:.3f}  spearman {m['spearman']:.3f}  "
                       f"rmse {m['rmse']:.3f} points  ({m['n_train']} train, {m['n_test']} held out)")
    rel = report.get("label_reliability")
    if rel:
        click.echo(f"  labels: split-half tau {rel['split_half_tau']:.3f}, reliability {rel['reliability']:.3f} -> "
                   f"a perfect predictor would reach kendall_tau ~{rel['tau_ceiling']:.3f} against them")


def _add_dataset_command() -> None:
    """`hwnas predictor dataset` lives with the supernet code; the group works without it."""
    try:
        from nas.cli.dataset_cmds import dataset
    except ModuleNotFoundError as e:
        if e.name == "nas.cli.dataset_cmds":
            return
        raise
    predictor.add_command(dataset)


_add_dataset_command()
