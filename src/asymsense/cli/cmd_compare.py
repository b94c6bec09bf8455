"""`asymsense compare`: flags and the printed table; the job is `asymsense.jobs.compare.run_compare`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from asymsense.atomic import prepare_out_dir, write_json
from asymsense.cli.progress import progress_bar
from asymsense.cli.app import EXIT_DIVERGED, command
from asymsense.cli.options import PROBLEM_RUN
from asymsense.jobs.compare import run_compare

RECORDS_FILE = "compare.json"


def _table(records):
    table = Table(title="fgd and the baselines on one planted problem")
    for column, justify in (("method", "left"), ("test error", "right"), ("iterations", "right"), ("seconds", "right"), ("stop", "left"), ("rel. residual", "right"), ("rel. imbalance", "right"), ("eff. rank", "right")):
        table.add_column(column, justify=justify)

    def fmt(value, spec):
        return "—" if value is None else format(value, spec)

    for rec in records:
        if rec.get("diverged"):
            table.add_row(rec["method"], "diverged", "", "", rec["error"][:60], "", "", "")
            continue
        table.add_row(rec["method"], fmt(rec["rel_error"], ".3e"), str(rec["iterations"]), fmt(rec["seconds"], ".3f"), rec["stop_reason"],
                      fmt(rec["rel_residual"], ".2e"), fmt(rec["final_rel_imbalance"], ".2e"), fmt(rec["eff_rank"], ".2f"))
    return table


@command("compare", options=PROBLEM_RUN)
def compare(
    out: Optional[Path] = typer.Option(None, "--out", help=f"Folder for {RECORDS_FILE} (the --json records; created, written atomically)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (one record per method) on stdout instead of the table."),
    **parameters,
):
    """Run fgd and every baseline on one planted problem; print test error, iterations and seconds side by side.

    The problem and budget flags are `asymsense solve`'s, with its defaults; fgd, balanced and scaled-gd use k = --width and α = --alpha,
    spectral and als k = r. One BLAS thread. Exit codes: 0 success, 2 bad input, 3 when any method diverged (the others are still reported)."""
    config = parameters.pop("config")
    if out is not None:
        prepare_out_dir(out)
    with progress_bar(enabled=False if as_json else None) as bar:

        def progress(name):
            task = bar.add_task(name, total=None)
            return lambda done: bar.update(task, completed=done)

        records = run_compare(config, progress=progress, **parameters)
    if out is not None:
        write_json(Path(out) / RECORDS_FILE, records)
    if as_json:
        print(json.dumps(records))
    else:
        stdout = Console()
        if not stdout.is_terminal:
            stdout = Console(width=120)
        stdout.print(_table(records))
    diverged = [r["method"] for r in records if r.get("diverged")]
    if diverged:
        print(f"error: diverged: {', '.join(diverged)}", file=sys.stderr)
        raise typer.Exit(EXIT_DIVERGED)
