"""Saved completion models: `complete` → DIR/model/ → `predict` (CLI and Python),
the estimator's round trip, and fold-in of new rows/columns."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pyarrow.csv as pcsv
import pytest
from hypothesis import given, settings, strategies as st

from asymsense.completion import LowRankCompleter, load_model
from asymsense.completion import complete, read_table
from asymsense.completion.saved import from_result
from asymsense.errors import InputError
from asymsense.jobs.predict import run_predict
from asymsense.metrics import rmse


def cli(*args):
    return subprocess.run([sys.executable, "-m", "asymsense", *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={"OPENBLAS_NUM_THREADS": "1", **__import__("os").environ})


def one_line_error(proc, code=2):
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


N1, N2, HELD = 60, 40, 10


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A rank-2 table of customers × products; the last HELD customers are new
    (absent from train.csv): half of their entries in new.csv, half in new_test.csv."""
    d = tmp_path_factory.mktemp("saved")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N1, 2)) @ rng.standard_normal((2, N2)) + 3 + rng.standard_normal(N1)[:, None] * 0.5
    r, c = np.nonzero(rng.random((N1, N2)) < 0.6)
    old = r < N1 - HELD
    half = rng.random(len(r)) < 0.5

    def write(name, mask, header="customer,product,spend"):
        (d / name).write_text("\n".join([header] + [f"c{i},p{j},{X[i, j]:.5f}" for i, j in zip(r[mask], c[mask])]) + "\n")

    write("train.csv", old)
    write("new.csv", ~old & half)
    write("new_test.csv", ~old & ~half)
    (d / "pairs.csv").write_text("who,what\nc0,p1\nc3,p2\nstranger,p1\n")
    (d / "ids.csv").write_text("customer\nc1\nc2\n")
    table = read_table(d / "train.csv")
    fit = complete(table.rows, table.cols, table.values, table.shape, seed=1, width=10, max_iter=300)
    from_result(fit, table.row_map, table.col_map, (table.rows, table.cols), table.names).save(d / "out" / "model")
    return d, X, (r, c, old, half)


def test_saved_model_folder_round_trips(data):
    d, X, _ = data
    model = load_model(d / "out")
    assert sorted(p.name for p in (d / "out" / "model").iterdir()) == ["cols.parquet", "model.json", "observed.parquet", "rows.parquet"]
    info = json.loads((d / "out" / "model" / "model.json").read_text())
    assert info["library_version"] and info["config"]["seed"] == 1 and info["names"]["row"] == "customer"
    assert model.names == ("customer", "product", "spend") and model.shape == (N1 - HELD, N2)
    assert model.fit.U.dtype == np.float32
    # save → load is exact
    again = load_model(model.save(d / "copy"))
    assert np.array_equal(again.fit.U, model.fit.U) and np.array_equal(again.fit.biases.cols, model.fit.biases.cols)
    assert np.array_equal(again.predict(["c0", "c5"], ["p1", "p9"]), model.predict(["c0", "c5"], ["p1", "p9"]))


