"""Config fields defined once: a frozen dataclass per verb whose fields carry their type (with bounds), default and
help, read by everything that shows or checks them -- the CLI options (`nas.cli.fields`), an experiment file's
sections (`yaml_fields`), other settings types that carry some of them (`carry_fields`) and the checks
(`check_bounds`: errors name the field; the CLI shows its flag).

Bounds are written as `Annotated[int, Field(ge=1)]` (pydantic's `Field`, or `annotated_types.Ge(1)` directly), so
the YAML schema enforces the same bounds that the library checks and the CLI's `--help` shows."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from annotated_types import Ge, Le

from search_spaces.errors import bad_value

Help = str | Callable[[], str]
Seed = Annotated[int, Ge(0), Le(2**32 - 1)]  # numpy's and torch's seed range


def setting(default: Any = None, help: Help = "", required: bool = False) -> Any:  # noqa: A002
    """A field with its help (a string, or a function that lists registry names when asked)."""
    if required:
        return dataclasses.field(metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def help_of(f: dataclasses.Field[Any]) -> str:
    """A field's help text (`` `name` `` marks another field: the CLI writes it as that field's flag)."""
    h = f.metadata.get("help", "")
    return h() if callable(h) else h


def field_map(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}


def hints(cls: type) -> dict[str, Any]:
    """The fields' annotations, resolved, with their `Annotated` bounds."""
    cached = cls.__dict__.get("__settings_hints__")
    if cached is None:
        try:
            cached = get_type_hints(cls, include_extras=True)
        except NameError:  # a name imported for type checkers only: those fields are unbounded
            import sys

            ns = {**vars(sys.modules[cls.__module__]), "Any": Any}
            cached = {}
            for f in dataclasses.fields(cls):
                try:
                    cached[f.name] = eval(f.type, ns) if isinstance(f.type, str) else f.type  # noqa: S307
                except NameError:
                    cached[f.name] = Any
        type.__setattr__(cls, "__settings_hints__", cached)
    return cached


def base_type(hint: Any) -> Any:
    """`Annotated[int, ...] | None` -> int; `Literal[...]` stays (its choices are the allowed values)."""
    if get_origin(hint) is Annotated:
        return base_type(get_args(hint)[0])
    args = [a for a in get_args(hint) if a is not type(None)]
    if get_origin(hint) is not Literal and args and type(None) in get_args(hint):
        return base_type(args[0])
    return hint


def bounds(hint: Any) -> dict[str, float]:
    """{ge/gt/le/lt: bound} of a type that carries them (`Annotated[int, Field(ge=1)] | None` too), else {}."""
    if get_origin(hint) is not Annotated:  # `Annotated[...] | None`: its first member
        hint = next((a for a in get_args(hint) if get_origin(a) is Annotated), None)
        if hint is None:
            return {}
    _, *meta = get_args(hint)
    return {k: getattr(m, k) for info in meta for m in getattr(info, "metadata", [info])
            for k in ("ge", "gt", "le", "lt") if getattr(m, k, None) is not None}


def check_bounds(obj: Any, prefix: str = "") -> None:
    """Every bounded field of the dataclass `obj` within its bounds (None: an optional field left unset), else
    `PREFIXfield: got X, allowed: ...` (a prefix such as `protocol.` for a settings type nested in another)."""
    h = hints(type(obj))
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        b = bounds(h[f.name])
        if not b or v is None:
            continue
        lo, hi = b.get("ge", b.get("gt")), b.get("le", b.get("lt"))
        if base_type(h[f.name]) is int:
            ok = isinstance(v, int) and not isinstance(v, bool) and _within(v, b)
            allowed = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
        else:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and _within(v, b)
            allowed = (f"a number {'>=' if 'ge' in b else '>'} {lo:g}" if hi is None else
                       f"a number in {'[' if 'ge' in b else '('}{lo:g}, {hi:g}{']' if 'le' in b else ')'}")
        if not ok:
            raise bad_value(prefix + f.name, v, allowed)


def _within(v: float, b: dict[str, float]) -> bool:
    return (("ge" not in b or v >= b["ge"]) and ("gt" not in b or v > b["gt"])
            and ("le" not in b or v <= b["le"]) and ("lt" not in b or v < b["lt"]))


def check_choice(obj: Any, name: str, allowed: Any, prefix: str = "") -> None:
    """`name`'s value one of `allowed` (a tuple of names or a `Registry`), else `PREFIXname: got X, allowed: ...`."""
    v = getattr(obj, name)
    names = allowed.names() if hasattr(allowed, "names") else list(allowed)
    if v not in names:
        raise bad_value(prefix + name, v, ", ".join(map(str, names)))


def carry_fields(source: type, *names: str) -> Callable[[type], type]:
    """Class decorator (under `@dataclass`): these fields of `source`, with their types, defaults and help, ahead
    of the class's own -- so a settings type that carries some of them (`RunSpec`) does not spell them again."""
    def add(cls: type) -> type:
        src = field_map(source)
        unknown = [n for n in names if n not in src]
        if unknown:
            raise TypeError(f"not {source.__name__} fields: {unknown}")
        cls.__annotations__ = {**{n: src[n].type for n in names}, **cls.__dict__.get("__annotations__", {})}
        for n in names:
            setattr(cls, n, dataclasses.field(default=src[n].default, metadata=src[n].metadata))
        return cls

    return add


def yaml_fields(source: type, *names: str, renamed: dict[str, str] | None = None,
                **defaults: Any) -> dict[str, tuple[Any, Any]]:
    """These fields of `source` as pydantic field definitions (type with its bounds, default, help): an experiment
    file's section that sets them takes them from here. `defaults`: where the pipeline's default differs;
    `renamed`: {key: field} where the file names a field for what it means in the pipeline (`label_images` for
    `CollectConfig.max_images`)."""
    from pydantic import Field

    src, h = field_map(source), hints(source)
    unknown = [n for n in (*names, *defaults, *(renamed or {}).values()) if n not in src]
    if unknown:
        raise TypeError(f"not {source.__name__} fields: {unknown}")
    def description(f: dataclasses.Field[Any]) -> str | None:
        h = f.metadata.get("help")  # a help read from a registry stays unread: the schema is built on import
        return h if isinstance(h, str) and h else None

    keys = {**{n: n for n in (*names, *(d for d in defaults if d not in names))}, **(renamed or {})}
    return {k: (_as_yaml(h[n]), Field(default=_as_yaml_value(defaults.get(n, src[n].default)),
                                      description=description(src[n])))
            for k, n in keys.items()}


def _as_yaml(hint: Any) -> Any:
    """A field's type as an experiment file spells it: a `tuple[X, ...]` is a YAML list (`list[X]`), bounds kept."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return Annotated[(_as_yaml(args[0]), *args[1:])]  # type: ignore[return-value]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[args[0]]  # type: ignore[valid-type]
    return hint


def _as_yaml_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def values(obj: Any, *names: str) -> dict[str, Any]:
    """{name: value} of these fields of `obj` (a dataclass or a pydantic model): how one config's settings are
    handed to another's constructor without spelling each name twice."""
    return {n: getattr(obj, n) for n in names}
