"""Sums of products in a fixed order for compiled kernels: the same bits on
every CPU. Imported by the numba kernel modules only (importing it imports
numba).

A loop `s += a[j]·b[j]` vectorizes only if the compiler may reassociate the
sum (fastmath), and then the order of the partial sums is what the compiler
chose for this CPU: the same kernel gave other bits on a Zen 4 than on a
Zen 5 (other vector widths and interleaving), and a documented
rounding-level number moved. Here the lanes and the fused multiply-adds are
written out as explicit LLVM vector operations, so every CPU performs the
same IEEE operations (LLVM splits or widens registers, never the arithmetic;
`fma(a, b, c)` is a·b + c rounded once, in hardware or emulated):

- `tile_dots(rows, trials)`: for rows a and b of length N, N₈ = N − N mod 8,
      lane l = fma(a[8t + l], b[8t + l], lane l)   for t = 0, 1, … (in order)
      S      = ((lane0 + lane4) + (lane2 + lane6)) + ((lane1 + lane5) + (lane3 + lane7)),
  and the kernel continues s = fma(a[j], b[j], s) for j = N₈ … N − 1 (`fma`);
- `dot(a, b)` for two contiguous 1-d arrays: S with its tail, the same
  value as `tile_dots` and a kernel's tail loop;
- `tile_axpy(rows, trials)`: M[b, j] = fma(c_{b,rows−1}, G[i_{rows−1}, j], … fma(c_{b,0}, G[i₀, j], M[b, j]) …),
  the chain over the rows in order, for every j (one chain per column: how many columns a
  vector holds does not change it).

Products of a float32 G with float64 operands are taken in float64 (the
conversion is exact). `reference_fma` and `reference_dot` are these orders
in exact rational arithmetic rounded once per operation (for tests: the
compiled kernels match them bit for bit).

numba's disk cache keys a kernel on its own file only: after editing this
module, touch the kernel modules that use it (dense_numba.py,
entry_numba.py, rng_numba.py) or clear their __pycache__, or the old
machine code is loaded.
"""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8


def _round(x: Fraction, dtype: np.dtype):
    """x rounded to nearest (ties to even) in `dtype`."""
    near = dtype.type(float(x))
    candidates = [near, np.nextafter(near, dtype.type(np.inf)), np.nextafter(near, dtype.type(-np.inf))]
    best = min(candidates, key=lambda c: (abs(Fraction(float(c)) - x), int(np.frombuffer(c.tobytes(), np.uint8)[0]) & 1))
    return dtype.type(best)


def reference_fma(a, b, c, dtype):
    """a·b + c rounded once in `dtype` (exact rationals; for tests)."""
    dtype = np.dtype(dtype)
    return _round(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)), dtype)


def reference_dot(a: np.ndarray, b: np.ndarray, dtype):
    """The dot product of `tile_dots` with its tail, operation by operation (for tests)."""
    dtype = np.dtype(dtype)
    a, b = np.asarray(a).astype(dtype), np.asarray(b).astype(dtype)
    full = len(a) - len(a) % LANES
    lane = [dtype.type(0)] * LANES
    for t in range(0, full, LANES):
        lane = [reference_fma(a[t + l], b[t + l], lane[l], dtype) for l in range(LANES)]
    s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]))
    for j in range(full, len(a)):
        s = reference_fma(a[j], b[j], s, dtype)
    return s


def vector_registers() -> int:
    """The vector registers of the CPU numba compiles for, which decide how
    large a register tile runs without spilling: 32 with AVX-512 (the host's
    features, or NUMBA_CPU_FEATURES where set), else 16; 16 also where
    NUMBA_CPU_NAME names another CPU without its features (not known here,
    and a tile too large for 16 registers ran 2.6× slower)."""
    from numba.core import config

    if config.CPU_FEATURES:
        return 32 if "+avx512f" in config.CPU_FEATURES.split(",") else 16
    if config.CPU_NAME not in (None, "host"):
        return 16
    import llvmlite.binding as llvm

    try:
        features = llvm.get_host_cpu_features()
    except RuntimeError:  # LLVM cannot read this host's features: assume the smaller register file
        return 16
    return 32 if features.get("avx512f", False) else 16


def _fma_function(builder, ty):
    name = "f64" if ty == ir.DoubleType() else "f32"
    if isinstance(ty, ir.VectorType):
        name = f"v{ty.count}" + ("f64" if ty.element == ir.DoubleType() else "f32")
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), f"llvm.fma.{name}")


