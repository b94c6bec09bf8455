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

import copy
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg.blas
from threadpoolctl import threadpool_limits

from asymsense.errors import InputError
from asymsense.validation import check_dtype, check_int, resolve_seed
from asymsense.backend import is_numpy
from asymsense.operators import jax_kernels, rng_kernels
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


_SHIFT = np.uint64(40)
_LOW24 = np.uint64(0xFFFFFF)
_UNIT = np.float32(2.0**-24)


def standard_normal_fill(bit_generator: np.random.BitGenerator, out: np.ndarray) -> np.ndarray:
    """Fill `out` with N(0, 1) draws by Box–Muller in float32.

    Each 64-bit word w of the generator gives u₁ = (⌊w/2⁴⁰⌋ + ½)/2²⁴ ∈ (0, 1)
    and u₂ = (w mod 2²⁴)/2²⁴; the first half of `out` gets r·cos θ and the
    second half r·sin θ, r = √(−2 ln u₁), θ = 2πu₂. Raw words are drawn in
    one call (5–10% faster here than float32 `Generator.random`).
    """
    n = out.size
    half = (n + 1) // 2
    staged = not (out.dtype == np.float32 and out.flags.c_contiguous)
    flat = scratch("stage", n) if staged else out.reshape(-1)
    radius, sine = flat[:half], flat[half:]
    theta = scratch("theta", half)
    if isinstance(bit_generator, np.random.SFC64) and rng_kernels.available():
        # The same float32 values from a numba pass (see rng_kernels).
        rng_kernels.sfc64_box_muller_inputs(bit_generator, radius, theta, 0.5, _UNIT, _TWO_PI * _UNIT)
    else:
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


def generate_chunk(seed: int, chunk: int, rows: int, n_cols: int, dtype, out=None) -> np.ndarray:
    """Standard-normal rows of chunk `chunk` (unscaled), the same values for
    every dtype and for the dense and the matrix-free operator."""
    bit_generator = np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(chunk,)))
    if out is None:
        out = np.empty((rows, n_cols), dtype=dtype)
    return standard_normal_fill(bit_generator, out)


def gaussian_chunk(xp, device, seed: int, chunk: int, rows: int, n_cols: int, dtype):
    """Chunk `chunk` of the Gaussian operator's standard-normal rows, as an
    array of xp on device. Generated on the host (SFC64 + Box–Muller), so the
    values are the same on every backend; on a GPU this costs a host→device
    copy per chunk (see docs/backends.md)."""
    host = generate_chunk(seed, chunk, rows, n_cols, dtype, out=scratch("chunk", rows * n_cols, dtype).reshape(rows, n_cols))
    if is_numpy(xp):
        return host
    return xp.asarray(host, device=device, copy=True)


