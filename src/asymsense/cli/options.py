"""Flags that several commands share, defined once: the planted problem and
fgd run of `solve` and `compare` (defaults and choices from asymsense.spec,
attached to a command by `with_options`), and the one-sentence help of
--threads and --jobs."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable, Iterable, Optional

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


PROBLEM_RUN = ("config", "n1", "n2", "rank", "cond", "spectrum", "m", "operator", "noise", "width", "alpha", "max_iter", "seed", "tol", "record_every", "backend", "device")
"""The options of OPTIONS that `solve` and `compare` both take, in their --help order."""

OPTIONS = dict(
    config=(Optional[Path], typer.Option(None, "--config", help="TOML file of parameters (flat key = value, names as below with _ or -); flags override it.")),
    n1=(Optional[int], typer.Option(None, help=help_text("n1", "Rows of X*."))),
    n2=(Optional[int], typer.Option(None, help=help_text("n2", "Columns of X*."))),
    rank=(Optional[int], typer.Option(None, help=help_text("rank", "Rank r of X*."))),
    cond=(Optional[float], typer.Option(None, help=help_text("cond", "Condition number κ = σ₁/σ_r ≥ 1."))),
    spectrum=(Optional[str], typer.Option(None, help=help_text("spectrum", f"{choices('spectrum')} spacing of σ from 1 to 1/κ."))),
    m=(Optional[int], typer.Option(None, help=help_text("m", "Number of measurements.", f"⌈{DEFAULT_OVERSAMPLING:g}·r(n1+n2−r)⌉"))),
    operator=(Optional[str], typer.Option(None, help=help_text("operator", f"{choices('operator')}."))),
    noise=(Optional[float], typer.Option(None, help=help_text("noise", "Standard deviation σ of the Gaussian measurement noise."))),
    width=(Optional[int], typer.Option(None, help=help_text("width", "k, columns of U and V.", "min(n1, n2)"))),
    alpha=(Optional[float], typer.Option(None, help=help_text("alpha", "Initialization scale α > 0."))),
    max_iter=(Optional[int], typer.Option(None, "--max-iter", help=help_text("max_iter", "Iteration budget."))),
    seed=(Optional[int], typer.Option(None, help=help_text("seed", "Initialization seed; problem, operator and noise seeds derive from it."))),
    tol=(Optional[float], typer.Option(None, help=help_text("tol", "Stop when ‖A(UVᵀ) − y‖/‖y‖ ≤ tol."))),
    record_every=(Optional[int], typer.Option(None, "--record-every", help=help_text("record_every", "History cadence in iterations."))),
    backend=(Optional[str], typer.Option(None, help=help_text("backend", f"Array library: {choices('backend')} (see docs/backends.md)."))),
    device=(Optional[str], typer.Option(None, help=help_text("device", "Device of that library: cpu, cuda, cuda:1, ..."))),
)
"""The planted problem and fgd run's flags shared by `solve` and `compare`: parameter name → (type, typer option)."""


def with_options(names: Iterable[str], table: dict = OPTIONS) -> Callable:
    """Give a command the shared options `names` from `table` as keyword parameters.

    The command declares only its own options and collects the shared ones in
    ``**shared``; its signature (which typer reads through ``inspect.signature``)
    is the shared parameters followed by its own, so each shared flag is
    declared once, here, whichever commands take it."""
    names = tuple(names)

    def decorate(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=table[name][0], default=table[name][1]) for name in names]
        command.__signature__ = inspect.Signature(shared + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own])
        return command

    return decorate