@intrinsic
def fma(typingctx, a, b, c):
    """fma(a, b, c) = a·b + c rounded once, in the type of c (a, b converted, exactly when widening)."""
    sig = c(a, b, c)

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type)
        a_, b_ = (context.cast(builder, v, t, signature.return_type) for v, t in zip(args[:2], signature.args[:2]))
        return builder.call(_fma_function(builder, ty), [a_, b_, args[2]])

    return sig, codegen


def _tile(context, builder, signature, args, g_at: int, s_at: int, rows: int, trials: int) -> SimpleNamespace:
    """What both intrinsics start from: for the signature's G at position
    g_at (first row index after it) and the sum-typed (B, N) array at s_at
    (first row after it), pointers to G's `rows` rows and the other array's
    `trials` rows, the last argument's data, N, and the LLVM element and
    8-lane vector types with their alignments."""
    arrays = {at: context.make_array(signature.args[at])(context, builder, args[at]) for at in (g_at, s_at, 4)}
    first = {at: context.cast(builder, args[at + 1], signature.args[at + 1], types.intp) for at in (g_at, s_at)}
    n = cgutils.unpack_tuple(builder, arrays[g_at].shape, 2)[1]
    i64 = ir.IntType(64)

    def row_pointers(at, count):
        return [builder.gep(arrays[at].data, [builder.mul(builder.add(first[at], ir.Constant(i64, p)), n)]) for p in range(count)]

    g_el, s_el = context.get_value_type(signature.args[g_at].dtype), context.get_value_type(signature.args[s_at].dtype)
    return SimpleNamespace(g_rows=row_pointers(g_at, rows), s_rows=row_pointers(s_at, trials), last=arrays[4].data, n=n,
                           g_el=g_el, s_el=s_el, g_vec=ir.VectorType(g_el, LANES), s_vec=ir.VectorType(s_el, LANES),
                           g_align=context.get_abi_alignment(g_el), s_align=context.get_abi_alignment(s_el))


def _load(builder, row, offset, vec, align):
    return builder.load(builder.bitcast(builder.gep(row, [offset]), vec.as_pointer()), align=align)


def _tile_intrinsic(g_at: int, s_at: int, rows: int, trials: int, code):
    """An intrinsic of five arguments (two arrays each followed by its first
    row, then an output or coefficient array) whose LLVM code is
    `code(builder, tile)` with `tile` from `_tile`."""

    @intrinsic
    def kernel(typingctx, a0, a1, a2, a3, a4):
        if any(not isinstance(a, types.Array) or a.layout != "C" for a in (a0, a2, a4)):
            return None  # the row pointers assume C order: other layouts fail to compile, never compute

        def codegen(context, builder, signature, args):
            code(builder, _tile(context, builder, signature, args, g_at, s_at, rows, trials))
            return context.get_dummy_value()

        return types.void(a0, a1, a2, a3, a4), codegen

    return kernel


def _blocks(builder, n):
    """(N₈ / 8, N₈) for a length n: the number of whole 8-column blocks and the first tail column."""
    i64 = ir.IntType(64)
    count = builder.sdiv(n, ir.Constant(i64, LANES))
    return count, builder.mul(count, ir.Constant(i64, LANES))


def _widened(builder, values, ty):
    return [builder.fpext(v, ty) if v.type != ty else v for v in values]


def tile_dots(rows: int, trials: int):
    """An intrinsic `dots(G, i0, X, b0, out)` for C-contiguous G (m, N) and
    X (B, N) (G float32 or the type of X): out[q·rows + p] = S of row
    G[i0 + p] and X[b0 + q] over j < N₈, for p < rows, q < trials, each
    8-column block of G and X loaded once for all rows × trials accumulators.
    Sums in the type of X (and out)."""

    def code(builder, t):
        i64 = ir.IntType(64)
        slots = []
        for _ in range(rows * trials):
            slot = cgutils.alloca_once(builder, t.s_vec)
            builder.store(ir.Constant(t.s_vec, [0.0] * LANES), slot)
            slots.append(slot)
        fma_v = _fma_function(builder, t.s_vec)
        count, _ = _blocks(builder, t.n)
        with cgutils.for_range(builder, count) as loop:
            offset = builder.mul(loop.index, ir.Constant(i64, LANES))
            gv = _widened(builder, [_load(builder, row, offset, t.g_vec, t.g_align) for row in t.g_rows], t.s_vec)
            xv = [_load(builder, row, offset, t.s_vec, t.s_align) for row in t.s_rows]
            for q in range(trials):
                for p in range(rows):
                    slot = slots[q * rows + p]
                    builder.store(builder.call(fma_v, [gv[p], xv[q], builder.load(slot)]), slot)
        for index, slot in enumerate(slots):
            builder.store(_lane_tree(builder, builder.load(slot)), builder.gep(t.last, [ir.Constant(i64, index)]))

    return _tile_intrinsic(0, 2, rows, trials, code)


