"""Pieces every baseline shares: input checks, the recorder that writes the
history and decides when to stop, initializations, and the factored gradient
loop whose update rule is the only thing the GD baselines change.

A GD baseline is `factor_gd(problem, U₀, V₀, step, direction)` with

    (D_U, D_V) = direction(U, V, MV, MᵀU),   U⁺ = U − μ D_U,   V⁺ = V − μ D_V,

where M = A*(A(UVᵀ) − y), so (MV, MᵀU) is the gradient of ½‖A(UVᵀ) − y‖²
computed by the operator without forming M. Plain GD uses D = (MV, MᵀU);
balancing and preconditioning only change `direction`.

Histories have the columns of `asymsense.solvers.fgd` (iteration, loss, rel_residual
and everything `asymsense.metrics.monitor` returns), so baselines and fgd can be
compared column by column. Results are `asymsense.solvers.fgd.FGDResult`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from asymsense.errors import InputError
from asymsense.validation import check_finite_array, check_int, check_positive, resolve_seed
from asymsense.solvers.fgd import describe_operator, initial_factors
from asymsense.solvers.result import FGDResult
from asymsense.solvers.loop import DIVERGENCE_FACTOR, DescentLoop, Direction, Objective, check_divergence, gradient_direction, half_squared_norm
from asymsense.history import History
from asymsense.metrics import Truth, as_truth, monitor
from asymsense.solvers.stepsize import STEP_CONSTANT, checked_adjoint_norm, resolve_step


@dataclass
class Problem:
    """Validated inputs common to every baseline (the boundary check, done once)."""

    operator: object
    y: np.ndarray
    truth: Truth | None
    seed: int
    max_iter: int
    record_every: int
    tol: float | None
    n_singular: int
    progress: Callable[[int], None] | None = None

    @property
    def y_norm(self) -> float:
        return float(np.linalg.norm(self.y)) or 1.0

    def base_config(self) -> dict:
        return {
            "seed": self.seed,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "record_every": self.record_every,
            "n_singular": self.n_singular,
            "dtype": np.dtype(self.operator.dtype).name,
            "operator": describe_operator(self.operator),
        }


def validate(operator, y, *, max_iter, truth=None, record_every=1, seed=None, tol=None, n_singular=10, progress=None) -> Problem:
    """Check the arguments every baseline takes; raise InputError naming the culprit."""
    for method in ("forward_factors", "gradient_products", "adjoint", "adjoint_times", "adjoint_t_times"):
        if not callable(getattr(operator, method, None)):
            raise InputError(f"operator must implement the operator protocol (missing {method}), got {type(operator).__name__}")
    max_iter = check_int("max_iter", max_iter, minimum=0)
    record_every = check_int("record_every", record_every, minimum=1)
    n_singular = check_int("n_singular", n_singular, minimum=1)
    if tol is not None:
        tol = check_positive("tol", tol)
    y = operator.check_measurements(y)
    if y.ndim != 1:
        raise InputError(f"y must be a vector of m = {operator.m} measurements, got shape {y.shape}")
    truth = as_truth(truth)
    if truth is not None and (truth.left.shape[0], truth.right.shape[0]) != tuple(operator.shape):
        raise InputError(f"truth has shape {(truth.left.shape[0], truth.right.shape[0])}, the operator {tuple(operator.shape)}")
    return Problem(operator, y, truth, resolve_seed(seed), max_iter, record_every, tol, n_singular, progress)


class Recorder:
    """Writes history rows and decides stopping, identically for every method.

    `observe(t, U, V, residual)` raises DivergenceError when the loss is
    non-finite or above DIVERGENCE_FACTOR·½‖y‖² (the rule of `fgd`), records a
    row every `record_every` iterations (and always at the last one or when the
    run converges), and returns True when rel_residual ≤ tol.
    """

    def __init__(self, problem: Problem, method: str, step_size: float | None):
        self.problem = problem
        self.method = method
        self.step_size = step_size
        self.history = History()
        self.loss_limit = DIVERGENCE_FACTOR * 0.5 * problem.y_norm**2
        self.started = time.perf_counter()

    def observe(self, t: int, U, V, residual, *, last: bool = False, extra: dict | None = None) -> bool:
        """For the methods that are not gradient steps (ALS, nuclear norm): the
        loop's divergence rule, record cadence and `tol` on one iterate."""
        p = self.problem
        loss = half_squared_norm(residual)
        check_divergence(t, loss, limit=self.loss_limit, step=self.step_size, method=self.method)
        rel_residual = math.sqrt(2 * loss) / p.y_norm
        converged = p.tol is not None and rel_residual <= p.tol
        if t % p.record_every == 0 or last or converged:
            self.record(t, U, V, loss, rel_residual, extra)
        return converged

    def record(self, t, U, V, loss, rel_residual, extra=None) -> None:
        row = {"iteration": t, "loss": loss, "rel_residual": rel_residual}
        stats = monitor(np.asarray(U)[None], np.asarray(V)[None], truth=self.problem.truth, n_singular=self.problem.n_singular)
        row.update({name: float(col[0]) for name, col in stats.items()})
        if extra:
            row.update({name: float(value) for name, value in extra.items()})
        self.history.append(row)

    def result(self, U, V, *, stop_reason: str, n_iter: int, config: dict) -> FGDResult:
        return FGDResult(
            U=np.asarray(U),
            V=np.asarray(V),
            history=self.history,
            stop_reason=stop_reason,
            n_iter=int(n_iter),
            step_size=self.step_size,
            seconds=time.perf_counter() - self.started,
            config={"method": self.method, **self.problem.base_config(), **config},
        )


