"""`asymsense reproduce`: run the experiments E1–E8 and write the report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from asymsense.errors import InputError
from asymsense.validation import check_int
from asymsense.cli.options import JOBS_HELP
from asymsense.cli.app import command, console, fail
from asymsense.paper.report import build_report
from asymsense.paper.runner import reproduce as run_all
from asymsense.sweep.run import SweepAborted


@command("reproduce")
def reproduce(
    out: Path = typer.Option(Path("results"), "--out", "-o", help="Output folder: stored results (Parquet), figures, report.md, report.html, claims.json. Rerunning resumes."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes and few seeds (the default; under 15 minutes on 2 cores)."),
    full: bool = typer.Option(False, "--full", help="More seeds and larger sizes (hours)."),
    experiment: Optional[List[str]] = typer.Option(None, "--experiment", "-e", help="Run only these experiments (e1 … e14); repeatable."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help=JOBS_HELP + " \\[default: the CPU count]"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Show a progress bar per sweep on stderr \\[default: only when stderr is a terminal]."),
):
    """Run every experiment through the sweep engine and build the report with its claims table."""
    if quick and full:
        raise InputError("give --quick or --full, not both")
    if jobs is not None:
        check_int("--jobs", jobs, minimum=1)
    mode = "full" if full else "quick"
    progress = console.is_terminal if progress is None else progress
    started = time.perf_counter()
    try:
        run_all(out, mode, experiments=experiment, n_jobs=jobs, progress=progress, console=console if progress else None)
    except SweepAborted as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail(f"interrupted: every finished chunk is stored in {out}; rerun the same command to resume", 130)
    claims, _ = build_report(out, console=console if progress else None)
    passed = sum(c.passed for c in claims)
    console.print(f"{passed} of {len(claims)} claims pass; report: {out / 'report.md'}, {out / 'report.html'} ({time.perf_counter() - started:.0f} s)")
