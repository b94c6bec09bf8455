"""The `recorded` block of a benchmark's JSON record: the command as run, the date (UTC), the cores and
the load average at the start (with the one at the end in the note). docs/build.py prints it next to
every number it renders from a record (tests/test_docs_generated.py checks that each record has one)."""

from __future__ import annotations

import os
import sys
import time


class RunRecord:
    """Start it before measuring; `recorded()` after."""

    def __init__(self, argv=None):
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        self.load = os.getloadavg()

    def recorded(self, script: str, note: str = "") -> dict:
        end = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        return {"command": " ".join(["python", f"benchmarks/{script}", *self.argv]),
                "date": f"{self.started}–{time.strftime('%H:%M', time.gmtime())} UTC", "cores": os.cpu_count(),
                "load_average": [round(x, 1) for x in self.load],
                "note": f"at the start; at the end {end}" + (f"; {note}" if note else "")}