DENSE_LIMIT = 250_000
"""Above this many entries n1·n2, spectral initialization uses a partial SVD."""


def top_singular(operator, y, k: int, *, seed: int = 0):
    """Top-k singular triplets of A*(y), (L, s, R) with L (n1, k), R (n2, k).

    Small problems form A*(y) and take a full SVD; when n1·n2 > DENSE_LIMIT
    a Lanczos partial SVD (scipy `svds`) runs on the products A*(y)v and
    A*(y)ᵀu only, so A*(y) is never formed.
    """
    from scipy.sparse.linalg import LinearOperator, svds

    n1, n2 = operator.shape
    if n1 * n2 <= DENSE_LIMIT or k >= min(n1, n2):
        L, s, Rt = np.linalg.svd(np.asarray(operator.adjoint(y), dtype=np.float64), full_matrices=False)
        return L[:, :k], s[:k], Rt[:k].T
    lin = LinearOperator(
        (n1, n2),
        matvec=lambda v: np.asarray(operator.adjoint_times(y, np.asarray(v, operator.dtype).reshape(n2, 1)), np.float64).ravel(),
        rmatvec=lambda u: np.asarray(operator.adjoint_t_times(y, np.asarray(u, operator.dtype).reshape(n1, 1)), np.float64).ravel(),
        dtype=np.float64,
    )
    v0 = np.random.default_rng(seed).standard_normal(min(n1, n2))
    L, s, Rt = svds(lin, k=k, v0=v0)
    order = np.argsort(s)[::-1]
    return L[:, order], s[order], Rt[order].T


