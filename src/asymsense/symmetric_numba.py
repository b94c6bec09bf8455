"""λ_max of a stack of small symmetric matrices, compiled (numba).

The monitors need the largest eigenvalue of Gram matrices of 3–60 rows, four
per trial at every record (`metrics.spectral_norm`). LAPACK's `dsyevd` there
spends most of its ≈ 100 µs (60 rows) on fixed per-call work; its flops take
≈ 10 µs. This kernel computes only λ_max:

1. Householder tridiagonalization T = Qᵀ A Q (the textbook unblocked
   reduction, as LAPACK's `dsytd2`): T is the exact tridiagonal of some
   A + E with ‖E‖ ≤ c·n·eps·‖A‖, so λ_max(T) is within that of λ_max(A);
2. λ_max(T) by Sturm counts (the number of negative pivots of T − xI is the
   number of eigenvalues below x) — bisection to a relative width 2⁻¹⁰, then
   Newton's method on det(T − xI) from above (monotone for a real-rooted
   polynomial; each step's pivots are checked to stay above λ_max, and
   x − n/s with s = Σ 1/(x − λ_j) is a lower bound, since s ≤ n/(x − λ_max)),
   at most `NEWTON_STEPS` steps, then bisection again until
   hi − lo ≤ 2·eps·|λ_max|.

Agrees with `numpy.linalg.eigvalsh(A)[-1]` to a few eps·‖A‖
(tests/test_metrics.py, hypothesis over sizes, scales and multiplicities).
Importing this module imports numba; `metrics` imports it only when
`backend.numba_enabled()`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NEWTON_STEPS = 8
"""Newton steps before falling back to bisection (a simple λ_max converges in 3–5; a multiple one
converges only linearly, and bisection then finishes it)."""


@njit(cache=True, nogil=True, error_model="numpy")
def _tridiagonalize(A, d, e, v, p):  # pragma: no cover - compiled
    """Reduce the symmetric A (overwritten, full storage) to T: diagonal d, off-diagonal e."""
    n = A.shape[0]
    for k in range(n - 2):
        m = n - k - 1
        alpha = 0.0
        for i in range(m):
            v[i] = A[k + 1 + i, k]
            alpha += v[i] * v[i]
        d[k] = A[k, k]
        norm = np.sqrt(alpha)
        if norm == 0.0:
            e[k] = 0.0
            continue
        x0 = v[0]
        beta = -norm if x0 >= 0.0 else norm
        e[k] = beta
        v[0] = x0 - beta
        tau = 2.0 / (alpha - x0 * x0 + v[0] * v[0])
        for i in range(m):
            p[i] = 0.0
        for j in range(m):
            vj = tau * v[j]
            for i in range(m):
                p[i] += A[k + 1 + j, k + 1 + i] * vj
        ptv = 0.0
        for i in range(m):
            ptv += p[i] * v[i]
        half = 0.5 * tau * ptv
        for i in range(m):
            p[i] -= half * v[i]
        for j in range(m):
            vj = v[j]
            pj = p[j]
            for i in range(m):
                A[k + 1 + j, k + 1 + i] -= vj * p[i] + pj * v[i]
    if n >= 2:
        d[n - 2] = A[n - 2, n - 2]
        e[n - 2] = A[n - 1, n - 2]
    d[n - 1] = A[n - 1, n - 1]


@njit(cache=True, nogil=True, error_model="numpy")
def _below_and_slope(d, e, x, pivmin):  # pragma: no cover - compiled
    """(eigenvalues of T below x, Σ_j 1/(x − λ_j)) from the pivots q_i of T − xI and their derivatives."""
    n = d.shape[0]
    count = 0
    q = d[0] - x
    if abs(q) < pivmin:
        q = -pivmin
    dq = -1.0
    slope = dq / q
    if q < 0.0:
        count += 1
    for i in range(1, n):
        e2 = e[i - 1] * e[i - 1]
        dq = -1.0 + e2 * dq / (q * q)
        q = d[i] - x - e2 / q
        if abs(q) < pivmin:
            q = -pivmin
        slope += dq / q
        if q < 0.0:
            count += 1
    return count, slope


@njit(cache=True, nogil=True, error_model="numpy")
def _largest_of_tridiagonal(d, e):  # pragma: no cover - compiled
    n = d.shape[0]
    lo = -np.inf
    hi = -np.inf
    top = -np.inf
    for i in range(n):
        radius = 0.0
        if i > 0:
            radius += abs(e[i - 1])
        if i < n - 1:
            radius += abs(e[i])
        lo = max(lo, d[i] - radius)
        hi = max(hi, d[i] + radius)
        top = max(top, d[i])
    lo = max(lo, top)  # λ_max ≥ every diagonal entry (a Rayleigh quotient)
    if not (hi > lo):
        return hi
    eps = np.finfo(np.float64).eps
    scale = max(abs(lo), abs(hi))
    pivmin = np.finfo(np.float64).tiny * max(scale, 1.0)
    coarse = scale * 2.0**-10
    while hi - lo > coarse:
        mid = 0.5 * (lo + hi)
        if _below_and_slope(d, e, mid, pivmin)[0] == n:
            hi = mid
        else:
            lo = mid
    x = hi
    for _ in range(NEWTON_STEPS):
        if hi - lo <= 2.0 * eps * max(abs(lo), abs(hi)):
            break
        below, slope = _below_and_slope(d, e, x, pivmin)
        if below < n:
            lo = max(lo, x)
            break
        hi = min(hi, x)
        if not (slope > 0.0) or not np.isfinite(slope):
            break
        lo = max(lo, x - n / slope)
        x = x - 1.0 / slope
        if not (lo < x < hi):
            break
    while hi - lo > 2.0 * eps * max(abs(lo), abs(hi)):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if _below_and_slope(d, e, mid, pivmin)[0] == n:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@njit(cache=True, nogil=True, error_model="numpy")
def largest_eigenvalues(stack):  # pragma: no cover - compiled
    """λ_max of each symmetric matrix of the (B, n, n) float64 stack (not modified), computed on
    the matrix divided by its largest |entry| (no underflow in the reflectors); NaN where an entry is
    not finite."""
    count, n = stack.shape[0], stack.shape[1]
    out = np.empty(count)
    A = np.empty((n, n))
    d = np.empty(n)
    e = np.empty(max(n - 1, 1))
    v = np.empty(n)
    p = np.empty(n)
    for b in range(count):
        size = 0.0
        finite = True
        for i in range(n):
            for j in range(n):
                entry = abs(stack[b, i, j])
                finite = finite and entry < np.inf
                size = max(size, entry)
        if size == 0.0 or not finite:
            out[b] = 0.0 if finite else np.nan
            continue
        A[:, :] = stack[b] / size
        _tridiagonalize(A, d, e, v, p)
        out[b] = _largest_of_tridiagonal(d, e) * size
    return out
