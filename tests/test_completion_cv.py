"""K-fold cross-validation of the completion model (`completion.cv`, `complete --cv K`)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from asymsense.completion.baselines import bias_only
from asymsense.completion.cv import cross_validate, kfold_indices, run_time_split, time_split
from asymsense.errors import InputError
from asymsense.metrics import rmse


@settings(max_examples=40, deadline=None)
@given(m=st.integers(2, 500), k=st.integers(2, 12), seed=st.integers(0, 2**31))
def test_kfold_indices_partition_the_entries(m, k, seed):
    if k > m:
        with pytest.raises(InputError, match="cv"):
            kfold_indices(m, k, seed)
        return
    folds = kfold_indices(m, k, seed)
    assert len(folds) == k and np.array_equal(np.sort(np.concatenate(folds)), np.arange(m))
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    assert all(np.array_equal(a, b) for a, b in zip(folds, kfold_indices(m, k, seed)))


@pytest.mark.parametrize("k", [1, 0, 2.5, "3"])
def test_kfold_refuses_bad_k(k):
    with pytest.raises(InputError, match="cv"):
        kfold_indices(100, k, 0)


def test_cross_validate_beats_the_biases_on_a_low_rank_table():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2)) @ rng.standard_normal((2, 30)) + 3
    r, c = np.nonzero(rng.random(X.shape) < 0.6)
    y = X[r, c] + 0.05 * rng.standard_normal(len(r))
    cv = cross_validate(r, c, y, X.shape, 3, seed=0, width=6, max_iter=150)
    assert cv["k"] == 3 and len(cv["folds"]) == 3 and sum(f["m_test"] for f in cv["folds"]) == len(y)
    assert cv["test_rmse_mean"] == pytest.approx(np.mean([f["test_rmse"] for f in cv["folds"]]))
    test = kfold_indices(len(y), 3, 0)[0]
    train = np.setdiff1d(np.arange(len(y)), test)
    biases = bias_only(r[train], c[train], y[train], X.shape)
    assert cv["folds"][0]["test_rmse"] < 0.5 * rmse(biases.predict(r[test], c[test]), y[test])
    one = cross_validate(r, c, y, X.shape, 3, seed=0, only=[1], width=6, max_iter=150)
    assert one["k"] == 3 and [f["fold"] for f in one["folds"]] == [1]
    assert {k: v for k, v in one["folds"][0].items() if k != "seconds"} == {k: v for k, v in cv["folds"][1].items() if k != "seconds"}


@pytest.mark.slow
def test_complete_cv_cli(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 2)) @ rng.standard_normal((2, 15)) + 3
    r, c = np.nonzero(rng.random(X.shape) < 0.7)
    (tmp_path / "t.csv").write_text("a,b,v\n" + "\n".join(f"{i},{j},{X[i, j]:.4f}" for i, j in zip(r, c)) + "\n")
    env = {"OPENBLAS_NUM_THREADS": "1", **__import__("os").environ}
    proc = subprocess.run([sys.executable, "-m", "asymsense", "complete", tmp_path / "t.csv", "--out", tmp_path / "o", "--cv", "2",
                           "--seed", "0", "--max-iter", "40", "--width", "4"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "2-fold CV (seed 0): test RMSE" in proc.stdout and proc.stdout.count("fold ") >= 2
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["cv"]["k"] == 2 and summary["config"]["seed"] == 0


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 20)), min_size=1, max_size=60), fraction=st.floats(0.05, 0.9))
def test_time_split_holds_out_the_latest_entries_of_each_row(data, fraction):
    rows = np.array([d[0] for d in data])
    times = np.array([d[1] for d in data], float)
    rest, test = time_split(rows, times, fraction)
    assert np.array_equal(np.sort(np.concatenate([rest, test])), np.arange(len(rows)))
    for r in np.unique(rows):
        mine_test, mine_rest = test[rows[test] == r], rest[rows[rest] == r]
        n = np.sum(rows == r)
        assert len(mine_test) == (0 if n < 2 else min(max(1, round(fraction * n)), n - 1))
        if len(mine_test) and len(mine_rest):
            assert times[mine_test].min() >= times[mine_rest].max()


@pytest.mark.slow
def test_time_split_cli_and_job(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 20)) + 3
    r, c = np.nonzero(rng.random(X.shape) < 0.7)
    lines = [f"{i},{j},{X[i, j]:.4f},{1000 + k}" for k, (i, j) in enumerate(zip(r, c))]
    (tmp_path / "t.csv").write_text("user,item,rating,timestamp\n" + "\n".join(lines) + "\n")
    s = run_time_split(tmp_path / "t.csv", tmp_path / "o", fit_options={"seed": 0, "width": 4, "max_iter": 100})
    assert s["split"]["m_test"] == sum(min(max(1, round(0.1 * n)), n - 1) for n in np.bincount(r) if n >= 2)
    assert s["test_rmse"] < s["test_rmse_biases"] and json.loads((tmp_path / "o" / "summary.json").read_text())["split"]["kind"] == "time"
    (tmp_path / "u.csv").write_text("user,item,rating\n" + "\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    env = {"OPENBLAS_NUM_THREADS": "1", **__import__("os").environ}
    proc = subprocess.run([sys.executable, "-m", "asymsense", "complete", tmp_path / "u.csv", "--out", tmp_path / "p", "--split", "time"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "timestamp column" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(InputError, match="test_fraction"):
        time_split(r, np.arange(len(r)), 1.5)
