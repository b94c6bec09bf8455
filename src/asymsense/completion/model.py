"""Completion of a partially observed table by factorized gradient descent from
small random initialization, with biases, clipping and early stopping.

Model: Ŷ_ij = b + r_i + c_j + (UVᵀ)_ij, with U ∈ R^{n1×k}, V ∈ R^{n2×k}.

1. Biases (optional) are fitted first on the training entries as damped means,
   alternating a few sweeps: c_j = Σ_{i∈Ω_j}(y_ij − b − r_i)/(|Ω_j| + λ_c),
   r_i = Σ_{j∈Ω_i}(y_ij − b − c_j)/(|Ω_i| + λ_r), with b the mean. The damping
   pulls rarely observed rows/columns toward the mean, as every recommender
   baseline does.
2. The residual targets z_ij = y_ij − b − r_i − c_j are fitted by the paper's
   algorithm on the observed entries only, through `EntrySample`:
   f(U, V) = ½ Σ_{Ω} ((UVᵀ)_ij − z_ij)²,  U⁺ = U − μ A*(e)V,  V⁺ = V − μ A*(e)ᵀU,
   e = A(UVᵀ) − z, from U₀ = αG₁, V₀ = αG₂ (G entries N(0, 1/k)).
   Each step costs O(|Ω|·k): one `EntrySample.residual_gradient` call gives e,
   A*(e)V and A*(e)ᵀU (with numba, one pass over the entries when a factor
   is cache-sized; otherwise a gather of U and V rows and two CSR products).
3. Early stopping: the validation RMSE (of clipped predictions) is evaluated
   every iteration; the iterate with the lowest one is restored, and the run
   stops after `patience` iterations without improvement. Small initialization
   plus early stopping is the regularizer: directions of the residual enter
   UVᵀ in order of their singular value, so stopping early keeps the strong,
   reproducible ones and leaves the noise out.

Optional (off by default): `ensemble = B > 1` runs B initializations (seeds
seed, seed+1, …) as ONE batch through the descent loop over the shared
`EntrySample`: factors of shape (B, n, k), each member early-stopped at its
own best validation iterate and refitted for its own number of iterations
(the loop's per-trial budget). The model is the members' mean,
Ŷ = b + r_i + c_j + (1/B) Σ_b (U_b V_bᵀ)_ij, stored as ONE factor pair of
width B·k, U = [U_1 … U_B]/√B, V = [V_1 … V_B]/√B (UVᵀ is exactly the mean),
so saving, prediction, top-N and fold-in need nothing new; the members'
spread at a pair (`member_predictions`) feeds the prediction intervals.

Optional (off by default, not the paper's algorithm): `implicit=True` adds
the rating pattern as known row features (the implicit-feedback term of
SVD++, Koren 2008): each row's factor is u_i + |Ω_i|^{-1/2} Σ_{j∈Ω_i} w_j,
i.e. U_eff = U + N W with N the row-normalized pattern of the fitted
entries (N_ij = |Ω_i|^{-1/2} on Ω) and W ∈ R^{n2×k} learned by the same
descent from 0: ∇_W = Nᵀ A*(e) V, with its own step IMPLICIT_STEP·μ/‖N‖₂²
(‖N‖₂ is W's curvature scale against U's). A row that rated the same items
as others starts from their shared direction, which damps the factors of
rarely observed rows. The saved model stores U_eff (prediction, top-N,
intervals unchanged; a folded-in row gets no implicit term).

Optional (off by default, not the paper's algorithm): `l2 > 0` adds the
count-weighted penalty (l2/2)(Σ_i |Ω_i|‖U_i‖² + Σ_j |Ω_j|‖V_j‖²) — the
penalty SGD matrix factorization applies implicitly, and the factored form of
the weighted trace norm of Srebro & Salakhutdinov (2010) — to the loss.

Automatic choices (each recorded in the result's config):
- step μ = c/(‖A*(z)‖₂ + l2·max count): ‖A*(z)‖₂ is the curvature scale of the
  completion loss along its top direction (c = 0.5, as in the core);
- α = 10⁻³·√‖A*(z)‖₂, so UVᵀ starts 10⁻⁶ of the data's spectral scale;
- width k = min(n1, n2, 100): generous; the learned rank is read off UVᵀ.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from asymsense.errors import InputError
from asymsense.validation import check_dtype, check_finite_array, check_int, check_memory, check_positive, resolve_seed
from asymsense.history import History
from asymsense.metrics import effective_rank, product_svd, rmse
from asymsense.operators import EntrySample
from asymsense.completion.biases import BIAS_DAMPING, Biases, fit_biases  # noqa: F401 (Biases re-exported)
from asymsense.solvers.loop import DescentLoop, Objective, Validation, fresh_gradient_step
from asymsense.solvers.result import FactorResult
from asymsense.solvers.stopping import split_entries
from asymsense.solvers.stepsize import STEP_CONSTANT, adjoint_norm, resolve_step

DEFAULT_WIDTH = 100
TOP_BLOCK_ELEMENTS = 4_000_000
INIT_RELATIVE = 1e-3
IMPLICIT_STEP = 3.0
"""W's step relative to μ/‖N‖₂² (implicit=True): chosen on the validation RMSE of
the MovieLens-100k fixed split among 0.3, 1, 3, 10 (validation 0.9177, 0.9162,
0.9128, 0.9143, measured with an exploratory SciPy version of this update before
it was built here; implicit=True reproduces its 0.9128 and test 0.9049)."""


@dataclass(kw_only=True)
class CompletionResult(FactorResult):
    """A fitted completion model: the solvers' result fields (U, V, history,
    stop_reason, n_iter, best_iter, step_size, seconds, config) plus the
    biases, the clipping range and the fit's RMSEs."""

    biases: Biases
    clip: tuple[float, float] | None
    init_scale: float
    train_rmse: float
    val_rmse: float | None
    loss: float = float("nan")
    validation_residuals: tuple | None = None  # (rows, cols, y − ŷ) on the validation entries, at the returned iterate
    validation_spread: np.ndarray | None = None  # ensembles: the members' standard deviation at the validation entries

    @property
    def members(self) -> int:
        """B, the number of ensemble members (1 for a single fit)."""
        return int((self.config.get("ensemble") or {}).get("members", 1))

    @property
    def shape(self) -> tuple[int, int]:
        return self.U.shape[0], self.V.shape[0]

    def predict(self, rows, cols) -> np.ndarray:
        """Ŷ at index pairs, clipped to the observed range when clipping is on."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        out = self.biases(rows, cols).astype(np.float64)
        if len(rows):
            op = EntrySample(rows, cols, self.shape, dtype=self.U.dtype)
            out += op.forward_factors(self.U, self.V)
        return self.clipped(out)

    def clipped(self, values):
        return np.clip(values, *self.clip) if self.clip is not None else values

    def singular_values(self) -> np.ndarray:
        """Singular values of UVᵀ (from thin-QR cores; no n1×n2 product)."""
        return product_svd(np.asarray(self.U, np.float64), np.asarray(self.V, np.float64), vectors=0)[1]

    @property
    def effective_rank(self) -> float:
        return float(effective_rank(self.singular_values()))

    def numerical_rank(self, rel: float = 1e-2) -> int:
        """Number of singular values of UVᵀ above rel·σ₁."""
        s = self.singular_values()
        return int(np.sum(s > rel * s[0])) if len(s) and s[0] > 0 else 0

    def summary(self) -> dict:
        """summary.json fields (DESIGN.md conventions, completion flavour)."""
        h = self.history
        return {
            "train_rmse": self.train_rmse,
            "val_rmse": self.val_rmse,
            "loss": self.loss,
            "iterations": self.n_iter,
            "best_iter": self.best_iter,
            "stop_reason": self.stop_reason,
            "eff_rank": self.effective_rank,
            "numerical_rank": self.numerical_rank(),
            "max_rel_imbalance": float(np.nanmax(h["rel_imbalance"])) if "rel_imbalance" in h else None,
            "final_rel_imbalance": float(h["rel_imbalance"][-1]) if "rel_imbalance" in h else None,
            "step_size": self.step_size,
            "init_scale": self.init_scale,
            "seconds": self.seconds,
            "config": self.config,
        }


def _width(width, n1, n2) -> int:
    if width is None or width == "auto":
        return min(n1, n2, DEFAULT_WIDTH)
    return check_int("width", width, minimum=1)


def _record_every(record_every, n1, n2, k, m) -> int:
    """'auto': every iteration when the monitors are cheap in absolute terms
    ((n1+n2)k² < 5·10⁷, a few milliseconds); otherwise every
    ⌈1.7(n1+n2)k/|Ω|⌉ iterations, since they cost O((n1+n2)k²) against about
    6|Ω|k for a step, which keeps them under ~10% of the run."""
    if record_every == "auto":
        if (n1 + n2) * k * k < 5e7:
            return 1
        return max(1, math.ceil(1.7 * (n1 + n2) * k / m))
    return check_int("record_every", record_every, minimum=1)


def checked_fit_parameters(width, max_iter, patience, l2, dtype, n_singular, clip, n1, n2):
    """(k, max_iter, patience, l2, dtype, n_singular) of a fit, each checked
    (`clip` only checked): the one place the in-process and the sharded fit
    read their common parameters."""
    k = _width(width, n1, n2)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    if patience is not None:
        patience = check_int("patience", patience, minimum=1)
    l2 = check_positive("l2", l2, allow_zero=True)
    dtype = check_dtype(dtype)
    n_singular = check_int("n_singular", n_singular, minimum=1)
    if not isinstance(clip, (bool, np.bool_)):
        raise InputError(f"clip must be True or False, got {clip!r}")
    return k, max_iter, patience, l2, dtype, n_singular


def checked_entries(rows, cols, values, shape):
    """(rows, cols, values as float64, (n1, n2)), refused unless 1-d, of equal
    length, at least 2 and finite."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    y = np.asarray(values, dtype=np.float64)
    n1, n2 = check_int("shape[0]", shape[0], minimum=1), check_int("shape[1]", shape[1], minimum=1)
    if not rows.shape == cols.shape == y.shape or rows.ndim != 1:
        raise InputError(f"rows, cols and values must be 1-d arrays of equal length, got shapes {rows.shape}, {cols.shape}, {y.shape}")
    if len(y) < 2:
        raise InputError(f"need at least 2 observed entries, got {len(y)}")
    check_finite_array("values", y)
    return rows, cols, y, (n1, n2)


