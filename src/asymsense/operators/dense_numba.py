"""The fused numba kernel of the dense Gaussian step, at module level so that
numba's on-disk cache finds it again in every process. Imported by
`operators.gaussian` on first use only (importing this module imports numba).

`fused_step(G, scale, X, y, r, M, zero)` computes, for a batch X (B, N) and
G (m, N),

    r = scale·(G Xᵀ)ᵀ − y,        M = scale·(r G)

in ONE pass over G: row block i of G gives its residuals r[:, i] as soon as
its dot products are done, and its adjoint contribution r[:, i]ᵀ G[i] needs
the same rows, still in cache. OpenBLAS reads G twice per step (one GEMM
each way), and its GEMMs with a handful of rows (the demo's B = 6) run far
below the machine's peak; here each row block is read once from memory into
register tiles: `ROWS` rows × `TRIALS` trials, `WIDE_ROWS` × `WIDE_TRIALS`
from WIDE_FROM trials on, `PAIR` rows × 1 for one or two trials
(`_block_rows`, `_tile_trials`; `_dots` and `_axpy` call the tile's
intrinsics, which the residuals of `_finish_tile` separate).

The order of every operation is fixed, so the bits are the same on every
CPU (`lane_sums`: explicit 8-lane vectors and fused multiply-adds): each
residual is the dot product of `lane_sums.tile_dots` with its tail, times
`scale`, minus y; each gradient entry is the fma chain of `lane_sums.tile_axpy`
over all rows of G in ascending order, times `scale` at the end, so neither
sum depends on how rows and trials are tiled. (A fastmath kernel
let the compiler pick the order per CPU: a documented rounding-level result
moved between two machines of the same fleet.) `reference_step` is this
order in exact arithmetic, which tests/test_dense_kernels.py matches bit for
bit.

G may be float32 while X is float64: the dense Gaussian operator keeps its
unscaled float32 normals (exactly the values its float64 matrix was made
from, G₆₄ = fl(g₃₂·s)) and passes scale = s, so a float64 step reads 4 bytes
per entry instead of 8. Sums run in the type of `zero` (the trials' dtype);
against the BLAS path (another order, products by the rounded G₆₄) results
agree to rounding level, not bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from asymsense.operators.lane_sums import LANES, fma, reference_dot, reference_fma, tile_axpy, tile_dots, vector_registers

ROWS = 4
"""Rows of G per register tile."""
TRIALS = 6 if vector_registers() >= 32 else 3
"""Trials per register tile. With AVX-512's 32 vector registers, 4 × 6 (24
accumulators of 8 lanes, each 8-column block of G loaded once for 6 trials)
ran the step in 0.81–0.88× the time of 4 × 3 (Zen 4, one thread: B = 64
float32, n = 100, m = 10⁴, and the demo's B = 6 float64; 3 × 8: 0.85×,
4 × 8: 2.6×, it spills). With 16 registers (AVX2) 4 × 6 spills like 4 × 8
does here, so those CPUs keep 4 × 3. The tile does not change the bits (the
order of each sum is the same)."""
REST = 3
"""Trials of the tiles for a batch's remainder B mod TRIALS (then single trials)."""
PAIR = 2 * ROWS
"""Rows per block of a batch of fewer than REST trials: each trial in tiles of 8 rows × 1 trial
(8 streams of G in flight, half the passes over the gradient row). One trial's step took
0.92–0.97 (float32) and 0.86 (float64) of the time in 4-row blocks, two trials' 0.90 (Zen 4, one
thread, n = 100, m = 10⁴, medians of 11–15 interleaved pairs; for one trial 6 rows gave 0.94 and
0.89, 12 rows 0.96 and 0.83, 16 rows 1.19 and 0.85); 3–5 trials as two 4 × 3 tiles per 8 rows
1.00–1.05, so they keep the 4-row blocks. The bits are the same: every gradient entry is the fma
chain over G's rows in ascending order, however the rows are blocked."""
WIDE_ROWS, WIDE_TRIALS = 6, 4
"""The tile of batches of at least WIDE_FROM trials: 6 rows × 4 trials (24 accumulators, like
4 × 6), so X and the gradient rows, which such a batch streams from L3, are read once per 6 rows
of G instead of 4. Against 4 × 6 (Zen 4, one thread, n = 100, m = 10⁴, medians of 7–15
interleaved calls, 2026-12-03): float32 0.94 at 12 trials, 0.84 at 16, 1.00 at 24, 0.90 at 32
(float64 0.92), 0.98 at 48, 0.91–0.94 at 64, 0.96 at 96; 1.13 (float32) and 1.22 (float64) at the
demo's 6, where 4 × 6 is one whole tile. The bits are the same (the order of each sum does not
depend on the tile)."""
WIDE_FROM = 12 if vector_registers() >= 32 else 0
"""The fewest trials that take the WIDE_ROWS × WIDE_TRIALS tiles; 0 (never) with 16 vector
registers, where 24 accumulators spill."""

