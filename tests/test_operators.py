"""Operator identities: adjoint, factor forms, batching, restriction, dense = matrix-free."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from asymsense import InputError, make_operator
from asymsense.operators import DenseGaussian, EntrySample, StreamGaussian, random_entries

KINDS = ["gaussian", "gaussian-stream", "rank-one", "structured", "entries"]


def build(kind, n1, n2, m, seed=0):
    m = min(m, n1 * n2) if kind in ("structured", "entries") else m
    return make_operator(kind, n1, n2, m, seed=seed)


shapes = st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 40), st.integers(0, 2**31))


@pytest.mark.parametrize("kind", KINDS)
@given(shape=shapes)
def test_adjoint_identity(kind, shape):
    n1, n2, m, seed = shape
    op = build(kind, n1, n2, m, seed)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n1, n2))
    z = rng.standard_normal(op.m)
    lhs = float(op.forward(X) @ z)
    rhs = float(np.sum(X * op.adjoint(z)))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@given(shape=shapes, k=st.integers(1, 9))
def test_factor_forms_match_matrix_forms(kind, shape, k):
    n1, n2, m, seed = shape
    op = build(kind, n1, n2, m, seed)
    rng = np.random.default_rng(seed + 1)
    U, V = rng.standard_normal((n1, k)), rng.standard_normal((n2, k))
    z = rng.standard_normal(op.m)
    np.testing.assert_allclose(op.forward_factors(U, V), op.forward(U @ V.T), rtol=1e-10, atol=1e-12)
    M = op.adjoint(z)
    np.testing.assert_allclose(op.adjoint_times(z, V), M @ V, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(op.adjoint_t_times(z, U), M.T @ U, rtol=1e-10, atol=1e-12)
    MV, MtU = op.gradient_products(z, U, V)
    np.testing.assert_allclose(MV, M @ V, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(MtU, M.T @ U, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_leading_batch_dimension(kind):
    op = build(kind, 5, 4, 12, seed=3)
    rng = np.random.default_rng(0)
    U, V = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 4, 2))
    z = rng.standard_normal((3, op.m))
    batched = op.forward_factors(U, V)
    MV, MtU = op.gradient_products(z, U, V)
    for b in range(3):
        np.testing.assert_allclose(batched[b], op.forward_factors(U[b], V[b]), rtol=1e-12)
        MVb, MtUb = op.gradient_products(z[b], U[b], V[b])
        np.testing.assert_allclose(MV[b], MVb, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(MtU[b], MtUb, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_take_restricts_measurements(kind):
    op = build(kind, 6, 5, 20, seed=4)
    index = np.array([7, 0, 13, 2])
    X = np.random.default_rng(1).standard_normal((6, 5))
    np.testing.assert_allclose(op.take(index).forward(X), op.forward(X)[index], rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dense_equals_matrix_free(dtype):
    dense = DenseGaussian(9, 7, 300, seed=11, dtype=dtype)
    stream = StreamGaussian(9, 7, 300, seed=11, dtype=dtype, threads=2)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2, 9, 7)).astype(dtype)
    z = rng.standard_normal((2, 300)).astype(dtype)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(stream.forward(X), dense.forward(X), rtol=tol, atol=tol)
    np.testing.assert_allclose(stream.adjoint(z), dense.adjoint(z), rtol=tol, atol=tol)
    index = np.array([299, 5, 150, 0])
    np.testing.assert_allclose(stream.take(index).forward(X), dense.forward(X)[:, index], rtol=tol, atol=tol)


def test_dense_equals_matrix_free_across_chunks(monkeypatch):
    """Chunks of a few rows: several generator chunks per application."""
    import asymsense.operators.gaussian as g

    monkeypatch.setattr(g, "CHUNK_ENTRIES", 64)
    dense = DenseGaussian(4, 4, 50, seed=5)
    stream = StreamGaussian(4, 4, 50, seed=5, threads=3)
    assert len(stream._bounds) > 3
    z = np.random.default_rng(0).standard_normal(50)
    np.testing.assert_allclose(stream.adjoint(z), dense.adjoint(z), rtol=1e-12)


def test_gaussian_normalization_is_isometric_on_average():
    op = DenseGaussian(8, 6, 4000, seed=0)
    X = np.random.default_rng(0).standard_normal((8, 6))
    assert np.sum(op.forward(X) ** 2) == pytest.approx(np.sum(X**2), rel=0.1)
    assert op.matrix.std() == pytest.approx(1 / np.sqrt(4000), rel=0.02)


@pytest.mark.parametrize("kind", ["rank-one", "structured"])
def test_isotropic_operators_are_isometric_on_average(kind):
    X = np.random.default_rng(1).standard_normal((10, 8))
    ratios = [np.sum(build(kind, 10, 8, 60, seed=s).forward(X) ** 2) / np.sum(X**2) for s in range(40)]
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.1)


def test_entry_sampling_never_forms_the_matrix_on_factors():
    op = random_entries(2000, 3000, 500, seed=0)
    rng = np.random.default_rng(0)
    U, V = rng.standard_normal((2000, 4)), rng.standard_normal((3000, 4))
    values = op.forward_factors(U, V)
    np.testing.assert_allclose(values, np.sum(U[op.rows] * V[op.cols], axis=1))


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: make_operator("nope", 3, 3, 4), "operator must be one of"),
        (lambda: make_operator("gaussian", 3, 3, 0), "m must be >= 1"),
        (lambda: make_operator("gaussian", 3, 2.5, 4), "n2 must be an integer"),
        (lambda: make_operator("structured", 3, 3, 10), r"m must be <= n1·n2"),
        (lambda: make_operator("gaussian", 3, 3, 4, dtype="int8"), "dtype"),
        (lambda: EntrySample([0, 5], [0, 1], (3, 3)), "rows must lie in"),
        (lambda: EntrySample([], [], (3, 3)), "m must be >= 1"),
        (lambda: EntrySample([0.5], [1], (3, 3)), "rows must hold integers"),
    ],
)
def test_bad_operator_input_is_named(call, fragment):
    with pytest.raises(InputError, match=fragment):
        call()


def test_measurements_are_checked_against_the_operator():
    op = make_operator("gaussian", 3, 3, 5, seed=0)
    with pytest.raises(InputError, match="shape mismatch"):
        op.check_measurements(np.zeros(4))
    with pytest.raises(InputError, match="non-finite"):
        op.check_measurements(np.array([0, 1, np.nan, 0, 0.0]))


@pytest.mark.parametrize("sorted_entries", [True, False])
def test_entry_sampling_threaded_kernels_match_the_matrix_forms(monkeypatch, sorted_entries):
    """Row ranges on several threads (forced at a small size) give the same products."""
    import asymsense.operators.entries as entries

    monkeypatch.setattr(entries, "PARALLEL_ENTRIES", 1)
    monkeypatch.setattr(entries, "BLOCK_BYTES", 64)
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, 23, 400), rng.integers(0, 17, 400)
    if sorted_entries:
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
    op = EntrySample(rows, cols, (23, 17))
    op._threads = 3
    op._row_ranges = [(0, 7), (7, 15), (15, 23)]
    assert op._row_major == sorted_entries
    U, V, z = rng.standard_normal((23, 4)), rng.standard_normal((17, 4)), rng.standard_normal(400)
    M = op.adjoint(z)
    np.testing.assert_allclose(op.forward_factors(U, V), np.sum(U[rows] * V[cols], axis=1), rtol=1e-12)
    np.testing.assert_allclose(op.adjoint_times(z, V), M @ V, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(op.adjoint_t_times(z, U), M.T @ U, rtol=1e-10, atol=1e-12)
    default = EntrySample(rows, cols, (23, 17))
    assert default._threads >= 1 and default._row_ranges[0][0] == 0 and default._row_ranges[-1][1] == 23
