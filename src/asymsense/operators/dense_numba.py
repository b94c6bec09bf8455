"""The fused numba kernel of the dense Gaussian step, at module level so that
numba's on-disk cache finds it again in every process. Imported by
`operators.gaussian` on first use only (importing this module imports numba).

`fused_step(G, scale, X, y, r, M, zero)` computes, for a batch X (B, N) and
G (m, N),

    r = scale·(G Xᵀ)ᵀ − y,        M = scale·(r G)

in ONE pass over G: row block i of G (4 rows) gives its residuals r[:, i]
as soon as its dot products are done, and its adjoint contribution
r[:, i]ᵀ G[i] needs the same rows, still in cache. OpenBLAS reads G twice
per step (one GEMM each way), and its GEMMs with a handful of rows (the demo's
B = 6) run far below the machine's peak; here each row block is read once
from memory and the register tiles (4 rows × 3 trials, 12 accumulators) keep
the FMA units busy with AVX-512 where the CPU has it.

G may be float32 while X is float64: the dense Gaussian operator keeps its
unscaled float32 normals (exactly the values its float64 matrix was made
from, G₆₄ = fl(g₃₂·s)) and passes scale = s, so a float64 step reads 4 bytes
per entry instead of 8. Sums run in the type of `zero` (the trials' dtype)
and in another order than OpenBLAS's (fastmath reassociation, products by
the unrounded g₃₂ and one scaling at the end), so results agree with the
BLAS path to rounding level, not bit for bit (tests/test_dense_kernels.py).
"""

from __future__ import annotations

from numba import njit

ROWS = 4
"""Rows of G per register tile."""
TRIALS = 3
"""Trials per register tile: 4 × 3 accumulators plus 7 loads per 12 FMAs
fit the 32 vector registers; a 4 × 6 tile spilled and ran 1.4× slower here."""


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def fused_step(G, scale, X, y, r, M, zero):  # pragma: no cover - compiled
    m, N = G.shape
    B = X.shape[0]
    for b in range(B):
        for j in range(N):
            M[b, j] = zero
    i0 = 0
    while i0 + 4 <= m:
        g0, g1, g2, g3 = G[i0], G[i0 + 1], G[i0 + 2], G[i0 + 3]
        b = 0
        while b + 3 <= B:
            xa, xb, xc = X[b], X[b + 1], X[b + 2]
            s0a = s1a = s2a = s3a = zero
            s0b = s1b = s2b = s3b = zero
            s0c = s1c = s2c = s3c = zero
            for j in range(N):
                a0, a1, a2, a3 = g0[j], g1[j], g2[j], g3[j]
                va, vb, vc = xa[j], xb[j], xc[j]
                s0a, s1a, s2a, s3a = s0a + a0 * va, s1a + a1 * va, s2a + a2 * va, s3a + a3 * va
                s0b, s1b, s2b, s3b = s0b + a0 * vb, s1b + a1 * vb, s2b + a2 * vb, s3b + a3 * vb
                s0c, s1c, s2c, s3c = s0c + a0 * vc, s1c + a1 * vc, s2c + a2 * vc, s3c + a3 * vc
            sums = (s0a, s1a, s2a, s3a, s0b, s1b, s2b, s3b, s0c, s1c, s2c, s3c)
            for q in range(3):
                for p in range(4):
                    r[b + q, i0 + p] = sums[4 * q + p] * scale - y[i0 + p]
            b += 3
        while b < B:
            xa = X[b]
            s0a = s1a = s2a = s3a = zero
            for j in range(N):
                va = xa[j]
                s0a += g0[j] * va
                s1a += g1[j] * va
                s2a += g2[j] * va
                s3a += g3[j] * va
            sums1 = (s0a, s1a, s2a, s3a)
            for p in range(4):
                r[b, i0 + p] = sums1[p] * scale - y[i0 + p]
            b += 1
        b = 0
        while b + 3 <= B:
            ma, mb, mc = M[b], M[b + 1], M[b + 2]
            c0a, c1a, c2a, c3a = r[b, i0], r[b, i0 + 1], r[b, i0 + 2], r[b, i0 + 3]
            c0b, c1b, c2b, c3b = r[b + 1, i0], r[b + 1, i0 + 1], r[b + 1, i0 + 2], r[b + 1, i0 + 3]
            c0c, c1c, c2c, c3c = r[b + 2, i0], r[b + 2, i0 + 1], r[b + 2, i0 + 2], r[b + 2, i0 + 3]
            for j in range(N):
                a0, a1, a2, a3 = g0[j], g1[j], g2[j], g3[j]
                ma[j] += c0a * a0 + c1a * a1 + c2a * a2 + c3a * a3
                mb[j] += c0b * a0 + c1b * a1 + c2b * a2 + c3b * a3
                mc[j] += c0c * a0 + c1c * a1 + c2c * a2 + c3c * a3
            b += 3
        while b < B:
            ma = M[b]
            c0a, c1a, c2a, c3a = r[b, i0], r[b, i0 + 1], r[b, i0 + 2], r[b, i0 + 3]
            for j in range(N):
                ma[j] += c0a * g0[j] + c1a * g1[j] + c2a * g2[j] + c3a * g3[j]
            b += 1
        i0 += 4
    for i in range(i0, m):
        gi = G[i]
        for b in range(B):
            xb_ = X[b]
            s = zero
            for j in range(N):
                s += gi[j] * xb_[j]
            r[b, i] = s * scale - y[i]
            c = r[b, i]
            mb_ = M[b]
            for j in range(N):
                mb_[j] += c * gi[j]
    for b in range(B):
        for j in range(N):
            M[b, j] *= scale
