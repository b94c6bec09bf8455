"""The one descent loop on a factored model UVᵀ.

Every factored method of the package — the paper's algorithm (`fgd`), the GD
baselines (balancing, spectral start, ScaledGD) and table completion — is

    r = A(UVᵀ) − y,   (MV, MᵀU) = (A*(r)V, A*(r)ᵀU),
    (D_U, D_V) = direction(U, V, MV, MᵀU),
    U⁺ = U − μ D_U,   V⁺ = V − μ D_V          (simultaneous, from the same iterate)

and differs only in the objective (which operator, which targets), the
direction and what it records. This loop owns everything else, once:

- the loss ½‖r‖² of each trial and the divergence rule: a loss that is
  non-finite or above DIVERGENCE_FACTOR·½‖y‖² raises DivergenceError naming
  the step size;
- stopping: the iteration budget (`max_iter`, and optionally a budget per
  trial, `budget`, each at most max_iter: a batch of refits that each run their
  own chosen number of steps), `tol` on ‖r‖/‖y‖ ("converged"), and
  `patience` iterations without a better validation score ("patience");
- the best iterate on validation, restored at the end;
- the monitor cadence: `record(t, U, V, loss, rel_residual, rows, scores)` is
  called every `record_every` iterations, at the last one and when a trial
  stops, with the trials still running;
- per-trial stopping in a batch: factors of shape (B, n, k) advance together
  (one pass over A per step), a stopped trial gets step 0.

Factors may be one trial (n, k) or a batch (B, n, k); arrays of any Array API
library (NumPy on the host: the loss is checked every iteration; on a device
the loss is read back only at the record cadence, where divergence and `tol`
are checked too). The update writes new arrays and never modifies an iterate,
so the best iterate of a single trial is kept by reference (no copy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from asymsense import backend as bk
from asymsense.errors import DivergenceError

DIVERGENCE_FACTOR = 1e8
"""A loss above this multiple of ½‖y‖² counts as divergence."""

Direction = Callable[[object, object, object, object], tuple[object, object]]
"""(U, V, MV, MᵀU) → (D_U, D_V): the update direction of a factored method."""


def gradient_direction(U, V, MV, MtU):
    """The gradient of ½‖A(UVᵀ) − y‖² itself, (MV, MᵀU): the paper's algorithm."""
    return MV, MtU


def gradient_step(U, V, D_U, D_V, step):
    """U⁺ = U − μ D_U, V⁺ = V − μ D_V as new arrays."""
    return U - step * D_U, V - step * D_V


def fresh_gradient_step(U, V, D_U, D_V, step):
    """The same update written into D_U, D_V (which the direction computed
    fresh and nobody else holds): D ← −μD + U. Bit for bit U − μD (negation
    is exact, and a + (−b) is a − b in IEEE arithmetic) without two more
    arrays of the factors' size — what keeps a 10⁷-entry completion step in
    memory."""
    D_U *= -step
    D_U += U
    D_V *= -step
    D_V += V
    return D_U, D_V


def check_divergence(t: int, loss, active=None, *, limit: float, step: float | None, method: str = "",
                     describe_trials: Callable[[np.ndarray], str] | None = None) -> None:
    """Raise DivergenceError when a running trial's loss is non-finite or
    above `limit` (= DIVERGENCE_FACTOR·½‖y‖²); the message names the step size."""
    loss = np.atleast_1d(np.asarray(loss, dtype=np.float64))
    active = np.ones(loss.shape, dtype=bool) if active is None else active
    bad = active & ~(np.isfinite(loss) & (loss <= limit))
    if not bad.any():
        return
    kind = "non-finite" if not np.all(np.isfinite(loss[bad])) else "too large"
    who = f"{method} " if method else ""
    trials = f" ({describe_trials(np.flatnonzero(bad))})" if describe_trials is not None else ""
    at = f" with step_size={step:.4g}" if step else ""
    hint = f"; try a smaller step_size, e.g. {step / 4:.3g} (or a smaller init_scale if it is not small)" if step else ""
    raise DivergenceError(f"{who}diverged at iteration {t}{at}{trials}: the loss became {kind}{hint}", step_size=step, iteration=t)


