"""`hwnas query`, `hwnas serve`, `hwnas export`: answering budget questions from the results store and turning
the answer into a verified ONNX model with a model card."""
from __future__ import annotations

import sys
from typing import Any

import click

from nas.cli.options import SEED, FieldErrors, echo_json

STORE_HELP = "Results store: an SQLite file path or any SQLAlchemy URL [default: ./hwnas-results.db]."
OBJECTIVE_CHOICES = ("accuracy", "latency", "size")


def budget_options(f: Any, predictor_flag: str = "--predictor") -> Any:
    f = click.option(predictor_flag, "predictor_name", default=None,
                     help="Only fronts searched with this predictor (as stored).")(f)
    f = click.option("--dataset", default=None, help="Data set of the fronts (needed when several exist).")(f)
    f = click.option("--objective", type=click.Choice(OBJECTIVE_CHOICES), default="accuracy", show_default=True,
                     help="Best by this metric among the subnets meeting every budget.")(f)
    f = click.option("--min-accuracy", type=float, default=None, help="Predicted top-1 floor, percent (>=).")(f)
    f = click.option("--size-mb", type=float, default=None, help="Size budget, MB = 10^6 bytes (<=).")(f)
    f = click.option("--latency-ms", type=float, default=None, help="Latency budget in ms (<=).")(f)
    f = click.option("--device", default=None, help="Device tag the fronts were searched for.")(f)
    return f


def _export_budget_options(f: Any) -> Any:
    # `hwnas export --predictor DIR` is the accuracy predictor; the stored-front filter gets another name
    return budget_options(f, predictor_flag="--front-predictor")


def _run_query(store: str | None, space: str, device: str | None, latency_ms: float | None, size_mb: float | None,
               min_accuracy: float | None, objective: str, dataset: str | None, predictor_name: str | None) -> Any:
    from nas.lookup import query
    from nas.store import ResultsStore
    from search_spaces import InputError

    if device is None:
        raise InputError("--device: missing, allowed: a device tag with a stored front (see `hwnas query --help`)")
    with ResultsStore(store, create=False) as st:
        return query(st, space, device, latency_ms=latency_ms, size_mb=size_mb, min_accuracy=min_accuracy,
                     objective=objective, dataset=dataset, predictor=predictor_name)


@click.command()
@click.option("--store", default=None, help=STORE_HELP)
@click.option("--space", required=True, help="Search space name.")
@budget_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
def query(store: str | None, space: str, device: str | None, latency_ms: float | None, size_mb: float | None,
          min_accuracy: float | None, objective: str, dataset: str | None, predictor_name: str | None,
          as_json: bool) -> None:
    """The best stored subnet for SPACE on DEVICE meeting every budget. Exit 0 with the answer; exit 1 when
    nothing meets the budgets (the closest candidates are printed); exit 2 for a bad query."""
    r = _run_query(store, space, device, latency_ms, size_mb, min_accuracy, objective, dataset, predictor_name)
    if as_json:
        echo_json(r.to_dict())
    else:
        click.echo(r.message)
        if r.found:
            assert r.best is not None
            p = r.best.front
            click.echo(f"config: {r.best.entry.config.to_json()}")
            click.echo(f"from front {p.id}: space {p.space}, device {p.device_tag} ({p.device_fingerprint}), "
                       f"data {p.dataset}, predictor {p.predictor}, stored {p.created_at}")
        for c in r.closest:
            e = c.entry
            click.echo(f"  closest: accuracy {e.accuracy:.2f} %, latency {e.latency_ms:.3f} ms, "
                       f"size {e.size_bytes / 1e6:.3f} MB (entry {c.entry_id}, front {c.front.id})")
    if not r.found:
        sys.exit(1)


