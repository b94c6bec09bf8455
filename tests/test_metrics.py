"""Monitors from QR cores agree with direct computations on UVᵀ."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, strategies as st

from asymsense import planted
from asymsense.backend import numba_enabled
from asymsense.metrics import as_truth, effective_rank, monitor


@given(n1=st.integers(3, 9), n2=st.integers(3, 9), k=st.integers(1, 12), seed=st.integers(0, 10**6))
def test_monitors_match_direct_formulas(n1, n2, k, seed):
    rank = min(2, n1, n2)
    p = planted(n1, n2, rank, cond=2.0, seed=seed)
    rng = np.random.default_rng(seed)
    U, V = rng.standard_normal((n1, k)), rng.standard_normal((n2, k))
    out = {name: value[0] for name, value in monitor(U[None], V[None], truth=as_truth(p)).items()}
    X = U @ V.T
    s = np.linalg.svd(X, compute_uv=False)
    assert out["sv_1"] == pytest.approx(s[0], rel=1e-10)
    assert out["rel_error"] == pytest.approx(np.linalg.norm(X - p.X) / np.linalg.norm(p.X), rel=1e-9)
    assert out["imbalance"] == pytest.approx(np.linalg.norm(U.T @ U - V.T @ V), rel=1e-10, abs=1e-12)
    assert out["rel_imbalance"] == pytest.approx(out["imbalance"] / p.singular_values[0], rel=1e-12)
    P = np.eye(n1) - p.left @ p.left.T
    assert out["tail_u"] == pytest.approx(np.linalg.norm(P @ U, 2), rel=1e-8, abs=1e-12)
    if k >= rank and s[rank - 1] > 1e-8 * s[0] and (rank == len(s) or s[rank - 1] - s[rank] > 1e-6):
        L = np.linalg.svd(X)[0][:, :rank]
        angle = np.max(scipy.linalg.subspace_angles(L, p.left))
        assert out["angle_u"] == pytest.approx(np.sin(angle), rel=1e-6, abs=1e-9)


def test_rel_error_has_no_cancellation_near_the_truth():
    p = planted(30, 20, 3, seed=0)
    U = p.left * np.sqrt(p.singular_values)
    V = p.right * np.sqrt(p.singular_values)
    V = V + 1e-12 * np.random.default_rng(0).standard_normal(V.shape)
    err = monitor(U[None], V[None], truth=as_truth(p))["rel_error"][0]
    direct = np.linalg.norm(U @ V.T - p.X) / np.linalg.norm(p.X)
    assert err == pytest.approx(direct, rel=1e-3)
    assert err < 1e-11


def test_effective_rank():
    assert effective_rank(np.array([1.0, 1.0, 1.0, 0.0])) == pytest.approx(3.0)
    assert effective_rank(np.array([1.0, 0.0])) == pytest.approx(1.0)


def test_truth_from_a_matrix_equals_truth_from_a_planted_problem():
    p = planted(7, 5, 2, cond=3, seed=1)
    t = as_truth(p.X)
    assert t.rank == 2
    np.testing.assert_allclose(t.singular_values, p.singular_values, rtol=1e-12)


def test_written_tables_appear_whole_with_the_usual_permissions(tmp_path):
    import os

    from asymsense.history import History

    h = History()
    h.append({"iteration": 0, "loss": 1.0})
    path = tmp_path / "history.parquet"
    h.to_parquet(path)
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["history.parquet"]


@given(rows=st.integers(1, 9), cols=st.integers(1, 9), exponent=st.integers(-12, 3), seed=st.integers(0, 10**6))
def test_spectral_norm_keeps_relative_precision_at_any_scale(rows, cols, exponent, seed):
    """√λ_max of the shorter side's Gram equals the largest singular value to
    ~eps relative, however small the matrix (a tail of 1e-12 included)."""
    from asymsense.metrics import spectral_norm

    A = 10.0**exponent * np.random.default_rng(seed).standard_normal((3, rows, cols))
    assert np.allclose(spectral_norm(A), np.linalg.svd(A, compute_uv=False)[..., 0], rtol=1e-13, atol=0)


def test_qr_core_skips_the_qr_of_square_and_wide_factors():
    from asymsense.metrics import qr_core

    F = np.random.default_rng(0).standard_normal((4, 6))
    assert qr_core(F)[0] is None and qr_core(F)[1] is F
    Q, R = qr_core(F.T)
    assert R.shape == (4, 4) and np.allclose(Q @ R, F.T)


needs_numba = pytest.mark.skipif(not numba_enabled(), reason="numba is not installed")


@needs_numba
@given(n=st.integers(1, 70), exponent=st.integers(-150, 150), repeats=st.integers(1, 8), seed=st.integers(0, 10**6),
       definite=st.booleans())
def test_compiled_largest_eigenvalue_equals_lapack(n, exponent, repeats, seed, definite):
    """The compiled λ_max (Householder tridiagonal, Sturm bisection, Newton from above) equals
    LAPACK's to a few eps·‖S‖ at any scale, for indefinite matrices and for a top eigenvalue
    repeated up to 8 times (where Newton converges only linearly and bisection finishes)."""
    from asymsense.symmetric_numba import largest_eigenvalues

    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    values = rng.uniform(-1.0 if not definite else 0.0, 1.0, n)
    values[: min(repeats, n)] = 1.5
    S = 10.0**exponent * ((Q * values) @ Q.T)
    S = 0.5 * (S + S.T)
    reference = np.linalg.eigvalsh(S)[-1]
    assert abs(largest_eigenvalues(S[None])[0] - reference) <= 8 * n * np.finfo(float).eps * np.max(np.abs(np.linalg.eigvalsh(S)))


@needs_numba
def test_compiled_largest_eigenvalue_of_zero_and_non_finite_matrices():
    from asymsense.symmetric_numba import largest_eigenvalues

    S = np.zeros((3, 4, 4))
    S[1, 2, 2] = np.nan
    S[2, 0, 0] = np.inf
    out = largest_eigenvalues(S)
    assert out[0] == 0.0 and np.isnan(out[1]) and np.isnan(out[2])


def test_largest_eigenvalue_takes_lapack_past_the_compiled_limit_and_without_numba(monkeypatch):
    from asymsense import backend, metrics

    rng = np.random.default_rng(1)
    A = rng.standard_normal((2, 30, 35))
    S = A @ np.swapaxes(A, -1, -2)
    compiled = metrics.largest_eigenvalue(S)
    monkeypatch.setenv(backend.NUMBA_DISABLE_ENV, "1")
    assert np.allclose(metrics.largest_eigenvalue(S), compiled, rtol=1e-13, atol=0)
    calls = []
    monkeypatch.delenv(backend.NUMBA_DISABLE_ENV)
    monkeypatch.setattr(metrics, "COMPILED_EIGEN_ROWS", 29)
    monkeypatch.setattr(np.linalg, "eigvalsh", lambda M: calls.append(M.shape) or scipy.linalg.eigvalsh(M[0])[None].repeat(len(M), 0))
    metrics.largest_eigenvalue(S)
    assert calls == [(2, 30, 30)]


def _leading_subspace_error(W, W0):
    """‖WWᵀ − W0W0ᵀ‖₂ for orthonormal columns: the sine of the largest angle between the two spans."""
    return np.linalg.norm(W @ W.T - W0 @ W0.T, 2)


@needs_numba
@given(p=st.integers(1, 70), q=st.integers(1, 70), vectors=st.integers(1, 6), exponent=st.integers(-150, 150),
       gap=st.floats(1e-3, 1.0), seed=st.integers(0, 10**6))
def test_compiled_leading_singular_vectors_equal_lapack(p, q, vectors, exponent, gap, seed):
    """All singular values and the leading `vectors` pairs from the compiled kernel (dgebrd,
    dlasq1, inverse iteration on the Golub–Kahan matrix) agree with gesdd: values to a few
    n·eps·σ₁, each leading subspace to n·eps·σ₁/gap (Wedin), residuals ‖Cz − σw‖ to n·eps·σ₁,
    orthonormal columns — tall and wide, at any scale."""
    from asymsense import metrics
    from asymsense.metrics import core_svd

    rng = np.random.default_rng(seed)
    n = min(p, q)
    count = min(vectors, n)
    values = np.sort(rng.uniform(0.0, 1.0, n))[::-1]
    values[:count] += gap + 1.0  # the leading `count` stand gap + (≥ 0) above the rest
    values *= 10.0**exponent
    L = np.linalg.qr(rng.standard_normal((p, n)))[0]
    R = np.linalg.qr(rng.standard_normal((q, n)))[0]
    C = np.stack([(L * values) @ R.T, ((L * values) @ R.T)[::-1]])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "COMPILED_VECTORS_SHARE", 1)  # the kernel for any number of pairs
        W, s, Z = core_svd(C, vectors)
    W0, s0, Z0t = np.linalg.svd(C, full_matrices=False)
    eps = np.finfo(float).eps
    sigma = s0[:, :1]
    assert W.shape == (2, p, count) and Z.shape == (2, q, count) and s.shape == s0.shape
    assert np.all(np.abs(s - s0) <= 16 * n * eps * sigma)
    separation = values[count - 1] - (values[count] if count < n else 0.0)
    for b in range(2):
        bound = 64 * max(p, q) * eps * sigma[b, 0] / separation
        assert _leading_subspace_error(W[b], W0[b, :, :count]) <= bound
        assert _leading_subspace_error(Z[b], Z0t[b, :count].T) <= bound
        assert np.linalg.norm(C[b] @ Z[b] - W[b] * s[b, :count]) <= 16 * max(p, q) * eps * sigma[b, 0]
        assert np.abs(W[b].T @ W[b] - np.eye(count)).max() <= 16 * max(p, q) * eps
        assert np.abs(Z[b].T @ Z[b] - np.eye(count)).max() <= 16 * max(p, q) * eps


@needs_numba
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), rank=st.integers(0, 12), vectors=st.integers(1, 12),
       rounded=st.booleans(), sparse=st.booleans(), seed=st.integers(0, 10**6))
def test_leading_singular_vectors_of_rank_deficient_cores_are_certified_or_come_from_lapack(rows, cols, rank, vectors, rounded,
                                                                                              sparse, seed):
    """Where leading values are 0 or lost in rounding, inverse iteration returns vectors of the
    cluster at 0 that need not be orthonormal; the kernel's certificate catches them and core_svd
    takes gesdd's answer for those cores. Whatever comes back is orthonormal with residuals
    ‖Cz − σw‖ within a few n·eps·σ₁."""
    from asymsense import metrics

    rng = np.random.default_rng(seed)
    rank = min(rank, rows, cols)
    C = (rng.standard_normal((rows, rank)) * 10.0 ** rng.integers(-3, 3, rank)) @ rng.standard_normal((rank, cols))
    C = np.stack([C, rng.standard_normal((rows, cols))])
    if rounded:
        C = np.round(C)
    if sparse:
        C[rng.random(C.shape) < 0.5] = 0.0
    count = min(vectors, rows, cols)
    handed = []
    svd = np.linalg.svd
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "COMPILED_VECTORS_SHARE", 1)
        patch.setattr(np.linalg, "svd", lambda M, **kw: handed.append(M.shape) or svd(M, **kw))
        W, s, Z = metrics.core_svd(C, vectors)
    assert len(handed) <= 2
    eps = np.finfo(float).eps
    for b in range(2):
        assert np.allclose(s[b], svd(C[b], compute_uv=False), rtol=0, atol=16 * max(rows, cols) * eps * max(s[b, 0], 1e-300))
        assert np.abs(W[b].T @ W[b] - np.eye(count)).max() <= 32 * max(rows, cols) * eps
        assert np.abs(Z[b].T @ Z[b] - np.eye(count)).max() <= 32 * max(rows, cols) * eps
        residual = max(np.linalg.norm(C[b] @ Z[b] - W[b] * s[b, :count]), np.linalg.norm(C[b].T @ W[b] - Z[b] * s[b, :count]))
        assert residual <= 32 * max(rows, cols) * eps * s[b, 0]


@needs_numba
def test_compiled_leading_singular_vectors_hand_zero_and_non_finite_cores_to_lapack(monkeypatch):
    """The zero core (every value 0) and a core with a NaN are not done by the kernel; core_svd
    then takes gesdd's answer for those cores, and only those."""
    from asymsense import metrics
    from asymsense.singular_numba import leading_singular_triplets

    C = np.random.default_rng(3).standard_normal((3, 9, 6))
    C[1] = 0.0
    C[2, 4, 4] = np.nan
    assert leading_singular_triplets(C, 3)[3].tolist() == [True, False, False]
    handed = []
    svd = np.linalg.svd
    monkeypatch.setattr(metrics, "COMPILED_VECTORS_SHARE", 1)
    monkeypatch.setattr(np.linalg, "svd", lambda M, **kw: handed.append(M.shape) or svd(M, **kw))
    W, s, Z = metrics.core_svd(C[:2], 3)
    assert handed == [(9, 6)]
    assert np.all(s[1] == 0.0) and np.allclose(W[1].T @ W[1], np.eye(3))