def _validation_split(validation, validation_kind, rows, cols, y, n1, seed):
    """Train/validation index arrays, or an explicit validation set."""
    if validation is None or validation is False:
        return np.arange(len(y)), None, None
    if isinstance(validation, tuple):
        if len(validation) != 3:
            raise InputError("validation must be a fraction in (0, 1) or a (rows, cols, values) triple of index arrays")
        vr, vc, vy = (np.asarray(a) for a in validation)
        if not (vr.shape == vc.shape == vy.shape) or vr.ndim != 1 or len(vr) == 0:
            raise InputError("validation rows, cols and values must be non-empty 1-d arrays of equal length")
        check_finite_array("validation values", vy)
        return np.arange(len(y)), (vr.astype(np.int64), vc.astype(np.int64), vy.astype(np.float64)), {"kind": "given", "m": int(len(vy))}
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real) or not 0 < validation < 1:
        raise InputError(f"validation must be a fraction in (0, 1), None, or a (rows, cols, values) triple, got {validation!r}")
    train, val = split_entries(rows, n1, float(validation), validation_kind, seed)
    desc = {"kind": validation_kind, "fraction": float(validation), "m": int(len(val)), "seed": seed}
    return train, (rows[val], cols[val], y[val]), desc


def complete(rows, cols, values, shape, *, refit: bool = True, **kwargs) -> "CompletionResult":
    """Fit Ŷ = b + r_i + c_j + UVᵀ (see `_complete` for the parameters).

    With validation data and `refit=True` (the default) the fit runs twice:
    first on the training entries, early-stopped on the validation entries,
    which chooses the number of iterations T — the one regularization
    parameter of small-initialization gradient descent; then once more from
    the same initialization on all entries (training + validation) for
    exactly T iterations, with the automatic step and scale recomputed on the
    larger set (μ‖A*(z)‖₂ = c, so T means the same amount of fitting). The
    returned model is the refit one; its history, stop reason, best_iter and
    val_rmse are those of the selection run (they are what validation
    measured), and config["refit"] records the second run. On MovieLens-100k
    the refit lowered the test RMSE by 0.005–0.007 on every split and seed we
    tried (benchmarks/bench_completion.py).

    BLAS is limited to one thread for the fit: the only BLAS calls are the
    small thin QRs of the monitors, and a multi-threaded BLAS competing with
    other busy processes made them up to 50× slower on a shared machine.
    """

    if not isinstance(refit, (bool, np.bool_)):
        raise InputError(f"refit must be True or False, got {refit!r}")
    with threadpool_limits(limits=1, user_api="blas"):
        selected = _complete(rows, cols, values, shape, **kwargs)
        budgets = (selected.config.get("ensemble") or {}).get("best_iters", [selected.best_iter])
        if not refit or selected.config["validation"] is None or max(budgets) == 0:
            return selected
        validation = kwargs.get("validation", 0.1)
        everything = (rows, cols, values)
        if isinstance(validation, (tuple, list)):
            everything = tuple(np.concatenate([np.asarray(a), np.asarray(b)]) for a, b in zip(everything, validation))
        options = {**kwargs, "validation": None, "patience": None, "max_iter": max(budgets), "seed": selected.config["seed"],
                   "progress": None, **({"budget": budgets} if len(budgets) > 1 else {})}
        final = _complete(*everything, shape, **options)
    return refitted(selected, final)


