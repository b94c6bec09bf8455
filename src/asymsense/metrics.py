"""Monitors of the theory, computed from thin-QR cores of the factors.

With U = Q_U R_U and V = Q_V R_V, UVᵀ = Q_U (R_U R_Vᵀ) Q_Vᵀ, so the singular
values and singular vectors of UVᵀ come from the small core R_U R_Vᵀ and no
n1×n2 product is formed. All functions take batches: U (B, n1, k), V (B, n2, k)
and return one value per trial. They compute in float64 whatever the factors'
dtype, since monitors are read at a cadence and must be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asymsense.backend import numba_enabled
from asymsense.errors import InputError
from asymsense.validation import check_finite_array


@dataclass(frozen=True)
class Truth:
    """The reference X* = left · diag(singular_values) · rightᵀ (thin SVD)."""

    left: np.ndarray
    singular_values: np.ndarray
    right: np.ndarray

    @property
    def rank(self) -> int:
        return len(self.singular_values)

    @property
    def frobenius(self) -> float:
        return float(np.linalg.norm(self.singular_values))

    @property
    def spectral(self) -> float:
        return float(self.singular_values[0])


def as_truth(truth) -> Truth | None:
    """Accept a planted problem (anything with left/singular_values/right) or a matrix."""
    if truth is None:
        return None
    try:
        if hasattr(truth, "singular_values") and hasattr(truth, "left"):
            parts = (np.asarray(truth.left, float), np.asarray(truth.singular_values, float), np.asarray(truth.right, float))
            for name, part in zip(("truth.left", "truth.singular_values", "truth.right"), parts):
                check_finite_array(name, part)
            return Truth(*parts)
        X = np.asarray(truth, dtype=float)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"truth must be a planted problem or a numeric matrix, got {type(truth).__name__} ({exc})", "truth") from None
    if X.ndim != 2 or X.size == 0:
        raise InputError(f"truth must be a planted problem or an n1×n2 matrix, got shape {X.shape}", "truth")
    check_finite_array("truth", X)
    L, s, Rt = np.linalg.svd(X, full_matrices=False)
    r = max(1, int(np.sum(s > s[0] * max(X.shape) * np.finfo(float).eps)))
    return Truth(L[:, :r], s[:r], Rt[:r].T)


def _t(A):
    return np.swapaxes(A, -1, -2)


COMPILED_EIGEN_ROWS = 200
"""Largest Gram matrix whose λ_max the compiled kernel computes (`symmetric_numba`); beyond it
LAPACK's blocked reduction wins (one thread, Zen 4: 100 µs against 45 µs at 60 rows, 2.8 ms
against 2.3 ms at 200, 7.0 ms against 7.2 ms at 300)."""


def largest_eigenvalue(S) -> np.ndarray:
    """λ_max of each symmetric matrix of a float64 stack: the compiled kernel
    (`symmetric_numba`) up to COMPILED_EIGEN_ROWS rows when numba is on, else
    LAPACK's eigvalsh. Both are backward stable (λ_max to a few eps·‖S‖)."""
    S = np.ascontiguousarray(S, dtype=np.float64)
    if S.shape[-1] <= COMPILED_EIGEN_ROWS and numba_enabled():
        from asymsense.symmetric_numba import largest_eigenvalues

        flat = S.reshape((-1,) + S.shape[-2:])
        return largest_eigenvalues(flat).reshape(S.shape[:-2])
    return np.linalg.eigvalsh(S)[..., -1]


def spectral_norm(A) -> np.ndarray:
    """‖A‖₂ for a stack of matrices: √λ_max of the Gram matrix of A's shorter
    side (AAᵀ or AᵀA, `largest_eigenvalue`). The largest eigenvalue of a
    symmetric matrix is exact to eps·λ_max, so the norm keeps full relative
    precision however small it is; LAPACK's eigvalsh of the Gram ran 1.3–2×
    faster than a singular-value SVD of A at the monitors' sizes (60×60,
    40×60), the compiled λ_max 2–3× faster again."""
    gram = A @ _t(A) if A.shape[-2] <= A.shape[-1] else _t(A) @ A
    return np.sqrt(np.maximum(largest_eigenvalue(gram), 0.0))


def qr_core(F, *, with_q: bool = True):
    """(Q, C) with F = Q·C and C as small as a QR makes it: the thin QR
    (C = R, k×k) where F (n×k) is taller than wide, else (None, F) — the QR
    of a square or wide factor gives a core no smaller than F, so it would
    only cost time (a third of the monitors at the demo's k = 60 ≥ n1, n2).
    With with_q=False, Q is not formed (None)."""
    if F.shape[-2] <= F.shape[-1]:
        return None, F
    if not with_q:
        return None, np.linalg.qr(F, mode="r")
    return np.linalg.qr(F)


def product_svd(U, V, vectors: int | None = None):
    """Thin SVD of UVᵀ from the QR cores (`qr_core`): returns (left vectors, singular values,
    right vectors). All singular values; of the vectors only the leading `vectors` pairs
    (None: all of them, 0: none, and left/right are None) — see `core_svd`."""
    Qu, Ru = qr_core(U, with_q=vectors != 0)
    Qv, Rv = qr_core(V, with_q=vectors != 0)
    W, s, Z = core_svd(Ru @ _t(Rv), vectors)
    if vectors == 0:
        return None, s, None
    return (W if Qu is None else Qu @ W), s, (Z if Qv is None else Qv @ Z)


