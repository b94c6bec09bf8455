"""The optional XLA kernel of the dense Gaussian step (operators/jax_kernels,
DenseGaussian(kernel="jax")) against the OpenBLAS path (kernel="blas"): the same step
to 1e-12 relative in float64, the same fit (final errors to 1e-12), and the
OpenBLAS path untouched (kernel="blas": residual_gradient is the two calls bit for bit)."""

import numpy as np
import pytest

import asymsense
from asymsense.errors import InputError
from asymsense.operators import DenseGaussian


def _problem(B, dtype="float64"):
    rng = np.random.default_rng(3)
    U = 0.3 * rng.standard_normal((B, 12, 5)).astype(dtype)
    V = 0.3 * rng.standard_normal((B, 9, 5)).astype(dtype)
    y = rng.standard_normal(200).astype(dtype)
    return U, V, y


def test_blas_residual_gradient_is_the_two_calls_bit_for_bit():
    op = DenseGaussian(12, 9, 200, seed=1, kernel="blas")
    U, V, y = _problem(3)
    r, MV, MtU = op.residual_gradient(U, V, y, np.float64)
    r2 = op.forward_factors(U, V) - y
    for a, b in zip((r, MV, MtU), (r2, *op.gradient_products(r2, U, V))):
        np.testing.assert_array_equal(a, b)


def test_unknown_kernel_is_refused():
    with pytest.raises(InputError, match="kernel"):
        DenseGaussian(4, 3, 10, seed=0, kernel="mkl")


@pytest.mark.parametrize("B", [1, 4])
def test_jax_step_matches_blas_to_1e12(B):
    pytest.importorskip("jax")
    blas, xla = DenseGaussian(12, 9, 200, seed=1, kernel="blas"), DenseGaussian(12, 9, 200, seed=1, kernel="jax")
    U, V, y = _problem(B)
    for a, b in zip(xla.residual_gradient(U, V, y, np.float64), blas.residual_gradient(U, V, y, np.float64)):
        assert a.dtype == np.float64 and a.shape == b.shape
        assert np.linalg.norm(a - b) <= 1e-12 * np.linalg.norm(b)


def test_jax_fit_matches_blas_fit_to_1e12():
    pytest.importorskip("jax")
    truth = asymsense.planted(12, 9, 2, seed=1)
    runs = []
    for kernel in ("blas", "jax"):
        op = DenseGaussian(12, 9, 150, seed=2, kernel=kernel)
        y = asymsense.measure(truth, op)
        runs.append(asymsense.fgd(op, y, width=2, init_scale=[1e-2, 1e-4], step_size="auto", max_iter=300, seed=0, truth=truth, record_every=50))
    for a, b in zip(*runs):
        assert a.history["rel_error"][-1] < 1e-6  # the fit converged, so the comparison means something
        np.testing.assert_allclose(a.history["rel_error"], b.history["rel_error"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a.U @ a.V.T, b.U @ b.V.T, rtol=0, atol=1e-12 * np.abs(b.U @ b.V.T).max())
