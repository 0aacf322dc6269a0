"""`hwnas predictor fit` (and `hwnas predictor dataset`, from `nas.cli.dataset_cmds`, when it is installed)."""
from __future__ import annotations

import click

from nas.cli.options import SEED, LazyHelpOption, echo_json


def _kind_help() -> str:
    from predictors.bundle import AUTO_KINDS, CV_FOLDS, fp_kinds

    return (f"Full-precision model: {', '.join(fp_kinds())} (`hwnas`'s own: mlp ensemble, gbt trees, ridge linear with "
            "effects varying by resolution, stack = gbt + ridge blended by cross-validation), or auto "
            f"({' or '.join(AUTO_KINDS)}, whichever ranks better in {CV_FOLDS}-fold cross-validation on the training "
            "records). The quantization-aware model is transferred from it or fitted jointly on all records, "
            "whichever cross-validates better.")


@click.group()
def predictor() -> None:
    """Accuracy predictors: collect (subnet, accuracy) data, fit full-precision and quantization-aware models."""


@predictor.command()
@click.option("--dataset", "dataset_path", required=True, type=click.Path(dir_okay=False),
              help="JSON-lines accuracy dataset (from `hwnas predictor dataset`).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to write (atomically).")
@click.option("--kind", default="auto", show_default=True, cls=LazyHelpOption, help_from=lambda: _kind_help())
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the split and the models.")
@click.option("--test-fraction", type=float, default=0.2, show_default=True,
              help="Share of architectures held out for the reported metrics.")
@click.option("--space", default=None, help="Expected search space (checked against the dataset).")
@click.option("--json", "as_json", is_flag=True, help="Print the held-out report as one JSON object.")
def fit(dataset_path: str, out: str, kind: str, seed: int, test_fraction: float, space: str | None,
        as_json: bool) -> None:
    """Fit the fp predictor on float samples and the quantization-aware one on quantized samples; report Kendall
    tau, Spearman and RMSE (accuracy points) on held-out subnets."""
    from predictors import fit_predictor, load_accuracy_dataset

    ds = load_accuracy_dataset(dataset_path, space=space)
    bundle, report = fit_predictor(ds, kind=kind, seed=seed, test_fraction=test_fraction)
    bundle.save(out)
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
