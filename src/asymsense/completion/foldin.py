"""Fold-in: biases and factors of new rows from their observed entries, with
the fitted other side held fixed (no refit; existing factors are untouched).

For a new row i with observed columns J_i and values y_ij:

1. bias: r_i = Σ_{j∈J_i}(y_ij − b − c_j)/(|J_i| + λ_r) — the damped mean of
   `fit_biases` with the column biases fixed (λ_r = 10, the same damping);
2. factor u_i from the residuals z_ij = y_ij − b − r_i − c_j, one of

   - ``"ridge"`` (default): the damped least-squares solve
     u_i = (V_Jᵀ V_J + λ I)⁻¹ V_Jᵀ z, all new rows as one batched k×k solve.
     λ = `ridge` (default 5.0, chosen on MovieLens-100k by
     benchmarks/bench_completion_foldin.py); directions of V that the fit left
     near zero (the small-initialization tail) are shrunk away automatically.
   - ``"descent"``: the model's own descent, U⁺ = U − μ A*(e)V with V fixed,
     from small random initialization (scale α), for the number of
     iterations T that early stopping chose in the fit, with the fit's step μ
     — the same implicit regularization as the fit, run on
     `solvers.loop.DescentLoop` (the one loop; the direction leaves V alone).

New columns are the same with the roles of rows and columns swapped
(λ_c = 25). Both run in milliseconds for hundreds of new rows.
"""

from __future__ import annotations

import math

import numpy as np
from threadpoolctl import threadpool_limits

from asymsense.errors import InputError
from asymsense.operators import EntrySample
from asymsense.solvers.loop import DescentLoop, Objective
from asymsense.validation import check_positive

FOLD_IN_METHODS = ("ridge", "descent")
DEFAULT_RIDGE = 5.0


def fold_in_side(new, known, y, F_known, bias_known, mean: float, n_new: int, **options) -> tuple[np.ndarray, np.ndarray]:
    """Biases (n_new,) and factors (n_new, k) of new rows `0..n_new-1` observed at
    (new[e], known[e]) with values y[e]; `F_known` (n_known, k) and `bias_known`
    are the fixed other side (options: see `_fold_in`). BLAS is limited to one
    thread: the batched k×k solves are small, and a multi-threaded BLAS
    competing with busy processes made them many times slower."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _fold_in(new, known, y, F_known, bias_known, mean, n_new, **options)


def _fold_in(new, known, y, F_known, bias_known, mean: float, n_new: int, *, damping: float, method: str = "ridge",
             ridge: float = DEFAULT_RIDGE, step: float | None = None, iterations: int | None = None,
             init_scale: float = 1e-3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if method not in FOLD_IN_METHODS:
        raise InputError(f"method must be one of {', '.join(FOLD_IN_METHODS)}, got {method!r}")
    new, known = np.asarray(new, np.int64), np.asarray(known, np.int64)
    y = np.asarray(y, np.float64)
    k = F_known.shape[1]
    counts = np.bincount(new, minlength=n_new).astype(np.float64)
    bias = np.bincount(new, y - mean - bias_known[known], minlength=n_new) / (counts + damping)
    z = y - mean - bias[new] - bias_known[known]
    F = np.asarray(F_known, np.float64)
    if len(y) == 0:
        return bias, np.zeros((n_new, k), dtype=F_known.dtype)
    if method == "ridge":
        ridge = check_positive("ridge", ridge)
        Vj = F[known]
        gram, rhs = _normal_equations(new, Vj, z, n_new)
        gram += ridge * np.eye(k)
        U = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
        return bias, U.astype(F_known.dtype)
    if step is None or iterations is None:
        raise InputError("method='descent' needs the fit's step and iterations (a saved model records both)")
    step = check_positive("step", step)
    op = EntrySample(new, known, (n_new, F.shape[0]), dtype=F_known.dtype)
    target = z.astype(F_known.dtype)
    U0 = (init_scale / math.sqrt(k) * np.random.default_rng(seed).standard_normal((n_new, k))).astype(F_known.dtype)
    Vfix = np.asarray(F_known)

    def residual(U, V):
        return op.forward_factors(U, V) - target

    def gradient(r, U, V):
        return op.adjoint_times(r, V), None

    def update(U, V, D_U, D_V, mu):
        return U - mu * D_U, V

    outcome = DescentLoop(Objective(residual, gradient, math.sqrt(float(np.dot(target, target)) or 1.0)), U0, Vfix,
                          step=step, max_iter=int(iterations), direction=lambda U, V, MV, MtU: (MV, None), update=update).run()
    return bias, outcome.U


def _normal_equations(new, Vj, z, n_new):
    """Σ_e v_e v_eᵀ and Σ_e z_e v_e over the entries e of each new row, one
    matmul per row's block of entries (sorted by row)."""
    k = Vj.shape[1]
    gram, rhs = np.zeros((n_new, k, k)), np.zeros((n_new, k))
    order = np.argsort(new, kind="stable")
    s_new, s_V, s_z = new[order], Vj[order], z[order]
    bounds = np.flatnonzero(np.diff(s_new)) + 1
    for a, b in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(s_new)]])):
        block = s_V[a:b]
        gram[s_new[a]] = block.T @ block
        rhs[s_new[a]] = s_z[a:b] @ block
    return gram, rhs
