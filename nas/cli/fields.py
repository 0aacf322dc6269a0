"""CLI options generated from a verb's config dataclass (`search_spaces.settings`): each option is one field --
its name, type and bounds, default and help come from the field; the command says only which flag it is where
that is not `--field-name` (`flag_of`), and in what order the options appear in `--help`.

A command's option list is a sequence of field names (plain or with a `Flag` spec) and click decorators for what
is the CLI's own (`--json`, ...). The config module is imported when the command's options are first needed (its
`--help` or a run), not when `hwnas --help` lists the commands."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import MISSING
from typing import Any, Literal, get_args, get_origin

import click

from nas.cli.options import FieldErrors, LazyHelpOption


@dataclasses.dataclass(frozen=True)
class Flag:
    """How one field is spelled on the command line where it differs from the rule (`--field-name`, the type its
    annotation implies; a function returning one is called when the option is built): `flag` its name (`--eval/--no-eval` for an on/off switch; for an on/off field a flag that
    turns it from its default, e.g. `--float-only` for `quantize`), `type` a click type, `off` the help of such an
    inverting flag, `callback` a click callback that converts the text (e.g. `160,224` -> (160, 224))."""

    flag: str | None = None
    type: Any = None
    off: str | None = None
    callback: Callable[[click.Context, click.Parameter, Any], Any] | None = None
    required: bool | None = None
    dest: str | None = None  # the keyword the command gets, where two configs of one command share a field name


def flag_of(name: str, spec: Flag | None = None) -> str:
    """The one field -> flag rule: `latency_ms` -> `--latency-ms`, unless the command's `Flag` names another."""
    if spec is not None and spec.flag:
        return spec.flag.split("/")[0]
    return "--" + name.replace("_", "-")


def click_type(hint: Any) -> Any:
    """The click type a field's annotation implies: bounded ints and floats as ranges, a `Literal` as a choice;
    None where click's own default (text, or the default's type) is right."""
    from search_spaces.settings import base_type, bounds

    base = base_type(hint)
    if get_origin(base) is Literal:
        return click.Choice([str(a) for a in get_args(base)])
    b = bounds(hint)
    if base in (int, float):
        if not b:
            return base
        rng = click.IntRange if base is int else click.FloatRange
        kw: dict[str, Any] = {"min": b.get("ge", b.get("gt")), "max": b.get("le", b.get("lt"))}
        if base is float:
            kw.update(min_open="gt" in b, max_open="lt" in b)
        return rng(**kw)
    return None


def config_options(config: Callable[[], type], items: Sequence[str | tuple[str, Flag] | Callable[[Any], Any]]
                   ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the options of a command, in `items`' order -- a field of `config()` by name (or `(name,
    Flag(...))`), or a click decorator of the command's own. Each field's option is named after the field, so the
    command hands its keyword arguments to the config as they are."""
    specs = {i if isinstance(i, str) else i[0]: (Flag() if isinstance(i, str) else i[1])
             for i in items if isinstance(i, (str, tuple))}

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for item in reversed(items):  # decorators apply bottom-up
            if isinstance(item, (str, tuple)):
                name = item if isinstance(item, str) else item[0]
                f.__click_params__ = [*getattr(f, "__click_params__", []), _PendingOption(config, name, specs)]
            else:
                f = item(f)
        return f

    return apply


class _PendingOption:
    """A field's option before it is built: stands in a command's parameter list until click asks for it
    (`ConfigCommand`), so importing a command's module stays cheap."""

    def __init__(self, config: Callable[[], type], name: str, specs: dict[str, Flag]) -> None:
        self.config, self.name, self.specs = config, name, specs

    def build(self) -> click.Option:
        from search_spaces.settings import field_map, help_of, hints

        cls = self.config()
        f = field_map(cls)[self.name]
        spec = self.specs[self.name]
        dest = spec.dest or self.name
        flags = {n: flag_of(n, s) for n, s in self.specs.items()}

        def text() -> str:  # `` `field` `` in a help text: that field's flag
            return re.sub(r"`(\w+)`", lambda m: flags.get(m.group(1), m.group(0)), help_of(f))

        kw: dict[str, Any] = {}
        if isinstance(f.default, bool):  # an on/off field
            if spec.flag and "/" in spec.flag:  # `--eval/--no-eval`: a switch that shows its default
                return LazyHelpOption([spec.flag, dest], default=f.default, show_default=True, help_from=text)
            kw.update(is_flag=True, flag_value=not f.default, default=f.default)
            if spec.off is not None:
                return click.Option([flag_of(self.name, spec), dest], help=spec.off, **kw)
            return LazyHelpOption([flag_of(self.name, spec), dest], help_from=text, **kw)
        if f.default is MISSING or spec.required:
            kw["required"] = True
        else:
            kw["default"] = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
            kw["show_default"] = f.default is not None
        t = spec.type if spec.type is not None else click_type(hints(cls)[self.name])
        if callable(t) and not isinstance(t, (click.ParamType, type)):  # a choice read from a registry when used
            t = t()
        if t is not None:
            kw["type"] = t
        if spec.callback is not None:
            kw["callback"] = spec.callback
        return LazyHelpOption([flag_of(self.name, spec), dest], help_from=text, **kw)


class ConfigCommand(FieldErrors):
    """A command whose options are a config's fields (`config_options`): built on first use of its parameters, and
    a library error that names a field is shown with its flag (`FieldErrors`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = any(isinstance(p, _PendingOption) for p in self.params)

    def _built(self) -> None:
        if self._pending:
            self._pending = False
            self.params = [p.build() if isinstance(p, _PendingOption) else p for p in self.params]

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        self._built()
        return super().get_params(ctx)


def ints_callback(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """'160,224' (or '160 224') -> (160, 224); None or '' -> None (a bad list names the field)."""
    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        from nas.cli.options import parse_ints

        ints = parse_ints(value, field)
        return None if ints is None else tuple(ints)

    return convert
