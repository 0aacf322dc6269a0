"""Shared CLI helpers: JSON output and reading subnet configs from files or the Once-for-All format."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from search_spaces import HwnasError, InputError, SubnetConfig, config_from_dict


SEED = click.IntRange(0, 2**32 - 1)  # numpy's and torch's seed range: a negative seed is bad input, not a traceback
# Things that are allocated up front: bounded so a typo (`--population-size 1000000000`) is refused, not a 7 GiB
# allocation or an endless run.
MAX_SAMPLES = 10**6
MAX_POPULATION = 100_000


class LazyHelpOption(click.Option):
    """An option whose help is written when `--help` is shown (`help_from()`): lists read from the registries then
    include every plugin's entry, and importing the command stays cheap."""

    def __init__(self, *args: Any, help_from: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help_from = help_from

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = self.help_from()
        return super().get_help_record(ctx)


class FieldErrors(click.Command):
    """A command whose options are named after the fields of the config it builds (`--latency-ms` -> `latency_ms`):
    a library error naming a field (`latency_ms: got ...`, or `` `latency_ms` `` inside) is shown with its flag."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HwnasError as e:  # bad input (`InputError`, exit 2) and runtime failures (exit 1) alike
            shown = fields_as_flags(str(e), self.params)
            if shown == str(e):
                raise
            raise (InputError if isinstance(e, InputError) else HwnasError)(shown) from None


def fields_as_flags(message: str, params: list[click.Parameter]) -> str:
    import re

    flags = {p.name: p.opts[0] for p in params if isinstance(p, click.Option) and p.name}
    message = re.sub(r"^([a-z_]+)(?=[: ])", lambda m: flags.get(m.group(1), m.group(1)), message)
    return re.sub(r"`([a-z_]+)`", lambda m: flags.get(m.group(1), m.group(0)), message)


def device_options(f: Any) -> Any:
    """`--device` and `--amp`, shared by every command that runs a network for accuracy."""
    from nas.choices import AMP_CHOICES, AMP_HELP, DEVICE_HELP

    f = click.option("--amp", type=click.Choice(AMP_CHOICES), default=None, help=AMP_HELP)(f)
    return click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)(f)


def data_workers_option(f: Any) -> Any:
    from nas.choices import DATA_WORKERS_HELP

    return click.option("--data-workers", type=click.IntRange(min=0), default=0, show_default=True,
                        help=DATA_WORKERS_HELP)(f)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=None, separators=(", ", ": ")))


def parse_ints(text: str | None, field: str) -> list[int] | None:
    """'160,224' (or '160 224') -> [160, 224]; None or '' -> None."""
    if not text:
        return None
    from search_spaces.errors import bad_value

    try:
        return [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise bad_value(field, text, "integers separated by commas, e.g. 160,224") from None


def read_config(space: str, config_file: str | None, ofa: str | None) -> SubnetConfig:
    """One config from `--config FILE` (hwnas or OFA JSON) or `--ofa JSON`; exactly one must be given."""
    if (config_file is None) == (ofa is None):
        raise click.UsageError("give exactly one of --config FILE or --ofa JSON")
    if config_file is not None:
        p = Path(config_file)
        if not p.is_file():
            raise InputError(f"--config: got {config_file!r}, allowed: an existing JSON file")
        text = p.read_text(encoding="utf-8")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"--config: {config_file} is not valid JSON ({e.msg}, line {e.lineno})") from None
        if isinstance(d, dict) and "config" in d and isinstance(d["config"], dict):  # a front entry or card
            d = d["config"]
        config = config_from_dict(d, space=space)
    else:
        assert ofa is not None
        try:
            d = json.loads(ofa)
        except json.JSONDecodeError as e:
            raise InputError(f"--ofa: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(d, dict):
            raise InputError(f"--ofa: got {ofa!r}, allowed: a JSON object with ks, e, d and r")
        config = SubnetConfig.from_ofa(d, space=space)
    if config.space != space:
        raise InputError(f"--space: got {space!r} but the config is for {config.space!r}")
    return config