def refitted(selected: "CompletionResult", final: "CompletionResult") -> "CompletionResult":
    """The refit model `final` carrying the selection run's history, stop
    reason, best_iter and val_rmse (what validation measured); config["refit"]
    records the second run."""
    refit_info = {"iterations": final.n_iter, "m": final.config["m_train"], "step_size": final.step_size,
                  "init_scale": final.init_scale, "train_rmse": final.train_rmse, "seconds": final.seconds}
    return replace(final, history=selected.history, stop_reason=selected.stop_reason, n_iter=selected.n_iter,
                   best_iter=selected.best_iter, val_rmse=selected.val_rmse, seconds=selected.seconds + final.seconds,
                   validation_residuals=selected.validation_residuals, validation_spread=selected.validation_spread,
                   config={**selected.config, "refit": refit_info})


def _complete(
    rows,
    cols,
    values,
    shape,
    *,
    width=None,
    init_scale="auto",
    step_size="auto",
    step_constant: float = STEP_CONSTANT,
    max_iter: int = 2000,
    patience: int | None = 50,
    validation=0.1,
    validation_kind: str = "entries",
    biases: str = "both",
    clip: bool = True,
    l2: float = 0.0,
    ensemble: int = 1,
    implicit: bool = False,
    seed=None,
    dtype="float32",
    record_every="auto",
    n_singular: int = 10,
    progress: Callable[[int, float | None], None] | None = None,
    budget=None,
) -> CompletionResult:
    """Fit Ŷ = b + r_i + c_j + UVᵀ to the entries values[i] at (rows[i], cols[i]).

    Parameters
    ----------
    rows, cols : integer index arrays into an n1×n2 table (`shape`).
    values : observed values (finite).
    width : k, or None/'auto' for min(n1, n2, 100).
    init_scale : α > 0, or 'auto' for 10⁻³·√‖A*(z)‖₂.
    step_size : μ > 0 or 'auto' for step_constant/(‖A*(z)‖₂ + l2·max count).
    max_iter : iteration budget.
    patience : stop after this many iterations without a better validation RMSE
        (None: run to max_iter; the best iterate is still restored).
    validation : fraction held out (0 < f < 1), None for no split, or a
        (rows, cols, values) triple of validation entries.
    validation_kind : 'entries' (random entries) or 'rows' (a share of each row's entries).
    biases : 'both', 'rows', 'columns', 'global' or 'none'.
    clip : clip predictions to [min, max] of the training values.
    l2 : optional count-weighted L2 weight (0: the paper's algorithm).
    ensemble : B, members of a seed ensemble run as one batch (1: one fit;
        see the module docstring).
    implicit : add the rating pattern as known row features (SVD++'s
        implicit term; module docstring).
    seed : initialization and split seed (None draws one; it is recorded).
    dtype : float32 (default, twice the speed) or float64 for the factors.
    record_every : cadence of the monitors (train RMSE of clipped predictions,
        singular values, imbalance), or 'auto'; loss and validation RMSE are
        recorded every iteration.
    progress : called as progress(iteration, val_rmse) after every step.
    budget : iterations of each ensemble member (the refit's), at most max_iter.
    """
    started = time.perf_counter()
    rows, cols, y, (n1, n2) = checked_entries(rows, cols, values, shape)
    seed = resolve_seed(seed)
    k, max_iter, patience, l2, dtype, n_singular = checked_fit_parameters(width, max_iter, patience, l2, dtype, n_singular, clip, n1, n2)
    B = check_int("ensemble", ensemble, minimum=1)
    # factors, gradients, best iterate and the refit's copies in float64, the entries' index arrays and gather blocks
    check_memory(6 * B * (n1 + n2) * k * 8 + 64 * len(y) * (1 + (B > 1)) + 2**23,
                 f"completion of a {n1}×{n2} table with {len(y)} entries at width {k}", "use a smaller width", "width")

    train, val, val_desc = _validation_split(validation, validation_kind, rows.astype(np.int64), cols.astype(np.int64), y, n1, seed)
    train = train[np.lexsort((cols[train], rows[train]))]  # row-major order: U rows are read as a stream
    tr_rows, tr_cols, tr_y = rows[train].astype(np.int64), cols[train].astype(np.int64), y[train]
    if val is None and patience is not None:
        patience = None
    op = EntrySample(tr_rows, tr_cols, (n1, n2), dtype=dtype)
    bias = fit_biases(tr_rows, tr_cols, tr_y, (n1, n2), biases)
    clip_range = (float(tr_y.min()), float(tr_y.max())) if clip else None
    base_train = bias(tr_rows, tr_cols)
    target = (tr_y - base_train).astype(dtype)
    scale = adjoint_norm(op, target, seed=seed)
    counts_r = np.bincount(tr_rows, minlength=n1).astype(dtype)[:, None]
    counts_c = np.bincount(tr_cols, minlength=n2).astype(dtype)[:, None]
    mu, step_rule, alpha = step_and_scale(scale, max(counts_r.max(), counts_c.max()), l2=l2, step_size=step_size,
                                          step_constant=step_constant, init_scale=init_scale)
    record_every = _record_every(record_every, n1, n2, k, len(train))

    U, V = _initial_factors(seed, B, (n1, n2), k, alpha, dtype)
    if not isinstance(implicit, (bool, np.bool_)):
        raise InputError(f"implicit must be True or False, got {implicit!r}", "implicit")
    pattern = None
    if implicit:  # V carries W below it: the loop's second factor is [V; W], W from 0
        pattern = (1.0 / np.sqrt(counts_r[tr_rows, 0])).astype(dtype)  # N = A*(pattern): its products reuse the operator's layout
        pattern_norm = adjoint_norm(op, pattern, seed=seed)
        w_rate = IMPLICIT_STEP * mu / pattern_norm**2
        V = np.concatenate([V, np.zeros_like(V)], axis=-2)

    cache = {}

    def effective(U, V):
        """(U + N W, V) from the loop's (U, [V; W]); (U, V) without the implicit term.
        Computed once per iterate (residual, gradient and validation share it)."""
        if pattern is None:
            return U, V
        if cache.get("of") is not U:
            NW = op.adjoint_times(pattern, V[..., n2:, :])
            cache.update({"of": U, "value": ((U + NW).astype(dtype, copy=False), V[..., :n2, :])})
        return cache["value"]
    if val is not None:
        val_op = EntrySample(val[0], val[1], (n1, n2), dtype=dtype)
        val_base, val_y = bias(val[0], val[1]), val[2]

    def clipped(x):
        return np.clip(x, *clip_range) if clip_range is not None else x

    history = History()
    latest = {}

    def with_pattern(MV, MtU):
        if pattern is not None:  # W's direction, scaled to its own step: (w_rate/μ)·Nᵀ A*(e)V
            MW = op.adjoint_t_times(pattern, MV).astype(dtype, copy=False) * np.asarray(w_rate / mu, dtype)
            MtU = np.concatenate([MtU, MW], axis=-2)
        return MV, MtU

    def residual_gradient(U, V):
        """r = A(UVᵀ) − z and the step's gradient products in one call
        (`EntrySample.residual_gradient`: one pass over the entries with the
        numba kernels; the same bits as forward − z and gradient_products
        otherwise); the fitted values kept for the monitors."""
        Ue, Ve = effective(U, V)
        if B == 1:
            r, MV, MtU, latest["fitted"] = op.residual_gradient(Ue, Ve, target, dtype, fitted=True)
        else:  # member by member: each step takes the fused one-trial kernel
            r, fitted = np.empty((B, len(target)), dtype), np.empty((B, len(target)), dtype)
            MV, MtU = np.empty(Ue.shape, dtype), np.empty(Ve.shape, dtype)
            for b in range(B):
                r[b], MV[b], MtU[b], fitted[b] = op.residual_gradient(Ue[b], Ve[b], target, dtype, fitted=True)
            latest["fitted"] = fitted
        return (r, *with_pattern(MV, MtU))

    def residual(U, V):
        return residual_gradient(U, V)[0]

    def gradient(r, U, V):
        Ue, Ve = effective(U, V)
        if B == 1:
            MV, MtU = op.gradient_products(r, Ue, Ve)
        else:
            MV, MtU = (np.stack(p) for p in zip(*(op.gradient_products(r[b], Ue[b], Ve[b]) for b in range(B))))
        return with_pattern(MV.astype(dtype, copy=False), MtU.astype(dtype, copy=False))

    def direction(U, V, MV, MtU):
        """The gradient, plus the count-weighted L2 term when l2 > 0 (added in place: fresh arrays)."""
        if l2:
            MV += l2 * counts_r * U
            MtU[..., :n2, :] += l2 * counts_c * V[..., :n2, :]
        return MV, MtU

    def val_rmse_of(U, V, rows):
        U, V = effective(U, V)
        if B == 1:
            return [rmse(clipped(val_base + val_op.forward_factors(U, V)), val_y)]
        return [rmse(clipped(val_base + val_op.forward_factors(U[b], V[b])), val_y) for b in np.flatnonzero(rows)]

    def record(t, U, V, loss, rel_residual, rows, scores, final):
        """One history row; an ensemble's history is its first member's (seed `seed`), until that one stops."""
        U, V = effective(U, V)
        if B > 1:
            if not rows[0]:
                return
            U, V, latest_fit = U[0], V[0], latest["fitted"][0]
        else:
            latest_fit = latest["fitted"]
        row = {"iteration": t, "loss": float(loss[0])}
        if scores is not None:
            row["val_rmse"] = float(scores[0])
        if t % record_every == 0 or final:
            row["train_rmse"] = rmse(clipped(base_train + latest_fit), tr_y)
            row.update(_monitors(U, V, n_singular))
        history.append(row)

    report = None if progress is None else (lambda n, score: progress(n, score))
    outcome = DescentLoop(
        Objective(residual, gradient, math.sqrt(float(np.dot(target, target)) or 1.0), residual_gradient), U, V, step=mu, max_iter=max_iter,
        record=record, direction=direction, update=fresh_gradient_step, progress=report, dtype=dtype, budget=budget,
        validation=None if val is None else Validation(val_rmse_of, "val_rmse", every=1, patience=patience)).run()
    U, V, t, stop_reason = outcome.U, outcome.V, outcome.last_iteration, outcome.stop_reason[0]
    best_iter = outcome.best_iter[0] if val is not None else t
    U, V = effective(U, V)
    spread = None
    if B > 1:
        best_iters = [int(i) for i in outcome.best_iter] if val is not None else [int(i) for i in outcome.n_iter]
        if val is not None:
            spread = np.std(np.stack([val_op.forward_factors(U[b], V[b]) for b in range(B)]).astype(np.float64), axis=0)
        U, V = _concatenate_members(U), _concatenate_members(V)
    fitted = op.forward_factors(U, V)
    train_rmse = rmse(clipped(base_train + fitted), tr_y)
    loss = 0.5 * float(np.sum((fitted - target) ** 2))
    val_res = None if val is None else (val[0], val[1], val_y - clipped(val_base + val_op.forward_factors(U, V)))
    val_rmse = None if val is None else (float(outcome.best_score[0]) if B == 1 else rmse(val_res[2], 0.0))
    config = {
        "shape": [n1, n2],
        "m": int(len(y)),
        "m_train": int(len(train)),
        "width": k,
        "init_scale": alpha,
        "init_rule": "auto" if isinstance(init_scale, str) else "fixed",
        "step_size": mu,
        "step_rule": step_rule,
        "step_constant": step_constant,
        "residual_spectral_norm": scale,
        "max_iter": max_iter,
        "patience": patience,
        "validation": val_desc,
        "biases": biases,
        "bias_damping": list(BIAS_DAMPING),
        "clip": list(clip_range) if clip_range else None,
        "l2": l2,
        **({"ensemble": {"members": B, "seeds": [seed + b for b in range(B)], "member_width": k, "best_iters": best_iters,
                         "stop_reasons": list(outcome.stop_reason)}} if B > 1 else {}),
        **({"implicit": {"step_ratio": IMPLICIT_STEP, "pattern_norm": pattern_norm}} if implicit else {}),
        "seed": seed,
        "dtype": dtype.name,
        "record_every": record_every,
    }
    return CompletionResult(
        U=U, V=V, biases=bias, clip=clip_range, history=history, stop_reason=stop_reason, n_iter=t,
        best_iter=best_iter, step_size=mu, init_scale=alpha, seconds=time.perf_counter() - started,
        train_rmse=train_rmse, val_rmse=val_rmse, loss=loss, config=config, validation_residuals=val_res, validation_spread=spread,
    )


