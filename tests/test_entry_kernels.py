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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-6), ("float64", 1e-12)])
@pytest.mark.parametrize("row_major", [True, False])
def test_fused_residual_gradient_matches_the_two_calls(dtype, tol, row_major):
    """The one-step kernel (forward fused into the CSR pass, CSC pass for
    A*(r)ᵀU) against forward_factors − y and gradient_products on the NumPy path."""
    rng = np.random.default_rng(8)
    n1, n2, k = 2500, 600, 9
    m = entries_module.FUSED_ENTRIES + 777
    rows, cols = rng.integers(0, n1 - 7, m), rng.integers(0, n2 - 3, m)
    if row_major:
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
    fused, plain = _pair(rows, cols, (n1, n2), dtype)
    U, V = rng.standard_normal((n1, k)).astype(dtype), rng.standard_normal((n2, k)).astype(dtype)
    y = rng.standard_normal(m).astype(dtype)
    r_plain = plain.forward_factors(U, V) - y
    expected = (r_plain, *plain.gradient_products(r_plain, U, V))
    got = fused.residual_gradient(U, V, y, dtype)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.linalg.norm(a.astype(np.float64) - b) <= tol * np.linalg.norm(b.astype(np.float64))
    assert not np.any(got[1][-7:]) and not np.any(got[2][-3:])  # empty rows and columns: zero gradient rows


def test_residual_gradient_without_the_kernels_is_the_two_calls_bit_for_bit():
    rng = np.random.default_rng(2)
    op = EntrySample(rng.integers(0, 40, 500), rng.integers(0, 30, 500), (40, 30), dtype="float32")
    assert not op._fused
    U, V = rng.standard_normal((40, 4)).astype(np.float32), rng.standard_normal((30, 4)).astype(np.float32)
    y = rng.standard_normal(500).astype(np.float32)
    r, MV, MtU = op.residual_gradient(U, V, y, np.float32)
    r2 = op.forward_factors(U, V) - y
    for a, b in zip((r, MV, MtU), (r2, *op.gradient_products(r2, U, V))):
        np.testing.assert_array_equal(a, b)


def test_kernels_give_the_same_bits_on_any_number_of_threads():
    """Every output row is summed by one block in a fixed order: one numba
    thread and all of them give identical results."""
    import numba

    rng = np.random.default_rng(4)
    n1, n2, k, m = 900, 400, 5, entries_module.FUSED_ENTRIES + 99
    op = EntrySample(rng.integers(0, n1, m), rng.integers(0, n2, m), (n1, n2), dtype="float32")
    assert len(op._row_blocks) > 2 and len(op._col_blocks) > 2
    U, V = rng.standard_normal((n1, k)).astype(np.float32), rng.standard_normal((n2, k)).astype(np.float32)
    y = rng.standard_normal(m).astype(np.float32)
    many = op.residual_gradient(U, V, y, np.float32)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = op.residual_gradient(U, V, y, np.float32)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(many, one):
        np.testing.assert_array_equal(a, b)


def test_blocks_cover_every_segment_once():
    indptr = np.r_[0, np.cumsum(np.random.default_rng(0).integers(0, 50, 1000))]
    cuts = entries_module._blocks(indptr, per_block=300)
    assert cuts[0] == 0 and cuts[-1] == 1000 and np.all(np.diff(cuts) > 0)
    sizes = indptr[cuts[1:]] - indptr[cuts[:-1]]
    assert sizes.sum() == indptr[-1] and sizes[:-1].max() <= 300 + 50


