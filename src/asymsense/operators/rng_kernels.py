"""numba kernels for the Gaussian operator's Box–Muller draws
(operators/gaussian: `standard_normal_fill`, `fill_chunks`, `StreamGaussian`),
used when numba is installed.

`sfc64_box_muller_inputs` runs NumPy's SFC64 recurrence
(tmp = a + b + counter++; a = b ⊕ (b ≫ 11); b = c + (c ≪ 3); c = rotl(c, 24) + tmp;
the word is tmp) for several chunks in one call, each from its own state
(a row of a states array: no `bit_generator.state` dict round trips; 8 chunks
at a time in vector lanes, rng_numba), and writes, for each word w, the
float32 values (⌊w/2⁴⁰⌋ + ½)·2⁻²⁴ and (w mod 2²⁴)·(2π·2⁻²⁴): the same float32
operations, in the same order, as the NumPy path (integers below 2²⁴ convert
exactly; one add, one multiply each, no fused multiply–add), so the values
are bit for bit those of `random_raw` followed by the NumPy ufuncs. ln, sin
and cos are NumPy's own float32 ufunc loops (their SIMD approximations cannot
be reproduced here bit for bit): called from the kernel through their C
function pointers (`numpy_loops`, checked against the ufuncs on every input
the generator can produce) or, where that is not possible, as ufuncs from
Python. `box_muller_combine` then does the correctly rounded rest (−2·ln u₁,
√, the products), writes the entries in the operator's dtype and, for the
matrix-free operator's one-trial products, each row's product with x (and
its residual and adjoint part) while the chunk is in cache.

What it saves: the fresh array of raw words per chunk (page faults), the
passes of shifts, masks, casts and scalings, the float32 staging copy of a
float64 chunk, the Python work per chunk and, with `stream_blocks`, every GIL
hand-over between a step's two generator threads (the kernels release the
GIL; the threads run them at the same time)."""

from __future__ import annotations

import ctypes

import numpy as np

from asymsense.operators import entry_kernels

_KERNELS = None
_LOOPS = []


def available() -> bool:
    """True when numba imports (and ASYMSENSE_NO_NUMBA is not set)."""
    return entry_kernels.available()


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        from asymsense.operators import rng_numba

        _KERNELS = rng_numba.fill, rng_numba.combine, rng_numba.axpy_rows, rng_numba.generate, rng_numba.apply_loop, rng_numba.stream_blocks
    return _KERNELS


class _UFuncHead(ctypes.Structure):
    """The leading fields of NumPy's PyUFuncObject (numpy/ufuncobject.h, unchanged since NumPy 1.0)."""
    _fields_ = [("refcount", ctypes.c_ssize_t), ("type", ctypes.c_void_p), ("nin", ctypes.c_int), ("nout", ctypes.c_int),
                ("nargs", ctypes.c_int), ("identity", ctypes.c_int), ("functions", ctypes.POINTER(ctypes.c_void_p)),
                ("data", ctypes.POINTER(ctypes.c_void_p)), ("ntypes", ctypes.c_int), ("reserved1", ctypes.c_int),
                ("name", ctypes.c_char_p)]


_LOOP = ctypes.CFUNCTYPE(None, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t)


def numpy_loops():
    """NumPy's own float32 inner loops of ln, sin and cos (the C functions
    `np.log` etc. run for float32 arrays), callable from the numba kernels, so
    a whole superchunk is generated in one call that holds no GIL (two
    generator threads otherwise hand the GIL over five times a superchunk, and
    each hand-over can stall a few ms); None where they cannot be used.

    Used only after checks that make the values NumPy's by construction and by
    test: the ufunc structure reads as expected (name, one input, one output,
    as many loops as `types`), the loop for "f->f" is the one the ufunc picks,
    its data pointer is NULL, and on every possible input of the generator
    (ln of (k + ½)·2⁻²⁴ and sin, cos of k·2π·2⁻²⁴, all k < 2²⁴, about 0.2 s once
    per process) it gives the ufunc's bits."""
    if not _LOOPS:
        _LOOPS.append(_checked_loops())
    return _LOOPS[0]


def _checked_loops():
    if not (1 <= int(np.__version__.split(".")[0]) <= 2):
        return None
    loops = []
    for ufunc in (np.log, np.sin, np.cos):
        if type(ufunc) is not np.ufunc or "f->f" not in ufunc.types:
            return None
        head = _UFuncHead.from_address(id(ufunc))
        # the integer fields first: only a structure laid out as expected has its pointers followed
        if (head.nin, head.nout, head.nargs, head.ntypes) != (1, 1, 2, len(ufunc.types)) or head.name != ufunc.__name__.encode():
            return None
        index = ufunc.types.index("f->f")
        if not head.functions[index] or head.data[index]:
            return None
        loops.append(_LOOP(head.functions[index]))
    apply = _kernels()[4]
    block = 2**18  # 5 MiB of temporaries
    k = np.arange(block, dtype=np.float32)
    mine, theirs = np.empty(block, np.float32), np.empty(block, np.float32)
    for start in range(0, 2**24, block):
        radius = ((k + np.float32(start)) + np.float32(0.5)) * np.float32(2.0**-24)
        theta = (k + np.float32(start)) * (np.float32(2.0 * np.pi) * np.float32(2.0**-24))
        for loop, ufunc, x in zip(loops, (np.log, np.sin, np.cos), (radius, theta, theta)):
            apply(loop, x, mine)
            ufunc(x, out=theirs)
            if not np.array_equal(mine, theirs):
                return None
    return tuple(loops)


