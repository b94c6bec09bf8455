"""The compiled kernels of `entry_kernels`, at module level so that numba's
on-disk cache finds them again in every process (kernels built inside a
function captured the prefetch intrinsic and each other as closure cells,
which hash differently in each process: every process compiled them again,
3–6 s). Imported by `entry_kernels` on first use only: importing this module
imports numba. What each kernel computes: `entry_kernels`.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from asymsense.operators.lane_sums import dot, fma

PREFETCH_AHEAD = 8
"""Entries ahead whose gathered row is prefetched (`llvm.prefetch`): the
row-major pass ran 2.2× faster with 8 than without (1.7× with 16, 1.2× with
32; 10⁷ entries, k = 64, load 7). A hint only: the results are the same bits."""

ahead = PREFETCH_AHEAD


@intrinsic
def prefetch(typingctx, arr, j, c):
    """prefetch(F, j, c): hint the cache line of F[j, c] (a no-op for the arithmetic)."""
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        index = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:])]
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, index)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        i32 = ir.IntType(32)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, j, c), codegen


@njit(inline="always")
def prefetch_ahead(F, indices, e, k, m):  # pragma: no cover - compiled
    """Hint the row F[indices[e + ahead]] (touched `ahead` entries later)."""
    if e + ahead < m:
        for c in range(0, k, 16):
            prefetch(F, indices[e + ahead], c)


@njit(inline="always")
def gathered_dot(U, i, V, indices, e, k, m):  # pragma: no cover - compiled
    """⟨U[i], V[indices[e]]⟩ in the fixed order of `lane_sums.dot`,
    prefetching the row gathered `ahead` entries later."""
    prefetch_ahead(V, indices, e, k, m)
    return dot(U[i], V[indices[e]])


@njit(parallel=True, cache=True, error_model="numpy")
def forward(U, V, indptr, indices, order, part_rows, out):  # pragma: no cover - compiled
    n_parts = part_rows.shape[0] - 1
    k = U.shape[1]
    m = indices.shape[0]
    for p in prange(n_parts):
        for i in range(part_rows[p], part_rows[p + 1]):
            for e in range(indptr[i], indptr[i + 1]):
                out[order[e]] = gathered_dot(U, i, V, indices, e, k, m)


@njit(parallel=True, cache=True, error_model="numpy")
def residual_rows(U, V, y, indptr, indices, order, blocks, r, fitted, MV):  # pragma: no cover - compiled
    k = U.shape[1]
    m = indices.shape[0]
    keep = fitted.shape[0] > 0
    for b in prange(blocks.shape[0] - 1):
        for i in range(blocks[b], blocks[b + 1]):
            a0, a1 = indptr[i], indptr[i + 1]
            for e in range(a0, a1):
                d = gathered_dot(U, i, V, indices, e, k, m)
                r[order[e]] = d - y[order[e]]
                if keep:
                    fitted[order[e]] = d
            row = MV[i]
            row[:] = 0
            for e in range(a0, a1):
                j = indices[e]
                w = r[order[e]]
                for c in range(k):
                    row[c] = fma(w, V[j, c], row[c])


@njit(parallel=True, cache=True, error_model="numpy")
def segment_products(z, F, indptr, indices, order, blocks, out):  # pragma: no cover - compiled
    k = F.shape[1]
    m = indices.shape[0]
    for b in prange(blocks.shape[0] - 1):
        for i in range(blocks[b], blocks[b + 1]):
            row = out[i]
            row[:] = 0
            for e in range(indptr[i], indptr[i + 1]):
                prefetch_ahead(F, indices, e, k, m)
                j = indices[e]
                w = z[order[e]]
                for c in range(k):
                    row[c] = fma(w, F[j, c], row[c])


@njit(parallel=True, cache=True, error_model="numpy")
def one_pass(S, G, y, indptr, n_seg, indices, order, parts, r, fitted, grad_S, grad_G, spare):  # pragma: no cover - compiled
    k = S.shape[1]
    m = indices.shape[0]
    keep = fitted.shape[0] > 0
    n_tiles = (indptr.shape[0] - 1) // n_seg
    for p in prange(parts.shape[0] - 1):
        acc = grad_G if p == 0 else spare[p - 1]
        acc[:] = 0
        for i in range(parts[p], parts[p + 1]):
            grad_S[i][:] = 0
    for t in range(n_tiles):
        for p in prange(parts.shape[0] - 1):
            acc = grad_G if p == 0 else spare[p - 1]
            for i in range(parts[p], parts[p + 1]):
                row = grad_S[i]
                base = t * n_seg + i
                for e in range(indptr[base], indptr[base + 1]):
                    prefetch_ahead(acc, indices, e, k, m)
                    d = gathered_dot(S, i, G, indices, e, k, m)
                    j = indices[e]
                    w = d - y[order[e]]
                    r[order[e]] = w
                    if keep:
                        fitted[order[e]] = d
                    for c in range(k):
                        row[c] = fma(w, G[j, c], row[c])
                        acc[j, c] = fma(w, S[i, c], acc[j, c])


@njit(parallel=True, cache=True)
def add_spares(out, spare, blocks):  # pragma: no cover - compiled
    k = out.shape[1]
    for b in prange(blocks.shape[0] - 1):
        for j in range(blocks[b], blocks[b + 1]):
            for p in range(spare.shape[0]):
                for c in range(k):
                    out[j, c] += spare[p, j, c]
