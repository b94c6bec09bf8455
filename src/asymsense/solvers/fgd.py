"""Factorized gradient descent from small random initialization — the paper's algorithm.

For f(U, V) = ½‖A(UVᵀ) − y‖² with residual back-projection M = A*(A(UVᵀ) − y):

    U⁺ = U − μ M V,   V⁺ = V − μ Mᵀ U          (simultaneous, from the same iterate)
    U₀ = α G₁,  V₀ = α G₂,  G entries i.i.d. N(0, 1/k).

Several trials (init scales α and/or initialization seeds) run as one batch of
factors (B, n, k) over the shared operator, so each step applies the operator
as a matrix–matrix product and reads it once for all trials. Trials stop
independently (their step is set to zero) and the loop ends when all have.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Callable, Sequence

import numpy as np

from asymsense import backend as bk
from asymsense.errors import DivergenceError, InputError
from asymsense.operators import operator_kind, step_memory
from asymsense.validation import check_dtype, check_int, check_memory, check_patience_needs_validation, check_positive, resolve_seed
from asymsense.history import History
from asymsense.metrics import as_truth, monitor
from asymsense.solvers.stepsize import STEP_CONSTANT, checked_adjoint_norm, resolve_step, with_working_step
from asymsense.solvers.loop import DescentLoop, Objective, Validation
from asymsense.solvers.result import BatchResult, FGDResult
from asymsense.solvers.stopping import split_measurements

def initial_factors(n1: int, n2: int, width: int, scales: Sequence[float], seeds: Sequence[int], dtype) -> tuple[np.ndarray, np.ndarray]:
    """U₀ = αG₁, V₀ = αG₂ for every (seed, α) pair; G from default_rng(seed), entries N(0, 1/k).
    The same seed gives the same directions G for every α."""
    Us, Vs = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        G1 = rng.standard_normal((n1, width)) / math.sqrt(width)
        G2 = rng.standard_normal((n2, width)) / math.sqrt(width)
        for alpha in scales:
            Us.append(alpha * G1)
            Vs.append(alpha * G2)
    return np.stack(Us).astype(dtype), np.stack(Vs).astype(dtype)


def _as_list(value, name, check) -> tuple[list, bool]:
    if isinstance(value, (list, tuple, np.ndarray)):
        values = [check(name, v) for v in value]
        if not values:
            raise InputError(f"{name} must not be an empty sequence")
        return values, True
    return [check(name, value)], False


def fgd(
    operator,
    y,
    *,
    width,
    init_scale,
    step_size="auto",
    max_iter,
    seed=None,
    truth=None,
    record_every=1,
    validation=None,
    patience=None,
    tol=None,
    dtype=None,
    step_constant: float = STEP_CONSTANT,
    n_singular: int = 10,
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
):
    """Run factorized gradient descent on ½‖A(UVᵀ) − y‖².

    Parameters
    ----------
    operator, y : the measurement operator and its m measurements.
    width : k, the number of columns of U and V (k > rank overparameterizes).
    init_scale : α (or a sequence of α, run as one batch).
    step_size : μ > 0, or "auto" for μ = step_constant / ‖A*(y)‖₂.
    max_iter : iteration budget.
    seed : initialization seed (or a sequence; trials = seeds × init scales).
    truth : planted problem or matrix X*, for rel_error, angles and tails.
    record_every : monitor cadence in iterations (the last iterate is always recorded).
    validation : a fraction in (0, 1) of the measurements held out (split with
        the first seed), or a pair (operator, y) of held-out measurements. The
        iterate with the lowest validation loss is returned.
    patience : stop a trial when its validation loss has not improved for this
        many iterations (requires validation).
    tol : stop a trial when rel_residual ≤ tol.
    dtype : float32/float64 for the factors (default: the operator's).
    threads : BLAS threads for the iteration loop (None: chosen per run by
        backend.auto_threads from the size of one operator product and the
        cores free now — 1 for small problems or a busy machine, never more
        than the process's current limit; non-NumPy backends keep their
        setting). 1 is much faster on a machine whose cores are busy with other
        work: OpenBLAS threads wait for each other in spin loops, and long
        inner products (K = m) measured 25× slower with 2 threads than with 1
        on a loaded 2-core machine (benchmarks/bench_iteration.py --threads).

    Returns an FGDResult, or a BatchResult (tuple of FGDResult) when
    init_scale or seed is a sequence. Raises DivergenceError when the loss
    becomes non-finite or exceeds DIVERGENCE_FACTOR·½‖y‖².
    """
    check_operator(operator)
    threads = check_int("threads", threads, minimum=1) if threads is not None else _default_threads(operator, init_scale, seed)
    arguments = {name: value for name, value in locals().items() if name not in ("operator", "y", "threads")}
    with bk.limit_threads(getattr(operator, "xp", np), threads), np.errstate(over="ignore", invalid="ignore"):
        return _fgd(operator, y, **arguments)


OPERATOR_METHODS = ("forward_factors", "gradient_products", "adjoint_times", "adjoint_t_times", "check_measurements")
"""What fgd calls on its operator (`operators.base.Operator`)."""


def check_operator(operator) -> None:
    """Refuse anything that is not a measurement operator (None, an array, ...)
    with an InputError naming `operator`, before any attribute is used."""
    if not all(callable(getattr(operator, name, None)) for name in OPERATOR_METHODS) or not hasattr(operator, "m") or not hasattr(operator, "shape"):
        raise InputError(f"operator must be a measurement operator (asymsense.make_operator(...) or asymsense.operators.EntrySample), "
                         f"got {type(operator).__name__}", "operator")


def _default_threads(operator, init_scale, seed) -> int | None:
    """fgd's default BLAS threads: backend.auto_threads for the flops of one
    operator product over the batch (2·B·m·n1·n2 for a dense operator), so a
    busy machine never gets spin-waiting BLAS threads; None (no change) off NumPy."""
    if not bk.is_numpy(getattr(operator, "xp", np)):
        return None
    count = lambda v: len(v) if isinstance(v, (list, tuple, np.ndarray)) else 1  # noqa: E731
    n1, n2 = getattr(operator, "shape", (1, 1))
    return bk.auto_threads(2.0 * count(init_scale) * count(seed) * getattr(operator, "m", 1) * n1 * n2)


def _fgd(operator, y, *, width, init_scale, step_size, max_iter, seed, truth, record_every, validation, patience, tol, dtype,
         step_constant, n_singular, progress):
    """The loop of `fgd` (which documents the parameters), under its BLAS-thread
    limit; overflow warnings are silenced because divergence is detected and
    raised as DivergenceError."""
    started = time.perf_counter()
    width = check_int("width", width, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    record_every = check_int("record_every", record_every, minimum=1)
    scales, batch_scales = _as_list(init_scale, "init_scale", check_positive)
    seeds, batch_seeds = _as_list(seed, "seed", lambda name, s: resolve_seed(s))
    dtype = check_dtype(dtype if dtype is not None else operator.dtype)
    n1, n2 = operator.shape
    check_memory(step_memory(operator_kind(operator), n1, n2, operator.m, width, len(scales) * len(seeds), dtype),
                 f"fgd with width {width} over a batch of {len(scales) * len(seeds)} trial(s) on {n1}×{n2}", "use a smaller width or a smaller batch", "width")
    n_singular = check_int("n_singular", n_singular, minimum=1)
    if tol is not None:
        tol = check_positive("tol", tol)
    if patience is not None:
        patience = check_int("patience", patience, minimum=1)
    check_patience_needs_validation(patience, validation)
    y = operator.check_measurements(y)
    if y.ndim != 1:
        raise InputError(f"y must be a vector of m = {operator.m} measurements, got shape {y.shape}")

    train_op, y_train, val_op, y_val, validation_desc = split_measurements(operator, y, validation, seed=seeds[0])
    def curvature():
        return checked_adjoint_norm(train_op, train_op.asarray(y_train), seed=seeds[0])

    mu, step_rule = resolve_step(step_size, constant=step_constant, curvature=curvature)
    truth = as_truth(truth)
    if truth is not None and (truth.left.shape[0], truth.right.shape[0]) != operator.shape:
        raise InputError(f"truth has shape {(truth.left.shape[0], truth.right.shape[0])}, the operator {operator.shape}")

    n1, n2 = operator.shape
    xp = operator.xp
    on_host = bk.is_numpy(xp)
    U, V = initial_factors(n1, n2, width, scales, seeds, dtype)
    B = U.shape[0]
    y_norm = float(np.linalg.norm(y_train.astype(dtype, copy=False))) or 1.0
    histories = [History() for _ in range(B)]
    xdtype = bk.xp_dtype(xp, dtype)
    if on_host:
        y_train = y_train.astype(dtype, copy=False)

        fused = getattr(train_op, "residual_gradient", None)
        # One pass over the operator for r and the gradient where it has one (the
        # matrix-free Gaussian generates each chunk once per step); the same bits
        # as the two calls below.
        residual_gradient = None if fused is None else (lambda U, V: fused(U, V, y_train, dtype))

        def residual(U, V):
            return train_op.forward_factors(U, V).astype(dtype, copy=False) - y_train

        def gradient(r, U, V):
            MV, MtU = train_op.gradient_products(r, U, V)
            return MV.astype(dtype, copy=False), MtU.astype(dtype, copy=False)
    else:
        # Everything the loop touches lives on the operator's device; the
        # host reads losses (and factors, for the monitors) only at the
        # monitor cadence, where divergence and tol are checked too.
        residual_gradient = None
        U, V, y_train = train_op.asarray(U, dtype), train_op.asarray(V, dtype), train_op.asarray(y_train, dtype)
        if val_op is not None:
            y_val = val_op.asarray(y_val)

        def residual(U, V):
            return xp.astype(train_op.forward_factors(U, V), xdtype, copy=False) - y_train

        def gradient(r, U, V):
            MV, MtU = train_op.gradient_products(r, U, V)
            return xp.astype(MV, xdtype, copy=False), xp.astype(MtU, xdtype, copy=False)

    def validation_loss(U, V, rows):
        if on_host:
            val_res = val_op.forward_factors(U[rows], V[rows]) - y_val
            return 0.5 * np.einsum("bi,bi->b", val_res, val_res)
        val_res = val_op.forward_factors(U, V) - y_val
        return 0.5 * bk.to_numpy(xp.sum(val_res * val_res, axis=-1)).astype(np.float64)[rows]

    def record(t, U, V, loss, rel_residual, rows, scores, final):
        stats = monitor(bk.to_numpy(U)[rows], bk.to_numpy(V)[rows], truth=truth, n_singular=n_singular)
        if scores is not None:
            stats["val_loss"] = scores
        for j, b in enumerate(np.flatnonzero(rows)):
            row = {"iteration": t, "loss": float(loss[b]), "rel_residual": float(rel_residual[b])}
            row.update({name: float(col[j]) for name, col in stats.items()})
            histories[b].append(row)

    loop = DescentLoop(
        Objective(residual, gradient, y_norm, residual_gradient), U, V, step=mu, max_iter=max_iter, record_every=record_every, record=record,
        validation=None if val_op is None else Validation(validation_loss, "val_loss", every=record_every, patience=patience),
        tol=tol, progress=None if progress is None else (lambda n, score: progress(n)), dtype=dtype,
        describe_trials=lambda bad: ", ".join(f"init_scale={scales[i % len(scales)]}" for i in bad))
    try:
        outcome = loop.run()
    except DivergenceError as exc:
        raise (exc if step_rule == "auto" else with_working_step(exc, curvature, step_constant)) from None
    seconds = time.perf_counter() - started
    U, V = outcome.U, outcome.V
    if val_op is not None and not on_host:
        U, V = train_op.asarray(U, dtype), train_op.asarray(V, dtype)
    n_iter, reasons = outcome.n_iter, outcome.stop_reason
    config = {
        "width": width,
        "step_size": mu,
        "step_rule": step_rule,
        "step_constant": step_constant,
        "max_iter": max_iter,
        "tol": tol,
        "record_every": record_every,
        "validation": validation_desc,
        "patience": patience,
        "dtype": dtype.name,
        "n_singular": n_singular,
        "operator": describe_operator(operator),
    }
    results = []
    for b, (s, a) in enumerate(itertools.product(seeds, scales)):
        results.append(
            FGDResult(
                U=U[b, ...],
                V=V[b, ...],
                history=histories[b],
                stop_reason=reasons[b],
                n_iter=int(n_iter[b]),
                step_size=mu,
                seconds=seconds / B,
                record_seconds=outcome.record_seconds / B,
                config={**config, "init_scale": a, "seed": s},
                best_iter=None if outcome.best_iter is None else outcome.best_iter[b],
            )
        )
    if batch_scales or batch_seeds:
        return BatchResult(results)
    return results[0]


def describe_operator(operator) -> dict:
    """The operator's resolved parameters, for the run's config."""
    desc = {"class": type(operator).__name__, "n1": operator.n1, "n2": operator.n2, "m": operator.m, "dtype": np.dtype(operator.dtype).name}
    if hasattr(operator, "seed"):
        desc["seed"] = operator.seed
    return desc
