"""Gaussian measurements, A_i with i.i.d. N(0, 1/m) entries (so E[A*A] = Id).

Row i of the (m, n1·n2) matrix G is vec(A_i) (row-major). Rows are drawn in
fixed chunks of `rows_per_chunk(n1·n2)` rows, chunk c from its own SFC64
generator seeded by SeedSequence(seed, spawn_key=(c,)). That makes the dense
operator (all chunks stored) and the matrix-free one (each chunk regenerated
when needed, memory O(chunk)) equal entry for entry for the same seed, and lets
the matrix-free operator regenerate chunks on several threads at once (NumPy
releases the GIL in the bit generator and in the ufuncs below).

Normals come from the Box–Muller transform in float32 (`standard_normal_fill`):
one 64-bit SFC64 word gives two 24-bit uniforms u₁, u₂ and two normals
√(−2 ln u₁)·(cos 2πu₂, sin 2πu₂).
Each step of the matrix-free operator
regenerates all m·n1·n2 entries twice, so generation speed is its cost: this
SIMD-vectorized transform measured 5–8× faster than NumPy's ziggurat
`standard_normal` on the reference machine (about 4 ns per draw per core).
The draws are Gaussian to float32 resolution (24-bit uniforms, so |g| ≤ 5.9,
a tail of probability 4·10⁻⁹ is cut); float64 operators hold the same values.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import threading

import numpy as np
import scipy.linalg.blas
from threadpoolctl import ThreadpoolController

from asymsense.errors import InputError
from asymsense.validation import check_dtype, check_int, resolve_seed
from asymsense.backend import is_numpy, run_threads, thread_budget
from asymsense.operators import entry_kernels, jax_kernels, rng_kernels
from asymsense.operators.base import Operator, check_shape

CHUNK_ENTRIES = 2**16
"""Target number of entries per generated chunk (512 KiB in float64): small
enough that the generation buffers of all threads stay under 1% of the dense
operator at n1 = n2 = 100, m = 10⁴, large enough that per-chunk overhead
(seeding, one small GEMM) stays near 2%."""


def rows_per_chunk(n_entries_per_row: int) -> int:
    """Rows in one chunk: about CHUNK_ENTRIES entries, at least one row."""
    return max(1, CHUNK_ENTRIES // n_entries_per_row)


def _chunk_bounds(m: int, rows: int):
    return [(start, min(start + rows, m)) for start in range(0, m, rows)]


_TWO_PI = np.float32(2.0 * np.pi)
_local = threading.local()


def scratch(name: str, n: int, dtype=np.float32) -> np.ndarray:
    """A per-thread reusable 1-d buffer of n elements: regenerating a chunk
    then allocates nothing (fresh multi-MiB arrays cost page faults that
    measured slower than the generation itself)."""
    key = (name, np.dtype(dtype).str)
    buffers = _local.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None or buf.size < n:
        buf = buffers[key] = np.empty(n, dtype=dtype)
    return buf[:n]


SUPERCHUNK_ENTRIES = 2**19
"""Target number of entries a generator thread draws per Python-level call (a
superchunk: consecutive chunks, one contiguous block of rows, 4 MiB in
float64): one numba pass, one call of each NumPy ufunc and one product for
all of them, so the Python work per call (slicing, scratch lookups, the BLAS
call set-up) is spread over several chunks, and 8 chunks fill the vector
lanes of the SFC64 kernel (rng_numba)."""


def superchunks(m: int, n_cols: int):
    """The superchunks of an (m, n_cols) operator: (first chunk, last chunk + 1,
    first row, last row + 1) of consecutive blocks of about SUPERCHUNK_ENTRIES
    entries (whole chunks, at least one)."""
    rows = rows_per_chunk(n_cols)
    per = max(1, SUPERCHUNK_ENTRIES // (rows * n_cols))
    per = per - per % 8 if per >= 8 else per  # whole groups of the kernel's 8 lanes
    n_chunks = -(-m // rows)
    return [(c, min(c + per, n_chunks), c * rows, min((c + per) * rows, m)) for c in range(0, n_chunks, per)]


def chunk_states(seed: int, first: int, last: int) -> np.ndarray:
    """(last − first, 4) uint64: the initial state (a, b, c, counter) of the
    SFC64 generators of chunks first … last − 1, SFC64(SeedSequence(seed,
    spawn_key=(c,))). Computed once per operator (about 8 µs a chunk), then
    every regeneration starts from a copy."""
    states = np.empty((last - first, 4), dtype=np.uint64)
    for i, c in enumerate(range(first, last)):
        states[i] = np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(c,))).state["state"]["state"]
    return states


_SHIFT = np.uint64(40)
_LOW24 = np.uint64(0xFFFFFF)
_UNIT = np.float32(2.0**-24)


def standard_normal_fill(bit_generator: np.random.BitGenerator, out: np.ndarray) -> np.ndarray:
    """Fill `out` with N(0, 1) draws by Box–Muller in float32.

    Each 64-bit word w of the generator gives u₁ = (⌊w/2⁴⁰⌋ + ½)/2²⁴ ∈ (0, 1)
    and u₂ = (w mod 2²⁴)/2²⁴; the first half of `out` gets r·cos θ and the
    second half r·sin θ, r = √(−2 ln u₁), θ = 2πu₂. Raw words are drawn in
    one call (5–10% faster here than float32 `Generator.random`). An SFC64
    with numba goes through `fill_chunks` (the same values).
    """
    n = out.size
    if isinstance(bit_generator, np.random.SFC64) and rng_kernels.available() and n:
        full = bit_generator.state
        states = np.array(full["state"]["state"], dtype=np.uint64).reshape(1, 4)
        flat = out if out.dtype in (np.float32, np.float64) and out.flags.c_contiguous else scratch("stage", n)
        fill_chunks(states, n, flat)
        if flat is not out:
            out[...] = flat.reshape(out.shape)
        full["state"]["state"] = states[0]
        bit_generator.state = full
        return out
    half = (n + 1) // 2
    staged = not (out.dtype == np.float32 and out.flags.c_contiguous)
    flat = scratch("stage", n) if staged else out.reshape(-1)
    radius, sine = flat[:half], flat[half:]
    theta = scratch("theta", half)
    words = bit_generator.random_raw(half)
    bits = scratch("bits", half, np.uint64)
    np.right_shift(words, _SHIFT, out=bits)
    np.copyto(radius, bits, casting="unsafe")
    np.bitwise_and(words, _LOW24, out=bits)
    np.copyto(theta, bits, casting="unsafe")
    del words
    radius += np.float32(0.5)
    radius *= _UNIT
    theta *= _TWO_PI * _UNIT
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    np.sin(theta[: n - half], out=sine)
    sine *= radius[: n - half]
    np.cos(theta, out=theta)
    radius *= theta
    if staged:
        out[...] = flat.reshape(out.shape)
    return out


def fill_chunks(states: np.ndarray, entries: int, out: np.ndarray, products=None) -> np.ndarray:
    """Standard normals of consecutive chunks into `out` (C-contiguous,
    float32 or float64): its flat entries [j·entries, (j + 1)·entries) (the
    last chunk may be shorter) are chunk j, drawn as `standard_normal_fill`
    draws them from SFC64 state states[j], which is advanced past the chunk.

    With numba, one kernel pass writes every chunk's Box–Muller inputs, NumPy's
    float32 ln, sin and cos loops run once over all of them, and a second pass
    writes √(−2 ln u₁)·(cos θ, sin θ) in out's dtype (rng_kernels.generate, one
    call without the GIL where NumPy's loops can be called from numba): the values of the
    per-chunk NumPy path bit for bit (NumPy's float32 ufuncs give each element
    the same value wherever it sits in an array; tests/test_stream_kernels.py).
    `products` (numba only): the row products computed in that pass
    (`rng_kernels.box_muller_combine`)."""
    flat = out.reshape(-1)
    total, n = flat.size, len(states)
    if not rng_kernels.available():
        bit_generator = np.random.SFC64(0)
        full = bit_generator.state
        for j in range(n):
            full["state"]["state"] = states[j]
            bit_generator.state = full
            standard_normal_fill(bit_generator, flat[j * entries:(j + 1) * entries])
            states[j] = bit_generator.state["state"]["state"]
        return out
    pairs = (entries + 1) // 2
    size = (n - 1) * pairs + (total - (n - 1) * entries + 1) // 2
    radius, theta, sine = scratch("radius", size), scratch("angle", size), scratch("sine", size)
    rng_kernels.generate(states, entries, total, radius, theta, sine, flat, products, 0.5, _UNIT, _TWO_PI * _UNIT)
    return out


def generation_bytes(entries: int, chunk_entries: int, dtype) -> int:
    """Scratch bytes of `fill_chunks` for `entries` entries in chunks of
    `chunk_entries`, beyond `out`: the float32 ln u₁, θ and sin θ arrays
    with numba (half an entry each); without it, per chunk of
    `standard_normal_fill`, θ (float32), the raw words and their bit fields
    (uint64, half an entry each) and a float32 staging chunk (float64 only)."""
    if rng_kernels.available():
        return 3 * ((entries + 1) // 2 + 1) * 4
    return ((chunk_entries + 1) // 2) * (4 + 8 + 8) + (chunk_entries * 4 if np.dtype(dtype) != np.float32 else 0)


def generate_chunk(seed: int, chunk: int, rows: int, n_cols: int, dtype, out=None) -> np.ndarray:
    """Standard-normal rows of chunk `chunk` (unscaled), the same values for
    every dtype and for the dense and the matrix-free operator."""
    if out is None:
        out = np.empty((rows, n_cols), dtype=dtype)
    target = out if out.flags.c_contiguous else np.empty(out.shape, dtype=out.dtype)
    fill_chunks(chunk_states(seed, chunk, chunk + 1), rows * n_cols, target)
    if target is not out:
        out[...] = target
    return out


def gaussian_chunk(xp, device, seed: int, chunk: int, rows: int, n_cols: int, dtype):
    """Chunk `chunk` of the Gaussian operator's standard-normal rows, as an
    array of xp on device. Generated on the host (SFC64 + Box–Muller), so the
    values are the same on every backend; on a GPU this costs a host→device
    copy per chunk (see docs/backends.md)."""
    host = generate_chunk(seed, chunk, rows, n_cols, dtype, out=scratch("chunk", rows * n_cols, dtype).reshape(rows, n_cols))
    if is_numpy(xp):
        return host
    return xp.asarray(host, device=device, copy=True)


def trial_parts(batch: int, parts: int, unit: int) -> list[tuple[int, int]]:
    """`parts` contiguous (start, stop) ranges covering range(batch): the
    batch's whole units of `unit` trials shared out as evenly as rounding
    allows, the last range also taking the batch mod `unit` trials (needs
    batch ≥ parts·unit; one range (0, batch) for parts ≤ 1). Whole units keep
    each thread in the kernel's full register tiles."""
    if parts <= 1:
        return [(0, batch)]
    units = batch // unit
    cuts = [unit * ((units * i + parts // 2) // parts) for i in range(parts)] + [batch]
    return list(zip(cuts[:-1], cuts[1:]))


class DenseGaussian(Operator):
    """Dense Gaussian operator: G stored once as a contiguous (m, n1·n2) array.

    A(X) = G vec(X) and A*(z) = mat(Gᵀ z); on a batch both become one
    matrix–matrix product, so B trials read G once per step instead of B times.

    Whole steps (`residual_gradient`, which fgd calls) take one of these kernels:

    - "numba": the fused one-pass kernel (`operators.dense_numba`): each row
      block of G gives its residuals and, still in cache, its adjoint
      contribution, so G is read once per step instead of twice; a float64
      operator keeps its unscaled float32 normals g (G = fl(g·m^(-1/2)) entry
      for entry) and the kernel reads those, 4 bytes an entry. 3–4× faster than
      OpenBLAS at the demo's B = 6 and 2–4× for one trial (one thread);
      every operation in a fixed order (explicit vector lanes and fused
      multiply-adds, `operators.lane_sums`), so the same bits on every CPU;
      equal to the "blas" kernel to rounding level, not bit for bit. With a
      thread budget of two or more (`backend.thread_budget`, which fgd sets)
      a batch of at least 2·FUSED_PART_TRIALS trials is cut into contiguous
      parts, one thread each (`fused_parts`); the trials are independent, so
      the bits are those of one thread.
    - "blas": NumPy's (OpenBLAS's) two products, bit for bit
      `forward_factors` then `gradient_products`.
    - "jax": XLA's products (`operators.jax_kernels`; opt-in, jax is not a
      dependency).
    - "auto" (default): "numba" where numba is installed and the batch's
      factors product X has at most FUSED_BATCH_ENTRIES numbers (B·n1·n2;
      one thread), FUSED_PARTS_ENTRIES (several threads, the batch in parts)
      or FUSED_SINGLE_ENTRIES (several threads, a batch too small to cut),
      else "blas". In entries, not bytes: the kernel reads G's 4-byte
      normals in either dtype, and the measured crossovers of float32 and
      float64 fall at about the same number of trials.
    """

    KERNELS = ("auto", "numba", "blas", "jax")

    FUSED_BATCH_ENTRIES = 10 * 2**16
    """The largest batch X = UVᵀ (B·n1·n2 numbers, 65 trials of 10⁴) that
    "auto" gives the fused kernel when BLAS has one thread: its register
    tiles stream X (and the gradient rows) from cache for every 4 rows of G
    (6 from `dense_numba.WIDE_FROM` trials), so past a few L2 sizes
    OpenBLAS's cache-blocked GEMMs catch up. Fused / OpenBLAS, one
    `residual_gradient` each, one thread (the crossover part of
    `benchmarks/bench_ratios.py`, table in docs/performance.md; Zen 4,
    1 MiB L2, n1 = n2 = 100, m = 10⁴, three runs of 5 rounds on 2026-12-03
    from 18:39 UTC, with the 6-row tiles): float32 0.64–0.76 at 32 trials,
    0.80–0.88 at 64, 0.92–1.08 at 96, 0.94–0.98 at 104, 1.12–1.17 at 128;
    float64 0.47 at 16, 0.65–0.68 at 32, 0.75–0.77 at 48, 0.84–0.87 at 64,
    1.14–1.23 at 96. float32 may stay ahead a little past 65 trials now;
    the limit is float64's. (Three earlier runs with 4-row tiles only:
    float32 0.87–1.02 at 64, 0.98–1.04 at 96; float64 0.88–0.98 at 64.)"""

    FUSED_SINGLE_ENTRIES = 2**17
    """The limit (13 trials of 10⁴ numbers) for a batch too small to cut
    into parts (fewer than 2·FUSED_PART_TRIALS trials) when the thread
    budget is two or more: the fused kernel then runs on one core, OpenBLAS
    on all of them. One-core fused / two-thread OpenBLAS (the crossover
    part, 2026-12-03 14:36 UTC): float32 0.74 at 8 trials and 0.76 at 10,
    float64 0.64 and 0.67; bare kernels the same day: float32 0.65 at 12
    and 0.89 at 16, float64 0.77 at 16."""

    FUSED_PARTS_ENTRIES = 10 * 2**16
    """The limit (65 trials of 10⁴ numbers) for a batch the fused kernel runs
    in parts (a thread budget of two or more): each thread streams all of G,
    and its part's X and gradient rows past L2, against OpenBLAS's GEMMs on
    all the threads. Parts / OpenBLAS, two threads each (the crossover part,
    two runs of 5 rounds on 2026-12-03 from 19:21 UTC, each kernel timed
    after one untimed call, the k-wide products around the parts on one
    BLAS thread): float32 0.50–0.56 at 12 trials, 0.63–0.70 at 24,
    0.86–0.93 at 48, 0.93–0.94 at 64, 1.09 at 96; float64 0.46 at 12,
    0.58–0.62 at 24, 0.68–0.70 at 32, 0.71–0.75 at 48, 0.78 at 64, 0.96 at
    96. float64 may stay ahead past 65 trials; the limit is float32's.
    Earlier runs put this limit at 26 trials (float32 0.96–1.05 at 24,
    1.08–1.21 at 48–64): there the parts started while OpenBLAS's second
    thread still spun after the products before them
    (`_small_products_blas`), and the benchmark timed each kernel right
    after the other's two-thread products."""

    FUSED_PART_TRIALS = 6
    """The fewest trials per thread when the fused kernel runs a batch in
    parts: each thread streams all of G, so a part must carry enough trials.
    Against the whole batch on one thread (bare kernels, n1 = n2 = 100,
    m = 10⁴, float32, two threads' OpenBLAS as the unit, medians of 5,
    2026-12-03): 6 trials in parts of 3 took 0.56 against 0.47, 12 trials
    in parts of 6 0.59 against 0.65."""

    def __init__(self, n1, n2, m, *, seed=None, dtype="float64", matrix=None, kernel="auto"):
        if kernel not in self.KERNELS:
            raise InputError(f"kernel must be one of {', '.join(self.KERNELS)}, got {kernel!r}")
        if kernel == "jax" and not jax_kernels.available():
            raise InputError("kernel='jax' needs jax (pip install jax)")
        if kernel == "numba" and not entry_kernels.available():
            raise InputError("kernel='numba' needs numba (pip install asymsense[fast])")
        self.kernel = kernel
        self._jax_matrix = None
        self.shape = check_shape(n1, n2, m)[:2]
        self.m = int(m)
        self.dtype = check_dtype(dtype)
        self.seed = resolve_seed(seed)
        self._normals = None
        if matrix is None:
            N = self.shape[0] * self.shape[1]
            blocks = superchunks(self.m, N)
            states = chunk_states(self.seed, 0, blocks[-1][1])
            keep_normals = self.dtype == np.float64 and self.fused_available()
            matrix = np.empty((self.m, N), dtype=np.float32 if keep_normals else self.dtype)
            for first, last, a, b in blocks:
                fill_chunks(states[first:last], rows_per_chunk(N) * N, matrix[a:b])
            scale = 1.0 / np.sqrt(self.m)
            if keep_normals:
                self._normals, self._normals_scale, matrix = matrix, scale, matrix.astype(np.float64)
            matrix *= self.dtype.type(scale)
        self.matrix = np.ascontiguousarray(matrix, dtype=self.dtype)

    def fused_available(self) -> bool:
        """Whether this operator's kernel setting can take the fused kernel at all."""
        return self.kernel in ("auto", "numba") and entry_kernels.available()

    def fused_operands(self):
        """(G', s) with G = s·G' that the fused kernel reads: the float32
        normals and m^(-1/2) for a float64 operator that drew its own matrix,
        else the matrix itself and 1."""
        if self._normals is not None:
            return self._normals, self._normals_scale
        return self.matrix, 1.0

    def fused_parts(self, batch: int) -> int:
        """How `residual_gradient` runs `batch` trials now: 0 for OpenBLAS,
        else the fused kernel in that many contiguous parts, one thread each
        (`auto_parts` under the current thread budget; kernel="numba" always
        takes the fused kernel, in the same parts)."""
        if not self.fused_available():
            return 0
        if self.kernel == "numba":
            return self.part_count(batch, thread_budget())
        return self.auto_parts(batch, self.n1 * self.n2, thread_budget())

    @classmethod
    def part_count(cls, batch: int, budget: int) -> int:
        """The fused kernel's parts for `batch` trials under a thread budget:
        min(budget, batch // FUSED_PART_TRIALS), at least one."""
        return max(1, min(budget, batch // cls.FUSED_PART_TRIALS))

    @classmethod
    def auto_parts(cls, batch: int, trial_entries: int, budget: int) -> int:
        """The rule of "auto" for `batch` trials of `trial_entries` numbers
        (n1·n2) each under a thread budget: 0 for OpenBLAS, else the fused
        kernel's `part_count`, when the batch fits FUSED_BATCH_ENTRIES (budget
        one), FUSED_PARTS_ENTRIES (in parts) or FUSED_SINGLE_ENTRIES (one
        part, BLAS on several threads)."""
        parts = cls.part_count(batch, budget)
        limit = cls.FUSED_BATCH_ENTRIES if budget == 1 else cls.FUSED_PARTS_ENTRIES if parts > 1 else cls.FUSED_SINGLE_ENTRIES
        return parts if batch * trial_entries <= limit else 0

    def step_kernel(self, batch: int) -> str:
        """The kernel `residual_gradient` takes for `batch` trials on NumPy."""
        if self.kernel in ("blas", "jax"):
            return self.kernel
        return "numba" if self.fused_parts(batch) else "blas"

    backend_arrays = ("matrix",)

    def forward(self, X):
        X = self._arr(X)
        flat = self.xp.reshape(X, (*X.shape[:-2], self.n1 * self.n2))
        if is_numpy(self.xp) and self.dtype == np.float32 and flat.ndim > 1 and math.prod(flat.shape[:-1]) > 1:
            # A float32 batch as G·Xᵀ: OpenBLAS's sgemm ran this layout 1.3–1.7×
            # faster than X·Gᵀ for B = 4…64 (n1 = n2 = 100, m = 10⁴, one thread);
            # for float64 X·Gᵀ was faster, and so is z·G for the adjoint.
            rows = flat.reshape(-1, flat.shape[-1])
            return (self.matrix @ rows.T).T.reshape(*flat.shape[:-1], self.m)
        return flat @ self.matrix.T

    def adjoint(self, z):
        z = self._arr(z)
        return self.xp.reshape(z @ self.matrix, (*z.shape[:-1], self.n1, self.n2))

    def take(self, index):
        index = np.asarray(index)
        if not is_numpy(self.xp):
            new = copy.copy(self)
            new.matrix = self.xp.take(self.matrix, self.xp.asarray(index, device=self.device), axis=0)
            new.m = len(index)
            return new
        new = DenseGaussian(self.n1, self.n2, len(index), seed=self.seed, dtype=self.dtype, matrix=self.matrix[index], kernel=self.kernel)
        if self._normals is not None:
            new._normals, new._normals_scale = self._normals[index], self._normals_scale
        return new

    def residual_gradient(self, U, V, y, dtype):
        """r = A(UVᵀ) − y (in `dtype`) and (A*(r)V, A*(r)ᵀU) for a whole step,
        by the kernel `step_kernel(B)` names (see the class): the fused
        one-pass kernel, one compiled XLA function, or exactly
        `forward_factors(U, V).astype(dtype) − y` and `gradient_products`
        (the bits of the two calls). NumPy only (None on other backends)."""
        if not is_numpy(self.xp):
            return None
        U, V = np.asarray(U), np.asarray(V)
        parts = self.fused_parts(math.prod(U.shape[:-2])) if np.ndim(y) == 1 else 0
        if parts:
            return self._fused_step(U, V, y, np.dtype(dtype), parts)
        if self.kernel == "jax":
            if self._jax_matrix is None:
                self._jax_matrix = jax_kernels.device_matrix(self.matrix)
            return jax_kernels.dense_step(self._jax_matrix, y, U, V, dtype)
        r = self.forward_factors(U, V).astype(dtype, copy=False) - y
        MV, MtU = self.gradient_products(r, U, V)
        return r, MV.astype(dtype, copy=False), MtU.astype(dtype, copy=False)

    def _fused_step(self, U, V, y, dtype, parts):
        """The step by `dense_numba.fused_step`: X = UVᵀ and the small products
        MV, MᵀU by NumPy, the two products over G in one pass, sums in the
        operator's dtype; the trials in `parts` parts (`fused_parts`), one thread each."""
        from asymsense.operators import dense_numba

        kind = self.dtype
        U, V = U.astype(kind, copy=False), V.astype(kind, copy=False)
        with _small_products_blas():
            X = U @ np.swapaxes(V, -1, -2)
        lead = X.shape[:-2]
        flat = np.ascontiguousarray(X.reshape(-1, self.n1 * self.n2))
        y_rows = np.ascontiguousarray(np.broadcast_to(np.asarray(y, dtype=kind), (self.m,)))
        r = np.empty((flat.shape[0], self.m), dtype=kind)
        M = np.empty_like(flat)
        G, scale = self.fused_operands()

        def part(bounds):
            a, b = bounds
            dense_numba.fused_step(G, kind.type(scale), flat[a:b], y_rows, r[a:b], M[a:b], kind.type(0))

        cuts = trial_parts(flat.shape[0], parts, dense_numba.whole_tile_trials(flat.shape[0] // parts))
        run_threads(part, cuts, len(cuts))
        M = M.reshape(X.shape)
        with _small_products_blas():
            MV, MtU = M @ V, np.swapaxes(M, -1, -2) @ U
        return r.reshape(*lead, self.m).astype(dtype, copy=False), MV.astype(dtype, copy=False), MtU.astype(dtype, copy=False)


class StreamGaussian(Operator):
    """Matrix-free Gaussian operator: the same G as `DenseGaussian(seed)`,
    regenerated on every application; memory O(threads · superchunk).

    Each application streams all m rows, a superchunk (`superchunks`: whole
    chunks, one block of consecutive rows) at a time: forward computes
    G_s vec(X) for each superchunk s, adjoint accumulates G_sᵀ z_s.
    Superchunk s goes to worker s mod T of `threads` workers (default: all
    cores), each with BLAS limited to one thread. The chunks' SFC64 starting
    states are computed once per operator (`chunk_states`, 32 bytes a chunk).
    """

    def __init__(self, n1, n2, m, *, seed=None, dtype="float64", threads=None, index=None):
        self.shape = check_shape(n1, n2, m)[:2]
        self.dtype = check_dtype(dtype)
        self.seed = resolve_seed(seed)
        self.m_total = int(m)
        self.threads = check_int("threads", threads or os.cpu_count() or 1, minimum=1)
        self.index = None if index is None else np.asarray(index)
        self.m = self.m_total if self.index is None else len(self.index)
        N = self.shape[0] * self.shape[1]
        self._rows = rows_per_chunk(N)
        self._bounds = _chunk_bounds(self.m_total, self._rows)
        self._blocks = superchunks(self.m_total, N)
        self._block_array = np.array(self._blocks, dtype=np.int64)
        self._scale = float(1.0 / np.sqrt(self.m_total))
        self._states = None
        if self.index is not None:
            # Which selected measurements fall in each chunk and each superchunk, and where they go.
            order = np.argsort(self.index, kind="stable")
            sorted_rows = self.index[order]
            def select(bounds):
                cuts = np.searchsorted(sorted_rows, [a for a, _ in bounds] + [self.m_total])
                return [(order[cuts[c]:cuts[c + 1]], sorted_rows[cuts[c]:cuts[c + 1]] - a) for c, (a, _) in enumerate(bounds)]
            self._selection = select(self._bounds)
            self._block_selection = select([(a, b) for _, _, a, b in self._blocks])

    @property
    def peak_bytes(self) -> int:
        """Memory held by the generation buffers at any one time: the chunks'
        SFC64 states (32 bytes a chunk) and, per thread, one superchunk in the
        operator's dtype, its generation scratch (`generation_bytes`) and the
        adjoint accumulator of one n1·n2 row per trial (counted for one trial)."""
        return stream_buffer_bytes(self.n1, self.n2, self.m_total, self.dtype, self.threads)

    def _state_table(self):
        if self._states is None:
            self._states = chunk_states(self.seed, 0, len(self._bounds))
        return self._states

    def _map_threads(self, run):
        """[run(t) for each worker t], the workers at once, one BLAS thread each
        (the caller's thread when there is one worker)."""
        self._state_table()  # once, before the workers start
        if rng_kernels.available():
            rng_kernels.numpy_loops()  # likewise
        workers = min(self.threads, len(self._blocks))
        with _one_blas_thread():
            return run_threads(run, range(workers), workers)

    def _sum_over_threads(self, run):
        """Σ_t run(t) over the generator threads (one BLAS thread each), summed in thread order."""
        parts = self._map_threads(run)
        total = parts[0]
        for part in parts[1:]:
            total += part
        return total

    def _blocks_of_thread(self, t: int):
        """The superchunks s = t, t + T, t + 2T, … that thread t handles (always the
        same thread for superchunk s, so sums keep their order), those with a
        selected row."""
        for s in range(t, len(self._blocks), self.threads):
            if self.index is None or len(self._block_selection[s][0]):
                yield s

    def _block(self, s, products=None):
        """Superchunk s's rows G (all of them), the measurement positions they
        feed and, with an index, which rows of G those are (else None)."""
        first, last, a, b = self._blocks[s]
        N = self.n1 * self.n2
        if products is not None and rng_kernels.numpy_loops() is not None:
            G = self._stream(s, len(self._blocks), products, row0=a)[:(b - a) * N].reshape(b - a, N)
        else:
            G = fill_chunks(self._states[first:last].copy(), self._rows * N, scratch("block", (b - a) * N, self.dtype).reshape(b - a, N), products)
        if self.index is None:
            return G, slice(a, b), None
        targets, local = self._block_selection[s]
        return G, targets, local

    def _stream(self, start, step, products, row0=0):
        """Superchunks start, start + step, … by `rng_kernels.stream_blocks`
        (one call, no GIL) with `products`; returns the superchunk buffer
        (the last one's rows first)."""
        N = self.n1 * self.n2
        entries, pairs = self._rows * N, (self._rows * N + 1) // 2
        most = max(last - first for first, last, _, _ in self._blocks)
        G = scratch("block", max(b - a for _, _, a, b in self._blocks) * N, self.dtype)
        radius, theta, sine = scratch("radius", most * pairs), scratch("angle", most * pairs), scratch("sine", most * pairs)
        rng_kernels.stream_blocks(self._states, self._block_array, start, step, entries, N, radius, theta, sine, G, products, row0,
                                  0.5, _UNIT, _TWO_PI * _UNIT)
        return G

    def _whole_threads(self) -> bool:
        """Whether a one-trial product runs each thread's share in one call
        (`_stream`: numba with NumPy's loops, all rows)."""
        return self.index is None and rng_kernels.numpy_loops() is not None

    def _row_kernels(self, trials: int) -> bool:
        """Whether products of `trials` trials take the numba row kernels (one
        trial, numba installed): the forward products are computed while each
        chunk is in cache, and the adjoint is `rng_kernels.accumulate_rows`.
        forward, adjoint and residual_gradient decide alike, so the one-pass
        step keeps the two passes' bits."""
        return trials == 1 and rng_kernels.available()

    def _chunk_xp(self, c):
        """Chunk c on this operator's backend, with the measurement positions it feeds."""
        a, b = self._bounds[c]
        G = gaussian_chunk(self.xp, self.device, self.seed, c, b - a, self.n1 * self.n2, self.dtype)
        if self.index is None:
            return G, slice(a, b)
        targets, local = self._selection[c]
        return self.xp.take(G, self.xp.asarray(local, device=self.device), axis=0), targets

    def forward(self, X):
        if not is_numpy(self.xp):
            return self._forward_xp(self._arr(X))
        X = np.asarray(X, dtype=self.dtype)
        flat = X.reshape(-1, self.n1 * self.n2)
        out = np.empty((flat.shape[0], self.m), dtype=self.dtype)
        rows = self._row_kernels(flat.shape[0])
        whole = rows and self._whole_threads()
        x = np.ascontiguousarray(flat[0]) if rows else None

        def run(t):
            if whole:
                self._stream(t, self.threads, ("dots", x, out[0]))
                return
            dots = np.empty(max(b - a for _, _, a, b in self._blocks), dtype=self.dtype)
            for s in self._blocks_of_thread(t):
                _, _, a, b = self._blocks[s]
                if rows:
                    G, targets, local = self._block(s, ("dots", x, dots[:b - a]))
                    out[0, targets] = dots[:b - a] if local is None else dots[local]
                else:
                    G, targets, local = self._block(s)
                    out[:, targets] = flat @ (G if local is None else G[local]).T

        self._map_threads(run)
        out *= self.dtype.type(self._scale)
        return out.reshape(*X.shape[:-2], self.m)

    def _forward_xp(self, X):
        """Chunks one after another (the device runs each product); the parts
        are concatenated in chunk order, then put in measurement order."""
        xp = self.xp
        flat = xp.reshape(X, (-1, self.n1 * self.n2))
        parts, positions = [], []
        for c in range(len(self._bounds)):
            G, targets = self._chunk_xp(c)
            if G.shape[0]:
                parts.append(flat @ G.T)
                positions.append(np.arange(targets.start, targets.stop) if isinstance(targets, slice) else targets)
        out = xp.concat(parts, axis=1) * self._scale
        if self.index is not None:
            inverse = np.argsort(np.concatenate(positions))
            out = xp.take(out, xp.asarray(inverse, device=self.device), axis=1)
        return xp.reshape(out, (*X.shape[:-2], self.m))

    def adjoint(self, z):
        if not is_numpy(self.xp):
            return self._adjoint_xp(self._arr(z))
        z = np.asarray(z, dtype=self.dtype)
        flat = z.reshape(-1, self.m)

        whole = self._row_kernels(flat.shape[0]) and self._whole_threads()
        z_first = np.ascontiguousarray(flat[0]) if whole else None

        def run(t):
            acc = np.zeros((flat.shape[0], self.n1 * self.n2), dtype=self.dtype)
            if whole:
                self._stream(t, self.threads, ("adjoint", z_first, acc[0]))
                return acc
            for s in self._blocks_of_thread(t):
                G, targets, local = self._block(s)
                self._accumulate(acc, G if local is None else G[local], np.ascontiguousarray(flat[:, targets]))
            return acc

        total = self._sum_over_threads(run)
        total *= self.dtype.type(self._scale)
        return total.reshape(*z.shape[:-1], self.n1, self.n2)

    def _accumulate(self, acc, G, z):
        """acc += z·G in place: `rng_kernels.accumulate_rows` for one trial
        with numba, else BLAS (beta = 1, no B·n1·n2 temporary): gemv for one
        trial (3× faster than a one-column gemm here), gemm for a batch."""
        if self._row_kernels(acc.shape[0]):
            rng_kernels.accumulate_rows(G, z[0], acc[0])
            return
        blas = scipy.linalg.blas
        if acc.shape[0] == 1:
            gemv = blas.dgemv if self.dtype == np.float64 else blas.sgemv
            gemv(1.0, G.T, z[0], beta=1.0, y=acc[0], overwrite_y=True)
        else:
            gemm = blas.dgemm if self.dtype == np.float64 else blas.sgemm
            gemm(1.0, G.T, z.T, beta=1.0, c=acc.T, overwrite_c=True)

    def residual_gradient(self, U, V, y, dtype):
        """One pass over the superchunks for a whole gradient step:
        r = A(UVᵀ) − y (in `dtype`) and (A*(r)V, A*(r)ᵀU), generating each
        superchunk ONCE: row block s's residual r_s is known as soon as its
        forward values are, and its adjoint contribution G_sᵀ r_s needs the
        same rows. For one trial with numba and no dtype conversions, each
        chunk's products, residuals and adjoint part are computed in the
        generating kernel while the chunk is in cache.

        Bit for bit `forward_factors(U, V).astype(dtype) − y` and
        `gradient_products(r, U, V)`: every superchunk goes through the same
        products on the same operands, on the same thread (superchunk s on
        thread s mod T), and the parts are summed in the same order. NumPy only
        (returns None on other backends, where the caller uses the two passes)."""
        if not is_numpy(self.xp):
            return None
        dtype = np.dtype(dtype)
        U, V = np.asarray(U), np.asarray(V)
        with _one_blas_thread():
            X = U @ np.swapaxes(V, -1, -2)
        X = np.asarray(X, dtype=self.dtype)
        lead = X.shape[:-2]
        flat = X.reshape(-1, self.n1 * self.n2)
        y = np.asarray(y)
        y_rows = np.broadcast_to(y, lead + (self.m,)).reshape(-1, self.m)
        scale = self.dtype.type(self._scale)
        r = np.empty((flat.shape[0], self.m), dtype=dtype)
        rows = self._row_kernels(flat.shape[0])
        fused = rows and self.index is None and dtype == self.dtype and y.dtype == self.dtype
        whole = fused and self._whole_threads()
        x = np.ascontiguousarray(flat[0]) if rows else None
        y_first = np.ascontiguousarray(y_rows[0]) if fused else None

        def run(t):
            acc = np.zeros((flat.shape[0], self.n1 * self.n2), dtype=self.dtype)
            if whole:
                self._stream(t, self.threads, ("step", x, r[0], scale, y_first, acc[0]))
                return acc
            dots = np.empty(max(b - a for _, _, a, b in self._blocks), dtype=self.dtype)
            for s in self._blocks_of_thread(t):
                _, _, a, b = self._blocks[s]
                if fused:
                    self._block(s, ("step", x, r[0, a:b], scale, y_first[a:b], acc[0]))
                    continue
                if rows:
                    G, targets, local = self._block(s, ("dots", x, dots[:b - a]))
                    forward = (dots[:b - a] if local is None else dots[local])[None, :] * scale
                else:
                    G, targets, local = self._block(s)
                    forward = flat @ (G if local is None else G[local]).T
                    forward *= scale
                r[:, targets] = forward.astype(dtype, copy=False) - y_rows[:, targets]
                self._accumulate(acc, G if local is None else G[local], np.ascontiguousarray(np.asarray(r[:, targets], dtype=self.dtype)))
            return acc

        total = self._sum_over_threads(run)
        total *= scale
        M = total.reshape(*lead, self.n1, self.n2)
        with _one_blas_thread():
            MV, MtU = M @ V, np.swapaxes(M, -1, -2) @ U
        return r.reshape(*lead, self.m), MV.astype(dtype, copy=False), MtU.astype(dtype, copy=False)

    def forward_factors(self, U, V):
        """A(UVᵀ) with UVᵀ by one BLAS thread, as in `residual_gradient`: the
        same bits, and no OpenBLAS worker left spinning (it spins for a while
        after each multi-threaded call) beside the generator threads, which
        measured up to 2× slower next to one."""
        if not is_numpy(self.xp):
            return super().forward_factors(U, V)
        with _one_blas_thread():
            X = np.asarray(U) @ np.swapaxes(np.asarray(V), -1, -2)
        return self.forward(X)

    def gradient_products(self, z, U, V):
        """(A*(z)V, A*(z)ᵀU), the two small products by one BLAS thread (see `forward_factors`)."""
        if not is_numpy(self.xp):
            return super().gradient_products(z, U, V)
        M = self.adjoint(z)
        with _one_blas_thread():
            return M @ V, np.swapaxes(M, -1, -2) @ U

    def _adjoint_xp(self, z):
        xp = self.xp
        flat = xp.reshape(z, (-1, self.m))
        total = xp.zeros((flat.shape[0], self.n1 * self.n2), dtype=flat.dtype, device=self.device)
        for c in range(len(self._bounds)):
            G, targets = self._chunk_xp(c)
            if G.shape[0]:
                zc = flat[:, targets] if isinstance(targets, slice) else xp.take(flat, xp.asarray(targets, device=self.device), axis=1)
                total = total + zc @ G
        return xp.reshape(total * self._scale, (*z.shape[:-1], self.n1, self.n2))

    def take(self, index):
        index = np.asarray(index)
        base = index if self.index is None else self.index[index]
        new = StreamGaussian(self.n1, self.n2, self.m_total, seed=self.seed, dtype=self.dtype, threads=self.threads, index=base)
        new._states = self._states
        return new if is_numpy(self.xp) else new.to_namespace(self.xp, self.device)


def stream_buffer_bytes(n1: int, n2: int, m: int, dtype, threads: int) -> int:
    """Peak bytes of `StreamGaussian`'s generation buffers (its `peak_bytes`):
    32 bytes of SFC64 state a chunk, and per thread the largest superchunk in
    `dtype`, its `generation_bytes` and one n1·n2 accumulator row."""
    N = int(n1) * int(n2)
    itemsize = np.dtype(dtype).itemsize
    blocks = superchunks(int(m), N)
    entries = max(b - a for _, _, a, b in blocks) * N
    per_thread = entries * itemsize + generation_bytes(entries, min(entries, rows_per_chunk(N) * N), dtype) + N * itemsize
    return 32 * blocks[-1][1] + min(int(threads), len(blocks)) * per_thread


_BLAS_CONTROLLER = []


def _small_products_blas():
    """One BLAS thread for the k-wide products around a compiled kernel when the
    thread budget is larger (else no change): after a product on two threads,
    OpenBLAS's second thread spins for a while, on the core the kernel's other part
    needs."""
    return _one_blas_thread() if thread_budget() > 1 else contextlib.nullcontext()


def _one_blas_thread():
    """threadpool_limits(1) from a controller found once (finding the BLAS
    libraries costs ~1.5 ms, a limit ~20 µs; NumPy's and SciPy's OpenBLAS are
    loaded when this module is)."""
    if not _BLAS_CONTROLLER:
        _BLAS_CONTROLLER.append(ThreadpoolController())
    return _BLAS_CONTROLLER[0].limit(limits=1)
