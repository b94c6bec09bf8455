"""ScaledGD(λ) (Xu, Shen, Ma, Chi 2023): damped preconditioned GD from a small
random initialization, for the overparameterized case.

    U⁺ = U − η M V (VᵀV + λI)⁻¹,   V⁺ = V − η Mᵀ U (UᵀU + λI)⁻¹,   M = A*(A(UVᵀ) − y)

(the asymmetric form of their X⁺ = X − η∇f(X)(XᵀX + λI)⁻¹; both updates
from the same iterate). The preconditioner undoes the κ-dependent curvature of
the factorization, so η is a dimensionless constant rather than c/‖X*‖₂, and
the damping λ keeps the inverse bounded while the overparameterized columns
are still at the scale α.

Constants. The theorem (as we recall it: the stored copies we could search
showed only the abstract, so treat these as unverified) takes λ in [c_λσ_min/100, c_λσ_min] with σ_min the
smallest nonzero singular value of the target, c_λ and η ≤ c_η small
unspecified constants, and α small (log(‖X*‖/α) of order log κ·log(κn)).
σ_min is unknown to the solver, so the default λ = 0.1·‖A*(y)‖₂ ≈ 0.1σ₁,
which lies in that interval (with c_λ = 1) whenever κ ≤ 10; pass `damping`
explicitly when σ_r is known. A ratio of 0.01 (λ ≈ σ_r/10 at κ = 10) diverged
in our runs at m = 5·r(n1 + n2 − r) for every η ≥ 0.5, and 0.001 diverged or
crawled: the overparameterized columns see the step η/λ on the RIP error of
A*A, so too small a λ amplifies it. The default ratio is 0.1.
Default η = 0.5 (stable in our runs; the exact-rank ScaledGD step). The
initialization is fgd's (entries N(0, α²/k)), not the paper's N(0, α²/n), so that every method starts
from the same point for one seed — a rescaling of α only.
"""

from __future__ import annotations

import numpy as np

from asymsense.errors import InputError
from asymsense.validation import check_positive
from asymsense.solvers.stepsize import adjoint_norm
from asymsense.baselines.common import factor_gd, initialize, validate

DAMPING_RATIO = 0.1
STEP = 0.5


def scaled_gd(operator, y, *, max_iter, truth=None, record_every=1, seed=None, tol=None, width=None, init="random", init_scale=1e-3, unbalance=1.0, damping=None, damping_ratio=DAMPING_RATIO, step_size="auto", n_singular=10, progress=None):
    """ScaledGD(λ) with k = `width` columns (taken from the factors when init is a pair).

    damping : λ > 0, or None for λ = damping_ratio·‖A*(y)‖₂.
    step_size : η > 0 (dimensionless), or "auto" for η = STEP = 0.5.
    init : "random" (default, small α = `init_scale`), "spectral" or (U₀, V₀).
    """
    problem = validate(operator, y, max_iter=max_iter, truth=truth, record_every=record_every, seed=seed, tol=tol, n_singular=n_singular, progress=progress)
    if isinstance(step_size, str):
        if step_size != "auto":
            raise InputError(f"step_size must be a positive number or 'auto', got {step_size!r}")
        eta, step_rule = STEP, "auto"
    else:
        eta, step_rule = check_positive("step_size", step_size), "fixed"
    if damping is None:
        lam = check_positive("damping_ratio", damping_ratio) * adjoint_norm(problem.operator, problem.y, seed=problem.seed)
        rule = "ratio"
    else:
        lam, rule = check_positive("damping", damping), "fixed"
    if lam <= 0:
        raise InputError("damping resolved to 0 because A*(y) = 0 (is y all zeros?); pass damping > 0")
    U0, V0, init_desc = initialize(problem, init, width=width, init_scale=init_scale, unbalance=unbalance)
    eye = np.eye(U0.shape[1], dtype=U0.dtype)

    def direction(U, V, MV, MtU):
        dU = np.linalg.solve(V.T @ V + lam * eye, MV.T).T
        dV = np.linalg.solve(U.T @ U + lam * eye, MtU.T).T
        return dU, dV

    config = {**init_desc, "damping": lam, "damping_rule": rule, "damping_ratio": damping_ratio if rule == "ratio" else None, "step_size": eta, "step_rule": step_rule}
    return factor_gd(problem, U0, V0, step=eta, direction=direction, method="scaled-gd", config=config)
