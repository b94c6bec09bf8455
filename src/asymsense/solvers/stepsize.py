"""The automatic step size μ = c / ‖A*(y)‖₂.

‖A*(y)‖₂ ≈ ‖X*‖₂ for an operator with E[A*A] = Id (and ≈ p‖X*‖₂ for entry
sampling at rate p, which is the curvature of the completion loss), so
μ‖X*‖₂ ≈ c. Early on the update is a power method on the dilation of A*(y)
whose eigenvalues are ±σ_i: c < 1 keeps it stable. c = 0.5 was stable in every
reference run (c = 1 diverged at κ = 2); see the README's guide.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from asymsense import backend as bk
from asymsense.errors import DivergenceError, InputError
from asymsense.validation import check_positive

STEP_CONSTANT = 0.5
POWER_ITERATIONS = 30


def adjoint_norm(operator, y, *, iterations: int = POWER_ITERATIONS, seed: int = 0) -> float:
    """‖A*(y)‖₂ by power iteration on A*(y)ᵀA*(y), using only the products
    A*(y)v and A*(y)ᵀu (A*(y) is never formed). y and the iterates live on
    the operator's backend; the norms are read back once per iteration."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((operator.n2, 1))
    xp = getattr(operator, "xp", np)
    v = v / np.linalg.norm(v)
    v = operator.asarray(v) if hasattr(operator, "asarray") else v.astype(operator.dtype)
    norm = np.linalg.norm if bk.is_numpy(xp) else xp.linalg.vector_norm
    sigma = 0.0
    for _ in range(iterations):
        u = operator.adjoint_times(y, v)
        sigma = float(norm(u))
        if sigma == 0.0:
            return 0.0
        v = operator.adjoint_t_times(y, u / sigma)
        v = v / float(norm(v))
    return sigma


def resolve_step(step_size, *, curvature: Callable[[], float], constant: float = STEP_CONSTANT) -> tuple[float, str]:
    """(μ, rule) for every solver: a positive number as given ("fixed"), or
    "auto": μ = constant / curvature(), the curvature computed only then
    (‖A*(y)‖₂ for sensing, ‖A*(z)‖₂ + l2·max count for completion)."""
    if isinstance(step_size, str):
        if step_size != "auto":
            raise InputError(f"step_size must be a positive number or 'auto', got {step_size!r}")
        constant = check_positive("step_constant", constant)
        scale = curvature()
        with np.errstate(all="ignore"):
            mu = np.float64(constant) / np.float64(scale)
        if not (np.isfinite(mu) and mu > 0):
            raise InputError(f"step_size='auto' comes out as {mu} (curvature {scale}): the data are too large, too small "
                             "or not finite for the arithmetic of the dtype (float32 overflows above 3e38, float64 above 1e308); rescale them or give a step size")
        return float(mu), "auto"
    return check_positive("step_size", step_size), "fixed"


def with_working_step(exc: DivergenceError, curvature: Callable[[], float], constant: float = STEP_CONSTANT) -> DivergenceError:
    """The divergence of a fixed step, its hint made one that works: the
    generic hint (a quarter of the failed step) diverges too when the step
    was far above the stable range, so the auto rule's μ = constant/curvature()
    (stable in the reference runs) is suggested when it is smaller. The
    message names parameters (step_size=...); the CLI shows them as flags."""
    if exc.step_size is None:
        return exc
    auto = constant / curvature()
    if not auto < exc.step_size / 4:
        return exc
    head = str(exc).split("; try a smaller", 1)[0]
    return DivergenceError(f"{head}; try a smaller step_size, e.g. step_size={auto:.3g} (the auto rule's value "
                           f"{constant:g}/‖A*(y)‖₂; or step_size='auto')", step_size=exc.step_size, iteration=exc.iteration)


def checked_adjoint_norm(operator, y, *, seed: int = 0) -> float:
    """‖A*(y)‖₂ (`adjoint_norm`), refused when it is 0 or overflows: the curvature of the auto step."""
    with np.errstate(over="ignore", invalid="ignore"):
        norm = adjoint_norm(operator, y, seed=seed)
    if norm == 0.0:
        raise InputError("step_size='auto' needs nonzero measurements: A*(y) = 0 (is y all zeros?)")
    if not np.isfinite(norm):
        raise InputError("step_size='auto' cannot be computed: ‖A*(y)‖₂ overflows (are the measurements of order 1e150 or more? rescale y)")
    return norm


def auto_step_size(operator, y, *, constant: float = STEP_CONSTANT, seed: int = 0) -> float:
    """μ = constant / ‖A*(y)‖₂."""
    return resolve_step("auto", constant=constant, curvature=lambda: checked_adjoint_norm(operator, y, seed=seed))[0]