@click.command()
@click.option("--store", default=None, help=STORE_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
@click.option("--disclose-paths", is_flag=True, help="Keep absolute paths and host names in answers (local use).")
def serve(store: str | None, host: str, port: int, log_level: str, disclose_paths: bool) -> None:
    """Serve GET /subnets?space=&device=&latency_ms=&size_mb=&min_accuracy=&objective= over HTTP
    (OpenAPI schema at /openapi.json, docs at /docs)."""
    from nas.serve import serve as run_server

    run_server(store, host=host, port=port, log_level=log_level, disclose=disclose_paths)


@click.command(cls=FieldErrors)
@click.option("--supernet", required=True, type=click.Path(dir_okay=False), help="Supernet checkpoint (.pt).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Subnet config JSON (hwnas or OFA format; a front entry or model card works too).")
@click.option("--query", "use_query", is_flag=True,
              help="Take the config from a budget query (--store, --device, budgets) instead of --config.")
@click.option("--store", default=None, help=STORE_HELP)
@click.option("--space", default=None, help="Search space (default: the supernet's).")
@_export_budget_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output model, e.g. model.onnx.")
@click.option("--quantize", is_flag=True, help="Apply the config's per-layer bit-widths (static QDQ).")
@click.option("--data", default=None, help="Data set for calibration and verification (default: the supernet's).")
@click.option("--backend", default="ort-cpu", show_default=True,
              help="Latency backend to measure on ('none' skips measuring).")
@click.option("--table", type=click.Path(dir_okay=False), default=None, help="Latency table for predicted latency.")
@click.option("--predictor", "predictor_dir", type=click.Path(file_okay=False), default=None,
              help="Accuracy predictor directory for predicted accuracy.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the calibration batches.")
@click.option("--json", "as_json", is_flag=True, help="Print the verification summary as JSON.")
@click.option("--torch-device", default="auto", show_default=True,
              help="Where BN statistics are recalibrated: auto, cpu, cuda or cuda:N (export itself runs on the CPU; "
                   "--device is the latency target of --query).")
def export(supernet: str, config_file: str | None, use_query: bool, store: str | None, space: str | None,
           device: str | None, latency_ms: float | None, size_mb: float | None, min_accuracy: float | None,
           objective: str, dataset: str | None, predictor_name: str | None, out: str, quantize: bool,
           data: str | None, backend: str, table: str | None, predictor_dir: str | None, seed: int,
           as_json: bool, torch_device: str) -> None:
    """Extract a subnet, recalibrate BN, export ONNX (opset 17, dynamic batch; quantized per its policy with
    --quantize), verify it against PyTorch, the predictor and the latency table, and write OUT plus
    OUT's .card.json."""
    from nas.checkpoint import read_checkpoint
    from nas.cli.options import read_config
    from nas.export import export_subnet
    from search_spaces import HwnasError

    if (config_file is None) == (not use_query):
        raise click.UsageError("give exactly one of --config FILE or --query (with --store, --device, budgets)")
    sup_space = read_checkpoint(supernet)["space"]
    space = space or sup_space
    entry, provenance = None, None
    if use_query:
        r = _run_query(store, space, device, latency_ms, size_mb, min_accuracy, objective, dataset, predictor_name)
        if not r.found:
            raise HwnasError(r.message)
        assert r.best is not None
        entry = r.best.entry
        config = entry.config
        provenance = {"entry_id": r.best.entry_id, "budgets": r.budgets, "objective": r.objective,
                      **r.best.front.to_dict()}
        provenance["store"] = store or "hwnas-results.db"
    else:
        config = read_config(space, config_file, None)
    report = export_subnet(supernet, config, out, quantize=quantize, data=data,
                           backend=None if backend == "none" else backend, table=table, predictor=predictor_dir,
                           entry=entry, query_provenance=provenance, seed=seed, device=torch_device)
    if as_json:
        echo_json(report.summary())
    else:
        def fmt(v: Any, unit: str) -> str:
            return "n/a" if v is None else f"{v:.3f}{unit}"

        if config.is_quantized and not quantize:
            click.echo("note: the config has quantized blocks; exported its float version (add --quantize)")
        click.echo(f"wrote {report.onnx_path} ({report.size_bytes:,} bytes, opset {report.opset}"
                   f"{', quantized' if report.quantized else ''}) and {report.card_path}")
        click.echo(f"onnxruntime vs PyTorch: max abs diff {report.max_abs_diff:.3g}, top-1 agreement "
                   f"{report.top1_agreement:.2f} %")
        click.echo(f"accuracy {report.accuracy:.2f} % (predicted {fmt(report.predicted_accuracy, ' %')}); latency "
                   f"{fmt(report.latency_ms, ' ms')} (predicted {fmt(report.predicted_latency_ms, ' ms')})")
