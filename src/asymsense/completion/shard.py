"""One row block of a sharded completion fit: the state a Dask worker holds.

A `Shard` (run as a Dask actor, one per worker) owns the rows [r0, r1) of the
table: their training and validation entries, their row biases and their
rows of U (at the iterations the driver still refers to: the current one and
the best one on validation). V and the column biases are replicated: the
driver sends them with every call. What the driver needs back are sums over
rows — of squares, of bias residuals per column, of A*(r)ᵀU — which each shard
returns as its partial (`asymsense.completion.sharded` adds them up).

One iteration is one call, `step`:

    U_b ← D_b·(−μ) + U_b                (the pending update, as solvers.loop.fresh_gradient_step)
    e_b = A_b(U_b Vᵀ) − z_b,             ½‖e_b‖²,  Σ_val (ŷ − y)²
    (MV)_b = A_b*(e_b)V (+ l2·|Ω_i|·U_b),  kept here as D_b for the next update
    returns ½‖e_b‖², the validation sum and the partial A_b*(e_b)ᵀU_b (n2 × k)

so a whole iteration costs one round trip carrying n2·k numbers each way per
worker. The arithmetic of every row-local quantity is the single-process
fit's (`completion.model`), so the rows of U agree bit for bit given the same
V; only the column sums differ, by their summation order.
"""

from __future__ import annotations

import numpy as np

from asymsense.operators import EntrySample
from asymsense.solvers.loop import half_squared_norm


def _limit_threads(threads: int) -> None:
    """One worker, `threads` cores: numba's kernels (the fused entry products) included."""
    try:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover - numba is optional
        pass


def _sse(prediction, values) -> float:
    """Σ (ŷ − y)² in float64 (the numerator of `metrics.rmse`)."""
    diff = np.asarray(prediction, dtype=np.float64) - np.asarray(values, dtype=np.float64)
    return float(np.sum(diff**2))