def _initial_factors(seed: int, B: int, shape, k: int, alpha: float, dtype):
    """U₀ = αG₁, V₀ = αG₂, G entries N(0, 1/k) from seed (one fit: (n1, k), (n2, k));
    an ensemble stacks its members' draws from seeds seed, seed+1, … ((B, n, k)),
    so member 0 starts where the single fit with `seed` starts."""
    draws = []
    for b in range(B):
        rng = np.random.default_rng(seed + b)
        U = (alpha / math.sqrt(k) * rng.standard_normal((shape[0], k))).astype(dtype)
        draws.append((U, (alpha / math.sqrt(k) * rng.standard_normal((shape[1], k))).astype(dtype)))
    if B == 1:
        return draws[0]
    return np.stack([u for u, _ in draws]), np.stack([v for _, v in draws])


def _concatenate_members(F):
    """[F_1 … F_B]/√B: (B, n, k) → (n, B·k); the product of two such is the members' mean."""
    B = F.shape[0]
    return np.ascontiguousarray(np.concatenate(list(F), axis=1) / np.asarray(math.sqrt(B), F.dtype))


def member_predictions(result, rows, cols) -> np.ndarray:
    """(B, len(rows)): each ensemble member's b + r_i + c_j + (U_b V_bᵀ)_ij at index pairs
    (unclipped), read from the concatenated factors (U_b = √B·U[:, b·k:(b+1)·k])."""
    B = result.members
    k = result.U.shape[1] // B
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    base = result.biases(rows, cols)
    U, V = np.asarray(result.U, np.float64)[rows], np.asarray(result.V, np.float64)[cols]
    return np.stack([base + B * np.einsum("ik,ik->i", U[:, b * k:(b + 1) * k], V[:, b * k:(b + 1) * k]) for b in range(B)])