COMPILED_VECTORS_SHARE = 10
"""The compiled kernel computes up to min(p, q) // COMPILED_VECTORS_SHARE leading pairs (at least one);
past that `gesdd` with all vectors is faster (one thread, stacks of 6: at 60×40, 3 pairs take 0.49 of
its time and 8 pairs 0.83; at 100×100 16 pairs 0.98, at 200×200 25 pairs 1.10)."""


def core_svd(C, vectors: int | None = None):
    """(W, s, Z) with s all singular values of each matrix of the float64 stack C (descending)
    and W, Z its leading `vectors` left and right singular vectors as columns (None: all;
    0: W = Z = None, by `gesdd` without vectors, which costs 0.4 of it with them).
    A few leading pairs (up to COMPILED_VECTORS_SHARE) come from the compiled kernel
    (`singular_numba`: 0.46 of the time of `gesdd` at 60×40, 3 pairs) when numba is on; a matrix
    it does not finish (σ = 0 among the leading ones, non-finite entries) goes to `gesdd`, as
    does every matrix without numba. A wide matrix is computed as its transpose."""
    C = np.asarray(C, dtype=np.float64)
    if vectors == 0:
        return None, np.linalg.svd(C, compute_uv=False), None
    count = min(C.shape[-2:]) if vectors is None else min(vectors, *C.shape[-2:])
    if vectors is None or count > max(1, min(C.shape[-2:]) // COMPILED_VECTORS_SHARE) or not numba_enabled():
        W, s, Zt = np.linalg.svd(C, full_matrices=False)
        return W[..., :count], s, _t(Zt)[..., :count]
    from asymsense.singular_numba import leading_singular_triplets

    wide = C.shape[-2] < C.shape[-1]
    tall = _t(C) if wide else C
    flat = tall.reshape((-1,) + tall.shape[-2:])
    s, left, right, done = leading_singular_triplets(flat, count)
    left, right = _t(left), _t(right)
    for b in np.flatnonzero(~done):
        W, s[b], Zt = np.linalg.svd(flat[b], full_matrices=False)
        left[b], right[b] = W[:, :count], Zt[:count].T
    if wide:
        left, right = right, left
    batch = C.shape[:-2]
    return left.reshape(batch + left.shape[-2:]), s.reshape(batch + s.shape[-1:]), right.reshape(batch + right.shape[-2:])


def rmse(prediction, values) -> float:
    """Root-mean-square error √(mean((ŷ − y)²)), the completion metric."""
    diff = np.asarray(prediction, dtype=np.float64) - np.asarray(values, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def imbalance(U, V) -> np.ndarray:
    """‖UᵀU − VᵀV‖_F."""
    return np.linalg.norm(_t(U) @ U - _t(V) @ V, axis=(-2, -1))


def effective_rank(s) -> np.ndarray:
    """exp of the entropy of the normalized singular values p_i = σ_i / Σσ."""
    total = np.sum(s, axis=-1, keepdims=True)
    p = np.divide(s, total, out=np.zeros_like(s), where=total > 0)
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)
    return np.exp(entropy)


def distance_to_truth(U, V, truth: Truth) -> np.ndarray:
    """‖UVᵀ − X*‖_F, exactly, as ‖[U, −LΣ][V, R]ᵀ‖_F through QR cores
    (`qr_core`; no cancellation, unlike expanding the square)."""
    batch = U.shape[:-2]
    L = np.broadcast_to(truth.left * truth.singular_values, batch + truth.left.shape)
    R = np.broadcast_to(truth.right, batch + truth.right.shape)
    Ru = qr_core(np.concatenate([U, -L], axis=-1), with_q=False)[1]
    Rv = qr_core(np.concatenate([V, R], axis=-1), with_q=False)[1]
    return np.linalg.norm(Ru @ _t(Rv), axis=(-2, -1))


def orthogonal_part(B, basis) -> np.ndarray:
    """(I − P)B with P the projector on span(basis) (orthonormal columns)."""
    return B - basis @ (_t(basis) @ B)


def monitor(U, V, *, truth: Truth | None = None, n_singular: int = 10) -> dict[str, np.ndarray]:
    """All factor-only monitors of DESIGN.md for a batch of factor pairs.

    Returns arrays of shape (B,): imbalance, rel_imbalance, sv_1…sv_p,
    eff_rank, and with a truth rel_error, angle_u, angle_v, tail_u, tail_v.
    rel_imbalance divides by ‖X*‖₂ when the truth is known, else by ‖UVᵀ‖₂.
    """
    U = np.asarray(U, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    left, s, right = product_svd(U, V, vectors=0 if truth is None else truth.rank)
    out: dict[str, np.ndarray] = {}
    out["imbalance"] = imbalance(U, V)
    scale = truth.spectral if truth is not None else np.where(s[..., 0] > 0, s[..., 0], 1.0)
    out["rel_imbalance"] = out["imbalance"] / scale
    for i in range(min(n_singular, s.shape[-1])):
        out[f"sv_{i + 1}"] = s[..., i]
    out["eff_rank"] = effective_rank(s)
    if truth is not None:
        r = truth.rank
        out["rel_error"] = distance_to_truth(U, V, truth) / truth.frobenius
        out["angle_u"] = spectral_norm(orthogonal_part(left[..., :r], truth.left))
        out["angle_v"] = spectral_norm(orthogonal_part(right[..., :r], truth.right))
        out["tail_u"] = spectral_norm(orthogonal_part(U, truth.left))
        out["tail_v"] = spectral_norm(orthogonal_part(V, truth.right))
    return out
