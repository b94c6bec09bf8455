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