_dots_tile, _dots_rest, _dots_rows, _dots_one = tile_dots(ROWS, TRIALS), tile_dots(ROWS, REST), tile_dots(ROWS, 1), tile_dots(1, 1)
_axpy_tile, _axpy_rest, _axpy_rows, _axpy_one = tile_axpy(ROWS, TRIALS), tile_axpy(ROWS, REST), tile_axpy(ROWS, 1), tile_axpy(1, 1)
_dots_pair, _axpy_pair = tile_dots(PAIR, 1), tile_axpy(PAIR, 1)
_dots_wide, _dots_wide_rest, _dots_wide_one = tile_dots(WIDE_ROWS, WIDE_TRIALS), tile_dots(WIDE_ROWS, REST), tile_dots(WIDE_ROWS, 1)
_axpy_wide, _axpy_wide_rest, _axpy_wide_one = tile_axpy(WIDE_ROWS, WIDE_TRIALS), tile_axpy(WIDE_ROWS, REST), tile_axpy(WIDE_ROWS, 1)
TILE_ENTRIES = max(ROWS * TRIALS, WIDE_ROWS * WIDE_TRIALS, PAIR)


def whole_tile_trials(batch: int) -> int:
    """The trials of the whole register tiles in which a batch of `batch` trials
    runs (WIDE_TRIALS from WIDE_FROM trials on, else TRIALS): the unit in which
    to cut a batch into parts, so that no part ends in partial tiles it need not have."""
    return WIDE_TRIALS if WIDE_FROM > 0 and batch >= WIDE_FROM else TRIALS


@njit(cache=True, nogil=True, error_model="numpy")
def _block_rows(B, left):  # pragma: no cover - compiled
    """Rows of the next row block when `left` rows of G remain for a batch of B trials."""
    if B < REST and left >= PAIR:
        return PAIR
    if WIDE_FROM > 0 and B >= WIDE_FROM and left >= WIDE_ROWS:
        return WIDE_ROWS
    return ROWS if left >= ROWS else 1


@njit(cache=True, nogil=True, error_model="numpy")
def _tile_trials(rows, left):  # pragma: no cover - compiled
    """Trials of the next tile of a `rows`-row block when `left` trials remain: the
    block's whole tile, else REST, else one."""
    whole = WIDE_TRIALS if rows == WIDE_ROWS else TRIALS if rows == ROWS else 1
    if left >= whole:
        return whole
    return REST if left >= REST and rows in (ROWS, WIDE_ROWS) else 1


@njit(cache=True, nogil=True, error_model="numpy")
def _dots(G, i0, rows, X, b, trials, sums):  # pragma: no cover - compiled
    """The `tile_dots` of a rows × trials tile (a shape `_block_rows` and `_tile_trials` give)."""
    if rows == WIDE_ROWS:
        if trials == WIDE_TRIALS:
            _dots_wide(G, i0, X, b, sums)
        elif trials == REST:
            _dots_wide_rest(G, i0, X, b, sums)
        else:
            _dots_wide_one(G, i0, X, b, sums)
    elif rows == ROWS:
        if trials == TRIALS:
            _dots_tile(G, i0, X, b, sums)
        elif trials == REST:
            _dots_rest(G, i0, X, b, sums)
        else:
            _dots_rows(G, i0, X, b, sums)
    elif rows == PAIR:
        _dots_pair(G, i0, X, b, sums)
    else:
        _dots_one(G, i0, X, b, sums)


