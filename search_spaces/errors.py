"""The two kinds of failure hwnas reports: bad input (exit 2) and runtime failure (exit 1).

Every package raises these so the CLI can print one clear line instead of a traceback.
"""
from __future__ import annotations


class HwnasError(Exception):
    """A runtime failure: something that was asked for could not be done (CLI exit code 1)."""


class InputError(HwnasError, ValueError):
    """Bad input from the user: names the field, the value and what is allowed (CLI exit code 2)."""


class UnknownNameError(InputError):
    """A name looked up in a registry that is not registered."""


def bad_value(field: str, value: object, allowed: str) -> InputError:
    """Build the one-line error every validator uses: field, value, what is allowed."""
    return InputError(f"{field}: got {value!r}, allowed: {allowed}")


def one_of(names: list[str]) -> str:
    """'a, b or c': choices as an error or a help text lists them."""
    return " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"
