"""The `asymsense` command line: a thin typer app over the library.

Each command lives in its own module `cmd_<name>.py` in this package and
registers itself on `app` from `asymsense.cli.app`; modules are discovered
here, so adding a command never touches this file. Exit codes: 0 success,
2 bad input (one line on stderr, no traceback), 3 divergence.
"""

from __future__ import annotations

import importlib
import pkgutil

from asymsense.cli.app import app, main

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("cmd_")):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["app", "main"]
