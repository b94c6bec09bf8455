"""Gaussian measurements, A_i with i.i.d. N(0, 1/m) entries (so E[A*A] = Id).

Row i of the (m, n1·n2) matrix G is vec(A_i) (row-major). Rows are drawn in
fixed chunks of `rows_per_chunk(n1·n2)` rows, chunk c from its own SFC64
generator seeded by SeedSequence(seed, spawn_key=(c,)). That makes the dense
operator (all chunks stored) and the matrix-free one (each chunk regenerated
when needed, memory O(chunk)) equal entry for entry for the same seed, and lets
the matrix-free operator regenerate chunks on several threads at once (NumPy's
generators release the GIL while filling arrays).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import check_dtype, check_int, resolve_seed
from .base import Operator, check_shape

CHUNK_ENTRIES = 2**18
"""Target number of entries per generated chunk (2 MiB in float64)."""


def rows_per_chunk(n_entries_per_row: int) -> int:
    """Rows in one chunk: about CHUNK_ENTRIES entries, at least one row."""
    return max(1, CHUNK_ENTRIES // n_entries_per_row)


def _chunk_bounds(m: int, rows: int):
    return [(start, min(start + rows, m)) for start in range(0, m, rows)]


def generate_chunk(seed: int, chunk: int, rows: int, n_cols: int, dtype, out=None) -> np.ndarray:
    """Standard-normal rows of chunk `chunk` (unscaled). Float32 chunks draw
    float32 normals directly: dense and matrix-free agree within a dtype."""
    rng = np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(chunk,))))
    if out is None:
        out = np.empty((rows, n_cols), dtype=dtype)
    rng.standard_normal(out=out, dtype=out.dtype)
    return out


class DenseGaussian(Operator):
    """Dense Gaussian operator: G stored once as a contiguous (m, n1·n2) array.

    A(X) = G vec(X) and A*(z) = mat(Gᵀ z); on a batch both become one
    matrix–matrix product, so B trials read G once per step instead of B times.
    """

    def __init__(self, n1, n2, m, *, seed=None, dtype="float64", matrix=None):
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

    def forward(self, X):
        X = np.asarray(X)
        flat = X.reshape(*X.shape[:-2], self.n1 * self.n2)
        return flat @ self.matrix.T

    def adjoint(self, z):
        z = np.asarray(z)
        return (z @ self.matrix).reshape(*z.shape[:-1], self.n1, self.n2)

    def take(self, index):
        return DenseGaussian(self.n1, self.n2, len(index), seed=self.seed, dtype=self.dtype, matrix=self.matrix[np.asarray(index)])


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
        self._scale = 1.0 / np.sqrt(self.m_total)
        if self.index is not None:
            # Which selected measurements fall in each chunk, and where they go.
            order = np.argsort(self.index, kind="stable")
            sorted_rows = self.index[order]
            cuts = np.searchsorted(sorted_rows, [a for a, _ in self._bounds] + [self.m_total])
            self._selection = [(order[cuts[c]:cuts[c + 1]], sorted_rows[cuts[c]:cuts[c + 1]] - a) for c, (a, _) in enumerate(self._bounds)]

    @property
    def peak_bytes(self) -> int:
        """Memory held by generated chunks at any one time."""
        return self.threads * self._rows * self.n1 * self.n2 * self.dtype.itemsize

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

    def _chunk(self, c):
        a, b = self._bounds[c]
        G = generate_chunk(self.seed, c, b - a, self.n1 * self.n2, self.dtype)
        if self.index is None:
            return G, slice(a, b)
        targets, local = self._selection[c]
        return G[local], targets

    def forward(self, X):
        X = np.asarray(X, dtype=self.dtype)
        flat = X.reshape(-1, self.n1 * self.n2)
        out = np.empty((flat.shape[0], self.m), dtype=self.dtype)

        def work(c):
            G, targets = self._chunk(c)
            out[:, targets] = flat @ G.T

        self._per_thread(work)
        out *= self.dtype.type(self._scale)
        return out.reshape(*X.shape[:-2], self.m)

    def adjoint(self, z):
        z = np.asarray(z, dtype=self.dtype)
        flat = z.reshape(-1, self.m)

        def work(c):
            G, targets = self._chunk(c)
            return flat[:, targets] @ G

        total = sum(part for part in self._per_thread(work) if part is not None)
        if isinstance(total, int):
            total = np.zeros((flat.shape[0], self.n1 * self.n2), dtype=self.dtype)
        total *= self.dtype.type(self._scale)
        return total.reshape(*z.shape[:-1], self.n1, self.n2)

    def take(self, index):
        index = np.asarray(index)
        base = index if self.index is None else self.index[index]
        return StreamGaussian(self.n1, self.n2, self.m_total, seed=self.seed, dtype=self.dtype, threads=self.threads, index=base)
