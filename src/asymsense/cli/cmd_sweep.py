"""`asymsense sweep`: run a resumable parameter sweep, show its status, query it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import pyarrow.csv as pcsv
import typer
from rich.console import Console
from rich.table import Table

from asymsense.cli.options import JOBS_HELP
from asymsense.cli.app import command, console, fail
from asymsense.paper.registry import TRIAL_METHODS
from asymsense.sweep import store
from asymsense.sweep.run import SweepAborted, expand, load_sweep_config, run_sweep
from asymsense.validation import check_int


def _print_table(table, csv: bool) -> None:
    """An Arrow table on stdout: CSV, or a rich table for people."""
    if csv:
        pcsv.write_csv(table, sys.stdout.buffer)
        return
    out = Table(show_edge=False)
    for name in table.column_names:
        out.add_column(name, overflow="fold")
    for row in table.to_pylist():
        out.add_row(*("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    Console(width=max(120, Console().width)).print(out)


def _status(config, out: Path, csv: bool) -> None:
    trials = expand(config, TRIAL_METHODS)
    expected = [t.key for t in trials]
    summary = store.status(out, expected)
    counts = summary["counts"]
    print(f"sweep {config.name}: {len(expected)} trials: {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, "
          f"{counts.get('pending', 0)} pending ({out})")
    if summary["others"]:
        print(f"note: {out} also holds {summary['others']} trials that {config.name} does not define (another config, or an earlier version of this one)")
    if summary["table"].num_rows:
        _print_table(summary["table"], csv)
    for key, error in summary["errors"]:
        print(f"failed {key}: {(error or '').splitlines()[0] if error else error}")


@command("sweep")
def sweep(
    config: Path = typer.Argument(..., metavar="CONFIG", help="Sweep config (TOML): name, method, seeds, chunk_size and the tables fixed and grid (see docs/sweeps.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Results folder (Parquet chunks); rerunning resumes."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help=JOBS_HELP + " \\[default: the CPU count]"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Run on an existing Dask cluster, e.g. tcp://host:8786."),
    dask_local: Optional[int] = typer.Option(None, "--dask-local", help="Run on a local Dask cluster of N worker processes."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Rerun the trials stored as failed."),
    status: bool = typer.Option(False, "--status", help="Print the sweep's progress and a summary (DuckDB); run nothing."),
    query: Optional[str] = typer.Option(None, "--query", help="Run DuckDB SQL over the views trials and history; run nothing."),
    csv: bool = typer.Option(False, "--csv", help="Print --status/--query tables as CSV."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Show a progress bar on stderr \\[default: only when stderr is a terminal]."),
) -> None:
    """Run every trial of CONFIG not yet stored in OUT, in parallel, with a progress bar."""
    for flag, value in (("--jobs", jobs), ("--dask-local", dask_local)):
        if value is not None:
            check_int(flag, value, minimum=1)
    cfg = load_sweep_config(config)
    progress = console.is_terminal if progress is None else progress
    if query is not None:
        _print_table(store.query(out, query), csv)
        return
    if status:
        _status(cfg, out, csv)
        return
    try:
        report = run_sweep(cfg, out, methods=TRIAL_METHODS, n_jobs=jobs, scheduler=scheduler, dask_local=dask_local, progress=progress, retry_failed=retry_failed)
    except SweepAborted as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail("interrupted: every finished chunk is stored; rerun the same command to resume", 130)
    console.print(f"{cfg.name}: {report.done} done, {report.skipped} already stored, {report.failed} failed "
                  f"in {report.seconds:.1f} s → {out}" + ("  (asymsense sweep --status shows the errors; --retry-failed reruns them)" if report.failed else ""), soft_wrap=True)
