"""Alternating least squares for a general sensing operator.

With V fixed, f(U) = ½‖A(UVᵀ) − y‖² + (ρ/2)‖U‖²_F is a linear least-squares
problem in U whose normal equations are

    A*(A(UVᵀ)) V + ρU = A*(y) V           (n1·k unknowns)

and symmetrically, with U fixed, A*(A(UVᵀ))ᵀ U + ρV = A*(y)ᵀ U. Both are
solved by conjugate gradients warm-started at the current factor, using only
the operator protocol (forward_factors, adjoint_times, adjoint_t_times): the
n1k × n1k system matrix is never formed.

Cost. Each CG iteration is one forward_factors and one adjoint product, the
same as half a gradient step; an ALS sweep is at most 2·(cg_iter + 1) such
applications. For the dense Gaussian operator (m × n1n2) that is
O(cg_iter·m·n1·n2) per sweep; forming the system explicitly instead would cost
O(m·n1·n2·k) to build and O(m(n1k)²) to solve. (Entry sampling decouples the
problem into one k×k system per row, which a completion-specific ALS can use.)

Each sweep solves to a relative CG residual `cg_tol` or `cg_iter` steps, so
early sweeps are inexact and cheap; the warm start makes later ones short.
ρ = 0 by default (the sensing problem is well posed at k = r); ρ > 0 is the
usual L2 weight, and keeps the systems definite when k > r.
"""

from __future__ import annotations

import numpy as np

from asymsense.validation import check_int, check_positive
from asymsense.baselines.common import Recorder, initialize, validate

CG_ITER = 25
CG_TOL = 1e-12


def conjugate_gradient(apply, b, x0, *, iterations: int, tol: float):
    """Solve apply(x) = b (apply symmetric positive semidefinite) from x0;
    returns (x, number of iterations)."""
    x = x0
    r = b - apply(x)
    p = r
    rr = float(np.vdot(r, r))
    target = tol * tol * max(float(np.vdot(b, b)), np.finfo(float).tiny)
    for i in range(iterations):
        if rr <= target:
            return x, i
        Ap = apply(p)
        pAp = float(np.vdot(p, Ap))
        if pAp <= 0:
            return x, i
        step = rr / pAp
        x = x + step * p
        r = r - step * Ap
        rr_new = float(np.vdot(r, r))
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, iterations


def als(operator, y, *, max_iter, truth=None, record_every=1, seed=None, tol=None, width=None, init="spectral", init_scale=1e-3, ridge=0.0, cg_iter=CG_ITER, cg_tol=CG_TOL, n_singular=10, progress=None):
    """Alternating least squares with k = `width` columns (taken from the factors when init is a pair).

    init : "spectral" (default), "random" (small α = `init_scale`) or (U₀, V₀).
    ridge : ρ ≥ 0, the L2 weight on both factors.
    cg_iter, cg_tol : CG budget per half sweep.
    One iteration = one sweep (U then V). History adds `cg_iterations`.
    """
    problem = validate(operator, y, max_iter=max_iter, truth=truth, record_every=record_every, seed=seed, tol=tol, n_singular=n_singular, progress=progress)
    op, y = problem.operator, problem.y
    rho = check_positive("ridge", ridge, allow_zero=True)
    cg_iter = check_int("cg_iter", cg_iter, minimum=1)
    cg_tol = check_positive("cg_tol", cg_tol)
    U, V, init_desc = initialize(problem, init, width=width, init_scale=init_scale)

    recorder = Recorder(problem, "als", None)
    reason, n_iter, cg_used = "max_iter", 0, 0
    for t in range(problem.max_iter + 1):
        last = t == problem.max_iter
        residual = np.asarray(op.forward_factors(U, V), dtype=op.dtype) - y
        if recorder.observe(t, U, V, residual, last=last, extra={"cg_iterations": cg_used}):
            reason = "converged"
            break
        if last:
            break
        Vf = V
        U, used_u = conjugate_gradient(
            lambda W: op.adjoint_times(op.forward_factors(W, Vf), Vf) + rho * W,
            op.adjoint_times(y, Vf), U, iterations=cg_iter, tol=cg_tol,
        )
        Uf = U
        V, used_v = conjugate_gradient(
            lambda W: op.adjoint_t_times(op.forward_factors(Uf, W), Uf) + rho * W,
            op.adjoint_t_times(y, Uf), V, iterations=cg_iter, tol=cg_tol,
        )
        U, V = np.asarray(U, dtype=op.dtype), np.asarray(V, dtype=op.dtype)
        cg_used = used_u + used_v
        n_iter += 1
        if problem.progress is not None:
            problem.progress(n_iter)
    config = {**init_desc, "ridge": rho, "cg_iter": cg_iter, "cg_tol": cg_tol}
    return recorder.result(U, V, stop_reason=reason, n_iter=n_iter, config=config)
