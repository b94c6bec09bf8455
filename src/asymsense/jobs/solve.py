"""The `asymsense solve` job: one fgd run on a planted problem, with its summary.

planted(problem_seed) → make_operator(operator_seed) → measure(noise_seed) →
fgd(seed, truth=X*). The summary is the summary.json record of DESIGN.md with
`config` = every resolved parameter of `SolveConfig` (seeds included; written
back as TOML it repeats the run exactly) and `solver` = what fgd recorded
(step rule, the operator's class and seed, ...).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from threadpoolctl import threadpool_limits

from asymsense.atomic import prepare_out_dir, write_json
from asymsense.errors import InputError
from asymsense.operators import operator_memory, step_memory
from asymsense.solvers.fgd import fgd
from asymsense.spec import SolveConfig
from asymsense.sweep.methods import build_problem
from asymsense.validation import check_memory

SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.parquet"


def build(config: SolveConfig):
    """(truth, operator, y) of a resolved config: the sweep trial's
    `sweep.methods.build_problem` on the same parameters."""
    return build_problem(config.record())


@contextmanager
def enough_memory(config: SolveConfig):
    """Turn a MemoryError raised while building or solving the problem of a
    resolved config into an InputError naming the sizes (a dense Gaussian
    operator holds m·n1·n2 numbers, the factors (n1 + n2)·k)."""
    try:
        yield
    except MemoryError:
        raise InputError(f"not enough memory for {config.n1}×{config.n2} with the {config.operator} operator, m = {config.m}, k = {config.width} "
                         f"(a dense Gaussian operator holds m·n1·n2 numbers, the factors (n1 + n2)·k; try operator='gaussian-stream', "
                         f"a smaller m or a smaller width)") from None


def memory_estimate(config: SolveConfig) -> int:
    """Peak bytes of a resolved config's run: the planted truth and y, the
    operator (`operators.operator_memory`; its train/validation split copies a
    stored operator once more) and fgd's working arrays (`operators.step_memory`)."""
    n1, n2, m, kind, dtype = config.n1, config.n2, config.m, config.operator, config.dtype
    kept = operator_memory(kind, n1, n2, m, dtype, drawing=False)
    if config.validation is not None and kind in ("gaussian", "rank-one"):
        kept *= 2
    running = kept + step_memory(kind, n1, n2, m, config.width, 1, dtype)
    return 3 * n1 * n2 * 8 + 4 * m * 8 + max(operator_memory(kind, n1, n2, m, dtype), running)


def check_solve_memory(config: SolveConfig) -> None:
    """Refuse a resolved config whose run cannot fit in the available memory, before anything is allocated."""
    hint = "use operator='gaussian-stream' (memory of one chunk), fewer measurements m or a smaller width" \
        if config.operator in ("gaussian", "rank-one") else "use fewer measurements m or a smaller width"
    check_memory(memory_estimate(config), f"solve on {config.n1}×{config.n2} with the {config.operator} operator, m = {config.m}, k = {config.width}",
                 hint, "m" if config.operator in ("gaussian", "rank-one") else "width")


def run_solve(config: SolveConfig, *, progress: Callable[[int], None] | None = None):
    """Run fgd for a SolveConfig (resolved here if needed); returns (summary, result).
    BLAS runs with `config.threads` threads (default 1: on a shared machine a
    second thread competing with another busy process slowed small steps 5–25×)."""
    config = config.resolved()
    check_solve_memory(config)
    with threadpool_limits(config.threads):
        truth, op, y = build(config)
        result = fgd(
            op, y, width=config.width, init_scale=config.alpha, step_size=config.step, max_iter=config.max_iter, seed=config.seed,
            truth=truth, record_every=config.record_every, validation=config.validation, patience=config.patience, tol=config.tol,
            dtype=config.dtype, step_constant=config.step_constant, progress=progress, threads=config.threads,
        )
    summary = result.summary()
    summary["config"] = config.record()
    summary["solver"] = result.config
    if result.best_iter is not None and config.validation is not None:
        summary["best_iter"] = result.best_iter
    return summary, result


def write_outputs(out_dir, summary: dict, result) -> list[Path]:
    """summary.json and history.parquet in `out_dir`, each written atomically."""
    out = prepare_out_dir(out_dir)
    history = out / HISTORY_FILE
    result.history.to_parquet(history)
    return [write_json(out / SUMMARY_FILE, summary), history]
