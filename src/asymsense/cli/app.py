"""The typer application and the error handling shared by every command."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console
from typer.core import TyperCommand

try:  # typer >= 0.25 vendors click as typer._click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import UsageError

from asymsense.errors import DivergenceError, InputError

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3

class OneLineCommand(TyperCommand):
    """Usage errors (an unknown option, "abc" for an integer flag) as one line
    on stderr — `error: --n1: 'abc' is not a valid integer.` — and exit 2,
    instead of click's multi-line panel."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            message = " ".join(exc.format_message().split())
            print(f"error: {message} (see 'asymsense {self.name} --help')", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from None


class _Typer(typer.Typer):
    """Every command gets one-line usage errors unless it asks otherwise."""

    def command(self, *args, **kwargs):
        kwargs.setdefault("cls", OneLineCommand)
        return super().command(*args, **kwargs)


app = _Typer(
    name="asymsense",
    help="Low-rank matrix recovery by overparameterized factorized gradient descent from small random initialization.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print one line on stderr and exit with `code` (no traceback)."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def handle_errors(func):
    """Decorator for commands: InputError → exit 2, DivergenceError → exit 3,
    each as one line on stderr."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        except DivergenceError as exc:
            fail(str(exc), EXIT_DIVERGED)
        except OSError as exc:
            fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_BAD_INPUT)

    return wrapper


def main() -> None:
    app()
