"""`asymsense compare`: fgd and every baseline on one planted problem, side by side."""

from __future__ import annotations

import json
import sys
from typing import Optional

import numpy as np
import typer

from asymsense.cli.app import EXIT_DIVERGED, app, console, handle_errors


def noise_penalty(operator, noise: float, seed: int) -> float:
    """λ_final for nuclear-norm minimization at noise level σ: 2‖A*(ε̃)‖₂ for a
    fresh draw ε̃ ~ N(0, σ²I) — the usual rule λ ≥ 2‖A*(ε)‖₂ (Negahban &
    Wainwright 2011), with the known noise level of the planted problem."""
    from asymsense.solvers.stepsize import adjoint_norm

    eps = noise * np.random.default_rng([seed, 0xBA5E]).standard_normal(operator.m).astype(operator.dtype)
    return 2.0 * adjoint_norm(operator, eps, seed=seed)


def method_calls(*, rank: int, width: int, alpha: float, init_seed: int, penalty: float | None) -> dict:
    """Each method's name → (function, method-specific keywords) as compare runs it."""
    from asymsense.baselines import BASELINES, EXACT_RANK
    from asymsense.solvers.fgd import fgd

    small_init = {"width": width, "init_scale": alpha}
    kwargs = {"nuclear": {} if penalty is None else {"penalty": penalty}, "balanced": small_init, "scaled-gd": small_init,
              **{name: {"width": rank} for name in EXACT_RANK}}
    calls = {"fgd": (fgd, small_init)}
    for name, fn in BASELINES.items():
        calls[name] = (fn, kwargs.get(name, {}))
    return calls


def run_compare(*, n1=40, n2=30, rank=3, cond=2.0, spectrum="linear", m=None, operator="gaussian", noise=0.0, seed=0, max_iter=500, width=None,
                alpha=1e-3, record_every=10, tol=None, progress=None) -> list[dict]:
    """Run every method with the same budget on the planted problem that
    `asymsense solve` builds from the same parameters (`SolveConfig`: the same
    validation, defaults and derived seeds, so `compare --seed s` and
    `solve --seed s` share truth, operator, noise and fgd's initialization).

    One record per method: {"method", summary.json keys…, "config", "solver"}
    with `config` every resolved problem parameter and seed (plus
    `nuclear_penalty`) and `solver` what the method recorded; or {"method",
    "diverged": True, "error", "config"} when it diverged. BLAS is limited to
    one thread: these problems are small, and a second BLAS thread competing
    with any other busy process slowed such steps 15–25× in our runs."""
    from threadpoolctl import threadpool_limits

    from asymsense.spec import load_solve_config
    from asymsense.errors import DivergenceError, resolve_seed
    from asymsense.jobs.outputs import plain, quiet_overflow
    from asymsense.jobs.solve import build, enough_memory

    overrides = dict(n1=n1, n2=n2, rank=rank, cond=cond, spectrum=spectrum, m=m, operator=operator, noise=noise, seed=resolve_seed(None) if seed is None else seed,
                     max_iter=max_iter, width=width, alpha=alpha, record_every=record_every, tol=tol, threads=1)
    settings = load_solve_config(None, overrides).resolved()
    records = []
    with threadpool_limits(1), enough_memory(settings), quiet_overflow():
        truth, op, y = build(settings)
        penalty = noise_penalty(op, settings.noise, settings.noise_seed) if settings.noise > 0 else None
        config = {**settings.record(), "nuclear_penalty": penalty}
        calls = method_calls(rank=settings.rank, width=settings.width, alpha=settings.alpha, init_seed=settings.seed, penalty=penalty)
        for name, (fn, kwargs) in calls.items():
            callback = progress(name) if progress is not None else None
            try:
                result = fn(op, y, max_iter=settings.max_iter, truth=truth, record_every=settings.record_every, seed=settings.seed,
                            tol=settings.tol, progress=callback, **kwargs)
            except DivergenceError as exc:
                records.append({"method": name, "diverged": True, "error": str(exc), "config": config})
                continue
            records.append(plain({"method": name, **result.summary(), "config": config, "solver": result.config}))
    return records


def _table(records):
    from rich.table import Table

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
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