def test_product_svd_without_vectors_and_without_numba_gives_the_same_values(monkeypatch):
    from asymsense import backend
    from asymsense.metrics import product_svd

    rng = np.random.default_rng(2)
    U, V = rng.standard_normal((3, 12, 5)), rng.standard_normal((3, 8, 5))
    left, s, right = product_svd(U, V, vectors=2)
    none_left, s0, none_right = product_svd(U, V, vectors=0)
    assert none_left is None and none_right is None and left.shape == (3, 12, 2) and right.shape == (3, 8, 2)
    monkeypatch.setenv(backend.NUMBA_DISABLE_ENV, "1")
    lapack_left, s1, lapack_right = product_svd(U, V, vectors=2)
    X = U @ np.swapaxes(V, -1, -2)
    reference = np.linalg.svd(X, compute_uv=False)[..., :5]
    for values in (s, s0, s1):
        assert np.allclose(values, reference, rtol=1e-12, atol=0)
    assert np.allclose(np.abs(np.einsum("bik,bik->bk", left, lapack_left)), 1.0, atol=1e-10)
    assert np.allclose(np.abs(np.einsum("bik,bik->bk", right, lapack_right)), 1.0, atol=1e-10)


@needs_numba
def test_core_svd_takes_the_kernel_for_a_few_leading_pairs_and_gesdd_past_that(monkeypatch):
    """Up to min(p, q) // COMPILED_VECTORS_SHARE pairs (at least one) from the compiled kernel, more from
    gesdd with all vectors (faster there); the same subspaces either way."""
    from asymsense import metrics, singular_numba

    C = np.random.default_rng(4).standard_normal((2, 60, 40))
    limit = 40 // metrics.COMPILED_VECTORS_SHARE
    calls = []
    kernel = singular_numba.leading_singular_triplets
    monkeypatch.setattr(singular_numba, "leading_singular_triplets", lambda M, count: calls.append(count) or kernel(M, count))
    W, s, Z = metrics.core_svd(C, limit)
    W_all, s_all, Z_all = metrics.core_svd(C, limit + 1)
    assert calls == [limit] and W.shape == (2, 60, limit) and W_all.shape == (2, 60, limit + 1)
    assert metrics.core_svd(np.ones((1, 3, 2)), 1)[0].shape == (1, 3, 1) and calls == [limit, 1]
    for b in range(2):
        assert _leading_subspace_error(W[b], W_all[b, :, :limit]) <= 1e-10
        assert _leading_subspace_error(Z[b], Z_all[b, :, :limit]) <= 1e-10
