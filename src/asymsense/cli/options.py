"""Flags that several commands share, defined once: the planted problem and
fgd run of `solve` and `compare` (defaults and choices from asymsense.spec),
and the one-sentence help of --threads and --jobs."""

from __future__ import annotations

import typer

from asymsense.spec import DEFAULTS, RULES
from asymsense.validation import DEFAULT_OVERSAMPLING

THREADS_HELP = "BLAS threads inside each process (parallelism across processes is --jobs where a command has it)."
JOBS_HELP = "Worker processes running trials in parallel, each with one BLAS thread (--threads is per-process BLAS threads)."


def shown(value) -> str:
    """A default as the help shows it: none, 1e-3, 0.5, 40, auto."""
    if value is None:
        return "none"
    if isinstance(value, float) and value != 0 and abs(value) < 1e-2:
        return f"{value:.0e}".replace("e-0", "e-")
    return f"{value:g}" if isinstance(value, float) else str(value)


def help_text(name: str, text: str, shown_default: str | None = None) -> str:
    """A flag's help: `text` and the parameter's default (from asymsense.spec.DEFAULTS)."""
    return f"{text} \\[default: {shown_default if shown_default is not None else shown(DEFAULTS[name])}]"


def choices(name: str) -> str:
    """The choices of a parameter's rule as "a, b or c"."""
    *rest, last = RULES[name].choices
    return f"{', '.join(rest)} or {last}" if rest else last


OPTIONS = dict(
    config=typer.Option(None, "--config", help="TOML file of parameters (flat key = value, names as below with _ or -); flags override it."),
    n1=typer.Option(None, help=help_text("n1", "Rows of X*.")),
    n2=typer.Option(None, help=help_text("n2", "Columns of X*.")),
    rank=typer.Option(None, help=help_text("rank", "Rank r of X*.")),
    cond=typer.Option(None, help=help_text("cond", "Condition number κ = σ₁/σ_r ≥ 1.")),
    spectrum=typer.Option(None, help=help_text("spectrum", f"{choices('spectrum')} spacing of σ from 1 to 1/κ.")),
    m=typer.Option(None, help=help_text("m", "Number of measurements.", f"⌈{DEFAULT_OVERSAMPLING:g}·r(n1+n2−r)⌉")),
    operator=typer.Option(None, help=help_text("operator", f"{choices('operator')}.")),
    noise=typer.Option(None, help=help_text("noise", "Standard deviation σ of the Gaussian measurement noise.")),
    width=typer.Option(None, help=help_text("width", "k, columns of U and V.", "min(n1, n2)")),
    alpha=typer.Option(None, help=help_text("alpha", "Initialization scale α > 0.")),
    max_iter=typer.Option(None, "--max-iter", help=help_text("max_iter", "Iteration budget.")),
    seed=typer.Option(None, help=help_text("seed", "Initialization seed; problem, operator and noise seeds derive from it.")),
    tol=typer.Option(None, help=help_text("tol", "Stop when ‖A(UVᵀ) − y‖/‖y‖ ≤ tol.")),
    record_every=typer.Option(None, "--record-every", help=help_text("record_every", "History cadence in iterations.")),
    backend=typer.Option(None, help=help_text("backend", f"Array library: {choices('backend')} (see docs/backends.md).")),
    device=typer.Option(None, help=help_text("device", "Device of that library: cpu, cuda, cuda:1, ...")),
)
"""typer options by parameter name, shared by `solve` and `compare`."""
