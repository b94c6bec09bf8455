"""One-line usage errors for a command.

Typer prints click's usage errors (an unknown option, "abc" for an integer
flag) as a multi-line rich panel. Commands created with `cls=OneLineCommand`
print them as one line on stderr instead — `error: --n1: 'abc' is not a valid
integer.` — and exit with code 2, like every other bad input.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperCommand

from .app import EXIT_BAD_INPUT

try:  # typer >= 0.25 vendors click as typer._click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import UsageError


class OneLineCommand(TyperCommand):
    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            message = " ".join(exc.format_message().split())
            print(f"error: {message} (see 'asymsense {self.name} --help')", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from None
