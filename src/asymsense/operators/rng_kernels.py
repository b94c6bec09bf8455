"""numba kernels for the Gaussian operator's Box–Muller draws
(operators/gaussian: `standard_normal_fill`, `fill_chunks`), used when numba is
installed.

`sfc64_box_muller_inputs` runs NumPy's SFC64 recurrence
(tmp = a + b + counter++; a = b ⊕ (b ≫ 11); b = c + (c ≪ 3); c = rotl(c, 24) + tmp;
the word is tmp) for several chunks in one call, each from its own state
(a row of a states array: no `bit_generator.state` dict round trips), and
writes, for each word w, the float32 values (⌊w/2⁴⁰⌋ + ½)·2⁻²⁴ and
(w mod 2²⁴)·(2π·2⁻²⁴) straight into the caller's buffers: the same float32
operations, in the same order, as the NumPy path (integers below 2²⁴ convert
exactly; one add, one multiply each, no fused multiply–add), so the values are
bit for bit those of `random_raw` followed by the NumPy ufuncs. ln, sin and
cos stay with NumPy's own float32 ufuncs (their SIMD approximations cannot be
reproduced here bit for bit), called by the caller over all chunks at once;
`box_muller_combine` then does the correctly rounded rest (−2·ln u₁, √, the
products) and writes the entries in the operator's dtype.

What it saves: the fresh array of raw words per chunk (page faults), the
passes of shifts, masks, casts and scalings, the float32 staging copy of a
float64 chunk and the Python work per chunk. The kernels release the GIL
(nogil), so the matrix-free operator's generator threads run them at the same
time."""

from __future__ import annotations

import numpy as np

from asymsense.operators import entry_kernels

_KERNELS = None


def available() -> bool:
    """True when numba imports (and ASYMSENSE_NO_NUMBA is not set)."""
    return entry_kernels.available()


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        from asymsense.operators import rng_numba

        _KERNELS = rng_numba.fill, rng_numba.combine, rng_numba.axpy_rows
    return _KERNELS


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

    With products = (x, r) (out read as rows of len(x)): r[i] = ⟨G_i, x⟩ for
    each row G_i of out, computed as soon as the row's chunk is written (in
    cache). With products = (x, r, scale, y, acc): r[i] = ⟨G_i, x⟩·scale − y[i]
    and acc += Σ_i r[i]·G_i (`accumulate_rows`' order), the whole one-trial
    step of a superchunk without reading it back from memory."""
    kernel = _kernels()[1]
    if products is None:
        dummy = np.zeros(1, out.dtype)
        kernel(log_radius, cosine, sine, entries, total, out, 1, dummy, out.dtype.type(1), dummy, dummy, dummy, 0)
    elif len(products) == 2:
        x, r = products
        kernel(log_radius, cosine, sine, entries, total, out, x.shape[0], x, out.dtype.type(1), r, r, r, 1)
    else:
        x, r, scale, y, acc = products
        kernel(log_radius, cosine, sine, entries, total, out, x.shape[0], x, out.dtype.type(scale), y, r, acc, 2)


def accumulate_rows(G: np.ndarray, coef: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """acc += Σ_i coef[i]·G_i over the rows of G in order, elementwise
    acc_k ← acc_k + coef[i]·G_ik (rounded after every multiply and add, no
    fused multiply–add; four rows per pass over acc, which gives the same
    bits), so a superchunk's adjoint part is the same whether the rows come
    from `box_muller_combine` or from a stored block."""
    _kernels()[2](G, coef, acc)
    return acc
