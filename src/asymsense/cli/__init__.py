"""The `asymsense` command line: a thin typer app over the library.

Each command lives in its own module `cmd_<name>.py` in this package and
registers itself on `app` from `asymsense.cli.app` when imported; the list
below imports every one of them (a new command adds its line here). Exit
codes: 0 success, 2 bad input (one line on stderr, no traceback), 3 divergence.
"""

from __future__ import annotations

from asymsense.cli import (  # noqa: F401 (imported for their commands)
    cmd_compare,
    cmd_complete,
    cmd_demo,
    cmd_inspect,
    cmd_pilot,
    cmd_predict,
    cmd_report,
    cmd_reproduce,
    cmd_solve,
    cmd_sweep,
)
from asymsense.cli.app import app, main

__all__ = ["app", "main"]
