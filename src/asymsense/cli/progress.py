"""Progress bars of the command line, in one place: how they look and when they
show. A bar goes to stderr (the shared `app.console`) and only when stderr is a
terminal, so redirected output and pipes never carry bar frames."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from asymsense.cli.app import console


def progress_bar(*columns, transient: bool = True, enabled: bool | None = None) -> Progress:
    """A rich Progress with `columns` (default: description, bar, done/total)
    and the elapsed time, on stderr; disabled unless stderr is a terminal
    (`enabled` overrides, e.g. an explicit --progress)."""
    columns = columns or (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    show = console.is_terminal if enabled is None else enabled
    return Progress(*columns, TimeElapsedColumn(), console=console, transient=transient, disable=not show)