def generate(states, entries, total, radius, theta, sine, out, products=None, half=0.5, unit=2.0**-24, angle=2.0 * np.pi * 2.0**-24) -> None:
    """`sfc64_box_muller_inputs`, NumPy's float32 ln, sin and cos, then
    `box_muller_combine`, in one call without the GIL when `numpy_loops()` is
    available, else as four calls. radius, theta and sine hold exactly the
    chunks' ⌈e_j/2⌉ entries each."""
    loops = numpy_loops()
    if loops is None:
        sfc64_box_muller_inputs(states, entries, total, radius, theta, half, unit, angle)
        np.log(radius, out=radius)
        np.sin(theta, out=sine)
        np.cos(theta, out=theta)
        box_muller_combine(radius, theta, sine, entries, total, out, products)
        return
    x, scale, y, r, acc, mode = _products(out, products)
    _kernels()[3](states, entries, total, radius, theta, sine, np.float32(half), np.float32(unit), np.float32(angle), *loops,
                  out, (acc.shape[0] if mode >= 2 else x.shape[0] if mode else 1), x, scale, y, r, acc, mode)


def stream_blocks(table, blocks, start, step, entries, n_cols, radius, theta, sine, G, products, row0=0,
                  half=0.5, unit=2.0**-24, angle=2.0 * np.pi * 2.0**-24) -> None:
    """`generate` for superchunks s = start, start + step, … of `blocks`
    (rows (first chunk, last chunk + 1, first row, last row + 1)), chunk c
    from a copy of table[c], each superchunk's rows written to G (flat) and
    its `products` (`box_muller_combine`) taken with r, y and z indexed by
    row − row0: a generator thread's whole share of a one-trial step in
    one call without the GIL. Needs `numpy_loops()`. The row products of the
    matrix-free operator always come from this one compiled function, so
    forward, adjoint and the one-pass step agree bit for bit."""
    x, scale, y, r, acc, mode = _products(G, products)
    _kernels()[5](table, blocks, start, step, entries, n_cols, radius, theta, sine, G, np.float32(half), np.float32(unit), np.float32(angle),
                  *numpy_loops(), x, scale, y, r, row0, acc, mode)


def _products(out, products):
    """The combine kernel's product arguments (x, scale, y, r, acc, mode) for `products`."""
    dummy = np.zeros(1, out.dtype)
    if products is None:
        return dummy, out.dtype.type(1), dummy, dummy, dummy, 0
    if products[0] == "dots":
        _, x, r = products
        return x, out.dtype.type(1), r, r, r, 1
    if products[0] == "step":
        _, x, r, scale, y, acc = products
        return x, out.dtype.type(scale), y, r, acc, 2
    _, z, acc = products
    return dummy, out.dtype.type(1), z, z, acc, 3


def sfc64_box_muller_inputs(states: np.ndarray, entries: int, total: int, radius: np.ndarray, theta: np.ndarray, half, unit, angle) -> None:
    """The integer half of Box–Muller for consecutive chunks of `entries`
    entries (the last may be shorter; `total` entries in all), chunk j from
    the SFC64 state states[j] = (a, b, c, counter), which is advanced past
    the chunk's words. Chunk j takes h_j = ⌈e_j/2⌉ words w and writes
    radius[j·p + i] = (⌊wᵢ/2⁴⁰⌋ + half)·unit and theta[j·p + i] = (wᵢ mod 2²⁴)·angle
    in float32, p = ⌈entries/2⌉."""
    _kernels()[0](states, entries, total, radius, theta, np.float32(half), np.float32(unit), np.float32(angle))


def box_muller_combine(log_radius: np.ndarray, cosine: np.ndarray, sine: np.ndarray, entries: int, total: int, out: np.ndarray,
                       products=None) -> None:
    """The last Box–Muller pass for the chunks of `sfc64_box_muller_inputs`,
    given NumPy's ln u₁ (log_radius), cos θ and sin θ: chunk j's entries
    out[j·entries + i] = √(−2 ln u₁)·cos θ for i < h_j and
    out[j·entries + h_j + i] = √(−2 ln u₁)·sin θ after, computed in float32
    (−2·ln u₁, √ and the product are correctly rounded IEEE operations, the
    values of NumPy's float32 ufuncs) and stored in out's dtype (float32 or
    float64, no staging copy).

    With products (out read as rows of len(acc) or len(x)), computed as soon
    as a chunk is written (in cache): ("dots", x, r): r[i] = ⟨G_i, x⟩ for each
    row G_i of out; ("step", x, r, scale, y, acc): r[i] = ⟨G_i, x⟩·scale − y[i]
    and acc += Σ_i r[i]·G_i (`accumulate_rows`' order), the whole one-trial
    step of a superchunk without reading it back from memory; ("adjoint", z,
    acc): acc += Σ_i z[i]·G_i."""
    x, scale, y, r, acc, mode = _products(out, products)
    _kernels()[1](log_radius, cosine, sine, entries, total, out, (acc.shape[0] if mode >= 2 else x.shape[0] if mode else 1), x, scale, y, r, acc, mode)


def accumulate_rows(G: np.ndarray, coef: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """acc += Σ_i coef[i]·G_i over the rows of G in order, elementwise
    acc_k ← acc_k + coef[i]·G_ik (rounded after every multiply and add, no
    fused multiply–add; four rows per pass over acc, which gives the same
    bits), so a superchunk's adjoint part is the same whether the rows come
    from `box_muller_combine` or from a stored block."""
    _kernels()[2](G, coef, acc)
    return acc
