"""The compiled kernels of `rng_kernels`, at module level so that numba's
on-disk cache finds them again in every process (see entry_numba). Imported by
`rng_kernels` on first use only: importing this module imports numba. What
each kernel computes: `rng_kernels`.

`sfc64_lanes` runs the SFC64 recurrence of 8 chunks at once in 512-bit
vectors (one chunk a lane; numba's loop vectorizer leaves a loop of 8 lanes
scalar, so the vector code is written out in LLVM IR), transposes each 8×8
block of words in registers (three rounds of shuffles) and writes every
chunk's float32 Box–Muller inputs contiguously: 10 µs instead of 30 µs for a
chunk of 6·10⁴ entries (one core of the reference machine). The scalar loop
does the chunks, and the last words of a chunk, that do not fill 8 lanes.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from asymsense.operators.lane_sums import dot

LANES = 8

_PAIRS = ([0, 8, 2, 10, 4, 12, 6, 14], [1, 9, 3, 11, 5, 13, 7, 15])
_QUADS = ([0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15])
_HALVES = ([0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15])


def _transpose(builder, rows):
    """The 8×8 transpose of 8 vectors: out[l][s] = rows[s][l]."""
    mask = lambda m: ir.Constant(ir.VectorType(ir.IntType(32), LANES), m)  # noqa: E731
    x = [None] * 8
    for p in range(4):
        x[2 * p] = builder.shuffle_vector(rows[2 * p], rows[2 * p + 1], mask(_PAIRS[0]))
        x[2 * p + 1] = builder.shuffle_vector(rows[2 * p], rows[2 * p + 1], mask(_PAIRS[1]))
    y = [None] * 8
    for a in (0, 1, 4, 5):
        y[a] = builder.shuffle_vector(x[a], x[a + 2], mask(_QUADS[0]))
        y[a + 2] = builder.shuffle_vector(x[a], x[a + 2], mask(_QUADS[1]))
    z = [None] * 8
    for a in range(4):
        z[a] = builder.shuffle_vector(y[a], y[a + 4], mask(_HALVES[0]))
        z[a + 4] = builder.shuffle_vector(y[a], y[a + 4], mask(_HALVES[1]))
    return z


@intrinsic
def sfc64_lanes(typingctx, st, radius, theta, base, stride, steps, half, unit, angle):
    """For lanes l < 8 with SFC64 states st = (a[8], b[8], c[8], counter[8])
    (advanced in place): 8·steps words w of each lane, written as
    radius[base + l·stride + i] = (⌊wᵢ/2⁴⁰⌋ + half)·unit and
    theta[base + l·stride + i] = (wᵢ mod 2²⁴)·angle (float32, the scalar
    kernel's operations: exact integer conversions, one add and one multiply,
    no contraction)."""
    sig = types.void(st, radius, theta, base, stride, steps, half, unit, angle)

    def codegen(context, builder, signature, args):
        st_a, r_a, t_a = (context.make_array(ty)(context, builder, v) for ty, v in zip(signature.args[:3], args[:3]))
        base, stride, steps = (context.cast(builder, v, ty, types.intp) for v, ty in zip(args[3:6], signature.args[3:6]))
        half, unit, angle = args[6:9]
        i64, i32, f32 = ir.IntType(64), ir.IntType(32), ir.FloatType()
        v64, v32, vf = ir.VectorType(i64, LANES), ir.VectorType(i32, LANES), ir.VectorType(f32, LANES)
        splat = lambda v: ir.Constant(v64, [v] * LANES)  # noqa: E731

        def fsplat(x):
            vec = ir.Constant(vf, ir.Undefined)
            for lane in range(LANES):
                vec = builder.insert_element(vec, x, ir.Constant(i32, lane))
            return vec

        half_v, unit_v, angle_v = fsplat(half), fsplat(unit), fsplat(angle)
        state = builder.bitcast(st_a.data, v64.as_pointer())
        slots = []
        for q in range(4):
            slot = cgutils.alloca_once(builder, v64)
            builder.store(builder.load(builder.gep(state, [ir.Constant(i64, q)]), align=8), slot)
            slots.append(slot)
        lane_base = [builder.add(base, builder.mul(stride, ir.Constant(i64, lane))) for lane in range(LANES)]
        with cgutils.for_range(builder, steps) as loop:
            a, b, c, d = (builder.load(s) for s in slots)
            words = []
            for _ in range(LANES):
                tmp = builder.add(builder.add(a, b), d)
                d = builder.add(d, splat(1))
                a, b, c = (builder.xor(b, builder.lshr(b, splat(11))), builder.add(c, builder.shl(c, splat(3))),
                           builder.add(builder.or_(builder.shl(c, splat(24)), builder.lshr(c, splat(40))), tmp))
                words.append(tmp)
            for slot, value in zip(slots, (a, b, c, d)):
                builder.store(value, slot)
            offset = builder.mul(loop.index, ir.Constant(i64, LANES))
            for lane, w in enumerate(_transpose(builder, words)):
                high = builder.sitofp(builder.trunc(builder.lshr(w, splat(40)), v32), vf)
                low = builder.sitofp(builder.trunc(builder.and_(w, splat(0xFFFFFF)), v32), vf)
                at = builder.add(lane_base[lane], offset)
                builder.store(builder.fmul(builder.fadd(high, half_v), unit_v), builder.bitcast(builder.gep(r_a.data, [at]), vf.as_pointer()), align=4)
                builder.store(builder.fmul(low, angle_v), builder.bitcast(builder.gep(t_a.data, [at]), vf.as_pointer()), align=4)
        for q in range(4):
            builder.store(builder.load(slots[q]), builder.gep(state, [ir.Constant(i64, q)]), align=8)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def _scalar(states, j, radius, theta, start, count, half, unit, angle):  # pragma: no cover - compiled
    one, s11, s3, s24, s40 = np.uint64(1), np.uint64(11), np.uint64(3), np.uint64(24), np.uint64(40)
    low = np.uint64(0xFFFFFF)
    r = radius[start:start + count]
    t = theta[start:start + count]
    a, b, c, d = states[j, 0], states[j, 1], states[j, 2], states[j, 3]
    for i in range(count):
        tmp = a + b + d
        d += one
        a = b ^ (b >> s11)
        b = c + (c << s3)
        c = ((c << s24) | (c >> s40)) + tmp
        # both fields are below 2²⁴: exact through int32 (a cheaper conversion than from uint64)
        r[i] = (np.float32(np.int32(tmp >> s40)) + half) * unit
        t[i] = np.float32(np.int32(tmp & low)) * angle
    states[j, 0], states[j, 1], states[j, 2], states[j, 3] = a, b, c, d


@njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def fill(states, entries, total, radius, theta, half, unit, angle):  # pragma: no cover - compiled
    pairs = (entries + 1) // 2
    n = states.shape[0]
    full = min(n, total // entries)
    steps = pairs // LANES
    st = np.empty(4 * LANES, dtype=np.uint64)
    j = 0
    while steps > 0 and j + LANES <= full:
        for lane in range(LANES):
            for q in range(4):
                st[q * LANES + lane] = states[j + lane, q]
        sfc64_lanes(st, radius, theta, j * pairs, pairs, steps, half, unit, angle)
        for lane in range(LANES):
            for q in range(4):
                states[j + lane, q] = st[q * LANES + lane]
            _scalar(states, j + lane, radius, theta, (j + lane) * pairs + steps * LANES, pairs - steps * LANES, half, unit, angle)
        j += LANES
    for jj in range(j, n):
        _scalar(states, jj, radius, theta, jj * pairs, (min(entries, total - jj * entries) + 1) // 2, half, unit, angle)


@njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def axpy_rows(G, coef, acc):  # pragma: no cover - compiled
    rows, n = G.shape
    i = 0
    while i + 4 <= rows:
        c0, c1, c2, c3 = coef[i], coef[i + 1], coef[i + 2], coef[i + 3]
        g0, g1, g2, g3 = G[i], G[i + 1], G[i + 2], G[i + 3]
        for k in range(n):
            acc[k] = (((acc[k] + c0 * g0[k]) + c1 * g1[k]) + c2 * g2[k]) + c3 * g3[k]
        i += 4
    while i < rows:
        c, g = coef[i], G[i]
        for k in range(n):
            acc[k] = acc[k] + c * g[k]
        i += 1


@njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def combine(log_radius, cosine, sine, entries, total, out, n_cols, x, scale, y, r, acc, mode):  # pragma: no cover - compiled
    pairs = (entries + 1) // 2
    minus_two = np.float32(-2.0)
    for j in range((total + entries - 1) // entries):
        e = min(entries, total - j * entries)
        h = (e + 1) // 2
        # slices, not offsets into the whole arrays: LLVM vectorizes these loops (4x faster here)
        lr, co, si = log_radius[j * pairs:j * pairs + h], cosine[j * pairs:j * pairs + h], sine[j * pairs:j * pairs + h]
        first = out[j * entries:j * entries + h]
        for i in range(h):
            first[i] = np.sqrt(minus_two * lr[i]) * co[i]
        second = out[j * entries + h:j * entries + e]
        for i in range(e - h):
            second[i] = np.sqrt(minus_two * lr[i]) * si[i]
        if mode == 0:
            continue
        # the chunk's rows, still in cache: their products with x (modes 1, 2), residuals (2) and adjoint part (2, 3)
        first_row, last_row = j * entries // n_cols, (j * entries + e) // n_cols
        for row in range(first_row, last_row if mode != 3 else first_row):
            d = dot(out[row * n_cols:(row + 1) * n_cols], x)
            if mode == 1:
                r[row] = d
            else:
                f = d * scale
                r[row] = f - y[row]
        if mode >= 2:
            axpy_rows(out[first_row * n_cols:last_row * n_cols].reshape(last_row - first_row, n_cols), r[first_row:last_row], acc)


@njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def apply_loop(loop, x, out):  # pragma: no cover - compiled
    # NumPy's inner-loop convention: loop(char **args, npy_intp *dimensions, npy_intp *steps, void *data)
    args = np.empty(2, dtype=np.uint64)
    sizes = np.empty(1, dtype=np.int64)
    steps = np.full(2, 4, dtype=np.int64)
    args[0], args[1], sizes[0] = x.ctypes.data, out.ctypes.data, x.shape[0]
    loop(args.ctypes.data, sizes.ctypes.data, steps.ctypes.data, 0)


@njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def generate(states, entries, total, radius, theta, sine, half, unit, angle, log, sin, cos,
             out, n_cols, x, scale, y, r, acc, mode):  # pragma: no cover - compiled
    fill(states, entries, total, radius, theta, half, unit, angle)
    apply_loop(log, radius, radius)
    apply_loop(sin, theta, sine)
    apply_loop(cos, theta, theta)
    combine(radius, theta, sine, entries, total, out, n_cols, x, scale, y, r, acc, mode)


@njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def stream_blocks(table, blocks, start, step, entries, n_cols, radius, theta, sine, G, half, unit, angle, log, sin, cos,
                  x, scale, y, r, row0, acc, mode):  # pragma: no cover - compiled
    pairs = (entries + 1) // 2
    for s in range(start, blocks.shape[0], step):
        first, last, a, b = blocks[s, 0], blocks[s, 1], blocks[s, 2], blocks[s, 3]
        n = last - first
        total = (b - a) * n_cols
        size = (n - 1) * pairs + (total - (n - 1) * entries + 1) // 2
        generate(table[first:last].copy(), entries, total, radius[:size], theta[:size], sine[:size], half, unit, angle, log, sin, cos,
                 G[:total], n_cols, x, scale, y[a - row0:b - row0], r[a - row0:b - row0], acc, mode)
