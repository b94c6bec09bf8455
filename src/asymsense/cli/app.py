"""The typer application and the error handling shared by every command."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from ..errors import DivergenceError, InputError

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3

app = typer.Typer(
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
