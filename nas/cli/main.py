"""The `hwnas` command. Subcommands live in their own modules and are imported only when used, so
`hwnas --help` and `hwnas spaces` answer without importing torch or Ray.

Exit codes: 0 success, 1 runtime failure, 2 bad input (one line, no traceback).
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

import click

import search_spaces  # noqa: F401  (sets OMP_WAIT_POLICY before anything imports torch)
from search_spaces.errors import HwnasError, InputError

# command name -> "module:attribute"; a module that does not exist (yet) simply contributes no command
LAZY_COMMANDS: dict[str, str] = {
    "spaces": "nas.cli.space_cmds:spaces",
    "sample": "nas.cli.space_cmds:sample",
    "profile": "nas.cli.space_cmds:profile",
    "latency": "nas.cli.latency_cmds:latency",
    "data": "nas.cli.train_cmds:data",
    "supernet": "nas.cli.train_cmds:supernet",
    "predictor": "nas.cli.predictor_cmds:predictor",
    "search": "nas.cli.search_cmds:search",
    "query": "nas.cli.deploy_cmds:query",
    "serve": "nas.cli.deploy_cmds:serve",
    "export": "nas.cli.deploy_cmds:export",
    "run": "nas.cli.run_cmds:run",
}


def fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in LAZY_COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]
        name = args[0] if args else None
        if name is not None and name not in LAZY_COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, list(LAZY_COMMANDS), n=1)
            hint = f" (closest: {close[0]})" if close else ""
            raise click.UsageError(f"unknown command {name!r}; known: {', '.join(self.list_commands(ctx))}{hint}")
        return super().resolve_command(ctx, args)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                return None
            raise
        return getattr(mod, attr, None)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """click's main, with click's own usage errors (a bad option value, a missing option) as one line too."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "hwnas"
            fail(f"{e.format_message()} (see `{where} --help`)", 2)
        except click.ClickException as e:
            fail(e.format_message(), e.exit_code)
        except click.Abort:
            fail("aborted", 1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except InputError as e:
            fail(str(e), 2)
        except HwnasError as e:
            fail(str(e), 1)
        except UnicodeDecodeError:
            fail("a file given is not UTF-8 text (hwnas reads JSON, YAML and JSON lines as UTF-8)", 2)
        except (FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
            # a path the user named is of the wrong kind (`--out` an existing file where a directory goes, ...)
            fail(f"{e.filename or 'path'}: {e.strerror or type(e).__name__}", 2)
        except OSError as e:  # the machine refused (disk full, ...): a runtime failure, still one line
            fail(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}", 1)
        except KeyboardInterrupt:
            fail("interrupted", 130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwnas")
def cli() -> None:
    """hwnas: hardware-aware architecture, pruning and quantization search."""


def main() -> None:
    cli(prog_name="hwnas", max_content_width=100)


if __name__ == "__main__":
    main()
