"""The typer application and the error handling shared by every command."""

from __future__ import annotations

import functools
import re
import sys

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.25 vendors click as typer._click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import UsageError

from asymsense.cli.options import OPTIONS, with_options
from asymsense.errors import DivergenceError, InputError

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130

def _flags_without_type(params):
    """Boolean flags show as `--x/--no-x` (or `--x`) in the help, without a
    `<bool>` type column: they take no value."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class OneLineGroup(TyperGroup):
    """The app itself: its --version and --help are flags, shown without a type."""

    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))


class OneLineCommand(TyperCommand):
    """Usage errors (an unknown option, "abc" for an integer flag) as one line
    on stderr — `error: --n1: 'abc' is not a valid integer.` — and exit 2,
    instead of click's multi-line panel."""

    def parse_args(self, ctx, args):
        self._check_out(args)
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            message = " ".join(exc.format_message().split())
            print(f"error: {message} (see 'asymsense {self.name} --help')", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))

    def _check_out(self, args) -> None:
        """`--out ''` (or `-o ''`) refused before any work, on every command
        that has --out (atomic.check_out_path): typer would read it as the
        current directory."""
        from asymsense.atomic import check_out_path

        opts = {opt for p in self.params if "--out" in getattr(p, "opts", ()) for opt in p.opts}
        for i, arg in enumerate(args):
            if arg == "--":
                return
            value = args[i + 1] if arg in opts and i + 1 < len(args) else arg.split("=", 1)[1] if arg.startswith("--out=") and "--out" in opts else None
            if value is not None:
                try:
                    check_out_path(value, "--out")
                except InputError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    raise typer.Exit(EXIT_BAD_INPUT) from None


class _Typer(typer.Typer):
    """Every command gets one-line usage errors unless it asks otherwise."""

    def command(self, *args, **kwargs):
        kwargs.setdefault("cls", OneLineCommand)
        return super().command(*args, **kwargs)


app = _Typer(
    name="asymsense",
    cls=OneLineGroup,
    help="Low-rank matrix recovery by overparameterized factorized gradient descent from small random initialization.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        from asymsense import __version__

        print(f"asymsense {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Low-rank matrix recovery by overparameterized factorized gradient descent from small random initialization."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print one line on stderr and exit with `code` (no traceback)."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


PARAMETER_FLAGS = {"step_size": "--step", "init_scale": "--alpha", "n_jobs": "--jobs"}
"""Library parameters whose flag is not simply --name-with-dashes."""


def flag_of(parameter: str) -> str:
    """The command-line flag of a library parameter: step_size → --step, max_iter → --max-iter."""
    return PARAMETER_FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def in_cli_terms(message: str, parameter: str | None = None, names: tuple = ()) -> str:
    """A library message in the syntax of the command line. The library names
    parameters (`step_size=12.5`, `duplicates='mean'`, "try a smaller
    step_size"); the CLI shows the flags that set them (`--step 12.5`,
    `--duplicates mean`, "try a smaller --step"). Names inside a file's
    location ('run.toml line 3: alpha ...') are the file's keys and stay.
    A message that starts with the parameter at fault (InputError.parameter)
    starts with its flag. `names`: further parameters the message names in
    plain words ("use a smaller width", "width=1"), shown as flags too (a
    guardrail's `parameters`)."""
    if parameter is not None and message.startswith(parameter + " ") and not parameter.startswith("-"):
        message = f"{flag_of(parameter)} {message[len(parameter) + 1:]}"
    message = re.sub(r"(?<![-\w.])([a-z][a-z0-9_]*)='([^']*)'", lambda m: f"{flag_of(m.group(1))} {m.group(2)}", message)
    names = "|".join(dict.fromkeys([*PARAMETER_FLAGS, *names]))
    message = re.sub(rf"(?<![-\w.])({names})=([^\s;,:)]+)", lambda m: f"{flag_of(m.group(1))} {m.group(2)}", message)
    return re.sub(rf"(?<![-\w.'])({names})\b(?!=)", lambda m: flag_of(m.group(1)), message)


def handle_errors(func):
    """Decorator for commands: InputError → exit 2, DivergenceError → exit 3,
    each as one line on stderr, in the command line's terms (`in_cli_terms`)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            fail(in_cli_terms(str(exc), exc.parameter), EXIT_BAD_INPUT)
        except DivergenceError as exc:
            fail(in_cli_terms(str(exc)), EXIT_DIVERGED)
        except OSError as exc:
            fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            fail("interrupted: outputs are written only when a run finishes, so nothing partial was kept; rerun the command", EXIT_INTERRUPTED)

    return wrapper


def command(name: str, *, options: tuple = (), table: dict | None = None):
    """Register a command the one way: typer's `app.command(name)`, its errors
    as one line (`handle_errors`) and its options declared in cli/options
    (`with_options`: the shared `options`, and own parameters without a default from `table`)."""

    def register(function):
        declared = with_options(options, OPTIONS if table is None else table, command=name)(function)
        app.command(name)(handle_errors(declared))
        return function

    return register


def main() -> None:
    app()
