"""K-fold cross-validation of the completion model over entries.

The entries are permuted once by `numpy.random.default_rng(seed)` and cut into
K folds of (almost) equal size (`numpy.array_split`); fold f is the test set
of run f, the other K − 1 folds are its data: `complete` fits them as usual
(its own validation split for early stopping, seeded by `seed`, then the
refit), and the test RMSE is taken on fold f, ids unseen in the run's data
getting the biases-only fallback (counted). This is the protocol of the
published 5-fold numbers of the field (e.g. Surprise's README on
MovieLens-100k/1M), so the numbers are comparable.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from asymsense.errors import InputError
from asymsense.completion.model import complete, predict_indices
from asymsense.atomic import output_dir, write_json
from asymsense.completion.io import read_arrow, read_columns
from asymsense.completion.workflow import check_out_dir, load_data
from asymsense.datasets import MOVIELENS_NAMES, movielens_100k_path
from asymsense.metrics import rmse
from asymsense.validation import check_int, resolve_seed


def kfold_indices(m: int, k: int, seed: int) -> list[np.ndarray]:
    """The K test folds (sorted index arrays) of a seeded permutation of m entries."""
    k = check_int("cv", k, minimum=2)
    if k > m:
        raise InputError(f"cv={k} folds need at least {k} entries, got {m}", "cv")
    perm = np.random.default_rng(seed).permutation(m)
    return [np.sort(part) for part in np.array_split(perm, k)]


def cross_validate(rows, cols, values, shape, k: int = 5, *, seed=None, progress=None, only=None, **fit_options) -> dict:
    """K-fold CV of `complete(**fit_options)` over the entries; returns
    {"folds": [{fold, test_rmse, val_rmse, seconds, best_iter, m_train, m_test, test_unknown_ids}],
    "test_rmse_mean", "test_rmse_sd" (sample sd, ddof=1), "seconds_mean", "k", "seed"}.
    `only` (fold numbers) fits just those folds of the same K-fold split, the
    bits the full CV gives for them (a check of a recorded CV at 1/K of its cost)."""
    seed = resolve_seed(seed)
    rows, cols, values = np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(values, np.float64)
    folds = []
    for f, test in enumerate(kfold_indices(len(values), k, seed)):
        if only is not None and f not in only:
            continue
        train = np.ones(len(values), dtype=bool)
        train[test] = False
        started = time.perf_counter()
        result = complete(rows[train], cols[train], values[train], shape, seed=seed, **fit_options)
        seconds = time.perf_counter() - started
        seen_r = np.bincount(rows[train], minlength=shape[0]) > 0
        seen_c = np.bincount(cols[train], minlength=shape[1]) > 0
        t_rows = np.where(seen_r[rows[test]], rows[test], -1)
        t_cols = np.where(seen_c[cols[test]], cols[test], -1)
        pred = predict_indices(result, t_rows, t_cols, "biases")
        folds.append({"fold": f, "test_rmse": rmse(pred, values[test]), "val_rmse": result.val_rmse, "seconds": seconds,
                      "best_iter": result.best_iter, "m_train": int(train.sum()), "m_test": int(len(test)),
                      "test_unknown_ids": int(np.sum((t_rows < 0) | (t_cols < 0)))})
        if progress is not None:
            progress(f + 1, folds[-1]["test_rmse"])
    scores = np.array([f["test_rmse"] for f in folds])
    return {"k": k, "seed": seed, "folds": folds, "test_rmse_mean": float(scores.mean()),
            "test_rmse_sd": float(scores.std(ddof=1)) if len(folds) > 1 else float("nan"),
            "seconds_mean": float(np.mean([f["seconds"] for f in folds]))}


def run_cv(data, out, k: int, *, row=None, col=None, value=None, duplicates="error", fit_options: dict | None = None, progress=None,
           overwrite: bool = False) -> dict:
    """`asymsense complete DATA --cv K --out DIR`: K-fold CV over all entries of
    DATA (the built-in MovieLens split is not used: every entry is tested
    once); writes DIR/summary.json and returns it."""
    fit_options = dict(fit_options or {})
    out = check_out_dir(out, overwrite)
    table, _ = load_data(data, row=row, col=col, value=value, duplicates=duplicates)
    seed = fit_options.pop("seed", None)
    started = time.perf_counter()
    cv = cross_validate(table.rows, table.cols, table.values, table.shape, k, seed=seed, progress=progress, **fit_options)
    summary = {"source": table.source, "shape": list(table.shape), "m": table.m, "duplicates_merged": table.n_duplicates,
               "cv": cv, "config": {**{key: v for key, v in fit_options.items()}, "seed": cv["seed"], "cv": cv["k"]},
               "seconds_total": time.perf_counter() - started}
    with output_dir(out) as tmp:
        write_json(tmp / "summary.json", summary)
    return summary


SPLITS = ("random", "time")


def time_split(rows, times, fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(rest, test) index arrays: for every row with at least 2 entries, its
    latest round(fraction·n_i) entries by time (at least 1, at most n_i − 1;
    ties broken by input order) are the test set — the evaluation a business
    faces: predict each customer's next ratings from the earlier ones."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction < 1:
        raise InputError(f"test_fraction must be in (0, 1), got {fraction!r}", "test_fraction")
    rows, times = np.asarray(rows, np.int64), np.asarray(times, np.float64)
    order = np.lexsort((np.arange(len(rows)), times, rows))
    counts = np.bincount(rows)
    n_test = np.where(counts >= 2, np.clip(np.round(fraction * counts), 1, np.maximum(counts - 1, 1)), 0).astype(np.int64)
    starts = np.cumsum(counts) - counts
    s_rows = rows[order]
    position = np.arange(len(rows)) - starts[s_rows]
    is_test = position >= counts[s_rows] - n_test[s_rows]
    return np.sort(order[~is_test]), np.sort(order[is_test])


def _entry_times(data, table, *, time_col=None, row=None, col=None) -> np.ndarray:
    """One time per entry of `table` (the latest when duplicates were merged),
    from DATA's time column (`time_col`, or the first column whose name
    contains 'time' or 'date'); the built-in MovieLens-100k has its timestamps."""
    if str(data).lower() in MOVIELENS_NAMES:
        return np.loadtxt(movielens_100k_path(), skiprows=1, usecols=(3,), dtype=np.float64)
    arrow, display, _ = read_arrow(data)
    names = arrow.column_names
    if time_col is None:
        found = [n for n in names[3:] + names[:3] if "time" in str(n).lower() or "date" in str(n).lower()]
        if not found:
            raise InputError(f"{display}: split='time' needs a timestamp column (give time_col=NAME); columns: {', '.join(map(str, names))}", "time_col")
        time_col = found[0]
    if time_col not in names:
        raise InputError(f"{display}: no column {time_col!r} for the timestamps (columns: {', '.join(map(str, names))})", "time_col")
    column = arrow.column(time_col)
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        column = column.cast(pa.int64()) if pa.types.is_timestamp(column.type) else column.cast(pa.date32()).cast(pa.int32())
    try:
        t = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{display}: column {time_col!r} is not numeric or a date/time", "time_col") from None
    if not np.all(np.isfinite(t)):
        raise InputError(f"{display}: {time_col!r} has a missing or non-finite time at data row {int(np.argmax(~np.isfinite(t)))}", "time_col")
    cols = read_columns(data, row=row, col=col, values=False)
    key_raw = table.row_map.encode(cols.row_ids) * table.shape[1] + table.col_map.encode(cols.col_ids)
    key = table.rows * table.shape[1] + table.cols
    order = np.argsort(key_raw, kind="stable")
    uniq, first = np.unique(key_raw[order], return_index=True)
    return np.maximum.reduceat(t[order], first)[np.searchsorted(uniq, key)]


def run_time_split(data, out, *, test_fraction: float = 0.1, time_col=None, row=None, col=None, value=None, duplicates="error",
                   fit_options: dict | None = None, overwrite: bool = False) -> dict:
    """`asymsense complete DATA --split time --out DIR`: hold out each row's
    latest `test_fraction` of entries (`time_split`), fit the default model on
    the rest (its own validation split and refit), and report the test RMSE
    next to the bias-only model's on the same split; writes DIR/summary.json."""
    fit_options = dict(fit_options or {})
    out = check_out_dir(out, overwrite)
    table, _ = load_data(data, row=row, col=col, value=value, duplicates=duplicates)
    times = _entry_times(data, table, time_col=time_col, row=row, col=col)
    rest, test = time_split(table.rows, times, test_fraction)
    started = time.perf_counter()
    result = complete(table.rows[rest], table.cols[rest], table.values[rest], table.shape, **fit_options)
    seconds = time.perf_counter() - started
    pred = predict_indices(result, table.rows[test], table.cols[test], "biases")
    base = result.biases(table.rows[test], table.cols[test])
    summary = {"source": table.source, "shape": list(table.shape), "m": table.m,
               "split": {"kind": "time", "test_fraction": test_fraction, "m_test": int(len(test)), "m_rest": int(len(rest)),
                         "time_col": time_col},
               "test_rmse": rmse(pred, table.values[test]), "test_rmse_biases": rmse(result.clipped(base), table.values[test]),
               "val_rmse": result.val_rmse, "best_iter": result.best_iter, "seconds": seconds, "config": result.config}
    with output_dir(out) as tmp:
        write_json(tmp / "summary.json", summary)
    return summary
