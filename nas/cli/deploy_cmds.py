"""`hwnas query`, `hwnas serve`, `hwnas export`: answering budget questions from the results store and turning
the answer into a verified ONNX model with a model card."""
from __future__ import annotations

import sys
from typing import Any

import click

from nas.cli.fields import ConfigCommand, Flag, config_options
from nas.cli.options import FieldErrors, echo_json
from nas.query_config import STORE_HELP, QueryConfig


def _export_config() -> type:
    from nas.export_config import ExportConfig

    return ExportConfig


# `QueryConfig` fields: the budget question (`hwnas query`, and `hwnas export --query`)
BUDGET_FIELDS = ("device", "latency_ms", "size_mb", "min_accuracy", "objective", "dataset")
QUERY_OPTIONS: list[Any] = [
    "store", "space", *BUDGET_FIELDS, "predictor",
    click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object."),
]


def _run_query(**settings: Any) -> Any:
    from nas.lookup import query
    from nas.query_config import QueryConfig

    return query(QueryConfig(**settings))


@click.command(cls=ConfigCommand)
@config_options(lambda: QueryConfig, QUERY_OPTIONS)
def query(as_json: bool, **settings: Any) -> None:
    """The best stored subnet for SPACE on DEVICE meeting every budget. Exit 0 with the answer; exit 1 when
    nothing meets the budgets (the closest candidates are printed); exit 2 for a bad query."""
    r = _run_query(**settings)
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


@click.command(cls=FieldErrors)
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


# `ExportConfig` fields (and the query's, for --query) in `--help` order; the front filter and the recalibration
# device get other flags than the query's `predictor` / `device`
EXPORT_OPTIONS: list[Any] = [
    ("supernet", Flag(type=click.Path(dir_okay=False))),
    click.option("--config", "config_file", type=click.Path(dir_okay=False),
                 help="Subnet config JSON (hwnas or OFA format; a front entry or model card works too)."),
    click.option("--query", "use_query", is_flag=True,
                 help="Take the config from a budget query (--store, --device, budgets) instead of --config."),
]
EXPORT_OPTIONS_AFTER_QUERY: list[Any] = [
    ("out", Flag(type=click.Path(dir_okay=False))), "quantize", "data", "backend",
    ("table", Flag(type=click.Path(dir_okay=False))),
    ("predictor", Flag(type=click.Path(file_okay=False))), "seed",
    click.option("--json", "as_json", is_flag=True, help="Print the verification summary as JSON."),
    ("device", Flag("--torch-device", dest="torch_device")),
]
EXPORT_QUERY_OPTIONS: list[Any] = [
    "store", click.option("--space", default=None, help="Search space (default: the supernet's)."), *BUDGET_FIELDS,
    ("predictor", Flag("--front-predictor", dest="front_predictor")),
]
QUERY_KEYS = ("store", *BUDGET_FIELDS)


@click.command(cls=ConfigCommand)
@config_options(_export_config, EXPORT_OPTIONS)
@config_options(lambda: QueryConfig, EXPORT_QUERY_OPTIONS)
@config_options(_export_config, EXPORT_OPTIONS_AFTER_QUERY)
def export(config_file: str | None, use_query: bool, space: str | None, front_predictor: str | None,
           torch_device: str, as_json: bool, **settings: Any) -> None:
    """Extract a subnet, recalibrate BN, export ONNX (opset 17, dynamic batch; quantized per its policy with
    --quantize), verify it against PyTorch, the predictor and the latency table, and write OUT plus
    OUT's .card.json."""
    from nas.checkpoint import read_checkpoint
    from nas.cli.options import read_config
    from nas.export import ExportConfig, export_subnet
    from search_spaces import HwnasError

    if (config_file is None) == (not use_query):
        raise click.UsageError("give exactly one of --config FILE or --query (with --store, --device, budgets)")
    asked = {k: settings.pop(k) for k in QUERY_KEYS}
    space = space or read_checkpoint(settings["supernet"])["space"]
    entry, provenance = None, None
    if use_query:
        r = _run_query(space=space, predictor=front_predictor, **asked)
        if not r.found:
            raise HwnasError(r.message)
        assert r.best is not None
        entry = r.best.entry
        config = entry.config
        provenance = {"entry_id": r.best.entry_id, "budgets": r.budgets, "objective": r.objective,
                      **r.best.front.to_dict()}
        provenance["store"] = asked["store"] or "hwnas-results.db"
    else:
        config = read_config(space, config_file, None)
    report = export_subnet(ExportConfig(config=config, entry=entry, query_provenance=provenance, device=torch_device,
                                        **settings))
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