def half_squared_norm(r):
    """½‖r‖² over the last axis: a float for one trial, an array (B,) for a batch."""
    if r.ndim == 1:
        return 0.5 * float(np.dot(r, r))
    return 0.5 * np.einsum("bi,bi->b", r, r)


@dataclass
class Objective:
    """The data term ½‖A(UVᵀ) − y‖² as the loop needs it.

    residual(U, V) → r = A(UVᵀ) − y (per trial);
    gradient(r, U, V) → (A*(r)V, A*(r)ᵀU), never forming A*(r);
    y_norm: ‖y‖ (for rel_residual and the divergence limit);
    residual_gradient(U, V) → (r, A*(r)V, A*(r)ᵀU) in one call, where the
    operator fuses the two (one pass over the entries or over the generated
    Gaussian chunks); when given, the loop uses it instead of the other two.
    """

    residual: Callable
    gradient: Callable
    y_norm: float
    residual_gradient: Callable | None = None


@dataclass
class Validation:
    """A held-out score per trial (lower is better), its history column name
    and how often it is evaluated (always also when a record is due)."""

    score: Callable  # (U, V, rows) → array of scores of the trials `rows`
    column: str
    every: int = 1
    patience: int | None = None


@dataclass
class Outcome:
    """What the loop hands back: final (or best) factors and the per-trial facts."""

    U: object
    V: object
    n_iter: np.ndarray
    stop_reason: list[str]
    best_iter: list[int] | None
    best_score: np.ndarray | None
    last_iteration: int
    extra: dict = field(default_factory=dict)
    record_seconds: float = 0.0
    """Wall time spent in the `record` callback (the monitors and the history rows), part of the run's time."""


