"""Entry sampling (matrix completion): A(X)_i = X[rows_i, cols_i].

Unscaled, so y holds the observed values themselves and
f(U, V) = ½ Σ_{(i,j)∈Ω} ((UVᵀ)_ij − Y_ij)². Nothing n1×n2 is ever formed on the
factor path: the forward map gathers rows of U and V in cache-sized blocks
(`BLOCK_BYTES`), spread over the cores (NumPy releases the GIL there), and
A*(z)V, A*(z)ᵀU are sparse–dense products with the one row-major CSR layout
of the pattern (A*(z)ᵀU through its transpose). Cost O(|Ω|·k) per step.
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import scipy.sparse as sp

from asymsense.backend import is_numpy, run_threads, segment_sum, to_numpy
from asymsense.backend import xp_dtype as bk_dtype
from asymsense.errors import InputError
from asymsense.validation import check_dtype, check_int, check_sampled_measurements, resolve_seed
from asymsense.operators import entry_kernels
from asymsense.operators.base import Operator

BLOCK_BYTES = 2**20
"""Gathered bytes per forward block and factor: small enough to stay in cache."""

PARALLEL_ENTRIES = 2**16
"""Below this many entries every kernel runs on one thread (no pool overhead)."""

FUSED_ENTRIES = 2**16
"""From this many entries on, one-trial forward and gradient products run the
numba kernels of `entry_kernels` when numba is installed (a CSR pass for
A*(z)V, a CSC pass for A*(z)ᵀU, no |Ω|·k intermediate; `residual_gradient`
fuses the forward into the CSR pass); below it, and without numba, the
NumPy/SciPy path (results agree to about 1e-7 relative in float32; the
smaller problems, the test suite's pinned runs among them, keep the NumPy
path bit for bit)."""

SCATTER_PARTS = 4
"""Parts (of about equal entry counts) of the one-pass step: each part
scatters its share of the gathered side's gradient into its own array, the
parts are then added in a fixed order. A constant, not the thread count, so
the bits do not depend on the threads."""

SCATTER_BYTES = 2**25
"""The one-pass step (`entry_kernels.one_pass_step`) runs when the gathered
factor (the one of the shorter side) holds at most this many bytes: then its
rows and its gradient's rows are mostly in the last-level cache (32 MB here),
and scattering into them costs less than the CSC pass's random gather of the
other factor (10⁷ entries, 10⁶ × 10⁵, k = 64, float32: 0.86–0.91 s of CPU per
step against 0.96–1.04 s, loads 7–9). Above it, the two passes."""

TILE_BYTES = 2**22
"""Bytes of the gathered factor per tile of the one-pass step: the entries
are laid out tile by tile (each tile a slice of the gathered factor's rows)
so that the rows gathered and scattered into stay in cache (10⁷ entries,
10⁶ × 10⁵, k = 64, float32: 8 tiles of 3.2 MB took 0.82 s of CPU per step
against 1.09 s untiled, 3 rounds, load 4.5; the same bits)."""

BLOCK_ENTRIES = 2**15
"""Entries per block of consecutive rows (columns) handed to one thread by
the numba passes: small enough to balance two busy cores, large enough that
scheduling costs nothing."""


class _Recycler:
    """Output arrays of the numba paths, handed out again once nobody else
    holds them. A fresh (n1, k) output costs page faults on every step
    (0.08 s for 256 MB with huge pages at hand, 2.5 s when the kernel has to
    compact memory for them, at 10⁶ × 64 float32); in a descent loop the
    previous step's output is dropped one step later (it became the iterate),
    so its memory serves the next output instead. Only arrays whose sole
    owner is this pool are reused (reference count; a view keeps its base
    referenced), at most `keep` per shape and dtype; a copy (pickle) starts empty."""

    def __init__(self, keep: int = 2):
        self.keep = keep
        self.pool: list[np.ndarray] = []
        self.lock = threading.Lock()

    def __getstate__(self):
        return {"keep": self.keep}

    def __setstate__(self, state):
        self.__init__(state["keep"])

    def empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        with self.lock:  # the returned array is referenced by the caller before the lock opens
            for i in range(len(self.pool)):
                # references: the list, and getrefcount's argument
                if self.pool[i].shape == shape and self.pool[i].dtype == dtype and sys.getrefcount(self.pool[i]) == 2:
                    return self.pool[i]
            out = np.empty(shape, dtype)
            if sum(a.shape == shape and a.dtype == dtype for a in self.pool) < self.keep:
                self.pool.append(out)
            return out


def _blocks(indptr, per_block: int = BLOCK_ENTRIES):
    """Segment boundaries cutting a CSR pattern into blocks of about
    `per_block` entries (whole segments; first 0, last the segment count)."""
    n = len(indptr) - 1
    cuts = np.searchsorted(indptr, np.arange(per_block, indptr[-1], per_block), side="left")
    return np.unique(np.r_[0, cuts, n].astype(np.int64))


def _csr_pattern(major, minor, n_major):
    """Permutation, indptr and indices that lay entries out in CSR order by `major`."""
    order = np.lexsort((minor, major))
    indptr = np.zeros(n_major + 1, dtype=np.int64)
    np.cumsum(np.bincount(major, minlength=n_major), out=indptr[1:])
    return order, indptr, minor[order]


class EntrySample(Operator):
    """Observations of the entries (rows[i], cols[i]) of an n1×n2 matrix."""

    def __init__(self, rows, cols, shape, *, dtype="float64"):
        n1, n2 = (check_int("shape[0]", shape[0], minimum=1), check_int("shape[1]", shape[1], minimum=1))
        rows, cols = np.asarray(rows), np.asarray(cols)
        if rows.ndim != 1 or rows.shape != cols.shape:
            raise InputError(f"rows and cols must be 1-d arrays of equal length, got shapes {rows.shape} and {cols.shape}")
        if rows.size == 0:
            raise InputError("m must be >= 1: no entries were given (rows is empty)")
        for name, idx, n in (("rows", rows, n1), ("cols", cols, n2)):
            if not np.issubdtype(idx.dtype, np.integer):
                raise InputError(f"{name} must hold integers, got dtype {idx.dtype}")
            if idx.min() < 0 or idx.max() >= n:
                raise InputError(f"{name} must lie in [0, {n}), got values in [{idx.min()}, {idx.max()}]")
        self.shape = (n1, n2)
        self.m = rows.size
        self.dtype = check_dtype(dtype)
        index_dtype = np.int32 if max(n1, n2, self.m) < 2**31 else np.int64
        self.rows = rows.astype(index_dtype)
        self.cols = cols.astype(index_dtype)
        self._by_row = _csr_pattern(self.rows, self.cols, n1)
        self._by_col = _csr_pattern(self.cols, self.rows, n2)
        self._row_major = bool(np.all(self._by_row[0][1:] > self._by_row[0][:-1]))
        self._threads = (os.cpu_count() or 1) if self.m >= PARALLEL_ENTRIES else 1
        indptr = self._by_row[1]
        cuts = np.unique(np.searchsorted(indptr, np.linspace(0, self.m, self._threads + 1), side="left"))
        self._row_ranges = list(zip(np.r_[0, cuts[1:-1]], np.r_[cuts[1:-1], n1])) if self._threads > 1 else [(0, n1)]
        self._fused = self.m >= FUSED_ENTRIES and entry_kernels.available()
        if self._fused:
            self._part_rows = np.array([a for a, _ in self._row_ranges] + [n1], dtype=np.int64)
            self._row_blocks, self._col_blocks = _blocks(self._by_row[1]), _blocks(self._by_col[1])
            self._scatter = self._one_pass_layout()
        self._outputs = _Recycler()

    def _one_pass_layout(self):
        """(rows_streamed, pattern, parts, gather_blocks) of the one-pass step:
        the longer side's factor is streamed segment by segment (rows of U
        with the CSR pattern when n1 ≥ n2, rows of V with the CSC one
        otherwise), the other gathered and scattered into."""
        rows_streamed = self.shape[0] >= self.shape[1]
        pattern = self._by_row if rows_streamed else self._by_col
        n_stream, n_gather = self.shape if rows_streamed else self.shape[::-1]
        cuts = np.searchsorted(pattern[1], np.linspace(0, self.m, SCATTER_PARTS + 1), side="left")
        parts = np.maximum.accumulate(np.r_[0, cuts[1:-1], n_stream]).astype(np.int64)
        return rows_streamed, pattern, parts, np.linspace(0, n_gather, 33).astype(np.int64)

    def _tiled_pattern(self, n_tiles: int):
        """The one-pass pattern laid out in `n_tiles` tiles by the gathered
        side's index (`entry_kernels.one_pass_step`), built on first use and
        kept (one layout at a time)."""
        cached = getattr(self, "_tiles", None)
        if cached is not None and cached[0] == n_tiles:
            return cached[1]
        rows_streamed, (order, indptr, indices), _, _ = self._scatter
        if n_tiles == 1:
            return order, indptr, indices
        n_stream, n_gather = self.shape if rows_streamed else self.shape[::-1]
        small = self.rows.dtype  # int32 when the entries and the tiles' segments allow it
        key_type = small if n_tiles * n_stream < np.iinfo(small).max else np.int64
        key = np.repeat(np.arange(n_stream, dtype=key_type), np.diff(indptr))
        key += ((indices.astype(np.int64) * n_tiles // n_gather) * n_stream).astype(key_type)
        perm = np.argsort(key, kind="stable")  # tile, then segment, then the pattern's order
        flat = np.zeros(n_tiles * n_stream + 1, dtype=small)
        np.cumsum(np.bincount(key, minlength=n_tiles * n_stream), out=flat[1:])
        del key
        pattern = (order.astype(small)[perm], flat, indices[perm])
        self._tiles = (n_tiles, pattern)
        return pattern

    def _one_pass_ok(self, U, V) -> bool:
        gathered = V if self._scatter[0] else U
        return gathered.nbytes <= SCATTER_BYTES

    backend_arrays = ("rows", "cols")

    def to_namespace(self, xp, device=None):
        """Also moves the two CSR patterns (with each entry's segment id), used
        by the gather / segment-sum kernels on non-NumPy backends."""
        new = super().to_namespace(xp, device)
        if not is_numpy(xp):
            rows, cols = to_numpy(self.rows), to_numpy(self.cols)
            new._host = (rows, cols)
            move = lambda a: new.xp.asarray(np.asarray(a, dtype=np.int64), device=new.device)  # noqa: E731
            new._patterns = tuple(
                tuple(move(a) for a in (order, indptr, indices, major[order]))
                for (order, indptr, indices), major in ((self._by_row, rows), (self._by_col, cols))
            )
        return new

    def _segment_products(self, z, F, which):
        """Σ over each segment (row i for A*(z)V, column j for A*(z)ᵀU) of z_e F[other_e]."""
        xp = self.xp
        order, indptr, indices, segments = self._patterns[which]
        values = xp.expand_dims(xp.take(self._arr(z), order, axis=-1), axis=-1) * xp.take(self._arr(F), indices, axis=-2)
        return segment_sum(values, segments, indptr, xp)

    def _row_csr(self, z, r0: int = 0, r1: int | None = None):
        """Rows r0:r1 of A*(z) as a CSR array in the row-major layout stored once
        (no reorder when the entries already come row-major, as the completion
        model passes them)."""
        order, indptr, indices = self._by_row
        r1 = self.shape[0] if r1 is None else r1
        a, b = indptr[r0], indptr[r1]
        data = z[a:b] if self._row_major else z[order[a:b]]
        return sp.csr_array((data, indices[a:b], indptr[r0:r1 + 1] - a), shape=(r1 - r0, self.shape[1]))

    def _products(self, z, F, transpose: bool):
        """A*(z)F, or A*(z)ᵀF, for one z and one F: row ranges of A*(z) on the
        cores, each range's rows of the output (or its share of the sum)."""
        if transpose:
            parts = run_threads(lambda r: self._row_csr(z, *r).T @ F[r[0]:r[1]], self._row_ranges, self._threads)
            return sum(parts[1:], parts[0])
        out = np.empty((self.shape[0], F.shape[-1]), dtype=np.result_type(z, F))

        def rows(r):
            out[r[0]:r[1]] = self._row_csr(z, *r) @ F

        run_threads(rows, self._row_ranges, self._threads)
        return out

    def forward(self, X):
        if not is_numpy(self.xp):
            X = self._arr(X)
            flat = self.xp.reshape(X, (*X.shape[:-2], self.n1 * self.n2))
            return self.xp.take(flat, self.rows * self.n2 + self.cols, axis=-1)
        return np.asarray(X)[..., self.rows, self.cols]

    def forward_factors(self, U, V):
        if not is_numpy(self.xp):
            xp = self.xp
            return xp.sum(xp.take(self._arr(U), self.rows, axis=-2) * xp.take(self._arr(V), self.cols, axis=-2), axis=-1)
        U, V = np.asarray(U), np.asarray(V)
        if self._fused_ok(U, V):
            order, indptr, indices = self._by_row
            return entry_kernels.forward(U, V, indptr, indices, order, self._part_rows, np.empty(self.m, dtype=U.dtype))
        out = np.empty(np.broadcast_shapes(U.shape[:-2], V.shape[:-2]) + (self.m,), dtype=np.result_type(U, V))
        block = max(1024, BLOCK_BYTES // max(1, U.shape[-1] * U.dtype.itemsize))

        def gather_dot(a):
            b = min(a + block, self.m)
            out[..., a:b] = np.einsum("...ik,...ik->...i", U[..., self.rows[a:b], :], V[..., self.cols[a:b], :])

        run_threads(gather_dot, range(0, self.m, block), self._threads)
        return out

    def _batched(self, z, F, transpose: bool):
        """A*(z)F (or A*(z)ᵀF) for each leading index, through the one row-major CSR."""
        z, F = np.asarray(z), np.asarray(F)
        if z.ndim == 1 and F.ndim == 2:
            return self._products(z, F, transpose)
        lead = np.broadcast_shapes(z.shape[:-1], F.shape[:-2])
        zb = np.broadcast_to(z, lead + z.shape[-1:]).reshape(-1, self.m)
        Fb = np.broadcast_to(F, lead + F.shape[-2:]).reshape(-1, *F.shape[-2:])
        out = np.stack([self._products(zi, Fi, transpose) for zi, Fi in zip(zb, Fb)])
        return out.reshape(lead + out.shape[-2:])

    def adjoint_times(self, z, V):
        if not is_numpy(self.xp):
            return self._segment_products(z, V, 0)
        return self._batched(z, V, transpose=False)

    def adjoint_t_times(self, z, U):
        if not is_numpy(self.xp):
            return self._segment_products(z, U, 1)
        return self._batched(z, U, transpose=True)

    def _fused_ok(self, U, V, z=None) -> bool:
        """Whether the numba kernels take this call: one trial, one dtype, NumPy arrays."""
        return (self._fused and U.ndim == 2 and V.ndim == 2 and U.dtype == V.dtype and U.dtype in (np.float32, np.float64)
                and (z is None or (z.ndim == 1 and z.dtype == U.dtype)))

    def gradient_products(self, z, U, V):
        if is_numpy(self.xp):
            z, U, V = np.asarray(z), np.asarray(U), np.asarray(V)
            if self._fused_ok(U, V, z):
                z, U, V = np.ascontiguousarray(z), np.ascontiguousarray(U), np.ascontiguousarray(V)
                out = self._outputs.empty
                return (entry_kernels.segment_products(z, V, self._by_row, self._row_blocks, out(U.shape, U.dtype)),
                        entry_kernels.segment_products(z, U, self._by_col, self._col_blocks, out(V.shape, V.dtype)))
        return self.adjoint_times(z, V), self.adjoint_t_times(z, U)

    def residual_gradient(self, U, V, y, dtype, *, fitted: bool = False):
        """r = A(UVᵀ) − y (in `dtype`) and (A*(r)V, A*(r)ᵀU) for a whole step,
        as `fgd` and the completion fit call it; with `fitted=True` also
        A(UVᵀ) itself (in `dtype`) as a fourth array, the bits
        `forward_factors` gives (the completion fit reports its training
        RMSE from it). With the numba kernels (one trial, factors, y and
        `dtype` alike) one pass over the entries when the shorter side's
        factor is at most SCATTER_BYTES (`entry_kernels.one_pass_step`: one
        random gather and one scatter per entry, both into that cache-sized
        factor), otherwise the forward fused into the CSR pass of A*(r)V: two
        random gathers per entry instead of three
        (`entry_kernels.residual_gradient`); either agrees with the two calls
        to about 1e-7 relative in float32. Otherwise exactly
        `forward_factors(U, V).astype(dtype) − y` and `gradient_products`.
        NumPy only (None on other backends, where the caller makes the calls)."""
        if not is_numpy(self.xp):
            return None
        U, V, y = np.asarray(U), np.asarray(V), np.asarray(y)
        if self._fused_ok(U, V, y) and np.dtype(dtype) == U.dtype:
            out = self._outputs.empty
            fit = out((self.m,), U.dtype) if fitted else None  # held: the pool hands r another array
            U, V, y = np.ascontiguousarray(U), np.ascontiguousarray(V), np.ascontiguousarray(y)
            if self._one_pass_ok(U, V):
                rows_streamed, _, parts, blocks = self._scatter
                S, G = (U, V) if rows_streamed else (V, U)
                pattern = self._tiled_pattern(max(1, min(G.shape[0], -(-G.nbytes // TILE_BYTES))))
                r, grad_S, grad_G = entry_kernels.one_pass_step(
                    S, G, y, pattern, parts, blocks, (out((self.m,), U.dtype), out(S.shape, U.dtype), out(G.shape, U.dtype)),
                    out((len(parts) - 2, *G.shape), U.dtype), fitted=fit)
                MV, MtU = (grad_S, grad_G) if rows_streamed else (grad_G, grad_S)
            else:
                r, MV, MtU = entry_kernels.residual_gradient(
                    U, V, y, self._by_row, self._by_col, self._row_blocks, self._col_blocks,
                    out=(out((self.m,), U.dtype), out(U.shape, U.dtype), out(V.shape, V.dtype)), fitted=fit)
            return (r, MV, MtU, fit) if fitted else (r, MV, MtU)
        forward = self.forward_factors(U, V).astype(dtype, copy=False)
        r = forward - y
        MV, MtU = self.gradient_products(r, U, V)
        grads = (r, MV.astype(dtype, copy=False), MtU.astype(dtype, copy=False))
        return (*grads, forward) if fitted else grads

    def adjoint(self, z):
        if not is_numpy(self.xp):
            return self.adjoint_times(z, self.xp.eye(self.n2, dtype=bk_dtype(self.xp, self.dtype), device=self.device))
        z = np.asarray(z)
        out = np.zeros(z.shape[:-1] + self.shape, dtype=np.result_type(z, self.dtype))
        flat = out.reshape(-1, self.shape[0] * self.shape[1])
        linear = self.rows.astype(np.int64) * self.shape[1] + self.cols
        for zi, oi in zip(z.reshape(-1, self.m), flat):
            np.add.at(oi, linear, zi)
        return out

    def take(self, index):
        index = np.asarray(index)
        rows, cols = (self.rows, self.cols) if is_numpy(self.xp) else self._host
        new = EntrySample(rows[index], cols[index], self.shape, dtype=self.dtype)
        return new if is_numpy(self.xp) else new.to_namespace(self.xp, self.device)


def random_entries(n1, n2, m, *, seed=None, dtype="float64") -> EntrySample:
    """m distinct entries of an n1×n2 matrix, uniformly at random."""
    check_sampled_measurements(m, n1, n2, "entries")
    rng = np.random.default_rng(resolve_seed(seed))
    flat = rng.choice(n1 * n2, size=m, replace=False)
    op = EntrySample(flat // n2, flat % n2, (n1, n2), dtype=dtype)
    return op