@njit(cache=True, nogil=True, error_model="numpy")
def _axpy(M, b, G, i0, rows, trials, coef):  # pragma: no cover - compiled
    """The `tile_axpy` of a rows × trials tile, as `_dots`."""
    if rows == WIDE_ROWS:
        if trials == WIDE_TRIALS:
            _axpy_wide(M, b, G, i0, coef)
        elif trials == REST:
            _axpy_wide_rest(M, b, G, i0, coef)
        else:
            _axpy_wide_one(M, b, G, i0, coef)
    elif rows == ROWS:
        if trials == TRIALS:
            _axpy_tile(M, b, G, i0, coef)
        elif trials == REST:
            _axpy_rest(M, b, G, i0, coef)
        else:
            _axpy_rows(M, b, G, i0, coef)
    elif rows == PAIR:
        _axpy_pair(M, b, G, i0, coef)
    else:
        _axpy_one(M, b, G, i0, coef)


@njit(cache=True, nogil=True, error_model="numpy")
def _finish(G, i, X, b, s, scale, y, r):  # pragma: no cover - compiled
    """r[b, i] = (s continued by fma over the tail j ≥ N₈) · scale − y[i]."""
    N = G.shape[1]
    for j in range(N - N % LANES, N):
        s = fma(G[i, j], X[b, j], s)
    r[b, i] = s * scale - y[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _finish_tile(G, i0, rows, X, b0, trials, sums, scale, y, r, coef):  # pragma: no cover - compiled
    """The residuals r[b0 + q, i0 + p] of a tile's sums (`_finish`), copied to coef[q·rows + p] for its adjoint."""
    for q in range(trials):
        for p in range(rows):
            _finish(G, i0 + p, X, b0 + q, sums[q * rows + p], scale, y, r)
            coef[q * rows + p] = r[b0 + q, i0 + p]


@njit(cache=True, nogil=True, error_model="numpy")
def fused_step(G, scale, X, y, r, M, zero):  # pragma: no cover - compiled
    m, N = G.shape
    B = X.shape[0]
    sums = np.empty(TILE_ENTRIES, dtype=M.dtype)
    coef = np.empty(TILE_ENTRIES, dtype=M.dtype)
    for b in range(B):
        for j in range(N):
            M[b, j] = zero
    i0 = 0
    while i0 < m:
        rows = _block_rows(B, m - i0)
        b = 0
        while b < B:
            trials = _tile_trials(rows, B - b)
            _dots(G, i0, rows, X, b, trials, sums)
            _finish_tile(G, i0, rows, X, b, trials, sums, scale, y, r, coef)
            _axpy(M, b, G, i0, rows, trials, coef)
            b += trials
        i0 += rows
    for b in range(B):
        for j in range(N):
            M[b, j] = M[b, j] * scale


def reference_step(G, scale, X, y, dtype):
    """(r, M) of `fused_step` operation by operation in exact arithmetic
    rounded once per operation (slow: small sizes, for tests)."""
    dtype = np.dtype(dtype)
    m, N = G.shape
    B = X.shape[0]
    scale = dtype.type(scale)
    Gs, Xs, ys = G.astype(dtype), np.asarray(X, dtype), np.asarray(y, dtype)
    r = np.empty((B, m), dtype)
    for b in range(B):
        for i in range(m):
            r[b, i] = reference_dot(Gs[i], Xs[b], dtype) * scale - ys[i]
    M = np.zeros((B, N), dtype)
    for b in range(B):
        for j in range(N):
            acc = M[b, j]
            for i in range(m):
                acc = reference_fma(r[b, i], Gs[i, j], acc, dtype)
            M[b, j] = acc
    return r, M * scale
