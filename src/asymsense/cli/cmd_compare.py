"""`asymsense compare`: fgd and every baseline on one planted problem, side by side."""

from __future__ import annotations

import json
import math
import sys
from typing import Optional

import numpy as np
import typer

from .app import EXIT_DIVERGED, app, console, handle_errors


def problem_seeds(seed: int) -> dict:
    """The truth, operator and noise seeds derived from the one --seed exactly
    as a sweep trial derives them (`experiments.params.derived_seed`); the
    initialization seed is --seed itself, so `compare --seed s` builds the
    same planted problem as a sweep trial or `solve` run with seed s."""
    from ..experiments.params import SEED_STREAMS, derived_seed

    return {"seed": seed, **{name: derived_seed(seed, stream) for name, stream in SEED_STREAMS.items()}, "init_seed": seed}


def noise_penalty(operator, noise: float, seed: int) -> float:
    """λ_final for nuclear-norm minimization at noise level σ: 2‖A*(ε̃)‖₂ for a
    fresh draw ε̃ ~ N(0, σ²I) — the usual rule λ ≥ 2‖A*(ε)‖₂ (Negahban &
    Wainwright 2011), with the known noise level of the planted problem."""
    from ..baselines.common import top_singular

    eps = noise * np.random.default_rng([seed, 0xBA5E]).standard_normal(operator.m).astype(operator.dtype)
    return 2.0 * float(top_singular(operator, eps, 1, seed=seed)[1][0])


def method_calls(*, rank: int, width: int, alpha: float, init_seed: int, penalty: float | None) -> dict:
    """Each method's name → (function, method-specific keywords) as compare runs it."""
    from ..baselines import BASELINES
    from ..fgd import fgd

    kwargs = {
        "fgd": {"width": width, "init_scale": alpha},
        "nuclear": {} if penalty is None else {"penalty": penalty},
        "spectral": {"width": rank},
        "balanced": {"width": width, "init_scale": alpha},
        "scaled-gd": {"width": width, "init_scale": alpha},
        "als": {"width": rank},
    }
    calls = {"fgd": (fgd, kwargs["fgd"])}
    for name, fn in BASELINES.items():
        calls[name] = (fn, kwargs.get(name, {}))
    return calls


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_compare(*, n1, n2, rank, cond, m, operator, noise, seed, max_iter, width, alpha, record_every, tol=None, progress=None) -> list[dict]:
    """Run every method with the same budget; one record per method:
    {"method", summary.json keys…, "problem"} or {"method", "diverged": True,
    "error", "problem"} when it diverged. BLAS is limited to one thread: these
    problems are small, and a second BLAS thread competing with any other busy
    process slowed such steps 15–25× in our runs."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _run_compare(n1=n1, n2=n2, rank=rank, cond=cond, m=m, operator=operator, noise=noise, seed=seed, max_iter=max_iter,
                            width=width, alpha=alpha, record_every=record_every, tol=tol, progress=progress)


def _run_compare(*, n1, n2, rank, cond, m, operator, noise, seed, max_iter, width, alpha, record_every, tol, progress) -> list[dict]:
    from ..errors import DivergenceError, check_int, check_positive, resolve_seed
    from ..problems import planted_instance

    n1, n2 = check_int("n1", n1, minimum=1), check_int("n2", n2, minimum=1)
    rank = check_int("rank", rank, minimum=1, maximum=min(n1, n2))
    m = rank * (n1 + n2 - rank) * 5 if m is None else check_int("m", m, minimum=1)
    width = min(n1, n2) if width is None else check_int("width", width, minimum=1)
    alpha = check_positive("alpha", alpha)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    record_every = check_int("record_every", record_every, minimum=1)
    noise = check_positive("noise", noise, allow_zero=True)
    seeds = problem_seeds(resolve_seed(seed))
    truth, op, y = planted_instance(n1, n2, rank, cond=cond, operator=operator, m=m, noise=noise, problem_seed=seeds["problem_seed"],
                                    operator_seed=seeds["operator_seed"], noise_seed=seeds["noise_seed"])
    penalty = noise_penalty(op, noise, seeds["noise_seed"]) if noise > 0 else None
    problem = {"n1": n1, "n2": n2, "rank": rank, "cond": cond, "m": m, "operator": operator, "noise": noise, "width": width, "alpha": alpha,
               "max_iter": max_iter, "tol": tol, "nuclear_penalty": penalty, **seeds}
    records = []
    for name, (fn, kwargs) in method_calls(rank=rank, width=width, alpha=alpha, init_seed=seeds["init_seed"], penalty=penalty).items():
        callback = progress(name) if progress is not None else None
        try:
            result = fn(op, y, max_iter=max_iter, truth=truth, record_every=record_every, seed=seeds["init_seed"], tol=tol, progress=callback, **kwargs)
        except DivergenceError as exc:
            records.append({"method": name, "diverged": True, "error": str(exc), "problem": problem})
            continue
        records.append(_plain({"method": name, **result.summary(), "problem": problem}))
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
    cond: float = typer.Option(2.0, help="Condition number κ of X*."),
    m: Optional[int] = typer.Option(None, help="Measurements (default 5·r(n1 + n2 − r))."),
    operator: str = typer.Option("gaussian", help="Operator kind: gaussian, gaussian-stream, rank-one, structured, entries."),
    noise: float = typer.Option(0.0, help="Noise standard deviation σ."),
    seed: Optional[int] = typer.Option(0, help="Master seed (truth, operator, noise and initialization seeds derive from it)."),
    max_iter: int = typer.Option(500, "--max-iter", help="Iteration budget of every method (for als: sweeps)."),
    tol: Optional[float] = typer.Option(None, help="Stop a method when its relative residual ‖A(UVᵀ) − y‖/‖y‖ ≤ tol."),
    width: Optional[int] = typer.Option(None, help="k for the overparameterized methods (fgd, balanced, scaled-gd); default min(n1, n2)."),
    alpha: float = typer.Option(1e-3, help="Initialization scale α of the small-initialization methods."),
    record_every: int = typer.Option(10, "--record-every", help="History cadence in iterations."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (one record per method) on stdout instead of the table."),
):
    """Run fgd and every baseline on one planted problem; print test error, iterations and seconds side by side.

    Exit code 3 when any method diverged (the others are still reported)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True, disable=as_json or not console.is_terminal) as bar:

        def progress(name):
            task = bar.add_task(name, total=max_iter)
            return lambda done: bar.update(task, completed=done)

        records = run_compare(n1=n1, n2=n2, rank=rank, cond=cond, m=m, operator=operator, noise=noise, seed=seed, max_iter=max_iter,
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
