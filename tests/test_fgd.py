"""The solver: exact one-step identities, batching, recovery, stopping, bad input."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from asymsense import DivergenceError, InputError, fgd, make_operator, measure, planted
from asymsense.solvers.fgd import initial_factors


def problem(n1=12, n2=9, rank=2, kind="gaussian", factor=5, noise=0.0, seed=0, cond=2.0):
    p = planted(n1, n2, rank, cond=cond, seed=seed)
    m = factor * rank * (n1 + n2 - rank)
    op = make_operator(kind, n1, n2, m, seed=seed + 1)
    return p, op, measure(p, op, noise=noise, seed=seed + 2)


def loss(op, y, U, V):
    r = op.forward(U @ V.T) - y
    return 0.5 * r @ r


def one_step(op, y, width, alpha, mu, seed):
    U0, V0 = (A[0] for A in initial_factors(op.n1, op.n2, width, [alpha], [seed], np.float64))
    res = fgd(op, y, width=width, init_scale=alpha, step_size=mu, max_iter=1, seed=seed)
    M = op.adjoint(op.forward(U0 @ V0.T) - y)
    return U0, V0, res.U, res.V, M


def test_step_is_the_gradient_by_central_differences():
    p, op, y = problem()
    U0, V0, U1, V1, _ = one_step(op, y, width=4, alpha=0.3, mu=0.1, seed=7)
    h = 1e-6
    grad_U = np.zeros_like(U0)
    for i, j in np.ndindex(U0.shape):
        E = np.zeros_like(U0)
        E[i, j] = h
        grad_U[i, j] = (loss(op, y, U0 + E, V0) - loss(op, y, U0 - E, V0)) / (2 * h)
    grad_V = np.zeros_like(V0)
    for i, j in np.ndindex(V0.shape):
        E = np.zeros_like(V0)
        E[i, j] = h
        grad_V[i, j] = (loss(op, y, U0, V0 + E) - loss(op, y, U0, V0 - E)) / (2 * h)
    np.testing.assert_allclose((U0 - U1) / 0.1, grad_U, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose((V0 - V1) / 0.1, grad_V, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["gaussian", "rank-one", "structured", "entries"])
@given(width=st.integers(1, 14), alpha=st.floats(0.05, 1.0), mu=st.floats(0.01, 0.5), seed=st.integers(0, 10**6))
def test_imbalance_changes_exactly_at_second_order(kind, width, alpha, mu, seed):
    """D⁺ = D + μ²(VᵀMᵀMV − UᵀMMᵀU) with D = UᵀU − VᵀV (first-order terms cancel)."""
    _, op, y = problem(kind=kind, factor=2)
    U, V, U1, V1, M = one_step(op, y, width, alpha, mu, seed)
    D, D1 = U.T @ U - V.T @ V, U1.T @ U1 - V1.T @ V1
    predicted = D + mu**2 * (V.T @ M.T @ M @ V - U.T @ M @ M.T @ U)
    assert np.linalg.norm(D1 - predicted) <= 1e-10 * max(np.linalg.norm(D1), np.linalg.norm(D), 1e-300) + 1e-14


def test_lifted_form_is_symmetric_gradient_descent_on_the_dilation():
    """W = [U; V] follows W⁺ = W − μ S(M) W with S(M) = [[0, M], [Mᵀ, 0]]."""
    _, op, y = problem()
    U, V, U1, V1, M = one_step(op, y, width=5, alpha=0.2, mu=0.3, seed=1)
    S = np.block([[np.zeros((op.n1, op.n1)), M], [M.T, np.zeros((op.n2, op.n2))]])
    W = np.vstack([U, V])
    np.testing.assert_allclose(np.vstack([U1, V1]), W - 0.3 * S @ W, rtol=1e-12, atol=1e-15)


def test_batched_equals_one_at_a_time():
    p, op, y = problem()
    scales, seeds = [1e-1, 1e-3], [3, 4]
    batch = fgd(op, y, width=10, init_scale=scales, seed=seeds, max_iter=60, truth=p, record_every=7)
    assert len(batch) == 4
    for result in batch:
        single = fgd(op, y, width=10, init_scale=result.config["init_scale"], seed=result.config["seed"], max_iter=60, truth=p, record_every=7)
        np.testing.assert_allclose(result.U, single.U, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(result.history["rel_error"], single.history["rel_error"], rtol=1e-9)
        # one auto step per batch, from the power iteration started at seeds[0]; a single run starts at its own seed,
        # so the two agree to the power iteration's precision (bit-equality depends on the CPU's BLAS kernels)
        assert result.step_size == pytest.approx(single.step_size, rel=1e-12)
    table = batch.history_table()
    assert set(table.column("init_scale").to_pylist()) == set(scales)
    assert table.num_rows == sum(len(r.history) for r in batch)


@pytest.mark.parametrize("width", [2, 12, 20])
def test_recovery_from_small_initialization(width):
    """k = r and k ≥ n1 reach relative test error < 1e-3 from α = 1e-4."""
    p, op, y = problem(n1=12, n2=9, rank=2, factor=5)
    res = fgd(op, y, width=width, init_scale=1e-4, max_iter=1500, seed=0, truth=p, record_every=50)
    assert res.history["rel_error"][-1] < 1e-3
    assert res.stop_reason == "max_iter"
    assert res.summary()["max_rel_imbalance"] < 0.05


def test_float32_recovers_too():
    p, op32, _ = problem(factor=5)
    op32 = make_operator("gaussian", 12, 9, op32.m, seed=1, dtype="float32")
    y = measure(p, op32)
    res = fgd(op32, y, width=12, init_scale=1e-4, max_iter=1500, seed=0, truth=p, record_every=100)
    assert res.U.dtype == np.float32
    assert res.history["rel_error"][-1] < 1e-3


def test_same_seed_same_history_and_config_repeats_the_run():
    p, op, y = problem()
    a = fgd(op, y, width=6, init_scale=1e-2, max_iter=40, seed=5, truth=p)
    b = fgd(op, y, width=6, init_scale=1e-2, max_iter=40, seed=5, truth=p)
    for name in a.history.names:
        np.testing.assert_array_equal(a.history[name], b.history[name])
    c = fgd(op, y, width=6, init_scale=1e-2, max_iter=40, seed=None, truth=p)
    assert isinstance(c.config["seed"], int)
    d = fgd(op, y, width=6, init_scale=1e-2, max_iter=40, seed=c.config["seed"], truth=p)
    np.testing.assert_array_equal(c.U, d.U)


def test_tolerance_stops_as_converged():
    p, op, y = problem()
    res = fgd(op, y, width=2, init_scale=1e-3, max_iter=5000, seed=0, tol=1e-8, record_every=100)
    assert res.stop_reason == "converged"
    assert res.n_iter < 5000
    assert res.history["rel_residual"][-1] <= 1e-8


def test_validation_patience_restores_the_best_iterate():
    p, op, y = problem(n1=20, n2=15, rank=2, factor=2, noise=0.05, seed=3)
    res = fgd(op, y, width=20, init_scale=1e-3, max_iter=3000, seed=0, truth=p, validation=0.2, patience=100, record_every=5)
    assert res.stop_reason == "patience"
    h = res.history
    best = int(np.argmin(h["val_loss"]))
    assert res.best_iter == h["iteration"][best]
    assert res.n_iter >= res.best_iter + 100
    val_op_loss = h["val_loss"][best]
    assert val_op_loss == pytest.approx(np.min(h["val_loss"]))
    assert res.config["validation"]["fraction"] == 0.2


def test_divergence_names_the_step_size_without_numpy_warnings():
    import warnings

    p, op, y = problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError, match="step_size=50"):
            fgd(op, y, width=4, init_scale=0.5, step_size=50.0, max_iter=200, seed=0)


def test_overflowing_measurements_are_bad_input_not_a_nan_step():
    p, op, y = problem()
    with pytest.raises(InputError, match="overflows"):
        fgd(op, y * 1e300, width=3, init_scale=1e-3, max_iter=5, seed=0)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(width=0), "width must be >= 1"),
        (dict(width=2.5), "width must be an integer"),
        (dict(init_scale=0.0), "init_scale must be finite and > 0"),
        (dict(init_scale=-1e-3), "init_scale"),
        (dict(step_size=0.0), "step_size must be finite and > 0"),
        (dict(step_size="fast"), "step_size must be a positive number or 'auto'"),
        (dict(max_iter=-1), "max_iter must be >= 0"),
        (dict(seed=-3), "seed must be >= 0"),
        (dict(seed=2**63), "seed must be <= 9223372036854775807"),
        (dict(patience=10), "patience needs validation"),
        (dict(validation=1.5), "validation must be a fraction"),
        (dict(init_scale=[]), "init_scale must not be an empty sequence"),
    ],
)
def test_bad_solver_input_is_named(kwargs, fragment):
    p, op, y = problem()
    args = dict(width=3, init_scale=1e-3, max_iter=5, seed=0) | kwargs
    with pytest.raises(InputError, match=fragment):
        fgd(op, y, **args)


def test_bad_measurements_are_named():
    p, op, y = problem()
    with pytest.raises(InputError, match="shape mismatch"):
        fgd(op, y[:-1], width=3, init_scale=1e-3, max_iter=5)
    bad = y.copy()
    bad[3] = np.inf
    with pytest.raises(InputError, match="y contains 1 non-finite"):
        fgd(op, bad, width=3, init_scale=1e-3, max_iter=5)


def test_bad_problem_input_is_named():
    with pytest.raises(InputError, match="rank must be <= min"):
        planted(5, 3, 4)
    with pytest.raises(InputError, match="cond must be >= 1"):
        planted(5, 3, 2, cond=0.5)


def test_record_seconds_is_the_part_of_the_run_spent_recording():
    """fgd reports the wall time of its history records inside `seconds`: more records take more of it."""
    p = planted(20, 15, 2, seed=0)
    op = make_operator("gaussian", 20, 15, 200, seed=1)
    y = measure(p, op)
    every = fgd(op, y, width=8, init_scale=[1e-3, 1e-2], max_iter=200, seed=0, truth=p, record_every=1)
    rarely = fgd(op, y, width=8, init_scale=[1e-3, 1e-2], max_iter=200, seed=0, truth=p, record_every=201)
    for a, b in zip(every, rarely):
        assert 0.0 < a.record_seconds <= a.seconds and 0.0 < b.record_seconds <= b.seconds
        assert len(a.history) == 201 and len(b.history) == 2
    assert sum(a.record_seconds for a in every) > 20 * sum(b.record_seconds for b in rarely)
