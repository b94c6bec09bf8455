"""The automatic step size μ = c / ‖A*(y)‖₂.

‖A*(y)‖₂ ≈ ‖X*‖₂ for an operator with E[A*A] = Id (and ≈ p‖X*‖₂ for entry
sampling at rate p, which is the curvature of the completion loss), so
μ‖X*‖₂ ≈ c. Early on the update is a power method on the dilation of A*(y)
whose eigenvalues are ±σ_i: c < 1 keeps it stable. c = 0.5 was stable in every
reference run (c = 1 diverged at κ = 2); see the README's guide.
"""

from __future__ import annotations

import numpy as np

from asymsense import backend as bk

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


def auto_step_size(operator, y, *, constant: float = STEP_CONSTANT, seed: int = 0) -> float:
    from asymsense.errors import InputError

    with np.errstate(over="ignore", invalid="ignore"):
        norm = adjoint_norm(operator, y, seed=seed)
    if norm == 0.0:
        raise InputError("step_size='auto' needs nonzero measurements: A*(y) = 0 (is y all zeros?)")
    if not np.isfinite(norm):
        raise InputError("step_size='auto' cannot be computed: ‖A*(y)‖₂ overflows (are the measurements of order 1e150 or more? rescale y)")
    return constant / norm