class DenseGaussian(Operator):
    """Dense Gaussian operator: G stored once as a contiguous (m, n1·n2) array.

    A(X) = G vec(X) and A*(z) = mat(Gᵀ z); on a batch both become one
    matrix–matrix product, so B trials read G once per step instead of B times.

    kernel="jax" computes whole steps (`residual_gradient`, which fgd calls)
    with XLA instead of OpenBLAS (`operators.jax_kernels`: 2× faster skinny
    GEMMs at B = 6; equal to ~1e-15 per step in float64, not bit for bit);
    the default "blas" is NumPy's products.
    """

    KERNELS = ("blas", "jax")

    def __init__(self, n1, n2, m, *, seed=None, dtype="float64", matrix=None, kernel="blas"):
        if kernel not in self.KERNELS:
            raise InputError(f"kernel must be one of {', '.join(self.KERNELS)}, got {kernel!r}")
        if kernel == "jax" and not jax_kernels.available():
            raise InputError("kernel='jax' needs jax (pip install jax)")
        self.kernel = kernel
        self._jax_matrix = None
        self.shape = check_shape(n1, n2, m)[:2]
        self.m = int(m)
        self.dtype = check_dtype(dtype)
        self.seed = resolve_seed(seed)
        if matrix is None:
            N = self.shape[0] * self.shape[1]
            rows = rows_per_chunk(N)
            matrix = np.empty((self.m, N), dtype=self.dtype)
            for c, (a, b) in enumerate(_chunk_bounds(self.m, rows)):
                generate_chunk(self.seed, c, b - a, N, self.dtype, out=matrix[a:b])
            matrix *= self.dtype.type(1.0 / np.sqrt(self.m))
        self.matrix = np.ascontiguousarray(matrix, dtype=self.dtype)

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
        return DenseGaussian(self.n1, self.n2, len(index), seed=self.seed, dtype=self.dtype, matrix=self.matrix[index], kernel=self.kernel)

    def residual_gradient(self, U, V, y, dtype):
        """r = A(UVᵀ) − y (in `dtype`) and (A*(r)V, A*(r)ᵀU) for a whole step:
        with kernel="jax" one compiled XLA function; otherwise exactly
        `forward_factors(U, V).astype(dtype) − y` and `gradient_products`
        (the bits of the two calls). NumPy only (None on other backends)."""
        if not is_numpy(self.xp):
            return None
        if self.kernel == "jax":
            if self._jax_matrix is None:
                self._jax_matrix = jax_kernels.device_matrix(self.matrix)
            return jax_kernels.dense_step(self._jax_matrix, y, U, V, dtype)
        r = self.forward_factors(U, V).astype(dtype, copy=False) - y
        MV, MtU = self.gradient_products(r, U, V)
        return r, MV.astype(dtype, copy=False), MtU.astype(dtype, copy=False)


