"""Fused numba kernels for the entry-sampling (completion) step, with the
NumPy/SciPy path of `EntrySample` as the fallback where numba is absent.

For one trial, U (n1, k), V (n2, k) and the entries in CSR order by row
(`indptr`, `indices` = column of each entry, `order` = position of each entry
in the caller's measurement vector):

- `forward`:  out[e] = ⟨U[rows_e], V[cols_e]⟩, one pass over the rows: U's row
  is read once per row (a stream), V's rows are gathered.
- `gradient`: A*(z)V and A*(z)ᵀU in ONE pass over the rows: row i's
  (A*(z)V)_i = Σ_e z_e V[cols_e] (gather) and (A*(z)ᵀU)_{cols_e} += z_e U_i
  (scatter into a private (n2, k) accumulator per part, summed at the end).
  No intermediate array of size |Ω|·k.

Rows are split into `n_parts` contiguous ranges of about equal entry counts
(`prange` over the parts), so the summation order — and the result — depends
only on the number of parts, never on the scheduling. Sums run in the
factors' dtype, entry by entry in CSR order; against the SciPy path (whose
sums run in another order) float32 results agree to about 1e-7 relative
(tests/test_operators.py checks 1e-6).

numba is optional (`pip install asymsense[fast]`); `available()` tells
whether the kernels can run. Importing this module never imports numba: the
first call does (and compiles, cached on disk).
"""

from __future__ import annotations

import os

import numpy as np

_KERNELS = None
DISABLE_ENV = "ASYMSENSE_NO_NUMBA"
"""Set this environment variable (to anything non-empty) to force the NumPy path."""


def available() -> bool:
    """True when numba imports and ASYMSENSE_NO_NUMBA is not set."""
    if os.environ.get(DISABLE_ENV):
        return False
    try:
        _kernels()
    except ImportError:
        return False
    return True


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _build()
    return _KERNELS


def _build():
    import numba
    from numba import njit, prange

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def forward(U, V, indptr, indices, order, part_rows, out):  # pragma: no cover - compiled
        n_parts = part_rows.shape[0] - 1
        k = U.shape[1]
        for p in prange(n_parts):
            for i in range(part_rows[p], part_rows[p + 1]):
                for e in range(indptr[i], indptr[i + 1]):
                    j = indices[e]
                    acc = U[i, 0] * V[j, 0]
                    for c in range(1, k):
                        acc += U[i, c] * V[j, c]
                    out[order[e]] = acc

    @njit(parallel=True, cache=True, fastmath={"contract"})
    def gradient(z, U, V, indptr, indices, order, part_rows, MV, parts):  # pragma: no cover - compiled
        n_parts = part_rows.shape[0] - 1
        k = U.shape[1]
        for p in prange(n_parts):
            acc_t = parts[p]
            acc_t[:, :] = 0
            for i in range(part_rows[p], part_rows[p + 1]):
                row = MV[i]
                row[:] = 0
                for e in range(indptr[i], indptr[i + 1]):
                    j = indices[e]
                    w = z[order[e]]
                    for c in range(k):
                        row[c] += w * V[j, c]
                        acc_t[j, c] += w * U[i, c]

    @njit(parallel=True, cache=True)
    def sum_parts(parts, out):  # pragma: no cover - compiled
        n_parts, n, k = parts.shape
        for j in prange(n):
            for c in range(k):
                s = parts[0, j, c]
                for p in range(1, n_parts):
                    s += parts[p, j, c]
                out[j, c] = s

    return {"numba": numba, "forward": forward, "gradient": gradient, "sum_parts": sum_parts}


def forward(U, V, indptr, indices, order, part_rows, out):
    """out[order[e]] = ⟨U[i], V[indices[e]]⟩ for the entries e of each row i."""
    _kernels()["forward"](U, V, indptr, indices, order, part_rows, out)
    return out


def gradient(z, U, V, indptr, indices, order, part_rows, parts=None):
    """(A*(z)V, A*(z)ᵀU) in one CSR pass; `parts` is an optional (n_parts, n2, k)
    scratch array reused between calls."""
    k = _kernels()
    n_parts = len(part_rows) - 1
    MV = np.empty_like(U)
    if parts is None or parts.shape != (n_parts,) + V.shape or parts.dtype != V.dtype:
        parts = np.empty((n_parts,) + V.shape, dtype=V.dtype)
    k["gradient"](z, U, V, indptr, indices, order, part_rows, MV, parts)
    if n_parts == 1:
        return MV, parts[0].copy(), parts
    MtU = np.empty_like(V)
    k["sum_parts"](parts, MtU)
    return MV, MtU, parts
