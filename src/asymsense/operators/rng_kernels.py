"""A numba kernel for the integer half of the Gaussian operator's Box–Muller
draws (operators/gaussian.standard_normal_fill), used when numba is installed.

It runs NumPy's SFC64 recurrence from the bit generator's state
(tmp = a + b + counter++; a = b ⊕ (b ≫ 11); b = c + (c ≪ 3); c = rotl(c, 24) + tmp;
the word is tmp) and writes, for each word w, the float32 values
(⌊w/2⁴⁰⌋ + ½)·2⁻²⁴ and (w mod 2²⁴)·(2π·2⁻²⁴) straight into the caller's
buffers: the same float32 operations, in the same order, as the NumPy path
(integers below 2²⁴ convert exactly; one add, one multiply each, no fused
multiply–add), so the values are bit for bit those of `random_raw` followed by
the NumPy ufuncs. The transcendental half (log, sqrt, sin, cos) stays with
NumPy's own ufuncs so every entry of the operator is unchanged.

What it saves: the fresh array of raw words per chunk (page faults), four
passes of shifts, masks and casts, and two passes of scaling. The kernel
releases the GIL (nogil), so the matrix-free operator's generator threads
run it at the same time.
"""

from __future__ import annotations

import numpy as np

from asymsense.operators import entry_kernels

_KERNEL = None


def available() -> bool:
    """True when numba imports (and ASYMSENSE_NO_NUMBA is not set)."""
    return entry_kernels.available()


def _kernel():
    global _KERNEL
    if _KERNEL is None:
        from numba import njit

        @njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
        def fill(state, n, radius, theta, half, unit, angle):  # pragma: no cover - compiled
            a, b, c, d = state[0], state[1], state[2], state[3]
            one, s11, s3, s24, s40 = np.uint64(1), np.uint64(11), np.uint64(3), np.uint64(24), np.uint64(40)
            low = np.uint64(0xFFFFFF)
            for i in range(n):
                tmp = a + b + d
                d += one
                a = b ^ (b >> s11)
                b = c + (c << s3)
                c = ((c << s24) | (c >> s40)) + tmp
                r = np.float32(tmp >> s40) + half
                radius[i] = r * unit
                theta[i] = np.float32(tmp & low) * angle
            state[0], state[1], state[2], state[3] = a, b, c, d

        _KERNEL = fill
    return _KERNEL


def sfc64_box_muller_inputs(bit_generator: np.random.SFC64, radius: np.ndarray, theta: np.ndarray, half, unit, angle) -> None:
    """Fill radius[i] = (⌊wᵢ/2⁴⁰⌋ + half)·unit and theta[i] = (wᵢ mod 2²⁴)·angle
    (float32) from the next len(radius) words of `bit_generator` (an SFC64
    with no buffered 32-bit half), and advance its state past them."""
    full = bit_generator.state
    state = np.array(full["state"]["state"], dtype=np.uint64)
    _kernel()(state, radius.shape[0], radius, theta, np.float32(half), np.float32(unit), np.float32(angle))
    full["state"]["state"] = state
    bit_generator.state = full
