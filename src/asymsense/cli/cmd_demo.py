"""`asymsense demo`: the main job on its embedded default problem (see asymsense.jobs.demo)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from asymsense.atomic import check_new_out_dir
from asymsense.cli.progress import progress_bar
from asymsense.cli.app import command
from asymsense.cli.options import THREADS_HELP
from asymsense.jobs.demo import ALPHAS, run_demo


@command("demo")
def demo(
    out: Path = typer.Option(Path("asymsense-demo"), "--out", help="Folder for the figures, history.parquet and summary.json."),
    max_iter: int = typer.Option(1000, "--max-iter", help="Iteration budget per trial (trials also stop at rel. residual ≤ --tol)."),
    seed: int = typer.Option(0, help="Initialization seed; the truth and operator seeds derive from it."),
    tol: float = typer.Option(1e-12, help="Stop a trial when ‖A(UVᵀ) − y‖/‖y‖ ≤ tol."),
    record_every: int = typer.Option(2, "--record-every", help="History cadence in iterations."),
    threads: int = typer.Option(1, help=THREADS_HELP + " 1 is robust on a shared machine."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the outputs of an earlier run in --out (otherwise a non-empty --out is refused)."),
):
    """fgd on a built-in planted problem: prints a table, writes PNG figures, history.parquet and summary.json.

    The problem: a 60×40 rank-3 matrix (κ = 3), 1455 Gaussian measurements; fgd with k = 60 and k = 3 over α = 1e-1 … 1e-6 (one batch per k).

    Exit codes: 0 success, 2 bad input, 3 divergence."""
    check_new_out_dir(out, overwrite=overwrite)
    with progress_bar(transient=False) as bar:

        def progress(width, total):
            task = bar.add_task(f"k = {width:>2}, {len(ALPHAS)} α batched", total=total)
            return lambda done: bar.update(task, completed=done)

        outcome = run_demo(out, overwrite=overwrite, max_iter=max_iter, seed=seed, record_every=record_every, tol=tol, threads=threads, progress=progress)

    stdout = Console()
    if not stdout.is_terminal:
        stdout = Console(width=100)
    stdout.print(_table(outcome))
    s = outcome.summary
    slope = s["fitted_slope"]
    stdout.print(f"stopping rule: {s['config']['stopping']}")
    stdout.print(f"fitted slope of log(final test error) vs log α, k = {s['config']['widths'][0]}: " + ("—" if slope is None else f"{slope:.3f}"))
    stdout.print(f"wrote {len(s['files'])} files to {out}/ in {s['seconds']:.1f} s: {', '.join(s['files'])}", soft_wrap=True)


def _table(outcome):
    cfg = outcome.summary["config"]
    table = Table(title=f"fgd on a planted {cfg['n1']}×{cfg['n2']} rank-{cfg['rank']} matrix (κ = {cfg['cond']:g}), {cfg['m']} Gaussian measurements")
    for name in ("α", "k", "final test error", "iterations", "stop", "max rel. imbalance"):
        table.add_column(name, justify="left" if name == "stop" else "right")
    for row in outcome.rows:
        table.add_row(f"{row['alpha']:.0e}", str(row["width"]), f"{row['rel_error']:.2e}", str(row["iterations"]), row["stop_reason"],
                      f"{row['max_rel_imbalance']:.2e}")
    return table