def spectral_init(operator, y, width: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """U₀ = L(cΣ)^{1/2}, V₀ = R(cΣ)^{1/2} from the top-`width` SVD LΣRᵀ of A*(y).

    For E[A*A] = Id the back-projection A*(y) is an unbiased estimate of X*
    and c = 1; for other operators (entry sampling, where E[A*A] = p·Id) the
    scale c = ⟨A(X̂), y⟩/‖A(X̂)‖² with X̂ = LΣRᵀ, the least-squares fit of the
    measurements along X̂, makes the start right for any operator.
    """
    if width > min(operator.shape):
        width_pad = width - min(operator.shape)
        L, s, R = top_singular(operator, y, min(operator.shape), seed=seed)
    else:
        width_pad = 0
        L, s, R = top_singular(operator, y, width, seed=seed)
    fitted = operator.forward_factors((L * s).astype(operator.dtype), R.astype(operator.dtype))
    denom = float(np.dot(fitted, fitted))
    c = max(float(np.dot(fitted, y)) / denom, 0.0) if denom > 0 else 0.0
    root = np.sqrt(c * s)
    U0, V0 = L * root, R * root
    if width_pad:
        U0 = np.pad(U0, ((0, 0), (0, width_pad)))
        V0 = np.pad(V0, ((0, 0), (0, width_pad)))
    return U0.astype(operator.dtype), V0.astype(operator.dtype)


def initialize(problem: Problem, init, *, width, init_scale=None, unbalance: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Starting factors and their description for the config.

    init = "random": U₀ = c·αG₁, V₀ = (α/c)·G₂ with G entries N(0, 1/k) from
        `problem.seed` — exactly fgd's initialization when c = `unbalance` = 1
        (so a baseline and fgd with the same seed start from the same point);
        c > 1 gives a deliberately unbalanced start (U₀ large, V₀ small).
    init = "spectral": the top-k SVD of A*(y), split as Σ^{1/2} on both sides.
    init = (U₀, V₀): explicit arrays of shapes (n1, k), (n2, k).
    """
    op = problem.operator
    n1, n2 = op.shape
    if isinstance(init, tuple):
        if len(init) != 2:
            raise InputError("init must be 'random', 'spectral' or a pair (U0, V0)")
        try:
            U0, V0 = (np.array(a, dtype=op.dtype) for a in init)
        except (TypeError, ValueError) as exc:
            raise InputError(f"init factors must be numeric arrays: {exc}") from None
        if U0.ndim != 2 or V0.ndim != 2 or U0.shape[0] != n1 or V0.shape[0] != n2 or U0.shape[1] != V0.shape[1]:
            raise InputError(f"init factors must have shapes ({n1}, k) and ({n2}, k), got {U0.shape} and {V0.shape}")
        if U0.shape[1] < 1:
            raise InputError("init factors must have k >= 1 columns")
        check_finite_array("init U0", U0)
        check_finite_array("init V0", V0)
        return U0, V0, {"init": "given", "width": U0.shape[1]}
    width = check_int("width", width, minimum=1)
    if init == "random":
        alpha = check_positive("init_scale", init_scale)
        c = check_positive("unbalance", unbalance)
        U0, V0 = initial_factors(n1, n2, width, [alpha], [problem.seed], op.dtype)
        return (c * U0[0]).astype(op.dtype), (V0[0] / c).astype(op.dtype), {"init": "random", "width": width, "init_scale": alpha, "unbalance": c}
    if init == "spectral":
        U0, V0 = spectral_init(op, problem.y, width, seed=problem.seed)
        return U0, V0, {"init": "spectral", "width": width}
    raise InputError(f"init must be 'random', 'spectral' or a pair (U0, V0), got {init!r}")


def problem_step(problem: Problem, step_size, *, constant: float = STEP_CONSTANT) -> tuple[float, str]:
    """μ from "auto" (= constant/‖A*(y)‖₂) or a positive number (`asymsense.solvers.stepsize.resolve_step`)."""
    return resolve_step(step_size, constant=constant,
                        curvature=lambda: checked_adjoint_norm(problem.operator, problem.y, seed=problem.seed))


def factor_gd(problem: Problem, U, V, *, step: float, direction: Direction, method: str, config: dict) -> FGDResult:
    """A GD baseline on the package's one descent loop (`asymsense.solvers.loop`):
    U⁺ = U − μ D_U, V⁺ = V − μ D_V with (D_U, D_V) = direction(U, V, MV, MᵀU),
    both from the same iterate. Stops at max_iter, or with "converged" when
    rel_residual ≤ tol."""
    op, y = problem.operator, problem.y
    recorder = Recorder(problem, method, step)

    def residual(U, V):
        return np.asarray(op.forward_factors(U, V), dtype=op.dtype) - y

    def gradient(r, U, V):
        MV, MtU = op.gradient_products(r, U, V)
        return np.asarray(MV, dtype=op.dtype), np.asarray(MtU, dtype=op.dtype)

    def record(t, U, V, loss, rel_residual, rows, scores, final):
        recorder.record(t, U, V, float(loss[0]), float(rel_residual[0]))

    progress = None if problem.progress is None else (lambda n, score: problem.progress(n))
    outcome = DescentLoop(Objective(residual, gradient, problem.y_norm), U, V, step=step, max_iter=problem.max_iter,
                          record_every=problem.record_every, record=record, direction=direction, tol=problem.tol,
                          progress=progress, method=method).run()
    return recorder.result(outcome.U, outcome.V, stop_reason=outcome.stop_reason[0], n_iter=int(outcome.n_iter[0]), config=config)


plain_direction = gradient_direction