def step_and_scale(scale: float, max_count, *, l2: float, step_size, step_constant: float, init_scale) -> tuple[float, str, float]:
    """(μ, step rule, α) from ‖A*(z)‖₂ = `scale`: μ = step_constant/(scale +
    l2·max count) for step_size='auto' (the curvature of the loss along its top
    direction), α = INIT_RELATIVE·√scale for init_scale='auto'."""
    curvature = scale + l2 * float(max_count)

    def auto_curvature() -> float:
        if curvature == 0:
            raise InputError("step_size='auto' needs a residual to fit: the values are fully explained by the biases (constant table?)")
        return curvature

    mu, step_rule = resolve_step(step_size, constant=step_constant, curvature=auto_curvature)
    if isinstance(init_scale, str):
        if init_scale != "auto":
            raise InputError(f"init_scale must be a positive number or 'auto', got {init_scale!r}")
        alpha = INIT_RELATIVE * math.sqrt(max(scale, 1e-12))
    else:
        alpha = check_positive("init_scale", init_scale)
    return mu, step_rule, alpha


def _gram(F, block: int = 1 << 16) -> np.ndarray:
    """FᵀF in float64, accumulated over row blocks (no float64 copy of F)."""
    G = np.zeros((F.shape[1], F.shape[1]))
    for a in range(0, F.shape[0], block):
        B = np.asarray(F[a:a + block], np.float64)
        G += B.T @ B
    return G