class Shard:
    """The rows [r0, r1) of an n1 × n2 table (see the module docstring)."""

    def __init__(self, r0: int, r1: int, n2: int, threads: int = 1):
        self.r0, self.r1, self.n2 = int(r0), int(r1), int(n2)
        self.n_rows = self.r1 - self.r0
        _limit_threads(threads)
        self.U: dict[int, np.ndarray] = {}
        self.D = None
        self.val = None

    # -- data ----------------------------------------------------------------
    def load(self, rows, cols, values, val=None) -> int:
        """Training entries (global row indices in [r0, r1)) and optional
        validation entries (rows, cols, values) of the same rows."""
        self.train = self._local(rows, cols, values)
        self.val = None if val is None or len(val[0]) == 0 else self._local(*val)
        return len(self.train[0])

    def load_parquet(self, files, names, row_ids, col_ids, duplicates, validation, seed, source) -> dict:
        """Read this block's entries from Parquet (`completion.outofcore.read_block`)."""
        from asymsense.completion.outofcore import read_block

        block = read_block(files, names, row_ids, col_ids, duplicates, validation, seed, self.r0, source)
        self.load(*block["train"], block["val"])
        return block["info"]

    def _local(self, rows, cols, values):
        """Entries in row-major order, rows relative to r0 (int32 indices:
        8 bytes an entry less than int64 on a worker holding 10⁷–10⁸ of them)."""
        index = np.int32 if max(self.n_rows, self.n2) < 2**31 else np.int64
        rows, cols = (np.asarray(rows, np.int64) - self.r0).astype(index), np.asarray(cols).astype(index)
        values = np.asarray(values, np.float64)
        order = np.lexsort((cols, rows))
        return rows[order], cols[order], values[order]

    def merge_validation(self) -> int:
        """Training := training ∪ validation (the refit), in row-major order."""
        if self.val is not None:
            both = [np.concatenate([a, b]) for a, b in zip(self.train, self.val)]
            order = np.lexsort((both[1], both[0]))
            self.train, self.val = tuple(a[order] for a in both), None
        return len(self.train[0])

    def summary(self) -> dict:
        """Counts, sums and extremes of the values; column counts (partials)."""
        rows, cols, y = self.train
        out = {"m": len(y), "sum": float(np.sum(y)), "min": float(y.min()) if len(y) else np.inf,
               "max": float(y.max()) if len(y) else -np.inf, "col_counts": np.bincount(cols, minlength=self.n2),
               "row_counts": np.bincount(rows, minlength=self.n_rows), "m_val": 0 if self.val is None else len(self.val[2])}
        self.r = np.zeros(self.n_rows)
        return out

    # -- biases (completion.biases.fit_biases, split by rows) ----------------
    def column_sums(self, mean: float):
        """Σ_{i∈Ω_j, i in this block}(y_ij − b − r_i) per column j."""
        rows, cols, y = self.train
        return np.bincount(cols, y - mean - self.r[rows], minlength=self.n2)

    def fit_rows(self, mean: float, c, damping: float) -> None:
        """r_i = Σ_{j∈Ω_i}(y_ij − b − c_j)/(|Ω_i| + λ_r) for this block's rows."""
        rows, cols, y = self.train
        self.r = np.bincount(rows, y - mean - c[cols], minlength=self.n_rows) / (np.bincount(rows, minlength=self.n_rows) + damping)

    def row_biases(self):
        return self.r

    # -- the fit ---------------------------------------------------------------
    def prepare(self, mean: float, c, clip, dtype: str, l2: float) -> float:
        """Targets z = y − b − r_i − c_j, the block's operator; returns ‖z_b‖²."""
        rows, cols, y = self.train
        self.mean, self.c, self.clip, self.dtype, self.l2 = mean, np.asarray(c), clip, np.dtype(dtype), l2
        self.op = EntrySample(rows, cols, (max(self.n_rows, 1), self.n2), dtype=dtype)
        self.base = mean + self.r[rows] + self.c[cols]
        self.target = (y - self.base).astype(dtype)
        self.counts_r = np.bincount(rows, minlength=self.n_rows).astype(dtype)[:, None]
        if self.val is not None:
            vr, vc, vy = self.val
            self.val_op = EntrySample(vr, vc, (max(self.n_rows, 1), self.n2), dtype=dtype)
            self.val_base = mean + self.r[vr] + self.c[vc]
        self.U, self.D = {}, None
        return float(np.dot(self.target.astype(np.float64), self.target.astype(np.float64)))

    def power_u(self, v) -> float:
        """u_b = A_b*(z)v (kept); returns ‖u_b‖²."""
        self.u = self.op.adjoint_times(self.target, np.asarray(v))
        return float(np.sum(np.asarray(self.u, np.float64) ** 2))

    def power_v(self, sigma: float):
        """The partial A_b*(z)ᵀ(u_b/σ)."""
        return self.op.adjoint_t_times(self.target, self.u / sigma)

    def set_factor(self, version: int, U_block) -> None:
        self.U[version] = np.ascontiguousarray(U_block, dtype=self.dtype)

    def _clipped(self, x):
        return np.clip(x, *self.clip) if self.clip is not None else x

    def step(self, version: int, V, parent: int | None, step_size, drop, monitors: bool):
        """One iteration at U[version] (built from U[parent] and the pending
        direction when parent is given); see the module docstring."""
        if parent is not None:
            D, self.D = self.D, None
            D *= -step_size
            D += self.U[parent]
            self.U[version] = D
        for old in drop:
            self.U.pop(old, None)
        U, V = self.U[version], np.asarray(V)
        self.fitted = self.op.forward_factors(U, V)
        r = self.fitted - self.target
        loss = half_squared_norm(r)
        val_sse = None
        if self.val is not None:
            val_sse = _sse(self._clipped(self.val_base + self.val_op.forward_factors(U, V)), self.val[2])
        MV, MtU = self.op.gradient_products(r, U, V)
        MV, MtU = MV.astype(self.dtype, copy=False), MtU.astype(self.dtype, copy=False)
        if self.l2:
            MV += self.l2 * self.counts_r * U
        self.D = MV
        return loss, val_sse, MtU, (self.monitors(version) if monitors else None)

    def monitors(self, version: int):
        """(Σ (clip(ŷ) − y)² on the training entries at the last `step`, U_bᵀU_b in float64)."""
        from asymsense.completion.model import _gram

        return _sse(self._clipped(self.base + self.fitted), self.train[2]), _gram(self.U[version])

    def factor(self, version: int):
        return self.U[version]

    def final(self, version: int, V):
        """At U[version]: Σ (clip(ŷ) − y)² and ½‖e‖² on the training entries, and
        the validation residuals (global rows, cols, y − ŷ) or None."""
        U, V = self.U[version], np.asarray(V)
        fitted = self.op.forward_factors(U, V)
        train = _sse(self._clipped(self.base + fitted), self.train[2])
        loss = 0.5 * float(np.sum((fitted - self.target) ** 2))
        res = None
        if self.val is not None:
            vr, vc, vy = self.val
            res = (vr.astype(np.int64) + self.r0, vc.astype(np.int64), vy - self._clipped(self.val_base + self.val_op.forward_factors(U, V)))
        return train, loss, res

    def observed(self):
        """(global rows, cols) of the entries fitted on (training and validation)."""
        parts = [self.train] + ([self.val] if self.val is not None else [])
        return np.concatenate([p[0] for p in parts]).astype(np.int64) + self.r0, np.concatenate([p[1] for p in parts]).astype(np.int64)

    def memory(self) -> int:
        """Peak resident memory of this worker process, bytes."""
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
