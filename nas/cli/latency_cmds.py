"""`hwnas latency build | validate | show | backends`: measure a device's latency table, check it against
end-to-end runs, and inspect it."""
from __future__ import annotations

import json
from typing import Any

import click

from nas.cli.fields import ConfigCommand, Flag, config_options, ints_callback
from nas.cli.options import SEED, FieldErrors, echo_json


@click.group()
def latency() -> None:
    """Latency tables measured on a device: build, validate, show."""


def _table_config() -> type:
    from latency_tables.table_config import TableConfig

    return TableConfig


def _protocol() -> type:
    from latency_tables.protocol import Protocol

    return Protocol


def _methods() -> list[str]:
    from latency_tables.calibration import AUTO, METHODS

    return [AUTO, *METHODS]


# `TableConfig` fields, then `Protocol` fields, in `--help` order (a `Flag` where the flag is not `--field-name`)
BUILD_OPTIONS: list[Any] = [
    "space", "backend", ("out", Flag(type=click.Path(dir_okay=False))),
    ("resolutions", Flag(callback=ints_callback("resolutions"))), "threads", "batch_size", "precision",
    "ray_address", "device_tag", "calibrate",
    ("calibration_method", Flag(type=lambda: click.Choice(_methods()))),
    ("quantize", Flag("--float-only", off="Measure float blocks only (no quantized bit-widths).")),
]
PROTOCOL_OPTIONS: list[Any] = [
    "warmup", "repeats", "rounds", "statistic", "clock",
    ("reference", Flag("--no-reference", off="Do not time the reference model alongside (no load normalization; "
                                              "for dedicated devices).")),
]


@latency.command(cls=ConfigCommand)
@config_options(_table_config, BUILD_OPTIONS)
@config_options(_protocol, PROTOCOL_OPTIONS)
def build(**settings: Any) -> None:
    """Measure every block SPACE can produce on this device (or on the Ray nodes of --device-tag)."""
    from latency_tables import Protocol, TableConfig, build_table
    from latency_tables.validate import calibration_summary
    from search_spaces.settings import field_map

    protocol = Protocol(**{k: settings.pop(k) for k in field_map(Protocol) if k in settings})
    t = build_table(TableConfig(**settings, protocol=protocol))
    click.echo(f"{settings['out']}: {len(t.entries)} blocks measured, {len(t.unsupported)} unsupported, "
               f"device {t.device_tag}, {t.build_seconds:.0f} s")
    click.echo(_calibration_line(calibration_summary(t)))


@latency.command(cls=FieldErrors)
@click.option("--table", "table_path", required=True, type=click.Path(dir_okay=False), help="Table file.")
@click.option("--n", "n", type=click.IntRange(min=1), default=20, show_default=True, help="Held-out subnets.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--ray-address", help="Measure on the Ray nodes carrying the table's device:TAG.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (without per-subnet rows).")
@click.option("--details", is_flag=True, help="Include every subnet's measured and predicted latency.")
def validate(table_path: str, n: int, seed: int, ray_address: str | None, as_json: bool, details: bool) -> None:
    """Measure N random held-out subnets end to end and compare them with the table's prediction."""
    from latency_tables import LatencyTable, validate_table

    t = LatencyTable.load(table_path)
    r = validate_table(t, n, seed=seed, ray_address=ray_address)
    if not details:
        r.pop("subnets")
    if as_json:
        echo_json(r)
        return
    u = r["uncalibrated"]
    click.echo(f"n={r['n']}  calibrated: within 5% {r['within_5pct']:.0%}, 10% {r['within_10pct']:.0%}, "
               f"MAPE {r['mape']:.1%}, RMSE {r['rmse_ms']:.3f} ms  |  uncalibrated: within 5% {u['within_5pct']:.0%}, "
               f"10% {u['within_10pct']:.0%}, MAPE {u['mape']:.1%}, RMSE {u['rmse_ms']:.3f} ms")
    for policy, s in r["by_policy"].items():
        click.echo(f"  {policy:<6} n={s['n']}: within 5% {s['within_5pct']:.0%}, 10% {s['within_10pct']:.0%}, "
                   f"MAPE {s['mape']:.1%}")
    click.echo(_calibration_line(r["calibration"]))


def _calibration_line(c: dict | None) -> str:
    """The calibration the table applies, how it was chosen, and every candidate's cross-validated MAPE."""
    if c is None:
        return "calibration: none fitted (plain overhead-corrected block sum)"
    cv = ", ".join(f"{m} {v:.1%}" for m, v in (c.get("cv_mape") or {}).items())
    params = ", ".join(f"{k}={v:.4g}" for k, v in c["params"].items())
    return (f"calibration: {c['method']} ({'applied' if c['applied'] else 'skipped: block sum kept'}; {params}), "
            f"{c['chosen_by']}" + (f"; leave-one-out MAPE on {c['n']} subnets: {cv}" if cv else ""))


@latency.command(cls=FieldErrors)
@click.option("--table", "table_path", required=True, type=click.Path(dir_okay=False), help="Table file.")
@click.option("--json", "as_json", is_flag=True)
def show(table_path: str, as_json: bool) -> None:
    """Summarise a table: space, device, fingerprint, protocol, coverage, calibration, correction."""
    from latency_tables import LatencyTable

    t = LatencyTable.load(table_path)
    summary = {"space": t.space, "device_tag": t.device_tag, "backend": t.backend, "resolutions": t.resolutions,
               "entries": len(t.entries), "unsupported": len(t.unsupported), "expected_keys": t.expected_keys,
               "complete": t.complete, "overhead_ms": t.overhead_ms, "build_seconds": round(t.build_seconds, 1),
               "fingerprint": t.fingerprint, "protocol": t.protocol,
               "calibration": t.calibration.to_dict() if t.calibration else None,
               "correction": t.correction.summary() if t.correction else None}
    if as_json:
        echo_json(summary)
    else:
        click.echo(json.dumps(summary, indent=1))


@latency.command()
def backends() -> None:
    """List the registered backends and whether this machine can run them."""
    from latency_tables import BACKENDS

    for name in BACKENDS.names():
        cls = BACKENDS.get(name)
        ok, reason = cls.available()
        click.echo(f"{name:<12} {'available' if ok else 'unavailable: ' + reason}"
                   + (f" (precisions: {', '.join(cls.precisions)})" if ok else ""))
