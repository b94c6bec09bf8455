"""Baselines: recovery, the defining property of each method, agreement of
nuclear-norm FISTA with CVXPY + SCS, bad input, and `asymsense compare`."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import asymsense as a
from asymsense import DivergenceError, InputError
from asymsense.baselines import BASELINES, balanced_gd, nuclear_norm, scaled_gd
from asymsense.baselines import common
from asymsense.baselines.als import als
from asymsense.baselines.nuclear import svt
from asymsense.metrics import imbalance

N1, N2, R = 20, 15, 2
M = 5 * R * (N1 + N2 - R)

# method → (method-specific keywords, error bound after 400 iterations)
RECOVERY = {
    "nuclear": ({}, 1e-3),  # ≈ 1.8·λ_final/‖X*‖ with λ_final = 1e-4·‖A*(y)‖₂
    "spectral": ({"width": R}, 1e-10),
    "balanced": ({"width": N2, "init_scale": 1e-3}, 1e-2),
    "scaled-gd": ({"width": N2, "init_scale": 1e-3}, 1e-2),
    "als": ({"width": R}, 1e-10),
}


@pytest.fixture(scope="module")
def planted_problem():
    truth = a.planted(N1, N2, R, cond=2.0, seed=1)
    op = a.make_operator("gaussian", N1, N2, M, seed=2)
    return truth, op, a.measure(truth, op)


def test_registry_covers_every_baseline_with_the_contract_signature():
    assert set(BASELINES) == set(RECOVERY)
    for name, fn in BASELINES.items():
        params = inspect.signature(fn).parameters
        for arg in ("max_iter", "truth", "record_every", "seed", "tol"):
            assert params[arg].kind is inspect.Parameter.KEYWORD_ONLY, (name, arg)
        assert list(params)[:2] == ["operator", "y"], name


@pytest.mark.parametrize("name", sorted(RECOVERY))
def test_every_baseline_recovers_a_well_posed_planted_problem(planted_problem, name):
    truth, op, y = planted_problem
    kwargs, bound = RECOVERY[name]
    result = BASELINES[name](op, y, max_iter=400, truth=truth, record_every=50, seed=0, **kwargs)
    assert isinstance(result, a.FGDResult)
    error = np.linalg.norm(result.product() - truth.X) / np.linalg.norm(truth.X)
    assert error < bound, (name, error)
    assert result.history["rel_error"][-1] == pytest.approx(error, rel=1e-6, abs=1e-14)
    for column in ("iteration", "loss", "rel_residual", "rel_error", "imbalance", "rel_imbalance", "sv_1", "eff_rank", "angle_u", "tail_v"):
        assert column in result.history, (name, column)
    assert result.history["iteration"][-1] == result.n_iter == 400
    assert result.config["method"] == name and result.config["seed"] == 0
    summary = result.summary()
    assert summary["iterations"] == 400 and summary["rel_error"] == pytest.approx(error, rel=1e-6, abs=1e-14)


def test_tol_stops_with_converged(planted_problem):
    truth, op, y = planted_problem
    result = BASELINES["spectral"](op, y, max_iter=1000, truth=truth, seed=0, tol=1e-6, width=R)
    assert result.stop_reason == "converged"
    assert result.n_iter < 1000
    assert result.history["rel_residual"][-1] <= 1e-6 < result.history["rel_residual"][-2]


def test_balanced_with_zero_weight_is_fgd_from_the_same_start(planted_problem):
    """The shared loop and initialization reproduce fgd exactly."""
    truth, op, y = planted_problem
    plain = balanced_gd(op, y, max_iter=60, truth=truth, seed=7, width=6, init_scale=0.01, balance=0.0)
    reference = a.fgd(op, y, max_iter=60, truth=truth, seed=7, width=6, init_scale=0.01)
    np.testing.assert_allclose(plain.U, reference.U, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(plain.history["rel_error"], reference.history["rel_error"], rtol=1e-10)


def test_balancing_term_removes_imbalance_of_an_unbalanced_start(planted_problem):
    truth, op, y = planted_problem
    runs = {lam: balanced_gd(op, y, max_iter=300, truth=truth, seed=3, width=4, init_scale=0.1, unbalance=3.0, balance=lam, record_every=300) for lam in (0.0, 0.5)}
    start = runs[0.0].history["imbalance"][0]
    assert start == pytest.approx(runs[0.5].history["imbalance"][0])
    assert start > 1.0
    # without the term gradient descent changes D = UᵀU − VᵀV only at O(μ²): it stays
    assert runs[0.0].history["imbalance"][-1] > 0.5 * start
    # with it, D is driven to (nearly) zero
    assert runs[0.5].history["imbalance"][-1] < 0.05 * start
    assert runs[0.5].config["balance"] == 0.5 and runs[0.5].config["unbalance"] == 3.0


def test_scaled_gd_step_is_the_preconditioned_gradient(planted_problem):
    truth, op, y = planted_problem
    rng = np.random.default_rng(0)
    U0, V0 = 0.1 * rng.standard_normal((N1, 4)), 0.1 * rng.standard_normal((N2, 4))
    result = scaled_gd(op, y, max_iter=1, seed=0, width=4, init=(U0, V0), damping=0.05, step_size=0.3)
    residual = op.forward_factors(U0, V0) - y
    MV, MtU = op.gradient_products(residual, U0, V0)
    U1 = U0 - 0.3 * MV @ np.linalg.inv(V0.T @ V0 + 0.05 * np.eye(4))
    V1 = V0 - 0.3 * MtU @ np.linalg.inv(U0.T @ U0 + 0.05 * np.eye(4))
    np.testing.assert_allclose(result.U, U1, rtol=1e-10)
    np.testing.assert_allclose(result.V, V1, rtol=1e-10)


def test_scaled_gd_beats_gradient_descent_on_an_ill_conditioned_truth():
    """Preconditioning removes the κ-dependence: at κ = 20 fgd is still at the
    scale of the smallest singular value after 300 steps, ScaledGD(λ) is not."""
    truth = a.planted(N1, N2, R, cond=20.0, seed=1)
    op = a.make_operator("gaussian", N1, N2, M, seed=2)
    y = a.measure(truth, op)
    scaled = scaled_gd(op, y, max_iter=300, truth=truth, seed=0, width=N2, init_scale=1e-6, record_every=300)
    plain = a.fgd(op, y, max_iter=300, truth=truth, seed=0, width=N2, init_scale=1e-6, record_every=300)
    assert scaled.history["rel_error"][-1] < 0.1 * plain.history["rel_error"][-1]
    assert scaled.history["rel_error"][-1] < 5e-3


def test_nuclear_factors_are_balanced_and_the_path_continues_to_the_final_penalty(planted_problem):
    truth, op, y = planted_problem
    result = nuclear_norm(op, y, max_iter=400, truth=truth, seed=0, record_every=10)
    assert float(imbalance(result.U, result.V)) < 1e-10  # U = L√Σ, V = R√Σ
    penalty = result.history["penalty"]
    assert np.all(np.diff(penalty) <= 0)
    assert penalty[-1] == pytest.approx(result.config["penalty"])
    assert result.config["penalty"] == pytest.approx(1e-4 * result.config["initial_penalty"])
    assert result.history["rank"][-1] == R


def test_nuclear_norm_matches_cvxpy_scs():
    cp = pytest.importorskip("cvxpy")
    n1, n2 = 6, 5
    truth = a.planted(n1, n2, 1, seed=4)
    op = a.make_operator("gaussian", n1, n2, 22, seed=5)
    y = a.measure(truth, op, noise=0.05, seed=6)
    lam = 0.2 * np.linalg.norm(op.adjoint(y), 2)
    result = nuclear_norm(op, y, max_iter=5000, seed=0, tol=1e-12, penalty=lam, continuation=0.9)
    X = cp.Variable((n1, n2))
    G = op.matrix  # row i = vec(A_i), row-major
    objective = 0.5 * cp.sum_squares(G @ cp.reshape(X, (n1 * n2,), order="C") - y) + lam * cp.normNuc(X)
    problem = cp.Problem(cp.Minimize(objective))
    problem.solve(solver="SCS", eps=1e-10, max_iters=200_000)
    ours = result.product()
    ours_objective = 0.5 * np.sum((op.forward(ours) - y) ** 2) + lam * np.linalg.svd(ours, compute_uv=False).sum()
    assert ours_objective <= problem.value + 1e-6
    np.testing.assert_allclose(ours, X.value, atol=1e-4 * np.linalg.norm(X.value))
    assert 0 < result.config["rank"] < min(n1, n2)  # the penalty is active: a proper low-rank solution


def test_als_sweep_solves_each_least_squares_problem(planted_problem):
    truth, op, y = planted_problem
    rng = np.random.default_rng(1)
    start = (rng.standard_normal((N1, R)), rng.standard_normal((N2, R)))
    result = als(op, y, max_iter=1, seed=0, width=R, init=start)
    # V was updated last with U fixed: the V-gradient vanishes at the result
    residual = op.forward_factors(result.U, result.V) - y
    grad_v = op.adjoint_t_times(residual, result.U)
    assert np.linalg.norm(grad_v) < 1e-8 * np.linalg.norm(op.adjoint_t_times(y, result.U))
    assert result.step_size is None and result.config["cg_iter"] == 25


def test_partial_svds_agree_with_dense(planted_problem, monkeypatch):
    truth, op, y = planted_problem
    L, s, R_ = common.top_singular(op, y, 3)
    monkeypatch.setattr(common, "DENSE_LIMIT", 10)
    Lp, sp_, Rp = common.top_singular(op, y, 3)
    np.testing.assert_allclose(sp_, s, rtol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(Lp * L, axis=0)), 1.0, atol=1e-6)
    Z = np.random.default_rng(2).standard_normal((40, 30)) + 5 * np.outer(np.ones(40), np.ones(30))
    full = svt(Z, 8.0, guess=2, partial=False)
    part = svt(Z, 8.0, guess=2, partial=True)
    np.testing.assert_allclose(part[1], full[1], rtol=1e-8)
    np.testing.assert_allclose((part[0] * part[1]) @ part[2].T, (full[0] * full[1]) @ full[2].T, atol=1e-8)


def test_spectral_init_scales_to_the_operator():
    """Entry sampling has E[A*A] = p·Id; the least-squares scale undoes the p."""
    truth = a.planted(N1, N2, R, seed=1)
    op = a.make_operator("entries", N1, N2, 250, seed=2)
    y = a.measure(truth, op)
    result = BASELINES["spectral"](op, y, max_iter=0, truth=truth, seed=0, width=R)
    assert result.history["rel_error"][0] < 0.6
    assert result.history["sv_1"][0] == pytest.approx(1.0, rel=0.3)


def test_divergence_raises(planted_problem):
    truth, op, y = planted_problem
    with pytest.raises(DivergenceError, match="balanced diverged"):
        balanced_gd(op, y, max_iter=200, seed=0, width=4, init_scale=0.1, step_size=50.0)


BAD = [
    ("nuclear", {"max_iter": -1}, "max_iter"),
    ("nuclear", {"max_iter": 10, "continuation": 1.5}, "continuation"),
    ("nuclear", {"max_iter": 10, "penalty": 0.0}, "penalty"),
    ("nuclear", {"max_iter": 10, "partial_svd": "maybe"}, "partial_svd"),
    ("spectral", {"max_iter": 10, "width": 0}, "width"),
    ("spectral", {"max_iter": 10, "width": 99}, "width"),
    ("spectral", {"max_iter": 10, "width": 2, "step_size": "fast"}, "step_size"),
    ("spectral", {"max_iter": 2.5, "width": 2}, "max_iter"),
    ("balanced", {"max_iter": 10, "width": 3, "init_scale": 0.0}, "init_scale"),
    ("balanced", {"max_iter": 10, "width": 3, "balance": -1.0}, "balance"),
    ("balanced", {"max_iter": 10, "width": 3, "init": "zeros"}, "init"),
    ("balanced", {"max_iter": 10, "init": (np.ones((N1, 2)), np.ones((N2, 3)))}, "init factors"),
    ("scaled-gd", {"max_iter": 10, "width": 3, "damping": -0.1}, "damping"),
    ("scaled-gd", {"max_iter": 10, "width": 3, "step_size": 0.0}, "step_size"),
    ("scaled-gd", {"max_iter": 10, "width": 3, "tol": -1.0}, "tol"),
    ("als", {"max_iter": 10, "width": 2, "ridge": -1.0}, "ridge"),
    ("als", {"max_iter": 10, "width": 2, "record_every": 0}, "record_every"),
]


@pytest.mark.parametrize("name,kwargs,word", BAD)
def test_bad_parameters_raise_input_error_naming_them(planted_problem, name, kwargs, word):
    truth, op, y = planted_problem
    with pytest.raises(InputError, match=word):
        BASELINES[name](op, y, seed=0, **kwargs)


@pytest.mark.parametrize("name", sorted(RECOVERY))
def test_bad_measurements_raise_input_error(planted_problem, name):
    truth, op, y = planted_problem
    kwargs = RECOVERY[name][0]
    with pytest.raises(InputError, match="shape mismatch"):
        BASELINES[name](op, y[:-1], max_iter=5, seed=0, **kwargs)
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        BASELINES[name](op, bad, max_iter=5, seed=0, **kwargs)
    with pytest.raises(InputError, match="truth"):
        BASELINES[name](op, y, max_iter=5, seed=0, truth=np.ones((3, 3)), **kwargs)


# --------------------------------------------------------------------------- CLI
def _cli(*args):
    script = shutil.which("asymsense")
    command = [script] if script else [sys.executable, "-m", "asymsense"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_compare_json_lists_every_method():
    proc = _cli("compare", "--n1", "12", "--n2", "10", "--rank", "2", "--max-iter", "150", "--seed", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [r["method"] for r in records] == ["fgd", *BASELINES]
    for rec in records:
        assert rec["iterations"] == 150 and rec["seconds"] >= 0
        assert rec["config"]["seed"] == 3 and rec["config"]["m"] == 5 * 2 * (12 + 10 - 2)
        assert rec["config"]["noise_seed"] is None  # as solve and sweep record it without noise
        assert rec["solver"]["max_iter"] == 150 or rec["method"] == "als"
    errors = {r["method"]: r["rel_error"] for r in records}
    assert errors["spectral"] < 1e-6 and errors["als"] < 1e-6 and errors["fgd"] < 0.05
    again = json.loads(_cli("compare", "--n1", "12", "--n2", "10", "--rank", "2", "--max-iter", "150", "--seed", "3", "--json").stdout)
    assert [r["rel_error"] for r in again] == [r["rel_error"] for r in records]


@pytest.mark.slow
def test_compare_table_and_bad_input_exit_codes():
    proc = _cli("compare", "--n1", "8", "--n2", "6", "--rank", "1", "--max-iter", "20")
    assert proc.returncode == 0, proc.stderr
    for name in ["fgd", *BASELINES]:
        assert name in proc.stdout
    bad = _cli("compare", "--n1", "8", "--n2", "6", "--rank", "7")
    assert bad.returncode == 2
    assert "rank" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    bad = _cli("compare", "--alpha", "-1")
    assert bad.returncode == 2 and "alpha" in bad.stderr and "Traceback" not in bad.stderr


def test_compare_too_large_for_memory_is_bad_input():
    from typer.testing import CliRunner

    from asymsense.cli import app

    result = CliRunner().invoke(app, ["compare", "--n1", "100000", "--n2", "100000", "--max-iter", "1"])
    assert result.exit_code == 2, (result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "100000×100000" in lines[0] and "of memory, more than the" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_nuclear_tol_stops_once_the_path_has_reached_its_final_penalty(planted_problem):
    truth, op, y = planted_problem
    result = nuclear_norm(op, y, max_iter=5000, truth=truth, seed=0, tol=1e-9, record_every=100)
    assert result.stop_reason == "converged" and result.n_iter < 5000
    assert result.history["penalty"][-1] == pytest.approx(result.config["penalty"])
    assert result.history["iteration"][-1] == result.n_iter


@pytest.mark.parametrize("kind", ["structured", "rank-one", "entries"])
def test_baselines_run_on_every_operator_family_in_float32(kind):
    truth = a.planted(N1, N2, R, cond=2.0, seed=1)
    op = a.make_operator(kind, N1, N2, 250, seed=2, dtype="float32")
    y = a.measure(truth, op)
    for name in ("nuclear", "spectral", "als"):
        result = BASELINES[name](op, y, max_iter=400, truth=truth, seed=0, record_every=400, **RECOVERY[name][0])
        assert result.U.dtype == np.float32 and result.V.dtype == np.float32
        assert result.history["rel_error"][-1] < 2e-3, (kind, name)


@pytest.mark.slow
def test_scaled_gd_damping_ratios_documented_in_baselines_md():
    """docs/baselines.md: at m = 5·r(n1 + n2 − r), κ = 10, with k = n2 and η = 0.5,
    the default damping ratio 0.1 runs while 0.01 and 0.001 diverge."""
    from asymsense.errors import DivergenceError
    from asymsense.problems import planted_instance

    n1, n2, r = 40, 30, 3
    truth, op, y = planted_instance(n1, n2, r, cond=10, m=5 * r * (n1 + n2 - r), problem_seed=0, operator_seed=1)
    run = dict(truth=truth, width=n2, step_size=0.5, seed=0, record_every=20)
    fine = scaled_gd(op, y, max_iter=60, damping_ratio=0.1, **run)
    assert fine.history["rel_error"][-1] < fine.history["rel_error"][0]
    for ratio in (0.01, 0.001):
        with pytest.raises(DivergenceError):
            scaled_gd(op, y, max_iter=60, damping_ratio=ratio, **run)
