"""The fused one-pass dense Gaussian step (operators/dense_numba.py): its
fixed order of operations bit for bit (operators/lane_sums.py, so the bits
do not depend on the CPU), the OpenBLAS path's residuals and gradient
products to rounding level, the same fits, and the kernel choice (which
batches take it, what happens without numba)."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asymsense
from asymsense import backend
from asymsense.errors import InputError
from asymsense.operators import DenseGaussian, entry_kernels

needs_numba = pytest.mark.skipif(not entry_kernels.available(), reason="numba is not installed")

TOLERANCE = {"float64": 1e-12, "float32": 2e-5}


def relative(a, b):
    scale = max(float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))) / scale


def factors(shape, k, batch, dtype, seed):
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    U = rng.standard_normal(lead + (shape[0], k)).astype(dtype)
    V = rng.standard_normal(lead + (shape[1], k)).astype(dtype)
    return U, V


@needs_numba
@settings(max_examples=40, deadline=None)
@given(n1=st.integers(1, 6), n2=st.integers(1, 6), m=st.integers(1, 23), k=st.integers(1, 4),
       batch=st.one_of(st.none(), st.integers(1, 11)), dtype=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 2**16))
def test_fused_step_equals_the_blas_step(n1, n2, m, k, batch, dtype, seed):
    """r = A(UVᵀ) − y and (A*(r)V, A*(r)ᵀU) for any shape, batch (remainders of
    the 4-row tiles and of the 6- and 3-trial tiles included) and dtype, to rounding level."""
    fused = DenseGaussian(n1, n2, m, seed=seed, dtype=dtype, kernel="numba")
    blas = DenseGaussian(n1, n2, m, seed=seed, dtype=dtype, kernel="blas")
    assert np.array_equal(fused.matrix, blas.matrix)
    U, V = factors((n1, n2), k, batch, dtype, seed)
    y = np.random.default_rng(seed + 1).standard_normal(m).astype(dtype)
    got = fused.residual_gradient(U, V, y, np.dtype(dtype))
    want = blas.residual_gradient(U, V, y, np.dtype(dtype))
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert relative(a, b) <= TOLERANCE[dtype]


def assert_fixed_order(m, N, batch, g_kind, x_kind, seed):
    """fused_step on random G (m, N) of g_kind and a batch in x_kind gives
    exactly the bits of `reference_step`."""
    from asymsense.operators.dense_numba import fused_step, reference_step

    rng = np.random.default_rng(seed)
    G = rng.standard_normal((m, N)).astype(g_kind)
    X = rng.standard_normal((batch, N)).astype(x_kind)
    y = rng.standard_normal(m).astype(x_kind)
    scale = np.dtype(x_kind).type(m ** -0.5)
    r, M = np.empty((batch, m), x_kind), np.empty((batch, N), x_kind)
    fused_step(G, scale, X, y, r, M, np.dtype(x_kind).type(0))
    want_r, want_M = reference_step(G, scale, X, y, x_kind)
    assert np.array_equal(r, want_r) and np.array_equal(M, want_M)


@needs_numba
@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 21), N=st.integers(1, 37), batch=st.integers(1, 17),
       kinds=st.sampled_from([("float32", "float64"), ("float32", "float32"), ("float64", "float64")]), seed=st.integers(0, 2**16))
def test_fused_step_is_its_fixed_order_bit_for_bit(m, N, batch, kinds, seed):
    """The compiled kernel performs exactly the operations of
    `reference_step` (8-lane fma dot products with the tree and the tail,
    fma chains over all rows in order, exact arithmetic rounded once per
    operation): what a CPU with other vector registers computes too. Shapes
    cover every remainder of the 8 lanes, the 8-row blocks of batches
    smaller than a trial tile, the 4-row tiles and the trial tiles (6, then
    3, then 1 where the CPU has 32 vector registers), and from WIDE_FROM
    (12) trials the 6-row tiles (4, 3, 1 trials) with 4-row and single-row
    blocks after them; and for the adjoint every remainder of its 16-column
    float32 vectors (AVX-512) and both issue orders (`lane_sums._row_major`)."""
    assert_fixed_order(m, N, batch, *kinds, seed)


@needs_numba
@pytest.mark.parametrize("batch", [12, 15, 17])
@pytest.mark.parametrize("kinds", [("float32", "float32"), ("float32", "float64")])
def test_wide_tiles_are_the_fixed_order_bit_for_bit(batch, kinds):
    """Batches from WIDE_FROM trials in 6-row tiles of 4, then 3, then 1
    trials; m = 17 leaves two 6-row blocks, one 4-row block and one single
    row, in that order: the same bits as `reference_step`, as every tiling
    must give."""
    from asymsense.operators import dense_numba

    if dense_numba.WIDE_FROM == 0:
        pytest.skip("the 6-row tiles need 32 vector registers")
    assert dense_numba.WIDE_FROM <= batch
    assert_fixed_order(2 * dense_numba.WIDE_ROWS + dense_numba.ROWS + 1, 19, batch, *kinds, seed=batch)


@needs_numba
def test_float64_operator_keeps_the_exact_normals():
    """The float32 normals the fused kernel reads are exactly the values the
    float64 matrix was made from: G = fl(g₃₂·m^(-1/2)) entry for entry."""
    op = DenseGaussian(7, 5, 40, seed=3, kernel="numba")
    normals, scale = op.fused_operands()
    assert normals.dtype == np.float32
    assert np.array_equal(normals.astype(np.float64) * scale, op.matrix)
    assert np.array_equal(op.matrix, DenseGaussian(7, 5, 40, seed=3, kernel="blas").matrix)


@needs_numba
def test_take_keeps_the_fused_operands():
    op = DenseGaussian(4, 3, 30, seed=1, kernel="numba")
    index = np.array([5, 0, 29, 7, 7])
    sub = op.take(index)
    normals, scale = sub.fused_operands()
    assert np.array_equal(normals.astype(np.float64) * scale, op.matrix[index])
    U, V = factors((4, 3), 2, 3, "float64", 0)
    y = np.arange(5.0)
    for a, b in zip(sub.residual_gradient(U, V, y, np.float64), DenseGaussian(4, 3, 5, matrix=op.matrix[index], kernel="blas").residual_gradient(U, V, y, np.float64)):
        assert relative(a, b) <= 1e-12


@needs_numba
def test_fit_with_the_fused_kernel_equals_the_blas_fit():
    """A batched fgd run (three α, the demo's kind of problem, small): the same
    stop reasons and iteration counts, final errors to 1e-9 relative (the
    kernels agree to ~1e-14 per step; 1500 steps amplify that at most to 1e-12 here)."""
    truth = asymsense.planted(20, 15, 2, cond=2.0, seed=1)
    runs = {}
    for kernel in ("numba", "blas"):
        op = DenseGaussian(20, 15, 300, seed=2, kernel=kernel)
        y = asymsense.measure(truth, op)
        runs[kernel] = asymsense.fgd(op, y, width=20, init_scale=[1e-3, 1e-5, 1e-7], max_iter=1500, seed=0,
                                     truth=truth, record_every=100, threads=1)
    for a, b in zip(runs["numba"], runs["blas"]):
        assert a.stop_reason == b.stop_reason and a.n_iter == b.n_iter
        assert a.history["rel_error"][-1] < 1e-2 * a.history["rel_error"][0]
        assert abs(a.history["rel_error"][-1] - b.history["rel_error"][-1]) <= 1e-9 * b.history["rel_error"][-1]


@needs_numba
def test_auto_takes_the_fused_kernel_for_small_batches_only():
    from asymsense.backend import limit_threads

    op = DenseGaussian(200, 100, 10, seed=0)
    assert op.kernel == "auto"
    per_trial = 200 * 100
    most = DenseGaussian.FUSED_BATCH_ENTRIES // per_trial
    assert op.fused_parts(6) == 1 and op.fused_parts(most) == 1
    assert op.fused_parts(most + 1) == 0 and op.step_kernel(most + 1) == "blas"
    unit = DenseGaussian.FUSED_PART_TRIALS
    with limit_threads(np, 2):
        small = DenseGaussian.FUSED_SINGLE_ENTRIES // per_trial
        assert small < 2 * unit - 1  # 200×100: between the two, OpenBLAS
        assert op.fused_parts(small) == 1 and op.fused_parts(small + 1) == 0  # one part against two-thread BLAS
        assert op.fused_parts(2 * unit - 1) == 0 and op.step_kernel(2 * unit - 1) == "blas"
        in_parts = DenseGaussian.FUSED_PARTS_ENTRIES // per_trial
        assert op.fused_parts(2 * unit) == 2 and op.fused_parts(in_parts) == 2 and op.fused_parts(in_parts + 1) == 0
        with limit_threads(np, 3):
            assert op.fused_parts(3 * unit) == (3 if 3 * unit <= in_parts else 0)
    for budget in (2, 3, 8):  # the rule alone: parts follow the budget and FUSED_PART_TRIALS
        assert DenseGaussian.auto_parts(budget * unit, 1, budget) == budget
        assert DenseGaussian.auto_parts(budget * unit - 1, 1, budget) == budget - 1
    assert DenseGaussian.auto_parts(1, DenseGaussian.FUSED_BATCH_ENTRIES + 1, 1) == 0
    assert DenseGaussian(200, 100, 10, seed=0, kernel="numba").fused_parts(10**6) == 1
    assert DenseGaussian(60, 40, 100, seed=0, kernel="blas").step_kernel(6) == "blas"
    assert DenseGaussian(60, 40, 100, seed=0, kernel="blas").fused_parts(6) == 0


@given(batch=st.integers(0, 200), parts=st.integers(1, 8), unit=st.integers(1, 9))
def test_trial_parts_cover_the_batch_in_whole_units(batch, parts, unit):
    from asymsense.operators.gaussian import trial_parts

    cuts = trial_parts(batch, parts if batch >= parts * unit else 1, unit)
    assert cuts[0][0] == 0 and cuts[-1][1] == batch
    assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))  # contiguous, in order
    if len(cuts) > 1:
        assert len(cuts) == parts
        sizes = [b - a for a, b in cuts]
        assert all(size % unit == 0 and size >= unit for size in sizes[:-1]) and sizes[-1] >= unit
        whole = [size // unit for size in sizes[:-1]] + [(sizes[-1] - batch % unit) // unit]
        assert max(whole) - min(whole) <= 1  # whole units shared evenly


@needs_numba
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch", [13, 30])
def test_fused_parts_on_threads_give_the_one_thread_bits(monkeypatch, dtype, batch):
    """13 trials with a budget of 2 run as parts of 6 and 7 trials on two
    threads, 30 trials as parts of 16 and 14 (whole 4-trial tiles of the
    6-row kernel; 18 and 12, whole 6-trial tiles, where the CPU lacks it),
    and the step's bits are those of the whole batch on one."""
    from asymsense.backend import limit_threads
    from asymsense.operators import dense_numba

    want_sizes = {13: [6, 7], 30: [14, 16] if dense_numba.WIDE_FROM else [12, 18]}[batch]
    op = DenseGaussian(9, 7, 30, seed=4, dtype=dtype)
    U, V = factors((9, 7), 3, batch, dtype, seed=5)
    y = np.random.default_rng(6).standard_normal(30).astype(dtype)
    with limit_threads(np, 1):
        whole = op.residual_gradient(U, V, y, dtype)
    sizes, together = [], threading.Barrier(2, timeout=30)
    original = dense_numba.fused_step

    def recording(G, scale, X, *rest):
        sizes.append(X.shape[0])
        together.wait()  # both parts in flight at once, or BrokenBarrierError
        return original(G, scale, X, *rest)

    monkeypatch.setattr(dense_numba, "fused_step", recording)
    with limit_threads(np, 2):
        parts = op.residual_gradient(U, V, y, dtype)
    assert sorted(sizes) == want_sizes
    for a, b in zip(whole, parts):
        assert np.array_equal(a, b)


def test_small_products_take_one_blas_thread_under_a_larger_budget():
    """Around the fused kernel the k-wide products run on one BLAS thread when
    the budget is two or more (OpenBLAS's second thread would spin on the core
    the kernel's other part needs), and the budget of one is left alone."""
    from threadpoolctl import threadpool_info

    from asymsense.backend import limit_threads
    from asymsense.operators.gaussian import _small_products_blas

    def most_blas_threads():  # over every BLAS loaded (scs brings a one-thread OpenBLAS)
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    with limit_threads(np, 2):
        if most_blas_threads() < 2:
            pytest.skip("BLAS here runs one thread at most")
        with _small_products_blas():
            assert most_blas_threads() == 1
        assert most_blas_threads() == 2
    with limit_threads(np, 1), _small_products_blas():
        assert most_blas_threads() == 1


def test_without_numba_auto_is_blas_and_numba_is_refused(monkeypatch):
    monkeypatch.setenv(backend.NUMBA_DISABLE_ENV, "1")
    op = DenseGaussian(6, 4, 20, seed=0)
    assert op.step_kernel(6) == "blas"
    U, V = factors((6, 4), 3, 2, "float64", 0)
    r, MV, MtU = op.residual_gradient(U, V, np.zeros(20), np.float64)
    want = op.forward_factors(U, V)
    assert np.array_equal(r, want)
    with pytest.raises(InputError, match="kernel"):
        DenseGaussian(6, 4, 20, seed=0, kernel="numba")




def test_thread_budget_is_the_innermost_limit():
    from asymsense.backend import limit_threads, thread_budget

    assert thread_budget() == 1
    with limit_threads(np, 2):
        assert thread_budget() == 2
        with limit_threads(np, None):
            assert thread_budget() == 2
        with limit_threads(np, 1):
            assert thread_budget() == 1
        assert thread_budget() == 2
    assert thread_budget() == 1


@needs_numba
def test_fgd_threads_choose_the_kernel(monkeypatch):
    """150×100 float64 trials (1.5·10⁴ numbers each): ten take the fused
    kernel with one thread and OpenBLAS's two-thread GEMMs with two (one
    part, past FUSED_SINGLE_ENTRIES); twelve take it with two, in two parts."""
    calls = []
    original = DenseGaussian._fused_step
    monkeypatch.setattr(DenseGaussian, "_fused_step", lambda self, *a: (calls.append(1), original(self, *a))[1])
    op = DenseGaussian(150, 100, 40, seed=2)
    assert 10 * 150 * 100 > DenseGaussian.FUSED_SINGLE_ENTRIES and 12 * 150 * 100 <= DenseGaussian.FUSED_PARTS_ENTRIES
    y = np.random.default_rng(0).standard_normal(40)
    for threads, trials, want in ((1, 10, True), (2, 10, False), (2, 12, True)):
        calls.clear()
        asymsense.fgd(op, y, width=3, init_scale=[10.0 ** -e for e in range(1, trials + 1)], max_iter=3, seed=0, threads=threads)
        assert bool(calls) is want
