"""`hwnas latency build | validate | show | backends`: measure a device's latency table, check it against
end-to-end runs, and inspect it."""
from __future__ import annotations

import json

import click

from nas.cli.options import SEED, LazyHelpOption, echo_json, parse_ints
from search_spaces.errors import one_of


def _backend_names() -> list[str]:
    from latency_tables import list_backends

    return list_backends()


@click.group()
def latency() -> None:
    """Latency tables measured on a device: build, validate, show."""


@latency.command()
@click.option("--space", required=True, help="Search space name (see `hwnas spaces`).")
@click.option("--backend", required=True, cls=LazyHelpOption,
              help_from=lambda: f"{one_of(_backend_names())} (see `hwnas latency backends`).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Table file (JSON); resumed if it exists.")
@click.option("--resolutions", help="Input sizes to measure, e.g. 160,224 (default: all of the space's).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Intra-op threads.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--precision", default="fp32", show_default=True,
              help="Float format of the device's float layers: fp32, or the backend's 16-bit one (bf16 on "
                   "openvino-cpu, fp16 on ort-cuda / ort-trt / tensorrt).")
@click.option("--ray-address", help="Measure on the Ray cluster's nodes carrying device:TAG (e.g. auto).")
@click.option("--device-tag", help="Name of the device (default: derived from the fingerprint).")
@click.option("--calibrate", type=click.IntRange(min=0), default=12, show_default=True,
              help="Whole subnets (float, w8a8, w4a8 and mixed; small to large) measured end to end to choose and "
                   "fit the calibration (0: none).")
@click.option("--calibration-method", type=click.Choice(["auto", "none", "scale", "affine", "per-bits"]),
              default="auto", show_default=True,
              help="auto: the correction of the block sum with the lowest leave-one-out error on the calibration "
                   "subnets, none unless one clearly helps; or force one (see calibration.py).")
@click.option("--float-only", is_flag=True, help="Measure float blocks only (no quantized bit-widths).")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs per round.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True, help="Interleaved rounds.")
@click.option("--statistic", type=click.Choice(["median", "trimmed_mean", "min_of_round_medians"]), default="median",
              show_default=True)
@click.option("--clock", type=click.Choice(["cpu", "wall"]), default="cpu", show_default=True,
              help="cpu: time each run by its thread's CPU time where the backend computes on the calling thread "
                   "(ort-cpu, 1 thread), so other work on the machine does not inflate it; wall: elapsed time.")
@click.option("--no-reference", is_flag=True,
              help="Do not time the reference model alongside (no load normalization; for dedicated devices).")
def build(space: str, backend: str, out: str, resolutions: str | None, threads: int, batch_size: int,
          precision: str, ray_address: str | None, device_tag: str | None, calibrate: int, calibration_method: str,
          float_only: bool, warmup: int, repeats: int, rounds: int, statistic: str, clock: str,
          no_reference: bool) -> None:
    """Measure every block SPACE can produce on this device (or on the Ray nodes of --device-tag)."""
    from latency_tables import Protocol, build_table
    from latency_tables.validate import calibration_summary

    protocol = Protocol(warmup=warmup, repeats=repeats, rounds=rounds, statistic=statistic, clock=clock,
                        reference=not no_reference)
    t = build_table(space, backend, out, resolutions=parse_ints(resolutions, "--resolutions"), threads=threads,
                    batch_size=batch_size, protocol=protocol, device_tag=device_tag, ray_address=ray_address,
                    calibrate=calibrate, calibration_method=calibration_method, quantize=not float_only,
                    precision=precision)
    click.echo(f"{out}: {len(t.entries)} blocks measured, {len(t.unsupported)} unsupported, device {t.device_tag}, "
               f"{t.build_seconds:.0f} s")
    click.echo(_calibration_line(calibration_summary(t)))


@latency.command()
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


@latency.command()
@click.option("--table", "table_path", required=True, type=click.Path(dir_okay=False), help="Table file.")
@click.option("--json", "as_json", is_flag=True)
def show(table_path: str, as_json: bool) -> None:
    """Summarise a table: space, device, fingerprint, protocol, coverage, calibration."""
    from latency_tables import LatencyTable

    t = LatencyTable.load(table_path)
    summary = {"space": t.space, "device_tag": t.device_tag, "backend": t.backend, "resolutions": t.resolutions,
               "entries": len(t.entries), "unsupported": len(t.unsupported), "expected_keys": t.expected_keys,
               "complete": t.complete, "overhead_ms": t.overhead_ms, "build_seconds": round(t.build_seconds, 1),
               "fingerprint": t.fingerprint, "protocol": t.protocol,
               "calibration": t.calibration.to_dict() if t.calibration else None}
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
