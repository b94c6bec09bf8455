"""Completion library: table input and its errors, id maps, duplicate policies,
recovery of a low-rank table, early stopping, baselines, the MovieLens loader."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

from asymsense import DivergenceError, InputError
from asymsense.completion.baselines import als_wr, bias_only, soft_impute
from asymsense.completion import IdMap, complete, read_pairs, read_table, table_from_ids
from asymsense.solvers.stopping import split_entries


def low_rank_table(n1=60, n2=40, rank=3, frac=0.5, noise=0.01, seed=0, offset=3.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n1, rank)) @ rng.standard_normal((rank, n2)) / np.sqrt(rank) + offset
    mask = rng.random((n1, n2)) < frac
    r, c = np.nonzero(mask)
    return X, r, c, X[r, c] + noise * rng.standard_normal(len(r))


def write(path, text):
    path.write_text(text)
    return path


# --- input -------------------------------------------------------------------------------


def test_csv_with_string_ids_round_trips(tmp_path):
    f = write(tmp_path / "t.csv", "customer,product,amount\nalice,p2,1.5\nbob,p1,2\nalice,p1,-3e0\n")
    t = read_table(f)
    assert t.shape == (2, 2)
    assert list(t.row_ids()) == ["alice", "bob", "alice"]
    assert list(t.col_ids()) == ["p2", "p1", "p1"]
    assert np.allclose(t.values, [1.5, 2.0, -3.0])


def test_integer_ids_stay_integers_and_tsv_is_sniffed(tmp_path):
    f = write(tmp_path / "t.txt", "u\ti\tr\n10\t7\t4\n3\t7\t5\n")
    t = read_table(f)
    assert t.row_map.ids.dtype.kind == "i" and list(t.row_ids()) == [10, 3]


@given(st.lists(st.one_of(st.integers(-50, 50), st.text("abcxyz", min_size=1, max_size=3)), min_size=1, max_size=30))
def test_idmap_round_trip(ids):
    ids = np.asarray([str(v) for v in ids])
    m = IdMap(ids)
    idx = m.encode(ids)
    assert (idx >= 0).all() and (m.decode(idx) == ids).all()
    assert (m.encode(m.ids) == np.arange(len(m))).all()
    assert m.encode(np.asarray(["never-seen"]))[0] == -1


def test_duplicate_policies(tmp_path):
    f = write(tmp_path / "d.csv", "r,c,v\na,x,1\nb,x,5\na,x,3\n")
    assert read_table(f, duplicates="mean").values.tolist() == [2.0, 5.0]
    t = read_table(f, duplicates="last")
    assert t.values.tolist() == [3.0, 5.0] and t.n_duplicates == 1
    with pytest.raises(InputError, match=r"d\.csv: line 4: duplicate .*first seen at line 2"):
        read_table(f, duplicates="error")
    with pytest.raises(InputError, match="duplicates must be one of"):
        read_table(f, duplicates="max")


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("", "the file is empty"),
        ("r,c,v\n", "no data rows"),
        ("r,c\na,b\n", "missing column"),
        ("r,c,v\na,b,1\na,c,abc\n", r"line 3: non-numeric value 'abc' in column 'v'"),
        ("r,c,v\na,b,1\na,c,\n", r"line 3: missing value in column 'v'"),
        ("r,c,v\na,b,1\na,c,inf\n", r"line 3: non-finite value"),
        ("r,c,v\na,b,1\n,c,2\n", r"line 3: missing id in column 'r'"),
        ("r,c,v\na,b,1\na,c,2,9\n", r"malformed CSV"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path, text, pattern):
    f = write(tmp_path / "bad.csv", text)
    with pytest.raises(InputError, match=pattern) as info:
        read_table(f)
    assert "bad.csv" in str(info.value) and "\n" not in str(info.value)


def test_unreadable_missing_and_named_columns(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="no Parquet files there"):  # a directory is read as a Parquet dataset
        read_table(tmp_path)
    write(tmp_path / "x.parquet", "not parquet at all")
    with pytest.raises(InputError, match=r"x\.parquet: not a readable Parquet file"):
        read_table(tmp_path / "x.parquet")
    f = write(tmp_path / "n.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match=r"missing column 'rating'.*columns: a, b, c"):
        read_table(f, value="rating")


def test_parquet_and_dataframe_report_rows(tmp_path):
    df = pd.DataFrame({"r": ["a", "b", "c"], "c": [1, 2, 3], "v": [1.0, np.nan, 2.0]})
    with pytest.raises(InputError, match=r"row 1: missing value"):
        read_table(df)
    df.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"t\.parquet: row 1: missing value"):
        read_table(tmp_path / "t.parquet")
    df["v"] = [1.0, 2.0, 3.0]
    assert read_table(df).shape == (3, 3)


def test_pairs_file_needs_no_values(tmp_path):
    p = read_pairs(write(tmp_path / "p.csv", "r,c\na,x\nb,y\n"))
    assert list(p.row_ids) == ["a", "b"] and p.values is None


# --- model ---------------------------------------------------------------------------------


def test_recovers_a_low_rank_table_and_reports_its_rank():
    X, r, c, y = low_rank_table(offset=0.0)
    res = complete(r, c, y, X.shape, width=20, seed=1, validation=0.1, max_iter=3000, patience=200, dtype="float64", biases="none")
    unseen = np.ones(X.shape, bool)
    unseen[r, c] = False
    ur, uc = np.nonzero(unseen)
    err = np.sqrt(np.mean((res.predict(ur, uc) - X[ur, uc]) ** 2))
    assert err < 0.05 * np.std(X)
    assert res.numerical_rank(0.05) == 3
    assert res.val_rmse < 0.1


def test_best_iterate_is_restored_and_recorded():
    X, r, c, y = low_rank_table(noise=0.5, frac=0.3)
    res = complete(r, c, y, X.shape, width=30, seed=0, max_iter=400, patience=30)
    val = res.history["val_rmse"]
    assert res.best_iter == int(np.argmin(val))
    assert res.val_rmse == pytest.approx(val.min())
    assert res.stop_reason in ("patience", "max_iter") and res.n_iter == len(val) - 1
    s = res.summary()
    assert s["best_iter"] == res.best_iter and s["config"]["seed"] == 0 and s["config"]["width"] == 30


def test_refit_uses_every_entry_for_the_chosen_number_of_iterations():
    X, r, c, y = low_rank_table(noise=0.3, frac=0.3)
    selected = complete(r, c, y, X.shape, width=30, seed=0, max_iter=400, patience=30, refit=False)
    refit = complete(r, c, y, X.shape, width=30, seed=0, max_iter=400, patience=30)
    info = refit.config["refit"]
    assert "refit" not in selected.config
    assert info["iterations"] == selected.best_iter > 0
    assert info["m"] == len(y) > selected.config["m_train"]
    assert refit.best_iter == selected.best_iter and refit.val_rmse == selected.val_rmse
    np.testing.assert_array_equal(refit.history["val_rmse"], selected.history["val_rmse"])
    assert not np.allclose(refit.U, selected.U)
    unseen = np.ones(X.shape, bool)
    unseen[r, c] = False
    ur, uc = np.nonzero(unseen)
    error = {name: np.sqrt(np.mean((res.predict(ur, uc) - X[ur, uc]) ** 2)) for name, res in (("selected", selected), ("refit", refit))}
    assert error["refit"] < error["selected"]


def test_refit_with_explicit_validation_entries_adds_them():
    X, r, c, y = low_rank_table(noise=0.3, frac=0.3)
    n_val = len(y) // 10
    res = complete(r[n_val:], c[n_val:], y[n_val:], X.shape, width=10, seed=0, max_iter=200, patience=20,
                   validation=(r[:n_val], c[:n_val], y[:n_val]))
    assert res.config["refit"]["m"] == len(y)


def test_clipping_and_no_bias_options():
    X, r, c, y = low_rank_table()
    res = complete(r, c, y, X.shape, width=5, seed=0, max_iter=50, biases="none")
    p = res.predict(np.repeat(np.arange(X.shape[0]), X.shape[1]), np.tile(np.arange(X.shape[1]), X.shape[0]))
    assert p.min() >= y.min() and p.max() <= y.max()
    assert res.biases.mean == 0 and not res.biases.rows.any()


def test_same_seed_same_fit():
    X, r, c, y = low_rank_table()
    a = complete(r, c, y, X.shape, width=8, seed=3, max_iter=40)
    b = complete(r, c, y, X.shape, width=8, seed=3, max_iter=40)
    assert np.array_equal(a.U, b.U) and a.config["seed"] == 3


def test_row_wise_validation_keeps_every_row_in_training():
    rows = np.repeat(np.arange(50), np.arange(1, 51))
    train, val = split_entries(rows, 50, 0.2, "rows", seed=0)
    assert set(np.unique(rows[train])) == set(range(50))
    counts = np.bincount(rows[val], minlength=50)
    assert counts[0] == 0 and counts[49] == 10
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(rows)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"width": 0}, "width"),
        ({"init_scale": -1.0}, "init_scale"),
        ({"step_size": 0.0}, "step_size"),
        ({"validation": 1.5}, "validation"),
        ({"validation_kind": "cols"}, "validation_kind"),
        ({"biases": "items"}, "biases"),
        ({"l2": -1.0}, "l2"),
        ({"max_iter": 2.5}, "max_iter"),
    ],
)
def test_bad_parameters(kwargs, pattern):
    X, r, c, y = low_rank_table(n1=10, n2=8)
    with pytest.raises(InputError, match=pattern):
        complete(r, c, y, X.shape, **kwargs)


def test_non_finite_values_and_divergence():
    X, r, c, y = low_rank_table(n1=10, n2=8)
    y = y.copy()
    y[3] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        complete(r, c, y, X.shape)
    _, r, c, y = low_rank_table(n1=10, n2=8)
    with pytest.raises(DivergenceError, match="smaller step_size"):
        complete(r, c, y, X.shape, step_size=50.0, init_scale=1.0, max_iter=200)


# --- baselines -----------------------------------------------------------------------------


def test_baselines_beat_the_bias_model_on_a_low_rank_table():
    X, r, c, y = low_rank_table(n1=50, n2=35, noise=0.05)
    train, val = split_entries(r, 50, 0.15, "entries", seed=0)
    args = (r[train], c[train], y[train], X.shape)
    v = (r[val], c[val], y[val])
    base = bias_only(*args, validation=v)
    si = soft_impute(*args, validation=v, rank_max=10)
    al = als_wr(*args, validation=v, ranks=(3, 6), l2s=(0.01, 0.1), max_sweeps=8)
    assert si.val_rmse < 0.5 * base.val_rmse and al.val_rmse < 0.5 * base.val_rmse
    assert al.config["rank"] in (3, 6) and si.config["lambda"] > 0


# --- MovieLens -----------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("recbole") is None, reason="recbole (which ships MovieLens-100k) is not installed")
def test_movielens_100k_loader():
    from asymsense.datasets import movielens_100k, split_indices

    d = movielens_100k()
    t = table_from_ids(*d)
    assert t.shape == (943, 1682) and t.m == 100_000
    assert set(np.unique(d.values)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    parts = split_indices(t.m)
    assert [len(p) for p in parts] == [80_000, 10_000, 10_000]
    assert len(np.unique(np.concatenate(parts))) == 100_000


def test_movielens_missing_says_how_to_install(monkeypatch):
    import asymsense.datasets as ds

    monkeypatch.setattr(ds.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install --no-deps recbole==1\.2\.1"):
        ds.movielens_100k()
