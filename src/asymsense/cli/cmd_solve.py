"""`asymsense solve`: one fgd run on a planted problem, from flags and/or a TOML config."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.table import Table

from asymsense.atomic import check_new_out_dir, output_dir
from asymsense.backend import quiet_overflow
from asymsense.cli.progress import progress_bar
from asymsense.cli.app import command
from asymsense.cli.options import PROBLEM_RUN, THREADS_HELP, choices as _choices, help_text as _help
from asymsense.jobs.solve import enough_memory, run_solve, write_outputs
from asymsense.serialize import dumps
from asymsense.spec import DEFAULTS, load_solve_config


@command("solve", options=PROBLEM_RUN)
def solve(
    step: Optional[str] = typer.Option(None, help=_help("step", f"Step size μ > 0, or 'auto' for μ = {DEFAULTS['step_constant']:g}/‖A*(y)‖₂.")),
    step_constant: Optional[float] = typer.Option(None, "--step-constant", help=_help("step_constant", "c in the auto step μ = c/‖A*(y)‖₂.")),
    dtype: Optional[str] = typer.Option(None, help=_help("dtype", f"{_choices('dtype')}.")),
    validation: Optional[float] = typer.Option(None, help=_help("validation", "Fraction of measurements held out; the best validation iterate is returned.")),
    patience: Optional[int] = typer.Option(None, help=_help("patience", "Stop after this many iterations without validation improvement (needs --validation).")),
    threads: Optional[int] = typer.Option(None, help=_help("threads", THREADS_HELP)),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for summary.json and history.parquet (created; written atomically)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary JSON on stdout (and nothing else)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the outputs of another run in --out (otherwise a non-empty --out is refused)."),
    **problem,
):
    """Recover a planted low-rank matrix by factorized gradient descent; report the summary.

    Exit codes: 0 success, 2 bad input, 3 divergence (try a smaller --step)."""
    config = problem.pop("config")
    overrides = dict(problem, step=step, step_constant=step_constant, dtype=dtype, validation=validation, patience=patience, threads=threads)
    settings = load_solve_config(config, overrides).resolved()
    if out is not None:
        check_new_out_dir(out, overwrite=overwrite)

    with progress_bar(TextColumn("fgd k={task.fields[k]}"), BarColumn(), MofNCompleteColumn()) as bar:
        task = bar.add_task("fgd", total=settings.max_iter, k=settings.width)
        with enough_memory(settings), quiet_overflow():
            summary, result = run_solve(settings, progress=lambda done: bar.update(task, completed=done))
    if out is not None:
        with output_dir(out) as tmp:  # the whole folder appears at once, or nothing
            write_outputs(tmp, summary, result)
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