AXPY_BYTES = 64
"""Bytes per vector of `tile_axpy` where the CPU has 32 vector registers (AVX-512): 16 float32
or 8 float64 columns per fma. Each gradient entry is its own chain, so the width does not
change the bits, only how many columns one instruction (and one scheduler entry) carries.
With 16 registers the tile's broadcast coefficients would take twice the registers, so those
CPUs keep 8 lanes. With `_row_major` issue, the whole B = 64 float32 step (n = 100, m = 10⁴,
one thread, Zen 4, 2026-12-03) took 0.87–0.96× the time of 8 columns trial by trial (medians
of 21–31 interleaved calls in five runs; two copies of one kernel differed by 0.95–1.01× in
the same harness); the adjoint alone, 1.25× against 1.44× the sgemm bound."""


def _axpy_width(t) -> int:
    """Columns per vector of `tile_axpy` for this tile's sum type (see AXPY_BYTES)."""
    if vector_registers() < 32:
        return LANES
    return max(LANES, AXPY_BYTES // (4 if t.s_el == ir.FloatType() else 8))


def _row_major(rows: int, trials: int) -> bool:
    """Whether `tile_axpy` issues a rows × trials tile row-major: where its live registers
    (rows·trials broadcast coefficients, `trials` accumulators, one vector of G) leave at least
    3 of the CPU's vector registers free (the 6 × 4 tiles with 32: see AXPY_BYTES; float64
    B = 32 0.95×). The 4 × 6 tile leaves 1: row-major, the demo's float64 step (B = 6,
    m = 1455, N = 2400) took 1.08× the time of trial-major, so it stays trial-major (Zen 4,
    one thread, medians of 41 interleaved calls, 2026-12-03)."""
    return vector_registers() - (rows * trials + trials + 1) >= 3


def tile_axpy(rows: int, trials: int):
    """An intrinsic `axpy(M, b0, G, i0, coef)` for C-contiguous M (B, N) and
    G (m, N): for q < trials and every j, M[b0 + q, j] = the fma chain of
    `coef[q·rows + p]·G[i0 + p, j]` over p < rows in order, starting from
    M[b0 + q, j]; each vector of G loaded once for all trials.

    Where `_row_major`, the fmas are issued row-major (row p's for every
    trial before row p + 1's), so the `trials` independent chains of one
    vector interleave instead of each waiting on its own latency; else
    trial by trial. The vectors are `_axpy_width` columns wide, then single
    columns for the rest. Each chain's order is the same for any width and
    issue order."""

    def code(builder, t):
        i64, i32 = ir.IntType(64), ir.IntType(32)
        width = _axpy_width(t)
        s_vec, g_vec = ir.VectorType(t.s_el, width), ir.VectorType(t.g_el, width)
        coefs = [builder.load(builder.gep(t.last, [ir.Constant(i64, index)])) for index in range(rows * trials)]
        coef_v = []
        for c in coefs:
            vec = ir.Constant(s_vec, ir.Undefined)
            for lane in range(width):
                vec = builder.insert_element(vec, c, ir.Constant(i32, lane))
            coef_v.append(vec)
        fma_v, fma_s = _fma_function(builder, s_vec), _fma_function(builder, t.s_el)
        count = builder.sdiv(t.n, ir.Constant(i64, width))

        def store(acc, row, offset):
            builder.store(acc, builder.bitcast(builder.gep(row, [offset]), s_vec.as_pointer()), align=t.s_align)

        with cgutils.for_range(builder, count) as loop:
            offset = builder.mul(loop.index, ir.Constant(i64, width))
            if _row_major(rows, trials):
                acc = [_load(builder, row, offset, s_vec, t.s_align) for row in t.s_rows]
                for p, g_row in enumerate(t.g_rows):
                    gv = _widened(builder, [_load(builder, g_row, offset, g_vec, t.g_align)], s_vec)[0]
                    for q in range(trials):
                        acc[q] = builder.call(fma_v, [coef_v[q * rows + p], gv, acc[q]])
                for q, row in enumerate(t.s_rows):
                    store(acc[q], row, offset)
            else:
                gv = _widened(builder, [_load(builder, row, offset, g_vec, t.g_align) for row in t.g_rows], s_vec)
                for q, row in enumerate(t.s_rows):
                    acc = _load(builder, row, offset, s_vec, t.s_align)
                    for p in range(rows):
                        acc = builder.call(fma_v, [coef_v[q * rows + p], gv[p], acc])
                    store(acc, row, offset)
        with cgutils.for_range_slice(builder, builder.mul(count, ir.Constant(i64, width)), t.n, ir.Constant(i64, 1)) as (j, _):
            gs = _widened(builder, [builder.load(builder.gep(row, [j])) for row in t.g_rows], t.s_el)
            for q, row in enumerate(t.s_rows):
                ptr = builder.gep(row, [j])
                acc = builder.load(ptr)
                for p in range(rows):
                    acc = builder.call(fma_s, [coefs[q * rows + p], gs[p], acc])
                builder.store(acc, ptr)

    return _tile_intrinsic(2, 0, rows, trials, code)


def _lane_tree(builder, acc):
    """((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) of an 8-lane vector."""
    i32 = ir.IntType(32)
    lane = [builder.extract_element(acc, ir.Constant(i32, l)) for l in range(LANES)]
    return builder.fadd(builder.fadd(builder.fadd(lane[0], lane[4]), builder.fadd(lane[2], lane[6])),
                        builder.fadd(builder.fadd(lane[1], lane[5]), builder.fadd(lane[3], lane[7])))


def _array_lanes(context, builder, ty, ary, offset, vec):
    """The 8 entries ary[offset : offset + 8] of a 1-d array as a vector: one
    vector load where the array is C-contiguous, else 8 strided loads."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    if ty.layout == "C":
        return _load(builder, ary.data, offset, vec, context.get_abi_alignment(vec.element))
    out = ir.Constant(vec, ir.Undefined)
    for lane in range(LANES):
        index = builder.add(offset, ir.Constant(i64, lane))
        out = builder.insert_element(out, builder.load(cgutils.get_item_pointer(context, builder, ty, ary, [index])), ir.Constant(i32, lane))
    return out


@intrinsic
def dot(typingctx, a, b):
    """dot(a, b) of two 1-d float arrays of one length (any strides): S over
    j < N₈ (8 lanes of fmas, the tree), then s = fma(a[j], b[j], s) over
    the tail, in the type of b (a converted, exactly when widening)."""
    if not (isinstance(a, types.Array) and isinstance(b, types.Array) and a.ndim == b.ndim == 1):
        return None
    sig = b.dtype(a, b)

    def codegen(context, builder, signature, args):
        a_ty, b_ty = signature.args
        arr_a, arr_b = context.make_array(a_ty)(context, builder, args[0]), context.make_array(b_ty)(context, builder, args[1])
        n = cgutils.unpack_tuple(builder, arr_b.shape, 1)[0]
        i64 = ir.IntType(64)
        a_el, s_el = context.get_value_type(a_ty.dtype), context.get_value_type(b_ty.dtype)
        a_vec, s_vec = ir.VectorType(a_el, LANES), ir.VectorType(s_el, LANES)
        fma_v, fma_s = _fma_function(builder, s_vec), _fma_function(builder, s_el)
        slot = cgutils.alloca_once(builder, s_vec)
        builder.store(ir.Constant(s_vec, [0.0] * LANES), slot)
        count, full = _blocks(builder, n)
        with cgutils.for_range(builder, count) as loop:
            offset = builder.mul(loop.index, ir.Constant(i64, LANES))
            av = _widened(builder, [_array_lanes(context, builder, a_ty, arr_a, offset, a_vec)], s_vec)[0]
            bv = _array_lanes(context, builder, b_ty, arr_b, offset, s_vec)
            builder.store(builder.call(fma_v, [av, bv, builder.load(slot)]), slot)
        total = cgutils.alloca_once(builder, s_el)
        builder.store(_lane_tree(builder, builder.load(slot)), total)
        with cgutils.for_range_slice(builder, full, n, ir.Constant(i64, 1)) as (j, _):
            aj = _widened(builder, [builder.load(cgutils.get_item_pointer(context, builder, a_ty, arr_a, [j]))], s_el)[0]
            bj = builder.load(cgutils.get_item_pointer(context, builder, b_ty, arr_b, [j]))
            builder.store(builder.call(fma_s, [aj, bj, builder.load(total)]), total)
        return builder.load(total)

    return sig, codegen
