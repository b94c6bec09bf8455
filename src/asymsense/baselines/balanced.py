"""Gradient descent with an explicit balancing term (Tu et al. 2016, Procrustes Flow).

    g(U, V) = ½‖A(UVᵀ) − y‖² + (λ/4)‖UᵀU − VᵀV‖²_F,   D = UᵀU − VᵀV
    ∇_U g = M V + λ U D,   ∇_V g = Mᵀ U − λ V D

The term pulls the factors towards UᵀU = VᵀV; without it, gradient flow
conserves D exactly and gradient descent changes it only at order μ² (the
paper's implicit balancing). Default λ = 1/2: Tu et al. weigh the rectangular
problem as ¼‖A(UVᵀ) − b‖² + (1/16)‖UᵀU − VᵀV‖²_F, which is λ = 1/2 after
doubling to our ½‖·‖² data term (the weights as we recall them from the paper
— the stored copies we could search did not show that section, so treat the
constant as unverified). Both terms scale like ‖X*‖²_F, so λ is dimensionless
and needs no rescaling with ‖X*‖.

`balance=0` gives plain factorized GD, which with `unbalance` > 1 is fgd from a
deliberately unbalanced start (U₀ large, V₀ small) — the comparison E3 needs.
"""

from __future__ import annotations

from asymsense.validation import check_positive
from asymsense.solvers.stepsize import STEP_CONSTANT
from asymsense.baselines.common import factor_gd, initialize, problem_step, validate

BALANCE = 0.5


def balanced_gd(operator, y, *, max_iter, truth=None, record_every=1, seed=None, tol=None, width=None, init="random", init_scale=1e-3, unbalance=1.0, balance=BALANCE, step_size="auto", step_constant=STEP_CONSTANT, n_singular=10, progress=None):
    """Factorized GD on ½‖A(UVᵀ) − y‖² + (λ/4)‖UᵀU − VᵀV‖²_F, λ = `balance`.

    width : k (not needed with explicit init factors). init : "random" (fgd's U₀ = αG₁, V₀ = αG₂ scaled by `unbalance`
    and 1/`unbalance`), "spectral", or a pair (U₀, V₀). balance : λ ≥ 0.
    step_size : μ > 0 or "auto" (= step_constant/‖A*(y)‖₂).
    """
    problem = validate(operator, y, max_iter=max_iter, truth=truth, record_every=record_every, seed=seed, tol=tol, n_singular=n_singular, progress=progress)
    lam = check_positive("balance", balance, allow_zero=True)
    U0, V0, init_desc = initialize(problem, init, width=width, init_scale=init_scale, unbalance=unbalance)
    mu, rule = problem_step(problem, step_size, constant=step_constant)

    def direction(U, V, MV, MtU):
        D = U.T @ U - V.T @ V
        return MV + lam * (U @ D), MtU - lam * (V @ D)

    config = {**init_desc, "balance": lam, "step_size": mu, "step_rule": rule, "step_constant": step_constant}
    return factor_gd(problem, U0, V0, step=mu, direction=direction, method="balanced", config=config)