@pytest.mark.slow
def test_predict_cli_pairs_and_top_keep_the_input_names(data, tmp_path):
    d, X, _ = data
    proc = cli("predict", d / "out", "--pairs", d / "pairs.csv", "--out", tmp_path / "p.csv", "--precision", "3", "--interval", "0.8", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["predictions"] == {"kind": "pairs", "n": 3, "unknown_ids_biases_only": 1, "interval": 0.8}
    table = pcsv.read_csv(tmp_path / "p.csv")
    assert table.column_names == ["who", "what", "prediction", "lower", "upper"]
    t = table.to_pydict()
    assert all(lo <= p <= hi for p, lo, hi in zip(t["prediction"], t["lower"], t["upper"]))
    expected = np.round(load_model(d / "out").predict(["c0", "c3", "stranger"], ["p1", "p2", "p1"]), 3)
    assert np.array_equal(table.column("prediction").to_numpy(), expected)
    proc = cli("predict", d / "out" / "model", "--top", 2, "--rows", d / "ids.csv", "--out", tmp_path / "t.csv")
    assert proc.returncode == 0, proc.stderr
    top = pcsv.read_csv(tmp_path / "t.csv").to_pydict()
    assert list(top) == ["customer", "product", "rank", "prediction"]
    assert top["customer"] == ["c1", "c1", "c2", "c2"] and top["rank"] == [1, 2, 1, 2]
    observed = {(a, b) for a, b in zip(*[pcsv.read_csv(d / "train.csv").column(n).to_pylist() for n in ("customer", "product")])}
    assert not any((a, b) in observed for a, b in zip(top["customer"], top["product"]))
    assert top["prediction"][0] >= top["prediction"][1]


@pytest.mark.slow
def test_predict_cli_errors_are_one_line(data, tmp_path):
    d, _, _ = data
    assert "no saved model" in one_line_error(cli("predict", tmp_path, "--top", 1, "--out", tmp_path / "x.csv"))
    (tmp_path / "bad_ids.csv").write_text("customer\nnobody\n")
    assert "nobody" in one_line_error(cli("predict", d / "out", "--top", 1, "--rows", tmp_path / "bad_ids.csv", "--out", tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_predict_cli_fold_in_scores_new_customers(data, tmp_path):
    d, _, _ = data
    test = pcsv.read_csv(d / "new_test.csv")
    (tmp_path / "pairs.csv").write_text("customer,product\n" + "\n".join(f"{a},{b}" for a, b in zip(test.column(0).to_pylist(), test.column(1).to_pylist())) + "\n")
    proc = cli("predict", d / "out", "--fold-in", d / "new.csv", "--pairs", tmp_path / "pairs.csv", "--out", tmp_path / "p.csv",
               "--save-model", tmp_path / "folded", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["fold_in"]["new_rows"] == HELD and summary["predictions"]["unknown_ids_biases_only"] == 0
    with_fold = rmse(pcsv.read_csv(tmp_path / "p.csv").column("prediction").to_numpy(), test.column(2).to_numpy())
    fallback = rmse(load_model(d / "out").predict(test.column(0).to_numpy(), test.column(1).to_numpy()), test.column(2).to_numpy())
    assert with_fold < 0.8 * fallback
    assert load_model(tmp_path / "folded").shape == (N1, N2)


def _entries(path):
    t = pcsv.read_csv(path)
    return t.column(0).to_numpy(zero_copy_only=False), t.column(1).to_numpy(zero_copy_only=False), t.column(2).to_numpy()


def test_predict_job_refuses_pairs_and_top_together(data, tmp_path):
    d, _, _ = data
    with pytest.raises(InputError, match="either"):
        run_predict(d / "out", tmp_path / "x.csv", top=1, pairs=d / "pairs.csv")
    with pytest.raises(InputError, match="precision"):
        run_predict(d / "out", tmp_path / "x.csv", top=1, precision=-1)


@pytest.mark.parametrize("method", ["ridge", "descent"])
def test_fold_in_leaves_known_factors_and_beats_the_bias_fallback(data, method):
    d, _, _ = data
    model = load_model(d / "out")
    folded = model.fold_in(*_entries(d / "new.csv"), method=method)
    assert folded.meta["fold_in"]["new_rows"] == HELD and folded.shape == (N1, N2)
    old = folded.row_map.encode(model.row_ids)
    assert np.array_equal(folded.fit.U[old], model.fit.U) and np.array_equal(folded.fit.biases.rows[old], model.fit.biases.rows)
    assert np.array_equal(folded.fit.V, model.fit.V) and np.array_equal(folded.fit.biases.cols, model.fit.biases.cols)
    tr, tc, ty = _entries(d / "new_test.csv")
    new_idx = folded.row_map.encode(np.unique(tr))
    U0 = folded.fit.U.copy()
    U0[new_idx] = 0
    biases_only = replace(folded, fit=replace(folded.fit, U=U0))
    err = rmse(folded.predict(tr, tc), ty)
    assert err < rmse(biases_only.predict(tr, tc), ty) and err < rmse(model.predict(tr, tc), ty)


def test_fold_in_new_columns_and_counts(data):
    d, X, _ = data
    model = load_model(d / "out")
    rows = [f"c{i}" for i in range(20)]
    folded = model.fold_in(rows + ["c0", "zz"], ["pnew"] * 20 + ["p1", "qq"], list(X[:20, 5]) + [1.0, 2.0])
    assert folded.meta["fold_in"] == {**folded.meta["fold_in"], "new_rows": 0, "new_cols": 1, "known_pairs_ignored": 1, "skipped_both_new": 1}
    others = [f"c{i}" for i in range(20, 40)]
    new_col = folded.predict(others, ["pnew"] * 20)
    assert rmse(new_col, X[20:40, 5]) < rmse(model.predict(others, ["pnew"] * 20), X[20:40, 5])
    assert ("c0", "pnew") in set(zip(folded.row_map.decode(folded.observed[0]), folded.col_map.decode(folded.observed[1])))


@settings(max_examples=25, deadline=None)
@given(n_vals=st.integers(0, 4), bad=st.sampled_from([np.nan, np.inf, -np.inf, None]))
def test_fold_in_refuses_bad_entries(data, n_vals, bad):
    d, _, _ = data
    model = load_model(d / "out")
    values = [1.0] * n_vals
    if bad is None:
        with pytest.raises(InputError, match="equal lengths"):
            model.fold_in(["n"] * 3, ["p1"] * 3, values if n_vals != 3 else values + [1.0])
    else:
        with pytest.raises(InputError, match="non-finite"):
            model.fold_in(["n"] * (n_vals + 1), ["p1"] * (n_vals + 1), values + [bad])


def test_estimator_round_trip_and_partial_fit(data, tmp_path):
    d, X, (r, c, old, _) = data
    pairs = np.c_[r[old], c[old]]
    est = LowRankCompleter(random_state=0, width=6, max_iter=300).fit(pairs, X[r[old], c[old]])
    loaded = LowRankCompleter.load(est.save(tmp_path / "m"))
    assert loaded.get_params() == est.get_params()
    assert np.array_equal(loaded.predict(pairs), est.predict(pairs))
    before = loaded.predict(pairs)
    new = ~old
    loaded.partial_fit(np.c_[r[new], c[new]][::2], X[r[new], c[new]][::2])
    assert np.array_equal(loaded.predict(pairs), before)
    held = np.c_[r[new], c[new]][1::2]
    assert loaded.rmse(held, X[held[:, 0], held[:, 1]]) < est.rmse(held, X[held[:, 0], held[:, 1]])


def test_intervals_cover_held_out_noisy_entries(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 2)) @ rng.standard_normal((2, 50)) + 3
    r, c = np.nonzero(rng.random(X.shape) < 0.6)
    y = X[r, c] + 0.5 * rng.standard_normal(len(r))
    held = rng.random(len(r)) < 0.2
    est = LowRankCompleter(random_state=0, width=6, max_iter=300, validation=0.2).fit(np.c_[r[~held], c[~held]], y[~held])
    model = load_model(est.save(tmp_path / "m"))
    assert model.calibration is not None and model.calibration.sizes.sum() == round(0.2 * (~held).sum())
    pred, lo, hi = model.predict_interval(r[held], c[held], level=0.8)
    assert np.array_equal(pred, est.predict(np.c_[r[held], c[held]])) and np.all(lo <= pred) and np.all(pred <= hi)
    cover = np.mean((y[held] >= lo) & (y[held] <= hi))
    assert 0.7 <= cover <= 0.9, cover
    _, lo5, hi5 = model.predict_interval(r[held], c[held], level=0.5)
    assert np.all(hi5 - lo5 <= hi - lo + 1e-12) and np.mean(hi5 - lo5) < np.mean(hi - lo)
    with pytest.raises(InputError, match="interval"):
        model.predict_interval(r[:3], c[:3], level=1.5)


@settings(max_examples=30, deadline=None)
@given(level=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text(max_size=3)))
def test_interval_level_rule(level):
    from asymsense.completion.intervals import check_level
    ok = not isinstance(level, (bool, str)) and level == level and 0 < level < 0.99
    if ok:
        assert check_level(level) == level
    else:
        with pytest.raises(InputError, match="interval"):
            check_level(level)


@pytest.mark.slow
def test_complete_interval_writes_bounds_and_test_coverage(data, tmp_path):
    from asymsense.completion.workflow import run_complete

    d, _, _ = data
    summary = run_complete(d / "train.csv", tmp_path / "o", pairs=d / "pairs.csv", test=d / "train.csv", interval=0.8,
                           fit_options={"seed": 0, "width": 6, "max_iter": 150})
    cov = summary["interval"]
    assert cov["level"] == 0.8 and 0.6 <= cov["validation"]["coverage"] <= 1.0 and cov["test"]["m"] > 0
    assert 0.0 <= cov["test"]["coverage"] <= 1.0 and cov["test"]["mean_width"] > 0
    t = pcsv.read_csv(tmp_path / "o" / "predictions.csv").to_pydict()
    assert list(t)[-2:] == ["lower", "upper"] and all(lo <= p <= hi for p, lo, hi in zip(t["prediction"], t["lower"], t["upper"]))
    with pytest.raises(InputError, match="interval"):
        run_complete(d / "train.csv", tmp_path / "bad", interval=0.999, fit_options={"seed": 0})
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_cold_start_from_features_beats_the_fallback(tmp_path):
    from asymsense.completion.features import read_features

    rng = np.random.default_rng(5)
    cats = rng.integers(0, 4, 40)
    centers = rng.standard_normal((4, 2)) * 1.5
    V = centers[cats] + 0.1 * rng.standard_normal((40, 2))
    X = rng.standard_normal((60, 2)) @ V.T + 3 + (cats == 1)[None, :] * 0.8
    r, c = np.nonzero(rng.random(X.shape) < 0.6)
    held = np.isin(c, [3, 11, 19, 27, 35])
    est = LowRankCompleter(random_state=0, width=6, max_iter=300).fit(np.c_[r[~held], c[~held]], X[r[~held], c[~held]])
    (tmp_path / "items.csv").write_text("product,category,price\n" + "\n".join(f"{j},k{cats[j]},{10 + j % 7}" for j in range(40)) + "\n")
    feats = read_features(tmp_path / "items.csv")
    assert feats.X.shape == (40, 1 + 4 + 1 + 1)  # intercept, 4 categories + "other", price
    cold = est.model_.cold_start(col_features=feats)
    assert cold.meta["cold_start"] == {"new_cols": 5} and cold.shape == (60, 40)
    known = cold.col_map.encode(est.model_.col_ids)
    assert np.array_equal(cold.fit.V[known], est.model_.fit.V) and np.array_equal(cold.fit.biases.cols[known], est.model_.fit.biases.cols)
    fallback = rmse(est.model_.predict(r[held], c[held]), X[r[held], c[held]])
    assert rmse(cold.predict(r[held], c[held]), X[r[held], c[held]]) < 0.7 * fallback
    (tmp_path / "pairs.csv").write_text("row,product\n0,3\n1,11\n")
    est.save(tmp_path / "m")
    proc = cli("predict", tmp_path / "m", "--pairs", tmp_path / "pairs.csv", "--col-features", tmp_path / "items.csv", "--out", tmp_path / "p.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cold_start"] == {"new_cols": 2}
    (tmp_path / "dup.csv").write_text("product,category\n1,a\n1,b\n")
    with pytest.raises(InputError, match="repeated id"):
        read_features(tmp_path / "dup.csv")