def _monitors(U, V, n_singular: int) -> dict[str, float]:
    """Singular values of UVᵀ, effective rank and imbalance, from the k×k Grams.

    With UᵀU = Q_U Λ_U Q_Uᵀ (and likewise V), U = (U Q_U Λ_U^{-1/2}) Λ_U^{1/2} Q_Uᵀ
    with orthonormal first factor, so σ(UVᵀ) = σ(Λ_U^{1/2} Q_Uᵀ Q_V Λ_V^{1/2}).
    The Grams cost one SYRK each (about a quarter of a thin QR) and also give
    the imbalance ‖UᵀU − VᵀV‖_F; the squared route loses relative accuracy
    only below σ₁·1e-8, far under anything the report shows.
    """
    return monitors_from_grams(_gram(U), _gram(V), n_singular)


def monitors_from_grams(Gu, Gv, n_singular: int) -> dict[str, float]:
    """`_monitors` from the Grams UᵀU and VᵀV (which a sharded fit sums over its row blocks)."""
    lu, Qu = np.linalg.eigh(Gu)
    lv, Qv = np.linalg.eigh(Gv)
    core = (np.sqrt(np.maximum(lu, 0))[:, None] * (Qu.T @ Qv)) * np.sqrt(np.maximum(lv, 0))[None, :]
    s = np.linalg.svd(core, compute_uv=False)
    imb = float(np.linalg.norm(Gu - Gv))
    row = {"imbalance": imb, "rel_imbalance": imb / s[0] if s[0] > 0 else np.nan, "eff_rank": float(effective_rank(s))}
    row.update({f"sv_{i + 1}": float(s[i]) for i in range(min(n_singular, len(s)))})
    return row


