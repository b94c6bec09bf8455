"""Fused numba kernels for the entry-sampling (completion) step, with the
NumPy/SciPy path of `EntrySample` as the fallback where numba is absent.

For one trial, U (n1, k), V (n2, k) and the entries in CSR order by row
(`indptr`, `indices` = column of each entry, `order` = position of each entry
in the caller's measurement vector):

- `forward`:  out[e] = ⟨U[rows_e], V[cols_e]⟩, one pass over the rows: U's row
  is read once per row (a stream), V's rows are gathered.
- `segment_products`: (A*(z)V)_i = Σ_{e in row i} z_e V[cols_e] with the row
  pattern, (A*(z)ᵀU)_j = Σ_{e in column j} z_e U[rows_e] with the column
  pattern (CSC): every output row is summed by one thread, entry by entry in
  the pattern's order. No scatter, no per-thread accumulators, no
  intermediate array of size |Ω|·k.
- `residual_gradient`: the whole gradient step in two passes (two random
  gathers per entry, the least for a step that needs both
  ⟨U_i, V_j⟩ and the two sums): over the rows, row i's residuals
  r_e = ⟨U_i, V[cols_e]⟩ − y_e and then (A*(r)V)_i from the same V rows, still
  in L1; over the columns, (A*(r)ᵀU)_j. The forward-then-gradient path gathers
  V twice.
- `one_pass_step`: the whole step in ONE pass over the segments of the longer
  side (rows of U when n1 ≥ n2): the streamed factor's rows are read once,
  the other factor's rows gathered once, and that factor's gradient rows
  accumulated by scatter, one array per part of a fixed partition of the
  segments (the parts are then added in a fixed order). No random gather of
  the longer factor and no random read of the residuals, the CSC pass's two
  random streams; `EntrySample` takes it when the gathered factor is
  cache-sized (SCATTER_BYTES).

The passes run `prange` over blocks of consecutive rows (columns) of about
equal entry counts. Each output row belongs to one block (or, for the one
pass's scattered side, is a fixed-order sum over the fixed parts) and is
summed in a fixed order, so the result does not depend on the number of
threads or the scheduling. Sums run in the factors' dtype; against the SciPy path (whose
sums run in another order) float32 results agree to about 1e-7 relative
(tests/test_entry_kernels.py checks 1e-6).

numba is optional (`pip install asymsense[fast]`); `available()` tells
whether the kernels can run. Importing this module never imports numba: the
first call does (and compiles, cached on disk).
"""

from __future__ import annotations

import numpy as np

from asymsense.backend import numba_enabled

_KERNELS = None


def available() -> bool:
    """True when the compiled kernels are on (`backend.numba_enabled`) and build."""
    if not numba_enabled():
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

    from asymsense.operators import entry_numba as k

    return {"numba": numba, "forward": k.forward, "residual_rows": k.residual_rows, "segment_products": k.segment_products,
            "one_pass": k.one_pass, "add_spares": k.add_spares}


def forward(U, V, indptr, indices, order, part_rows, out):
    """out[order[e]] = ⟨U[i], V[indices[e]]⟩ for the entries e of each row i."""
    _kernels()["forward"](U, V, indptr, indices, order, part_rows, out)
    return out


def segment_products(z, F, pattern, blocks, out):
    """out[i] = Σ_{e in segment i} z[order[e]] · F[indices[e]] for a CSR
    `pattern` = (order, indptr, indices): A*(z)V with the row pattern and F = V,
    A*(z)ᵀU with the column pattern and F = U."""
    order, indptr, indices = pattern
    _kernels()["segment_products"](z, F, indptr, indices, order, blocks, out)
    return out


def residual_gradient(U, V, y, by_row, by_col, row_blocks, col_blocks, out=None, fitted=None):
    """r = A(UVᵀ) − y and (A*(r)V, A*(r)ᵀU): one pass over the rows for r and
    A*(r)V (each row's V rows gathered once, used for its residuals and, still
    in L1, for its gradient row), one pass over the columns for A*(r)ᵀU.
    `out` = (r, MV, MtU) arrays to write into (every element is written);
    `fitted`, when given, receives A(UVᵀ) itself (the bits `forward` gives)."""
    kernels = _kernels()
    order, indptr, indices = by_row
    r, MV, MtU = out if out is not None else (np.empty(order.shape[0], dtype=U.dtype), np.empty_like(U), np.empty_like(V))
    fit = fitted if fitted is not None else np.empty(0, dtype=U.dtype)
    kernels["residual_rows"](U, V, y, indptr, indices, order, row_blocks, r, fit, MV)
    segment_products(r, U, by_col, col_blocks, MtU)
    return r, MV, MtU


def one_pass_step(S, G, y, pattern, parts, blocks, out, spare, fitted=None):
    """r = A(UVᵀ) − y and both gradient products in ONE pass over the
    segments of `pattern` (rows with S = U, G = V; columns with S = V, G = U):
    S's rows are streamed, G's rows gathered, and (A*(r)...)'s G-side rows
    accumulated by scatter into one array per part of `parts` (fixed, so the
    bits do not depend on the threads); `spare` holds parts 1…P−1, added into
    part 0 = out[2] over the row blocks `blocks` of G. out = (r, grad_S, grad_G).

    `pattern` = (order, indptr, indices) may be tiled: indptr of length
    T·n_seg + 1, segment i of tile t at indptr[t·n_seg + i]…indptr[t·n_seg + i + 1],
    tile t holding the entries whose G row lies in the t-th of T equal slices
    of G. The pass runs tile by tile, so the G rows it gathers and scatters
    into stay within one slice (cache-sized) at a time; S's rows are streamed
    once per tile. Every output is summed in the same order for any T (a
    segment's entries keep their order across tiles; a G row lies in one
    tile): the same bits as T = 1."""
    kernels = _kernels()
    order, indptr, indices = pattern
    r, grad_S, grad_G = out
    fit = fitted if fitted is not None else np.empty(0, dtype=S.dtype)
    kernels["one_pass"](S, G, y, indptr, grad_S.shape[0], indices, order, parts, r, fit, grad_S, grad_G, spare)
    if spare.shape[0]:
        kernels["add_spares"](grad_G, spare, blocks)
    return r, grad_S, grad_G
