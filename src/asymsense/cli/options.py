"""Flags that several commands share, defined once: the planted problem and
fgd run of `solve` and `compare` (defaults and choices from asymsense.spec,
attached to a command by `with_options`), and the one-sentence help of
--threads and --jobs."""

from __future__ import annotations

import inspect
import json
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


FLAG_TYPES = {"path": Path, "int": int, "float": float, "str": str, "bool": bool}


def flag_table(path: Path) -> dict:
    """Options declared as data: one tab-separated line per option
    (key, flags, type, default, help), "#" lines are comments. Flags are
    "--name", or "--x/--no-x" for a boolean; a type ending in "?" is
    Optional; the default is JSON, or "required". Returns key → (type, typer option)."""
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, flags, kind, default, text = line.split("\t")
        annotation = FLAG_TYPES[kind.rstrip("?")]
        table[key] = (Optional[annotation] if kind.endswith("?") else annotation,
                      typer.Option(... if default == "required" else json.loads(default), flags, help=text))
    return table


COMPLETION = flag_table(Path(__file__).with_name("completion_flags.tsv"))
"""The flags of `complete`, `predict` and `pilot` (cli/completion_flags.tsv)."""


def with_options(names: Iterable[str] = (), table: dict = OPTIONS, *, command: str | None = None) -> Callable:
    """Declare a command's options from `table`, so a flag that several
    commands take is declared once, here.

    `names`: shared options added before the command's own parameters (the
    command collects them in ``**shared``). Own parameters without a default
    take theirs from `table` ("command.name" first, then "name"). The
    resulting signature is what typer reads (``inspect.signature``)."""
    names = tuple(names)

    def decorate(function: Callable) -> Callable:
        positional, keyword = [], []
        for parameter in inspect.signature(function, eval_str=True).parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            if parameter.default is inspect.Parameter.empty:
                key = f"{command}.{parameter.name}" if f"{command}.{parameter.name}" in table else parameter.name
                annotation, option = table[key]
                parameter = parameter.replace(annotation=annotation, default=option)
            (keyword if parameter.kind is inspect.Parameter.KEYWORD_ONLY else positional).append(parameter)
        shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=table[name][0], default=table[name][1]) for name in names]
        function.__signature__ = inspect.Signature(positional + shared + keyword)
        return function

    return decorate