def predict_indices(result, rows, cols, unknown: str = "biases", row_ids=None, col_ids=None) -> np.ndarray:
    """Predictions at index pairs where −1 marks an unknown id: an InputError
    naming the id (unknown='error'; row_ids/col_ids are the original ids, for
    the message) or the biases-only fallback b + (bias of the known side)."""
    known = (rows >= 0) & (cols >= 0)
    if not known.all() and unknown == "error":
        i = int(np.flatnonzero(~known)[0])
        side, ids = ("row", row_ids) if rows[i] < 0 else ("column", col_ids)
        shown = repr(ids[i].item() if isinstance(ids[i], np.generic) else ids[i]) if ids is not None else "?"
        raise InputError(f"unknown {side} id {shown} at pair {i} (not seen in fit); use unknown='biases' to predict from the biases")
    out = np.empty(len(rows), dtype=np.float64)
    out[known] = result.predict(rows[known], cols[known])
    if not known.all():
        b = result.biases
        r = np.where(rows >= 0, b.rows[np.maximum(rows, 0)], 0.0)
        c = np.where(cols >= 0, b.cols[np.maximum(cols, 0)], 0.0)
        out[~known] = result.clipped(b.mean + r[~known] + c[~known])
    return out


def top_n(result, n: int, observed_rows, observed_cols, rows=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every row (or the row indices `rows`), the n columns with the highest
    prediction among those not observed; returns (rows, cols, rank 1..n,
    prediction). Rows are scored in blocks of ≤ TOP_BLOCK_ELEMENTS entries
    (never the whole n1×n2 at once)."""
    n1, n2 = result.shape
    rows = np.arange(n1) if rows is None else np.asarray(rows, np.int64)
    n = min(n, n2)
    seen = sp.csr_array((np.ones(len(observed_rows), dtype=bool), (observed_rows, observed_cols)), shape=(n1, n2))
    block = max(1, TOP_BLOCK_ELEMENTS // n2)
    U, V, b = np.asarray(result.U, np.float64), np.asarray(result.V, np.float64), result.biases
    out_r, out_c, out_k, out_p = [], [], [], []
    for a in range(0, len(rows), block):
        z = min(a + block, len(rows))
        part = rows[a:z]
        scores = U[part] @ V.T + b.mean + b.rows[part, None] + b.cols[None, :]
        sub = seen[part].tocoo()
        scores[sub.row, sub.col] = -np.inf
        idx = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < n2 else np.tile(np.arange(n2), (z - a, 1))
        vals = np.take_along_axis(scores, idx, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        idx, vals = np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)
        keep = np.isfinite(vals)
        rr = np.broadcast_to(part[:, None], idx.shape)
        kk = np.broadcast_to(np.arange(1, n + 1)[None, :], idx.shape)
        out_r.append(rr[keep]), out_c.append(idx[keep]), out_k.append(kk[keep]), out_p.append(result.clipped(vals[keep]))
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_k), np.concatenate(out_p)
