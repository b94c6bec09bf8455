"""Exact-rank gradient descent from spectral initialization (the classical
non-convex baseline: Tu et al. 2016, Zheng & Lafferty 2015).

    U₀ Σ V₀ᵀ = best rank-r approximation of A*(y),  U₀ ← U₀Σ^{1/2},  V₀ ← V₀Σ^{1/2}
    U⁺ = U − μ M V,   V⁺ = V − μ Mᵀ U,   M = A*(A(UVᵀ) − y),   k = r.

The start is already close to X* when m is a few times r(n1 + n2), so the run
is pure local refinement: no small-initialization phases, linear convergence
at a rate set by κ. μ = 0.5/‖A*(y)‖₂ as for fgd.
"""

from __future__ import annotations

from asymsense.validation import check_int
from asymsense.solvers.stepsize import STEP_CONSTANT
from asymsense.baselines.common import factor_gd, initialize, plain_direction, problem_step, validate


def spectral_gd(operator, y, *, max_iter, truth=None, record_every=1, seed=None, tol=None, width, step_size="auto", step_constant=STEP_CONSTANT, n_singular=10, progress=None):
    """Gradient descent with k = `rank` columns from the spectral initialization.

    width : k, which this method sets to the exact rank r of X* (it assumes
        r known; named `width` like fgd's k so configs pass it the same way).
    step_size : μ > 0, or "auto" for μ = step_constant/‖A*(y)‖₂.
    Returns an FGDResult; raises InputError on bad input, DivergenceError when the loss explodes.
    """
    problem = validate(operator, y, max_iter=max_iter, truth=truth, record_every=record_every, seed=seed, tol=tol, n_singular=n_singular, progress=progress)
    width = check_int("width", width, minimum=1, maximum=min(operator.shape))
    U0, V0, init_desc = initialize(problem, "spectral", width=width)
    mu, rule = problem_step(problem, step_size, constant=step_constant)
    config = {**init_desc, "step_size": mu, "step_rule": rule, "step_constant": step_constant}
    return factor_gd(problem, U0, V0, step=mu, direction=plain_direction, method="spectral", config=config)
