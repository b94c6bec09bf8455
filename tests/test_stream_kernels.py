"""The superchunk generator of the Gaussian operators (operators/gaussian.fill_chunks,
operators/rng_kernels): several chunks per call give every chunk exactly the
values of the per-chunk generator (SeedSequence → SFC64 → `standard_normal_fill`'s
NumPy path), with and without numba, in float32 and float64, and the
matrix-free step keeps its one-pass = two-pass contract on several threads."""

import numpy as np
import pytest

import asymsense.operators.gaussian as g
from asymsense import backend
from asymsense.operators import DenseGaussian, StreamGaussian


def per_chunk_numpy(seed, first, last, entries, total, dtype):
    """The reference: each chunk from its own SeedSequence-seeded SFC64 through the NumPy Box–Muller path."""
    out = np.empty(total, dtype=dtype)
    for j, c in enumerate(range(first, last)):
        bit_generator = np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(c,)))
        part = out[j * entries:min((j + 1) * entries, total)]
        staged = np.empty(part.size, dtype=np.float32)
        half = (part.size + 1) // 2
        words = bit_generator.random_raw(half)
        radius = ((words >> np.uint64(40)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-24)
        theta = (words & np.uint64(0xFFFFFF)).astype(np.float32) * (np.float32(2.0 * np.pi) * np.float32(2.0**-24))
        radius = np.sqrt(np.log(radius) * np.float32(-2.0))
        staged[:half] = radius * np.cos(theta)
        staged[half:] = radius[:part.size - half] * np.sin(theta[:part.size - half])
        part[...] = staged
    return out


@pytest.fixture(params=["numba", "numpy"])
def generator(request, monkeypatch):
    if request.param == "numba":
        pytest.importorskip("numba")
    else:
        monkeypatch.setenv(backend.NUMBA_DISABLE_ENV, "1")
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("entries, n_chunks, last", [(6, 5, 6), (7, 3, 7), (7, 4, 3), (1, 3, 1), (2, 1, 1), (101, 9, 50), (4096, 10, 4095), (33, 17, 20), (16, 8, 16)])
def test_superchunk_fill_equals_per_chunk_generation(generator, dtype, entries, n_chunks, last):
    """Odd and even chunk sizes, a shorter last chunk, chunks beyond the kernel's
    8 vector lanes and words beyond its 8-word steps (both done by the scalar loop)."""
    total = (n_chunks - 1) * entries + last
    states = g.chunk_states(7, 3, 3 + n_chunks)
    out = g.fill_chunks(states, entries, np.full(total, np.nan, dtype=dtype))
    np.testing.assert_array_equal(out, per_chunk_numpy(7, 3, 3 + n_chunks, entries, total, dtype))
    # the states were advanced past each chunk's words: the next word is the generator's next word
    for j, c in enumerate(range(3, 3 + n_chunks)):
        bit_generator = np.random.SFC64(np.random.SeedSequence(7, spawn_key=(c,)))
        bit_generator.random_raw((min(entries, total - j * entries) + 1) // 2)
        following = np.random.SFC64(0)
        state = following.state
        state["state"]["state"] = states[j]
        following.state = state
        assert following.random_raw() == bit_generator.random_raw()


def test_chunk_states_are_the_seeded_generators():
    states = g.chunk_states(11, 4, 6)
    for j, c in enumerate((4, 5)):
        np.testing.assert_array_equal(states[j], np.random.SFC64(np.random.SeedSequence(11, spawn_key=(c,))).state["state"]["state"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stream_superchunks_equal_dense_rows(generator, monkeypatch, dtype):
    """Small chunks and superchunks (3 chunks each, the last one short): the
    streamed rows are the dense matrix's rows bit for bit."""
    monkeypatch.setattr(g, "CHUNK_ENTRIES", 40)
    monkeypatch.setattr(g, "SUPERCHUNK_ENTRIES", 120)
    dense = DenseGaussian(4, 5, 37, seed=9, dtype=dtype)
    stream = StreamGaussian(4, 5, 37, seed=9, dtype=dtype, threads=2)
    assert len(stream._blocks) > 3 and stream._blocks[-1][1] - stream._blocks[-1][0] < stream._blocks[0][1] - stream._blocks[0][0]
    stream._state_table()
    rows = np.concatenate([stream._block(s)[0].copy() for s in range(len(stream._blocks))])
    np.testing.assert_array_equal(rows * stream.dtype.type(stream._scale), dense.matrix)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_one_pass_step_is_the_two_pass_bits_on_several_threads(monkeypatch, threads, batch):
    monkeypatch.setattr(g, "CHUNK_ENTRIES", 60)
    monkeypatch.setattr(g, "SUPERCHUNK_ENTRIES", 150)
    op = StreamGaussian(6, 5, 71, seed=2, threads=threads)
    assert len(op._blocks) > threads
    rng = np.random.default_rng(0)
    U, V = rng.standard_normal(batch + (6, 3)), rng.standard_normal(batch + (5, 3))
    y = rng.standard_normal(71)
    r, MV, MtU = op.residual_gradient(U, V, y, np.float64)
    r2 = op.forward_factors(U, V).astype(np.float64) - y
    MV2, MtU2 = op.gradient_products(r2, U, V)
    np.testing.assert_array_equal(r, r2)
    np.testing.assert_array_equal(MV, MV2)
    np.testing.assert_array_equal(MtU, MtU2)
    dense = DenseGaussian(6, 5, 71, seed=2)
    np.testing.assert_allclose(r, dense.forward_factors(U, V) - y, rtol=1e-12, atol=1e-12)


def test_take_selects_rows_across_superchunks(monkeypatch):
    monkeypatch.setattr(g, "CHUNK_ENTRIES", 60)
    monkeypatch.setattr(g, "SUPERCHUNK_ENTRIES", 150)
    op = StreamGaussian(6, 5, 71, seed=2, threads=2)
    index = np.array([70, 3, 40, 4, 0, 41])
    X = np.random.default_rng(1).standard_normal((6, 5))
    np.testing.assert_allclose(op.take(index).forward(X), op.forward(X)[index], rtol=1e-12)
    z = np.random.default_rng(2).standard_normal(len(index))
    full = np.zeros(71)
    full[index] = z
    np.testing.assert_allclose(op.take(index).adjoint(z), op.adjoint(full), rtol=1e-12, atol=1e-14)


def test_peak_bytes_counts_a_superchunk_per_thread(monkeypatch):
    op = StreamGaussian(100, 100, 10_000, seed=0, threads=2)
    block_rows = max(b - a for _, _, a, b in op._blocks)
    assert op.peak_bytes >= 2 * block_rows * 100 * 100 * 8 + 32 * len(op._bounds)
    assert op.peak_bytes < 0.05 * 10_000 * 100 * 100 * 8  # well under the dense matrix


@pytest.mark.parametrize("op_dtype, step_dtype, y_dtype", [("float32", "float64", "float64"), ("float64", "float32", "float32"),
                                                            ("float32", "float32", "float64"), ("float32", "float32", "float32")])
@pytest.mark.parametrize("take", [False, True])
def test_one_trial_step_is_the_two_pass_bits_across_dtypes_and_subsets(monkeypatch, op_dtype, step_dtype, y_dtype, take):
    """One trial takes the row kernels (products while the chunk is in cache);
    with dtype conversions or a row subset the step is the two passes' bits too."""
    monkeypatch.setattr(g, "CHUNK_ENTRIES", 60)
    monkeypatch.setattr(g, "SUPERCHUNK_ENTRIES", 600)
    op = StreamGaussian(6, 5, 97, seed=8, dtype=op_dtype, threads=2)
    if take:
        op = op.take(np.arange(97)[::-3])
    rng = np.random.default_rng(3)
    U, V = rng.standard_normal((6, 2)).astype(step_dtype), rng.standard_normal((5, 2)).astype(step_dtype)
    y = rng.standard_normal(op.m).astype(y_dtype)
    r, MV, MtU = op.residual_gradient(U, V, y, np.dtype(step_dtype))
    r2 = op.forward_factors(U, V).astype(step_dtype) - y
    MV2, MtU2 = op.gradient_products(r2, U, V)
    np.testing.assert_array_equal(r, r2.astype(step_dtype))
    np.testing.assert_array_equal(MV, MV2.astype(step_dtype))
    np.testing.assert_array_equal(MtU, MtU2.astype(step_dtype))


def test_row_products_match_blas_to_rounding():
    """The row kernels' products (numba dot and row accumulation) against the dense matrix's BLAS products."""
    pytest.importorskip("numba")
    op = StreamGaussian(20, 30, 900, seed=1, threads=2)
    dense = DenseGaussian(20, 30, 900, seed=1)
    rng = np.random.default_rng(4)
    X, z = rng.standard_normal((20, 30)), rng.standard_normal(900)
    np.testing.assert_allclose(op.forward(X), dense.forward(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(z), dense.adjoint(z), rtol=1e-12, atol=1e-12)


def test_numpy_loops_are_the_ufuncs():
    """The C inner loops the one-call generator runs are NumPy's own (checked on all inputs when first asked)."""
    pytest.importorskip("numba")
    from asymsense.operators import rng_kernels

    loops = rng_kernels.numpy_loops()
    assert loops is not None
    x = np.random.default_rng(0).random(1001).astype(np.float32) * np.float32(7) + np.float32(1e-3)
    out = np.empty_like(x)
    for loop, ufunc in zip(loops, (np.log, np.sin, np.cos)):
        rng_kernels._kernels()[4](loop, x[1:], out[1:])
        np.testing.assert_array_equal(out[1:], ufunc(x[1:]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_without_numpy_loops_the_values_and_bits_are_the_same(monkeypatch, dtype):
    """Where NumPy's loops cannot be called from numba, the ufuncs run from Python: the same G, and the step
    is still the two passes' bits."""
    pytest.importorskip("numba")
    from asymsense.operators import rng_kernels

    states = g.chunk_states(2, 0, 11)
    with_loops = g.fill_chunks(states.copy(), 40, np.empty(430, dtype=dtype))
    monkeypatch.setattr(rng_kernels, "_LOOPS", [None])
    np.testing.assert_array_equal(g.fill_chunks(states.copy(), 40, np.empty(430, dtype=dtype)), with_loops)
    monkeypatch.setattr(g, "CHUNK_ENTRIES", 60)
    monkeypatch.setattr(g, "SUPERCHUNK_ENTRIES", 600)
    op = StreamGaussian(6, 5, 97, seed=8, dtype=dtype, threads=2)
    rng = np.random.default_rng(3)
    U, V, y = rng.standard_normal((6, 2)).astype(dtype), rng.standard_normal((5, 2)).astype(dtype), rng.standard_normal(97).astype(dtype)
    r, MV, MtU = op.residual_gradient(U, V, y, np.dtype(dtype))
    r2 = op.forward_factors(U, V) - y
    np.testing.assert_array_equal(r, r2)
    np.testing.assert_array_equal(MV, op.gradient_products(r2, U, V)[0])
