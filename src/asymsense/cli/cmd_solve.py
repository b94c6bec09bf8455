"""`asymsense solve`: one fgd run on a planted problem, from flags and/or a TOML config."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from asymsense.atomic import prepare_out_dir
from asymsense.backend import quiet_overflow
from asymsense.cli.app import app, console, handle_errors
from asymsense.jobs.solve import enough_memory, run_solve, write_outputs
from asymsense.serialize import dumps
from asymsense.spec import load_solve_config


@app.command("solve")
@handle_errors
def solve(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file of parameters (flat key = value, names as below with _ or -); flags override it."),
    n1: Optional[int] = typer.Option(None, help="Rows of X*. \\[default: 40]"),
    n2: Optional[int] = typer.Option(None, help="Columns of X*. \\[default: 30]"),
    rank: Optional[int] = typer.Option(None, help="Rank r of X*. \\[default: 3]"),
    cond: Optional[float] = typer.Option(None, help="Condition number κ = σ₁/σ_r ≥ 1. \\[default: 2]"),
    spectrum: Optional[str] = typer.Option(None, help="linear or geometric spacing of σ from 1 to 1/κ. \\[default: linear]"),
    m: Optional[int] = typer.Option(None, help="Number of measurements. \\[default: ⌈5·r(n1+n2−r)⌉]"),
    operator: Optional[str] = typer.Option(None, help="gaussian, gaussian-stream, rank-one, structured or entries. \\[default: gaussian]"),
    noise: Optional[float] = typer.Option(None, help="Standard deviation σ of the Gaussian measurement noise. \\[default: 0]"),
    width: Optional[int] = typer.Option(None, help="k, columns of U and V. \\[default: min(n1, n2)]"),
    alpha: Optional[float] = typer.Option(None, help="Initialization scale α > 0. \\[default: 1e-3]"),
    step: Optional[str] = typer.Option(None, help="Step size μ > 0, or 'auto' for μ = 0.5/‖A*(y)‖₂. \\[default: auto]"),
    step_constant: Optional[float] = typer.Option(None, "--step-constant", help="c in the auto step μ = c/‖A*(y)‖₂. \\[default: 0.5]"),
    max_iter: Optional[int] = typer.Option(None, "--max-iter", help="Iteration budget. \\[default: 1000]"),
    seed: Optional[int] = typer.Option(None, help="Initialization seed; problem, operator and noise seeds derive from it. \\[default: 0]"),
    dtype: Optional[str] = typer.Option(None, help="float64 or float32. \\[default: float64]"),
    tol: Optional[float] = typer.Option(None, help="Stop when ‖A(UVᵀ) − y‖/‖y‖ ≤ tol. \\[default: none]"),
    record_every: Optional[int] = typer.Option(None, "--record-every", help="History cadence in iterations. \\[default: 10]"),
    validation: Optional[float] = typer.Option(None, help="Fraction of measurements held out; the best validation iterate is returned. \\[default: none]"),
    patience: Optional[int] = typer.Option(None, help="Stop after this many iterations without validation improvement (needs --validation). \\[default: none]"),
    threads: Optional[int] = typer.Option(None, help="BLAS threads. \\[default: 1]"),
    backend: Optional[str] = typer.Option(None, help="Array library: numpy, torch or cupy (see docs/backends.md). \\[default: numpy]"),
    device: Optional[str] = typer.Option(None, help="Device of that library: cpu, cuda, cuda:1, ... \\[default: cpu]"),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for summary.json and history.parquet (created; written atomically)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary JSON on stdout (and nothing else)."),
):
    """Recover a planted low-rank matrix by factorized gradient descent; report the summary.

    Exit codes: 0 success, 2 bad input, 3 divergence (try a smaller --step)."""
    overrides = dict(n1=n1, n2=n2, rank=rank, cond=cond, spectrum=spectrum, m=m, operator=operator, noise=noise, width=width, alpha=alpha,
                     step=step, step_constant=step_constant, max_iter=max_iter, seed=seed, dtype=dtype, tol=tol, record_every=record_every,
                     validation=validation, patience=patience, threads=threads, backend=backend, device=device)
    settings = load_solve_config(config, overrides).resolved()
    if out is not None:
        prepare_out_dir(out)

    with Progress(TextColumn("fgd k={task.fields[k]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("fgd", total=settings.max_iter, k=settings.width)
        with enough_memory(settings), quiet_overflow():
            summary, result = run_solve(settings, progress=lambda done: bar.update(task, completed=done))
    if out is not None:
        write_outputs(out, summary, result)
    if as_json:
        print(dumps(summary))
        return
    _print_summary(summary, out)


def _print_summary(summary: dict, out: Path | None) -> None:
    c = summary["config"]
    header = f"fgd on a planted {c['n1']}×{c['n2']} rank-{c['rank']} matrix, {c['operator']} m = {c['m']}, k = {c['width']}, α = {c['alpha']:g}"
    table = Table(show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")

    def fmt(value):
        return "—" if value is None else f"{value:.3e}" if isinstance(value, float) else str(value)

    for key in ("rel_error", "rel_residual", "loss", "iterations", "stop_reason", "max_rel_imbalance", "final_rel_imbalance", "eff_rank", "step_size", "seconds"):
        table.add_row(key, fmt(summary[key]))
    if out is not None:
        table.add_row("written to", str(out))
    stdout = Console()
    if not stdout.is_terminal:
        stdout = Console(width=100)
    stdout.print(header, soft_wrap=True)
    stdout.print(table)
