"""Completion baselines on observed entries (rows, cols, values) of an n1×n2 table.

All share one preprocessing so they are compared on equal terms: damped-mean
biases b + r_i + c_j fitted on the training entries (`fit_biases`), a model of
the residual, and predictions clipped to the observed range. Each is tuned on
the same validation entries and returns a `BaselineFit`.

- `bias_only`: Ŷ = b + r_i + c_j (the global-mean plus row/column-bias model).
- `soft_impute` (Mazumder, Hastie, Tibshirani 2010): Z ← SVT_λ(P_Ω(Y) + P_Ω⊥(Z))
  along a decreasing λ path with warm starts. Z is kept as factors A·diag(d)·Bᵀ
  and the filled matrix as "sparse + low rank", P_Ω(Y − Z) + Z, so each
  product costs O(|Ω|·r + (n1+n2)·r²); its SVD is one warm-started block power
  step per iteration (the subspace from the previous iterate), then SVT.
  λ is chosen by validation RMSE along the path.
- `als_wr`: alternating ridge regressions with the count-weighted L2 of ALS-WR
  (Zhou et al. 2008): u_i = (V_Ωiᵀ V_Ωi + λ|Ω_i| I)⁻¹ V_Ωiᵀ z_Ωi, then the
  same for V; rank and λ chosen on a grid by validation RMSE, sweeps stopped
  early on validation.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from asymsense.completion.biases import BIAS_DAMPING, Biases, fit_biases
from asymsense.errors import InputError
from asymsense.metrics import rmse


@dataclass
class BaselineFit:
    """A fitted baseline: predict(rows, cols), the validation RMSE it was chosen on,
    the chosen parameters, seconds for the chosen fit and for all tuning.
    Field names follow the solvers' results (`asymsense.solvers.result`):
    `method`, the factors `U`, `V` (the UVᵀ part; None for the biases only), `config`."""

    method: str
    biases: Biases
    clip: tuple[float, float] | None
    U: np.ndarray | None = None
    V: np.ndarray | None = None
    val_rmse: float | None = None
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    tuning_seconds: float = 0.0

    def predict(self, rows, cols) -> np.ndarray:
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        out = self.biases(rows, cols) + (_gather_dot(self.U, self.V, rows, cols) if self.U is not None else 0.0)
        return np.clip(out, *self.clip) if self.clip is not None else out


def _gather_dot(A, B, rows, cols, block: int = 8192) -> np.ndarray:
    """(ABᵀ)[rows, cols] in cache-sized blocks."""
    out = np.empty(len(rows))
    for a in range(0, len(rows), block):
        b = a + block
        out[a:b] = np.einsum("ik,ik->i", A[rows[a:b]], B[cols[a:b]])
    return out


def _prepare(rows, cols, y, shape, validation, clip, biases):
    rows, cols, y = np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(y, np.float64)
    if not rows.shape == cols.shape == y.shape or len(y) == 0:
        raise InputError("rows, cols and values must be non-empty 1-d arrays of equal length")
    b = fit_biases(rows, cols, y, shape, biases)
    clip_range = (float(y.min()), float(y.max())) if clip else None
    if validation is not None:
        validation = tuple(np.asarray(a) for a in validation)
    return rows, cols, y, b, clip_range, validation


def _residual_problem(name: str, what: str, rows, cols, y, shape, validation, clip, biases):
    """`_prepare` for a method tuned on validation data, plus the bias residual
    z = y − b on the training entries and the biases at the validation entries."""
    rows, cols, y, b, clip_range, val = _prepare(rows, cols, y, shape, validation, clip, biases)
    if val is None:
        raise InputError(f"{name} needs validation entries to choose {what}")
    return rows, cols, b, clip_range, val, y - b(rows, cols), b(val[0], val[1])


def bias_only(rows, cols, y, shape, *, validation=None, clip=True, biases="both") -> BaselineFit:
    """The global-mean plus row/column-bias model."""
    started = time.perf_counter()
    rows, cols, y, b, clip_range, val = _prepare(rows, cols, y, shape, validation, clip, biases)
    fit = BaselineFit("biases", b, clip_range, config={"damping": list(BIAS_DAMPING)})
    fit.seconds = fit.tuning_seconds = time.perf_counter() - started
    if val is not None:
        fit.val_rmse = rmse(fit.predict(val[0], val[1]), val[2])
    return fit


# --- SoftImpute ---------------------------------------------------------------------------


def _csr(rows, cols, values, shape):
    import scipy.sparse as sp

    return sp.csr_array((values, (rows, cols)), shape=shape)


def _svd_sparse_plus_lowrank(S, A, d, B, V0):
    """Approximate top-r SVD of S + A·diag(d)·Bᵀ by one block power step from V0 (n2×r)."""
    Y = S @ V0 + A @ (d[:, None] * (B.T @ V0))
    Q, _ = np.linalg.qr(Y)
    Bt = S.T @ Q + B @ (d[:, None] * (A.T @ Q))
    W, s, Pt = np.linalg.svd(Bt, full_matrices=False)
    return Q @ Pt.T, s, W


def soft_impute(
    rows, cols, y, shape, *, validation, lambdas=None, n_lambdas: int = 20, lambda_ratio: float = 0.02,
    rank_max: int = 100, max_iter: int = 50, tol: float = 1e-4, clip=True, biases="both", seed: int = 0,
) -> BaselineFit:
    """SoftImpute on the bias residual along a decreasing λ path (warm starts);
    λ chosen by validation RMSE. Default path: n_lambdas values geometric from
    λ_max = ‖P_Ω(z)‖₂ down to lambda_ratio·λ_max; the path stops once the
    validation RMSE has risen for 3 consecutive λ."""
    started = time.perf_counter()
    rows, cols, b, clip_range, val, z, base_val = _residual_problem("soft_impute", "λ", rows, cols, y, shape, validation, clip, biases)
    n1, n2 = shape
    r = min(rank_max, n1, n2)
    rng = np.random.default_rng(seed)
    S0 = _csr(rows, cols, z, shape)
    A, d, B = np.zeros((n1, r)), np.zeros(r), np.zeros((n2, r))
    V0 = np.linalg.qr(rng.standard_normal((n2, r)))[0]
    if lambdas is None:
        for _ in range(10):
            s_, V0 = _svd_sparse_plus_lowrank(S0, A, d, B, V0)[1:]
        lam_max = float(s_[0])
        lambdas = lam_max * np.geomspace(1.0, lambda_ratio, n_lambdas)
    best = (np.inf, None, None, None, None)
    rising = 0
    for lam in lambdas:
        for _ in range(max_iter):
            resid = z - _gather_dot(A * d, B, rows, cols)
            S = _csr(rows, cols, resid, shape)
            Un, s, Vn = _svd_sparse_plus_lowrank(S, A, d, B, V0)
            dn = np.maximum(s - lam, 0.0)
            old_norm = float(np.sum(d**2)) or 1.0
            change = _factored_diff_sq(A, d, B, Un, dn, Vn) / old_norm
            A, d, B, V0 = Un, dn, Vn, Vn
            if change < tol:
                break
        pred = base_val + _gather_dot(A * d, B, val[0], val[1])
        err = rmse(np.clip(pred, *clip_range) if clip_range else pred, val[2])
        if err < best[0]:
            best, rising = (err, float(lam), A * d, B.copy(), int(np.sum(d > 0))), 0
        else:
            rising += 1
            if rising >= 3:
                break
    err, lam, left, right, rank = best
    fit = BaselineFit("softimpute", b, clip_range, left, right, err, {"lambda": lam, "rank": rank, "rank_max": r})
    fit.seconds = fit.tuning_seconds = time.perf_counter() - started
    return fit


def _factored_diff_sq(A, d, B, A2, d2, B2) -> float:
    """‖A diag(d) Bᵀ − A2 diag(d2) B2ᵀ‖²_F from r×r cores."""
    AA = A.T @ A2
    BB = B.T @ B2
    return float(np.sum(d**2) + np.sum(d2**2) - 2 * np.sum((d[:, None] * AA * d2[None, :]) * BB))


# --- ALS-WR ------------------------------------------------------------------------------


def _ridge_rows(rows, cols, z, n_rows, F, lam, counts):
    """For every row i: argmin_u Σ_{j∈Ω_i}(z_ij − F_j·u)² + λ|Ω_i|‖u‖², from the
    k×k normal equations (F_Ωiᵀ F_Ωi + λ|Ω_i| I) u = F_Ωiᵀ z_Ωi, one small GEMM
    and Cholesky solve per row (rows without entries get u = 0)."""
    from scipy.linalg import cho_factor, cho_solve

    k = F.shape[1]
    out = np.zeros((n_rows, k))
    order = np.argsort(rows, kind="stable")
    cols_s, z_s = cols[order], z[order]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    eye = np.eye(k)
    for i in np.flatnonzero(counts):
        a, b = bounds[i], bounds[i + 1]
        Fi = F[cols_s[a:b]]
        G = Fi.T @ Fi + (lam * (b - a)) * eye
        out[i] = cho_solve(cho_factor(G, check_finite=False), Fi.T @ z_s[a:b], check_finite=False)
    return out


def als_wr(
    rows, cols, y, shape, *, validation, ranks=(10, 20, 40), l2s=(0.05, 0.1, 0.2), max_sweeps: int = 30,
    patience: int = 2, clip=True, biases="both", seed: int = 0,
) -> BaselineFit:
    """ALS-WR on the bias residual; (rank, λ) from the grid by validation RMSE;
    each fit stops when the validation RMSE has not improved for `patience` sweeps."""
    started = time.perf_counter()
    rows, cols, b, clip_range, val, z, base_val = _residual_problem("als_wr", "rank and λ", rows, cols, y, shape, validation, clip, biases)
    n1, n2 = shape
    cnt_r, cnt_c = np.bincount(rows, minlength=n1), np.bincount(cols, minlength=n2)
    best = None
    for rank, lam in itertools.product(ranks, l2s):
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        V = 0.1 * rng.standard_normal((n2, min(rank, n1, n2)))
        run_best, since = (np.inf, None, None, 0), 0
        for sweep in range(max_sweeps):
            U = _ridge_rows(rows, cols, z, n1, V, lam, cnt_r)
            V = _ridge_rows(cols, rows, z, n2, U, lam, cnt_c)
            pred = base_val + _gather_dot(U, V, val[0], val[1])
            err = rmse(np.clip(pred, *clip_range) if clip_range else pred, val[2])
            if err < run_best[0]:
                run_best, since = (err, U, V, sweep + 1), 0
            else:
                since += 1
                if since >= patience:
                    break
        seconds = time.perf_counter() - t0
        if best is None or run_best[0] < best[0]:
            best = (*run_best, rank, lam, seconds)
    err, U, V, sweeps, rank, lam, seconds = best
    fit = BaselineFit("als", b, clip_range, U, V, err, {"rank": rank, "l2": lam, "sweeps": sweeps})
    fit.seconds = seconds
    fit.tuning_seconds = time.perf_counter() - started
    return fit

