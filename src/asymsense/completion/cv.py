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

from asymsense.errors import InputError
from asymsense.completion.model import complete, predict_indices
from asymsense.atomic import write_json
from asymsense.completion.workflow import check_out_dir, load_data
from asymsense.metrics import rmse
from asymsense.validation import check_int, resolve_seed


def kfold_indices(m: int, k: int, seed: int) -> list[np.ndarray]:
    """The K test folds (sorted index arrays) of a seeded permutation of m entries."""
    k = check_int("cv", k, minimum=2)
    if k > m:
        raise InputError(f"cv={k} folds need at least {k} entries, got {m}", "cv")
    perm = np.random.default_rng(seed).permutation(m)
    return [np.sort(part) for part in np.array_split(perm, k)]


def cross_validate(rows, cols, values, shape, k: int = 5, *, seed=None, progress=None, **fit_options) -> dict:
    """K-fold CV of `complete(**fit_options)` over the entries; returns
    {"folds": [{fold, test_rmse, val_rmse, seconds, best_iter, m_train, m_test, test_unknown_ids}],
    "test_rmse_mean", "test_rmse_sd" (sample sd, ddof=1), "seconds_mean", "k", "seed"}."""
    seed = resolve_seed(seed)
    rows, cols, values = np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(values, np.float64)
    folds = []
    for f, test in enumerate(kfold_indices(len(values), k, seed)):
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
    return {"k": len(folds), "seed": seed, "folds": folds, "test_rmse_mean": float(scores.mean()),
            "test_rmse_sd": float(scores.std(ddof=1)), "seconds_mean": float(np.mean([f["seconds"] for f in folds]))}


def run_cv(data, out, k: int, *, row=None, col=None, value=None, duplicates="error", fit_options: dict | None = None, progress=None) -> dict:
    """`asymsense complete DATA --cv K --out DIR`: K-fold CV over all entries of
    DATA (the built-in MovieLens split is not used: every entry is tested
    once); writes DIR/summary.json and returns it."""
    fit_options = dict(fit_options or {})
    out = check_out_dir(out)
    table, _ = load_data(data, row=row, col=col, value=value, duplicates=duplicates)
    seed = fit_options.pop("seed", None)
    started = time.perf_counter()
    cv = cross_validate(table.rows, table.cols, table.values, table.shape, k, seed=seed, progress=progress, **fit_options)
    summary = {"source": table.source, "shape": list(table.shape), "m": table.m, "duplicates_merged": table.n_duplicates,
               "cv": cv, "config": {**{key: v for key, v in fit_options.items()}, "seed": cv["seed"], "cv": cv["k"]},
               "seconds_total": time.perf_counter() - started}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    return summary
