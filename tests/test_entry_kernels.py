"""The fused numba kernels of the completion step (operators/entry_kernels)
against the NumPy/SciPy path of EntrySample: the same products to 1e-6
relative in float32 (1e-12 in float64), for entries in any order, repeated
entries and empty rows/columns included."""

import numpy as np
import pytest

from asymsense.operators import EntrySample
from asymsense.operators import entries as entries_module

pytest.importorskip("numba")


def _pair(rows, cols, shape, dtype):
    fused = EntrySample(rows, cols, shape, dtype=dtype)
    plain = EntrySample(rows, cols, shape, dtype=dtype)
    plain._fused = False
    return fused, plain


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-6), ("float64", 1e-12)])
@pytest.mark.parametrize("row_major", [True, False])
def test_fused_kernels_match_numpy_path(dtype, tol, row_major):
    rng = np.random.default_rng(5)
    n1, n2, k = 3000, 700, 12
    m = entries_module.FUSED_ENTRIES + 1234
    rows = rng.integers(0, n1 - 10, m)  # the last rows stay empty
    cols = rng.integers(0, n2 - 5, m)  # and so do the last columns
    if row_major:
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
    fused, plain = _pair(rows, cols, (n1, n2), dtype)
    assert fused._fused and not plain._fused
    U = rng.standard_normal((n1, k)).astype(dtype)
    V = rng.standard_normal((n2, k)).astype(dtype)
    z = rng.standard_normal(m).astype(dtype)

    def close(a, b):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.linalg.norm(a.astype(np.float64) - b) <= tol * np.linalg.norm(b.astype(np.float64))

    close(fused.forward_factors(U, V), plain.forward_factors(U, V))
    for a, b in zip(fused.gradient_products(z, U, V), plain.gradient_products(z, U, V)):
        close(a, b)
    # a second call reuses the scratch accumulators and gives the same values
    first = fused.gradient_products(z, U, V)
    second = fused.gradient_products(z, U, V)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_fused_kernels_are_skipped_for_batches_and_small_problems():
    rng = np.random.default_rng(1)
    small = EntrySample(rng.integers(0, 50, 300), rng.integers(0, 40, 300), (50, 40))
    assert not small._fused
    m = entries_module.FUSED_ENTRIES
    big = EntrySample(rng.integers(0, 400, m), rng.integers(0, 300, m), (400, 300))
    U, V = rng.standard_normal((2, 400, 3)), rng.standard_normal((2, 300, 3))
    assert big._fused and not big._fused_ok(U, V)
    out = big.forward_factors(U, V)
    np.testing.assert_allclose(out[1], big.forward_factors(U[1], V[1]), rtol=1e-12, atol=1e-12)
