"""Seed ensembles of the completion model (`complete(ensemble=B)`): B
initializations as one batch through the descent loop, each member stopped at
its own best iterate and refitted for its own budget (`DescentLoop(budget=…)`),
stored as one factor pair whose product is the members' mean."""

import numpy as np
import pytest

from asymsense import InputError
from asymsense.completion import complete
from asymsense.completion.model import member_predictions
from asymsense.solvers.loop import DescentLoop, Objective
from test_completion import low_rank_table


def _quadratic_objective(Y):
    """½‖UVᵀ − Y‖² on the full matrix, for one trial or a batch."""
    return Objective(residual=lambda U, V: (U @ np.swapaxes(V, -1, -2) - Y).reshape(*U.shape[:-2], -1),
                     gradient=lambda r, U, V: ((r.reshape(*U.shape[:-2], *Y.shape)) @ V,
                                               np.swapaxes(r.reshape(*U.shape[:-2], *Y.shape), -1, -2) @ U),
                     y_norm=float(np.linalg.norm(Y)))


def test_per_trial_budget_stops_each_trial_where_a_single_run_would():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((6, 5))
    U0, V0 = 0.1 * rng.standard_normal((3, 6, 2)), 0.1 * rng.standard_normal((3, 5, 2))
    out = DescentLoop(_quadratic_objective(Y), U0, V0, step=0.05, max_iter=9, budget=[2, 9, 0], dtype=np.float64).run()
    assert out.n_iter.tolist() == [2, 9, 0]
    assert out.stop_reason == ["max_iter"] * 3
    for b, n in enumerate([2, 9, 0]):
        single = DescentLoop(_quadratic_objective(Y), U0[b], V0[b], step=0.05, max_iter=n).run()
        np.testing.assert_allclose(out.U[b], single.U, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(out.V[b], single.V, rtol=1e-12, atol=1e-15)


def test_budget_above_max_iter_is_capped():
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((4, 4))
    out = DescentLoop(_quadratic_objective(Y), 0.1 * rng.standard_normal((2, 4, 2)), 0.1 * rng.standard_normal((2, 4, 2)),
                      step=0.05, max_iter=3, budget=[7, 1], dtype=np.float64).run()
    assert out.n_iter.tolist() == [3, 1]


@pytest.fixture(scope="module")
def fits():
    X, r, c, y = low_rank_table(n1=50, n2=40, rank=3, frac=0.5, noise=0.3, seed=2)
    val = np.arange(len(y)) % 5 == 0  # one validation set, step and scale for all (else each seed draws its own)
    r, c, y, validation = r[~val], c[~val], y[~val], (r[val], c[val], y[val])
    opts = dict(width=8, validation=validation, patience=15, max_iter=150, dtype="float64", step_size=0.05, init_scale=1e-3)
    ens = complete(r, c, y, X.shape, ensemble=3, seed=5, **opts)
    singles = [complete(r, c, y, X.shape, seed=5 + b, **opts) for b in range(3)]
    return X, r, c, y, ens, singles


def test_members_are_the_single_fits_of_their_seeds(fits):
    X, r, c, y, ens, singles = fits
    info = ens.config["ensemble"]
    assert info["members"] == 3 and info["seeds"] == [5, 6, 7] and ens.U.shape == (50, 24)
    assert info["best_iters"] == [s.best_iter for s in singles] and len(set(info["best_iters"])) > 1  # own budgets
    rows, cols = np.nonzero(np.ones(X.shape, bool))
    members = member_predictions(ens, rows, cols)
    for b, s in enumerate(singles):
        single = s.biases(rows, cols) + np.einsum("ik,ik->i", s.U[rows], s.V[cols])
        np.testing.assert_allclose(members[b], single, rtol=1e-9, atol=1e-9)


def test_ensemble_predicts_the_members_mean_and_records_the_spread(fits):
    X, r, c, y, ens, singles = fits
    rows, cols = np.nonzero(np.ones(X.shape, bool))
    np.testing.assert_allclose(ens.predict(rows, cols), ens.clipped(member_predictions(ens, rows, cols).mean(axis=0)), rtol=1e-9, atol=1e-9)
    vr, vc, e = ens.validation_residuals
    assert ens.validation_spread.shape == e.shape and np.all(ens.validation_spread >= 0)
    assert ens.val_rmse == pytest.approx(float(np.sqrt(np.mean(e**2))))
    # averaging can only lower the squared error against the truth (Jensen): the mean beats the members' average
    truth = X[rows, cols]
    member_mse = np.mean([np.mean((s.predict(rows, cols) - truth) ** 2) for s in singles])
    assert np.mean((ens.predict(rows, cols) - truth) ** 2) <= member_mse + 1e-12


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_ensemble_size_is_checked(bad):
    X, r, c, y = low_rank_table(n1=10, n2=8)
    with pytest.raises(InputError, match="ensemble"):
        complete(r, c, y, X.shape, ensemble=bad, max_iter=2)


def test_ensemble_model_saves_and_loads_as_one_factor_pair(tmp_path, fits):
    from asymsense.completion.io import IdMap
    from asymsense.completion.saved import from_result, load_model

    X, r, c, y, ens, _ = fits
    model = from_result(ens, IdMap(np.arange(X.shape[0])), IdMap(np.arange(X.shape[1])), (r, c))
    loaded = load_model(model.save(tmp_path / "model"))
    assert loaded.fit.members == 3 and loaded.fit.U.shape == (X.shape[0], 24)
    rows, cols = np.nonzero(np.ones(X.shape, bool))
    np.testing.assert_array_equal(loaded.predict(rows, cols), model.predict(rows, cols))
    np.testing.assert_array_equal(member_predictions(loaded.fit, rows, cols), member_predictions(ens, rows, cols))


@pytest.mark.slow
def test_cli_refuses_an_ensemble_of_zero(tmp_path):
    import subprocess
    import sys

    bad = subprocess.run([sys.executable, "-m", "asymsense", "complete", "movielens-100k", "--out", str(tmp_path / "bad"), "--ensemble", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--ensemble must be >= 1" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_implicit_term_follows_its_gradient_steps():
    """implicit=True: U_eff = U + N W with N_ij = |Ω_i|^{-1/2} on Ω, W from 0;
    three steps of the descent reproduced by hand in float64 (W's step
    IMPLICIT_STEP·μ/‖N‖₂²)."""
    from asymsense.completion.model import IMPLICIT_STEP, _initial_factors

    X, r, c, y = low_rank_table(n1=12, n2=9, rank=2, frac=0.6, seed=4)
    mu, alpha, k = 0.02, 0.3, 3
    res = complete(r, c, y, X.shape, implicit=True, validation=None, biases="none", clip=False, width=k, max_iter=3,
                   step_size=mu, init_scale=alpha, seed=1, dtype="float64")
    U, V = _initial_factors(1, 1, X.shape, k, alpha, np.float64)
    W = np.zeros_like(V)
    cnt = np.bincount(r, minlength=X.shape[0])
    N = np.zeros(X.shape)
    N[r, c] = 1 / np.sqrt(cnt[r])
    assert res.config["implicit"]["pattern_norm"] == pytest.approx(np.linalg.norm(N, 2), rel=1e-3)
    mu_w = IMPLICIT_STEP * mu / res.config["implicit"]["pattern_norm"] ** 2
    for _ in range(3):
        P = U + N @ W
        G = np.zeros(X.shape)
        G[r, c] = np.einsum("ik,ik->i", P[r], V[c]) - y
        U, W, V = U - mu * G @ V, W - mu_w * N.T @ (G @ V), V - mu * G.T @ P
    np.testing.assert_allclose(res.U, U + N @ W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.V, V, rtol=1e-9, atol=1e-12)
    with pytest.raises(InputError, match="implicit"):
        complete(r, c, y, X.shape, implicit="yes", max_iter=1)


def test_implicit_ensemble_members_are_the_single_implicit_fits():
    X, r, c, y = low_rank_table(n1=30, n2=25, rank=2, frac=0.5, noise=0.3, seed=6)
    val = np.arange(len(y)) % 5 == 0
    opts = dict(width=4, validation=(r[val], c[val], y[val]), patience=10, max_iter=80, dtype="float64", step_size=0.05,
                init_scale=1e-3, implicit=True, l2=0.01)
    ens = complete(r[~val], c[~val], y[~val], X.shape, ensemble=2, seed=3, **opts)
    rows, cols = np.nonzero(np.ones(X.shape, bool))
    members = member_predictions(ens, rows, cols)
    for b in range(2):
        s = complete(r[~val], c[~val], y[~val], X.shape, seed=3 + b, **opts)
        np.testing.assert_allclose(members[b], s.biases(rows, cols) + np.einsum("ik,ik->i", s.U[rows], s.V[cols]), rtol=1e-9, atol=1e-9)