class StreamGaussian(Operator):
    """Matrix-free Gaussian operator: the same G as `DenseGaussian(seed)`,
    regenerated chunk by chunk on every application; memory O(threads · chunk).

    Each application streams all m rows: forward computes G_c vec(X) for each
    chunk c, adjoint accumulates G_cᵀ z_c. Chunks are spread over `threads`
    workers (default: all cores), each with BLAS limited to one thread.
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
        self._scale = float(1.0 / np.sqrt(self.m_total))
        if self.index is not None:
            # Which selected measurements fall in each chunk, and where they go.
            order = np.argsort(self.index, kind="stable")
            sorted_rows = self.index[order]
            cuts = np.searchsorted(sorted_rows, [a for a, _ in self._bounds] + [self.m_total])
            self._selection = [(order[cuts[c]:cuts[c + 1]], sorted_rows[cuts[c]:cuts[c + 1]] - a) for c, (a, _) in enumerate(self._bounds)]

    @property
    def peak_bytes(self) -> int:
        """Memory held by the generation buffers at any one time: per thread,
        one chunk in the operator's dtype, a float32 staging chunk (float64
        only), the Box–Muller scratch (θ in float32, the raw words and their
        bit fields in uint64, half a chunk each) and the adjoint accumulator
        of one n1·n2 row per trial (counted for one trial)."""
        entries = self._rows * self.n1 * self.n2
        half = entries // 2 + 1
        per_thread = entries * self.dtype.itemsize + half * (4 + 8 + 8) + self.n1 * self.n2 * self.dtype.itemsize
        if self.dtype != np.float32:
            per_thread += entries * 4
        return self.threads * per_thread

    def _per_thread(self, work):
        """Run `work(c)` over all chunks, thread t taking chunks t, t+T, …;
        returns each thread's sum of the non-None results (or None)."""
        n_chunks = len(self._bounds)

        def run(t):
            acc = None
            for c in range(t, n_chunks, self.threads):
                part = work(c)
                if part is not None:
                    acc = part if acc is None else acc.__iadd__(part)
            return acc

        with threadpool_limits(1), ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(run, range(min(self.threads, n_chunks))))

    def _sum_over_threads(self, run):
        """Σ_t run(t) over the generator threads (one BLAS thread each), summed in thread order."""
        with threadpool_limits(1), ThreadPoolExecutor(self.threads) as pool:
            parts = list(pool.map(run, range(min(self.threads, len(self._bounds)))))
        total = parts[0]
        for part in parts[1:]:
            total += part
        return total

    def _chunks_of_thread(self, t: int):
        """The non-empty chunks (G_c, targets) that thread t handles: c = t, t + T, t + 2T, …
        (always the same thread for chunk c, so sums keep their order)."""
        for c in range(t, len(self._bounds), self.threads):
            G, targets = self._chunk(c)
            if G.shape[0]:
                yield G, targets

    def _chunk(self, c):
        a, b = self._bounds[c]
        N = self.n1 * self.n2
        G = generate_chunk(self.seed, c, b - a, N, self.dtype, out=scratch("chunk", (b - a) * N, self.dtype).reshape(b - a, N))
        if self.index is None:
            return G, slice(a, b)
        targets, local = self._selection[c]
        return G[local], targets

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

        def work(c):
            G, targets = self._chunk(c)
            out[:, targets] = flat @ G.T

        self._per_thread(work)
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
        gemm = scipy.linalg.blas.dgemm if self.dtype == np.float64 else scipy.linalg.blas.sgemm

        def run(t):
            acc = np.zeros((flat.shape[0], self.n1 * self.n2), dtype=self.dtype)
            for G, targets in self._chunks_of_thread(t):
                # accᵀ += Gᵀ z_cᵀ in place (BLAS beta = 1): no B·n1·n2 temporary per chunk.
                gemm(1.0, G.T, np.ascontiguousarray(flat[:, targets]).T, beta=1.0, c=acc.T, overwrite_c=True)
            return acc

        total = self._sum_over_threads(run)
        total *= self.dtype.type(self._scale)
        return total.reshape(*z.shape[:-1], self.n1, self.n2)

    def residual_gradient(self, U, V, y, dtype):
        """One pass over the chunks for a whole gradient step: r = A(UVᵀ) − y
        (in `dtype`) and (A*(r)V, A*(r)ᵀU), generating each chunk ONCE: row
        block c's residual r_c is known as soon as its forward values are, and
        its adjoint contribution G_cᵀ r_c needs the same rows.

        Bit for bit `forward_factors(U, V).astype(dtype) − y` and
        `gradient_products(r, U, V)`: every chunk goes through the same BLAS
        calls on the same operands, on the same thread (chunk c on thread
        c mod T), and the parts are summed in the same order. NumPy only
        (returns None on other backends, where the caller uses the two passes)."""
        if not is_numpy(self.xp):
            return None
        dtype = np.dtype(dtype)
        U, V = np.asarray(U), np.asarray(V)
        X = U @ np.swapaxes(V, -1, -2)
        X = np.asarray(X, dtype=self.dtype)
        lead = X.shape[:-2]
        flat = X.reshape(-1, self.n1 * self.n2)
        y = np.asarray(y)
        y_rows = np.broadcast_to(y, lead + (self.m,)).reshape(-1, self.m)
        scale = self.dtype.type(self._scale)
        r = np.empty((flat.shape[0], self.m), dtype=dtype)
        gemm = scipy.linalg.blas.dgemm if self.dtype == np.float64 else scipy.linalg.blas.sgemm

        def run(t):
            acc = np.zeros((flat.shape[0], self.n1 * self.n2), dtype=self.dtype)
            for G, targets in self._chunks_of_thread(t):
                forward = flat @ G.T
                forward *= scale
                r[:, targets] = forward.astype(dtype, copy=False) - y_rows[:, targets]
                z_c = np.ascontiguousarray(np.asarray(r[:, targets], dtype=self.dtype))
                gemm(1.0, G.T, z_c.T, beta=1.0, c=acc.T, overwrite_c=True)
            return acc

        total = self._sum_over_threads(run)
        total *= scale
        M = total.reshape(*lead, self.n1, self.n2)
        MV, MtU = M @ V, np.swapaxes(M, -1, -2) @ U
        return r.reshape(*lead, self.m), MV.astype(dtype, copy=False), MtU.astype(dtype, copy=False)

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
        return new if is_numpy(self.xp) else new.to_namespace(self.xp, self.device)