class DescentLoop:
    """One run of the loop (see the module docstring). `run()` returns an Outcome."""

    def __init__(self, objective: Objective, U, V, *, step: float, max_iter: int, record_every: int = 1,
                 record: Callable | None = None, direction: Direction = gradient_direction, update=gradient_step,
                 validation: Validation | None = None, tol: float | None = None, progress: Callable | None = None,
                 method: str = "", describe_trials: Callable[[np.ndarray], str] | None = None, dtype=None, budget=None):
        self.objective, self.U, self.V = objective, U, V
        self.step, self.max_iter, self.record_every = step, max_iter, record_every
        self.budget = None if budget is None else np.minimum(np.asarray(budget, dtype=np.int64).reshape(-1), max_iter)
        self.record, self.direction, self.update = record, direction, update
        self.validation, self.tol, self.progress = validation, tol, progress
        self.method, self.describe_trials = method, describe_trials
        self.batched = U.ndim == 3
        self.xp = bk.namespace(U)
        self.on_host = bk.is_numpy(self.xp)
        self.dtype = dtype
        self.loss_limit = DIVERGENCE_FACTOR * 0.5 * objective.y_norm**2

    def _check_divergence(self, t: int, loss: np.ndarray, active: np.ndarray) -> None:
        check_divergence(t, loss, active, limit=self.loss_limit, step=self.step, method=self.method,
                         describe_trials=self.describe_trials)

    def _steps(self, active: np.ndarray):
        """The step of every trial: μ for running ones, 0 for stopped ones."""
        if not self.batched:
            return self.step
        steps = np.where(active, self.step, 0.0)[:, None, None].astype(self.dtype)
        return steps if self.on_host else bk.asarray(steps, self.xp, bk.device_of(self.U), bk.xp_dtype(self.xp, self.dtype))

    def run(self) -> Outcome:
        obj, val = self.objective, self.validation
        U, V = self.U, self.V
        B = U.shape[0] if self.batched else 1
        active = np.ones(B, dtype=bool)
        n_iter = np.zeros(B, dtype=np.int64)
        reasons = ["max_iter"] * B
        best_score = np.full(B, np.inf) if val is not None else None
        best_iter = [0] * B if val is not None else None
        best_U: list = [None] * B
        best_V: list = [None] * B
        steps = self._steps(active)
        record_seconds = 0.0
        t = 0
        for t in range(self.max_iter + 1):
            if obj.residual_gradient is not None:
                residual, *products = obj.residual_gradient(U, V)
            else:
                residual, products = obj.residual(U, V), None
            last = t == self.max_iter
            recording = t % self.record_every == 0 or last
            if self.on_host:
                loss = np.atleast_1d(half_squared_norm(residual))
                self._check_divergence(t, loss, active)
            elif recording:
                loss = bk.to_numpy(0.5 * self.xp.sum(residual * residual, axis=-1)).astype(np.float64).reshape(B)
                self._check_divergence(t, loss, active)
            rel_residual = np.sqrt(2 * loss) / obj.y_norm if (self.on_host or recording) else None
            converged = np.zeros(B, dtype=bool)
            if self.tol is not None and rel_residual is not None:
                converged = active & (rel_residual <= self.tol)
            spent = np.zeros(B, dtype=bool) if self.budget is None else active & (t >= self.budget)
            recording = recording or bool(converged.any() or spent.any())
            rows = active.copy()
            scores = None
            patience_out = np.zeros(B, dtype=bool)
            if val is not None and (recording or t % val.every == 0):
                scores = np.asarray(val.score(U, V, rows), dtype=np.float64)
                for j, b in enumerate(np.flatnonzero(rows)):
                    if scores[j] < best_score[b]:
                        best_score[b], best_iter[b] = scores[j], t
                        best_U[b], best_V[b] = self._snapshot(U, V, b)
                    if val.patience is not None and t - best_iter[b] >= val.patience:
                        patience_out[b] = True
                recording = recording or bool(patience_out.any())
            if recording and self.record is not None:
                started = time.perf_counter()
                self.record(t, U, V, loss, rel_residual, rows, scores, last or bool((converged | patience_out | spent)[rows].all()))
                record_seconds += time.perf_counter() - started
            for b in np.flatnonzero(patience_out & active):
                active[b], reasons[b] = False, "patience"
            for b in np.flatnonzero(converged & active):
                active[b], reasons[b] = False, "converged"
            active &= ~spent  # reason stays "max_iter"
            if last or not active.any():
                break
            if self.batched and not active.all():
                steps = self._steps(active)
            MV, MtU = products if products is not None else obj.gradient(residual, U, V)
            D_U, D_V = self.direction(U, V, MV, MtU)
            U, V = self.update(U, V, D_U, D_V, steps)
            n_iter[active] += 1
            if self.progress is not None:
                self.progress(t + 1, None if scores is None else float(np.min(scores)))
        if val is not None:
            U, V = self._restore(U, V, best_U, best_V)
        return Outcome(U, V, n_iter, reasons, best_iter, best_score, t, record_seconds=record_seconds)

    def _snapshot(self, U, V, b: int):
        """The iterate of trial b, kept until a better one comes: by reference
        for one trial (iterates are never modified), a host copy of the slice
        for a batch (a view would keep the whole batch alive)."""
        if not self.batched:
            return U, V
        return bk.to_numpy(U)[b].copy(), bk.to_numpy(V)[b].copy()

    def _restore(self, U, V, best_U, best_V):
        if not self.batched:
            return (best_U[0], best_V[0]) if best_U[0] is not None else (U, V)
        U, V = bk.to_numpy(U).copy(), bk.to_numpy(V).copy()
        for b, (bu, bv) in enumerate(zip(best_U, best_V)):
            if bu is not None:
                U[b], V[b] = bu, bv
        return U, V