def test_outputs_are_reused_only_once_nobody_holds_them():
    """The numba paths hand an output array out again only after the caller
    dropped it: held results (and views of them) are never overwritten."""
    import pickle

    rng = np.random.default_rng(6)
    n1, n2, k, m = 700, 300, 4, entries_module.FUSED_ENTRIES + 5
    op = EntrySample(rng.integers(0, n1, m), rng.integers(0, n2, m), (n1, n2), dtype="float32")
    U, V = rng.standard_normal((n1, k)).astype(np.float32), rng.standard_normal((n2, k)).astype(np.float32)
    y = rng.standard_normal(m).astype(np.float32)
    first = op.residual_gradient(U, V, y, np.float32)
    kept = [a.copy() for a in first]
    view = first[1][:10]
    second = op.residual_gradient(U + 1, V, y, np.float32)
    assert all(a is not b for a, b in zip(first, second))
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)  # held results untouched
    np.testing.assert_array_equal(view, kept[1][:10])
    address = first[2].ctypes.data
    del first, view, second, a, b  # (a, b: the loop's last pair)
    again = op.residual_gradient(U, V, y, np.float32)
    assert again[2].ctypes.data == address  # a dropped output serves again
    for a, b in zip(again, kept):
        np.testing.assert_array_equal(a, b)
    clone = pickle.loads(pickle.dumps(op))
    assert clone._outputs.pool == []


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-6), ("float64", 1e-12)])
@pytest.mark.parametrize("shape", [(2500, 600), (600, 2500)], ids=["rows-streamed", "columns-streamed"])
@pytest.mark.parametrize("one_pass", [True, False], ids=["one-pass", "two-pass"])
def test_each_step_kernel_matches_the_two_calls(monkeypatch, dtype, tol, shape, one_pass):
    """The one-pass step (scatter into the shorter side's gradient, either
    orientation) and the two-pass one (SCATTER_BYTES = 0) against the NumPy
    path, the fitted values of residual_gradient(fitted=True) included."""
    from asymsense.operators import entry_kernels

    rng = np.random.default_rng(11)
    (n1, n2), k = shape, 7
    m = entries_module.FUSED_ENTRIES + 321
    rows, cols = rng.integers(0, n1 - 4, m), rng.integers(0, n2 - 6, m)
    fused, plain = _pair(rows, cols, (n1, n2), dtype)
    if not one_pass:
        monkeypatch.setattr(entries_module, "SCATTER_BYTES", 0)
    U, V = rng.standard_normal((n1, k)).astype(dtype), rng.standard_normal((n2, k)).astype(dtype)
    y = rng.standard_normal(m).astype(dtype)
    assert fused._one_pass_ok(U, V) == one_pass and fused._scatter[0] == (n1 >= n2)
    calls = []
    for name in ("one_pass_step", "residual_gradient"):
        original = getattr(entry_kernels, name)
        monkeypatch.setattr(entry_kernels, name, lambda *a, _f=original, _n=name, **kw: calls.append(_n) or _f(*a, **kw))
    got = fused.residual_gradient(U, V, y, dtype, fitted=True)
    assert calls == ["one_pass_step" if one_pass else "residual_gradient"]
    forward = plain.forward_factors(U, V)
    r_plain = forward - y
    expected = (r_plain, *plain.gradient_products(r_plain, U, V), forward)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.linalg.norm(a.astype(np.float64) - b) <= tol * np.linalg.norm(b.astype(np.float64))
    assert not np.any(got[1][-4:]) and not np.any(got[2][-6:])  # empty rows and columns: zero gradient rows
    np.testing.assert_array_equal(got[3], fused.forward_factors(U, V))  # the forward kernel's bits
    again = fused.residual_gradient(U, V, y, dtype, fitted=True)  # reused scratch (the parts' arrays) gives the same bits
    for a, b in zip(got, again):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(2500, 600), (600, 2500)], ids=["rows-streamed", "columns-streamed"])
def test_tiled_one_pass_gives_the_untiled_bits(monkeypatch, shape):
    """The one-pass step laid out in tiles of the gathered factor (TILE_BYTES)
    sums every output in the same order as one tile: the same bits, and
    against the NumPy path to 1e-6."""
    rng = np.random.default_rng(12)
    (n1, n2), k = shape, 6
    m = entries_module.FUSED_ENTRIES + 77
    rows, cols = rng.integers(0, n1 - 3, m), rng.integers(0, n2 - 2, m)
    fused, plain = _pair(rows, cols, (n1, n2), "float32")
    U, V = rng.standard_normal((n1, k)).astype(np.float32), rng.standard_normal((n2, k)).astype(np.float32)
    y = rng.standard_normal(m).astype(np.float32)
    one_tile = [a.copy() for a in fused.residual_gradient(U, V, y, np.float32, fitted=True)]
    assert fused._one_pass_ok(U, V) and getattr(fused, "_tiles", None) is None
    monkeypatch.setattr(entries_module, "TILE_BYTES", 1000)
    tiled = fused.residual_gradient(U, V, y, np.float32, fitted=True)
    n_tiles = fused._tiles[0]
    assert n_tiles == -(-min(n1, n2) * k * 4 // 1000) > 10
    assert len(fused._tiles[1][1]) == n_tiles * max(n1, n2) + 1
    for a, b in zip(tiled, one_tile):
        np.testing.assert_array_equal(a, b)
    r_plain = plain.forward_factors(U, V) - y
    for a, b in zip(tiled[:3], (r_plain, *plain.gradient_products(r_plain, U, V))):
        assert np.linalg.norm(a.astype(np.float64) - b) <= 1e-6 * np.linalg.norm(b.astype(np.float64))


def test_factors_in_any_memory_order_give_the_same_bits():
    """Column-major or transposed factors (U.T of a row-major array) take the
    kernels' strided path: the same forward values and step bit for bit."""
    rng = np.random.default_rng(5)
    n1, n2, k, m = 300, 200, 13, 1 << 17
    op = EntrySample(rng.integers(0, n1, m), rng.integers(0, n2, m), (n1, n2))
    assert op._fused
    U, V, y = rng.standard_normal((n1, k)), rng.standard_normal((n2, k)), rng.standard_normal(m)
    U_f, V_t = np.asfortranarray(U), np.ascontiguousarray(V.T).T
    np.testing.assert_array_equal(op.forward_factors(U_f, V_t), op.forward_factors(U, V))
    for a, b in zip(op.residual_gradient(U_f, V_t, y, np.float64), op.residual_gradient(U, V, y, np.float64)):
        np.testing.assert_array_equal(a, b)
