"""`asymsense compare`: flags and the printed table; the job is `asymsense.jobs.compare.run_compare`."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from asymsense.cli.app import EXIT_DIVERGED, app, console, handle_errors
from asymsense.jobs.compare import run_compare


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


@app.command("compare")
@handle_errors
def compare(
    n1: int = typer.Option(40, help="Rows of X*."),
    n2: int = typer.Option(30, help="Columns of X*."),
    rank: int = typer.Option(3, help="Rank r of X*."),
    cond: float = typer.Option(2.0, help="Condition number κ = σ₁/σ_r ≥ 1 of X*."),
    spectrum: str = typer.Option("linear", help="linear or geometric spacing of σ from 1 to 1/κ."),
    m: Optional[int] = typer.Option(None, help="Measurements (default 5·r(n1 + n2 − r))."),
    operator: str = typer.Option("gaussian", help="Operator kind: gaussian, gaussian-stream, rank-one, structured, entries."),
    noise: float = typer.Option(0.0, help="Noise standard deviation σ."),
    seed: Optional[int] = typer.Option(0, help="Initialization seed; the truth, operator and noise seeds derive from it, as in `asymsense solve`."),
    max_iter: int = typer.Option(500, "--max-iter", help="Iteration budget of every method (for als: sweeps)."),
    tol: Optional[float] = typer.Option(None, help="Stop a method when its relative residual ‖A(UVᵀ) − y‖/‖y‖ ≤ tol."),
    width: Optional[int] = typer.Option(None, help="k for the overparameterized methods (fgd, balanced, scaled-gd); default min(n1, n2)."),
    alpha: float = typer.Option(1e-3, help="Initialization scale α of the small-initialization methods."),
    record_every: int = typer.Option(10, "--record-every", help="History cadence in iterations."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (one record per method) on stdout instead of the table."),
):
    """Run fgd and every baseline on one planted problem; print test error, iterations and seconds side by side.

    Exit codes: 0 success, 2 bad input, 3 when any method diverged (the others are still reported)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True, disable=as_json or not console.is_terminal) as bar:

        def progress(name):
            task = bar.add_task(name, total=max_iter)
            return lambda done: bar.update(task, completed=done)

        records = run_compare(n1=n1, n2=n2, rank=rank, cond=cond, spectrum=spectrum, m=m, operator=operator, noise=noise, seed=seed, max_iter=max_iter,
                              width=width, alpha=alpha, record_every=record_every, tol=tol, progress=progress)
    if as_json:
        print(json.dumps(records))
    else:
        out = Console()
        if not out.is_terminal:
            out = Console(width=120)
        out.print(_table(records))
    diverged = [r["method"] for r in records if r.get("diverged")]
    if diverged:
        print(f"error: diverged: {', '.join(diverged)}", file=sys.stderr)
        raise typer.Exit(EXIT_DIVERGED)
