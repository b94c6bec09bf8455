"""Planted low-rank truths X* = L diag(σ) Rᵀ and noisy measurements of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asymsense.errors import InputError
from asymsense.validation import PARAMETER_RULES, SPECTRA, check_choice, check_memory, check_positive, check_rank, resolve_seed
from asymsense.backend import asarray, is_numpy, to_backend, to_numpy, xp_dtype
from asymsense.operators import make_operator


@dataclass(frozen=True)
class PlantedProblem:
    """A rank-r truth with its thin SVD: X = left @ diag(singular_values) @ right.T."""

    left: np.ndarray
    singular_values: np.ndarray
    right: np.ndarray
    seed: int

    @property
    def X(self) -> np.ndarray:
        return (self.left * self.singular_values) @ self.right.T

    @property
    def shape(self) -> tuple[int, int]:
        return (self.left.shape[0], self.right.shape[0])

    @property
    def rank(self) -> int:
        return len(self.singular_values)

    @property
    def cond(self) -> float:
        return float(self.singular_values[0] / self.singular_values[-1])


def spectrum_values(rank: int, cond: float, spectrum: str) -> np.ndarray:
    """σ_1 = 1 down to σ_r = 1/κ, evenly ("linear") or in ratio ("geometric")."""
    check_choice("spectrum", spectrum, SPECTRA)
    t = np.linspace(0.0, 1.0, rank) if rank > 1 else np.zeros(1)
    if spectrum == "linear":
        return 1.0 - t * (1.0 - 1.0 / cond)
    return cond ** (-t)


def planted(n1, n2, rank, *, cond=1.0, spectrum="linear", seed=None) -> PlantedProblem:
    """A random rank-`rank` n1×n2 matrix with ‖X‖₂ = 1 and condition number `cond`.

    The singular spaces are Haar-distributed (QR of Gaussian matrices).
    """
    n1 = PARAMETER_RULES["n1"].check("n1", n1)
    n2 = PARAMETER_RULES["n2"].check("n2", n2)
    rank = check_rank(PARAMETER_RULES["rank"].check("rank", rank), n1, n2)
    cond = PARAMETER_RULES["cond"].check("cond", cond)
    seed = resolve_seed(seed)
    # the Gaussian draws, their QR factors and LAPACK's copies: about three (n1 + n2)·rank float64 arrays
    check_memory(3 * 8 * (n1 + n2) * rank, f"a planted {n1}×{n2} rank-{rank} problem", "use smaller n1, n2 or rank", "rank")
    rng = np.random.default_rng(seed)
    left = np.linalg.qr(rng.standard_normal((n1, rank)))[0]
    right = np.linalg.qr(rng.standard_normal((n2, rank)))[0]
    return PlantedProblem(left, spectrum_values(rank, cond, spectrum), right, seed)


def measure(problem: PlantedProblem, operator, *, noise: float = 0.0, seed=None) -> np.ndarray:
    """y = A(X*) + ε with ε i.i.d. N(0, noise²), a NumPy vector of the
    operator's dtype. On another array library (torch, CuPy) the truth's
    factors are first moved to the operator's namespace, device and dtype
    (its matrix products refuse mixed dtypes); on NumPy they stay float64,
    as before, so NumPy measurements are unchanged."""
    noise = check_positive("noise", noise, allow_zero=True)
    if operator.shape != problem.shape:
        raise InputError(f"operator shape {operator.shape} does not match the problem's shape {problem.shape}")
    left, right = problem.left * problem.singular_values, problem.right
    xp = getattr(operator, "xp", None)
    if xp is not None and not is_numpy(xp):
        dtype = xp_dtype(xp, operator.dtype)
        left, right = asarray(left, xp, operator.device, dtype), asarray(right, xp, operator.device, dtype)
    y = to_numpy(operator.forward_factors(left, right))
    if noise > 0:
        y = y + noise * np.random.default_rng(resolve_seed(seed)).standard_normal(y.shape)
    return np.asarray(y, dtype=operator.dtype)


def planted_instance(n1, n2, rank, *, cond=1.0, spectrum="linear", operator="gaussian", m, noise=0.0, dtype="float64",
                     problem_seed=None, operator_seed=None, noise_seed=None, backend=None, device=None):
    """(truth, operator, y) of a planted sensing problem: planted(problem_seed),
    make_operator(operator_seed), measure(noise_seed) — the one way every
    command, sweep trial and experiment builds its problem. `backend`/`device`
    put the operator on another array library (see `asymsense.backend`); the
    truth and y stay NumPy data, identical for every backend."""
    truth = planted(n1, n2, rank, cond=cond, spectrum=spectrum, seed=problem_seed)
    op = make_operator(operator, n1, n2, m, seed=operator_seed, dtype=dtype)
    y = measure(truth, op, noise=noise, seed=noise_seed)
    if backend not in (None, "numpy") or device not in (None, "cpu"):
        op = to_backend(op, backend or "numpy", device)
    return truth, op, y
