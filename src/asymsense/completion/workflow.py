"""The `asymsense complete` workflow: read, validate, split, fit, compare, write.

All input is read and validated before anything is fitted, and all results
are computed before anything is written; each output file is written
atomically (temporary file + rename), so an error never leaves half a file.

Outputs in DIR: predictions.csv (row_id, col_id, prediction[, rank]),
row_factors.parquet / col_factors.parquet (id, bias, f_1..f_k),
history.parquet, summary.json, report.html.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from asymsense.errors import InputError
from asymsense.validation import check_int, check_validation_share, resolve_seed
from asymsense.history import write_table
from asymsense.completion.baselines import als_wr, bias_only, soft_impute
from asymsense.completion.io import read_pairs, read_table, table_from_ids
from asymsense.completion.model import complete, predict_indices, top_n
from asymsense.solvers.stopping import split_entries
from asymsense.atomic import check_new_out_dir, output_dir, write_text
from asymsense.metrics import rmse
from asymsense.serialize import dumps
from asymsense.completion.guardrails import fit_guardrails
from asymsense.completion.report import peak_memory_bytes, read_labels, render, report_data
from asymsense.completion.intervals import check_level
from asymsense.completion.saved import from_result
from asymsense.completion.features import read_features
from asymsense.completion.segments import matching_rows
from asymsense.datasets import MOVIELENS_NAMES, movielens_100k, movielens_100k_path, split_indices

OUTPUT_FILES = ("predictions.csv", "row_factors.parquet", "col_factors.parquet", "history.parquet", "summary.json", "report.html", "warnings.json", "report.json")
DEFAULT_TOP = 10
"""Without pairs, `run_complete` writes the top DEFAULT_TOP unobserved columns of every row (top=0: none)."""


class CompleteSummary(dict):
    """summary.json's dict, plus what is not in summary.json: `warnings` (the
    guardrails, also in warnings.json), `predictions` (where they were written
    and what they are, or None) and `files` (every output path)."""

    warnings: list
    predictions: dict | None
    files: list


def load_data(data: str, *, row=None, col=None, value=None, duplicates="error", encoding="utf-8"):
    """A Table from a path or the built-in name 'movielens-100k', plus a fixed
    (train, val, test) split for the built-in data (None otherwise)."""
    if str(data).lower() in MOVIELENS_NAMES:
        t = table_from_ids(*movielens_100k(), duplicates=duplicates, source="movielens-100k")
        t.names = ("user_id", "item_id", "rating")
        return t, split_indices(t.m, (0.8, 0.1, 0.1), seed=0)
    return read_table(data, row=row, col=col, value=value, duplicates=duplicates, encoding=encoding), None


def check_out_dir(out, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output folder that cannot be created or
    written, or that holds another run's outputs (unless `overwrite`):
    `atomic.check_new_out_dir`. The outputs are then written into a temporary
    folder that replaces `out` at the end (`atomic.output_dir`)."""
    return check_new_out_dir(out, overwrite=overwrite, flag="out")


def _factor_table(ids, bias, F) -> pa.Table:
    cols = {"id": pa.array(ids), "bias": pa.array(np.asarray(bias, np.float64))}
    for l in range(F.shape[1]):
        cols[f"f_{l + 1}"] = pa.array(np.asarray(F[:, l], np.float64))
    return pa.table(cols)


def _read_features(path, parameter: str):
    """`read_features`, its errors starting with the parameter that named the file."""
    try:
        return read_features(path, name=str(path))
    except InputError as exc:
        raise InputError(f"{parameter} {exc}", parameter) from None


def run_complete(
    data, out, *, pairs=None, top=None, test=None, compare=False, test_fraction: float = 0.1,
    row=None, col=None, value=None, duplicates="error", fit_options: dict | None = None, progress=None, encoding="utf-8",
    row_labels=None, col_labels=None, command: str | None = None, interval: float | None = None, overwrite: bool = False,
    row_features=None, col_features=None, features: bool = False, warning_terms=None, compare_progress=None,
) -> dict:
    """Run the whole command; returns the summary dict (also written to summary.json).

    `row_features`/`col_features`: features tables (`completion.features`)
    whose levels name the segments of each component in the report;
    `features=True` takes them from MovieLens-100k's user and item files.
    `warning_terms`: a function Guardrail → Guardrail that restates a warning
    in the caller's terms (the command line passes one that names flags); the
    printed, stored and reported warnings are its results.
    `compare_progress(method, done, total)` is called around each baseline of `compare`."""
    started = time.perf_counter()
    fit_options = dict(fit_options or {})
    if pairs is not None and top is not None:
        raise InputError("give either pairs (a file) or top (a count), not both")
    explicit_top = top is not None
    top = check_int("top", top, minimum=0) if explicit_top else (DEFAULT_TOP if pairs is None else None)
    if top == 0:
        top = None
    check_validation_share(fit_options.get("validation", 0.1) if not isinstance(fit_options.get("validation"), (tuple, list)) else None)
    interval = check_level(interval) if interval is not None else None
    out = check_out_dir(out, overwrite)
    table, fixed = load_data(data, row=row, col=col, value=value, duplicates=duplicates, encoding=encoding)
    pair_cols = read_pairs(pairs, row=row, col=col, encoding=encoding) if pairs is not None else None
    test_table = read_table(test, row=row, col=col, value=value, duplicates=duplicates, encoding=encoding) if test is not None else None
    row_labels = read_labels(row_labels, "row_labels") if row_labels is not None and not isinstance(row_labels, dict) else row_labels
    col_labels = read_labels(col_labels, "col_labels") if col_labels is not None and not isinstance(col_labels, dict) else col_labels
    if features:
        if table.source != "movielens-100k" or row_features is not None or col_features is not None:
            raise InputError("features applies to the built-in movielens-100k only (its user and item files); for other data give the features tables themselves", "features")
        row_features, col_features = movielens_100k_path().with_suffix(".user"), movielens_100k_path().with_suffix(".item")
    row_features = _read_features(row_features, "row_features") if isinstance(row_features, (str, Path)) else row_features
    col_features = _read_features(col_features, "col_features") if isinstance(col_features, (str, Path)) else col_features
    for name, feats, ids in (("row_features", row_features, table.row_map.ids), ("col_features", col_features, table.col_map.ids)):
        if feats is not None:
            matching_rows(feats, ids, name)
    seed = resolve_seed(fit_options.pop("seed", None))
    validation = fit_options.pop("validation", 0.1)
    validation_kind = fit_options.pop("validation_kind", "entries")

    # the split: train / validation (/ test carved from the data when needed)
    all_idx = np.arange(table.m)
    test_idx = None
    if fixed is not None and test_table is None:
        train_idx, val_idx, test_idx = fixed
        split_desc = {"kind": "fixed", "fractions": [0.8, 0.1, 0.1], "seed": 0}
    else:
        if compare and test_table is None:
            if not 0 < test_fraction < 1:
                raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}", "test_fraction")
            rest, test_idx = split_entries(table.rows, table.shape[0], test_fraction, "entries", seed + 1)
            all_idx = rest
        tr, va = split_entries(table.rows[all_idx], table.shape[0], validation, validation_kind, seed)
        train_idx, val_idx = all_idx[tr], all_idx[va]
        split_desc = {"kind": validation_kind, "validation": validation, "test_fraction": test_fraction if test_idx is not None else None, "seed": seed}
    val = (table.rows[val_idx], table.cols[val_idx], table.values[val_idx])
    train = (table.rows[train_idx], table.cols[train_idx], table.values[train_idx])

    result = complete(*train, table.shape, validation=val, seed=seed, progress=progress, **fit_options)
    summary = {"source": table.source, "shape": list(table.shape), "m": table.m, "duplicates_merged": table.n_duplicates}
    summary.update(result.summary())
    summary["config"]["validation"] = {**split_desc, "m": int(len(val_idx))}
    summary["m_train"] = int(len(train_idx))

    test_sets = None
    if test_table is not None:
        t_rows = table.row_map.encode(test_table.row_ids())
        t_cols = table.col_map.encode(test_table.col_ids())
        test_sets = (t_rows, t_cols, test_table.values)
    elif test_idx is not None:
        test_sets = (table.rows[test_idx], table.cols[test_idx], table.values[test_idx])
    summary["test_rmse"] = None
    if test_sets is not None:  # the test RMSE of the pairs whose ids the fit knows; pairs with an unknown id apart (biases only)
        known = (test_sets[0] >= 0) & (test_sets[1] >= 0)
        pred = predict_indices(result, test_sets[0], test_sets[1], "biases")
        summary["test_rmse"] = rmse(pred[known], test_sets[2][known]) if known.any() else None
        summary["test_m"] = int(len(test_sets[2]))
        summary["test_unknown_ids"] = int((~known).sum())
        summary["test_rmse_unknown_ids"] = rmse(pred[~known], test_sets[2][~known]) if not known.all() else None

    comparison = None
    if compare:
        comparison = compare_methods(train, val, test_sets, table, result, summary, progress=compare_progress)
        summary["compare"] = comparison

    # predictions (computed before any file is written)
    predictions = None
    if pair_cols is not None:
        p_rows, p_cols = table.row_map.encode(pair_cols.row_ids), table.col_map.encode(pair_cols.col_ids)
        unknown_pairs = int(np.sum((p_rows < 0) | (p_cols < 0)))
        p = predict_indices(result, p_rows, p_cols, "biases")
        predictions = pa.table({"row_id": pa.array(pair_cols.row_ids), "col_id": pa.array(pair_cols.col_ids), "prediction": pa.array(p)})
        summary["predictions"] = {"kind": "pairs", "n": int(len(p)), "unknown_ids_biases_only": unknown_pairs}
    elif top is not None:
        r, c, k, p = top_n(result, top, table.rows, table.cols)
        predictions = pa.table({"row_id": pa.array(table.row_map.decode(r)), "col_id": pa.array(table.col_map.decode(c)), "rank": pa.array(k), "prediction": pa.array(p)})
        if explicit_top:
            summary["predictions"] = {"kind": "top", "n": int(top), "rows": int(table.shape[0])}
    fitted_on = (np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]]))
    if interval is not None:  # prediction intervals (completion.intervals) and their coverage
        model = from_result(result, table.row_map, table.col_map, fitted_on, table.names)
        summary["interval"] = model.coverage(interval, test=test_sets)
        if predictions is not None:
            pr, pc = table.row_map.encode(predictions.column("row_id").to_numpy(zero_copy_only=False)), table.col_map.encode(predictions.column("col_id").to_numpy(zero_copy_only=False))
            lower, upper = model.interval_at(pr, pc, predictions.column("prediction").to_numpy(), interval)
            predictions = predictions.append_column("lower", pa.array(lower)).append_column("upper", pa.array(upper))
    warnings = fit_guardrails(
        shape=table.shape, train_rows=train[0], eff_rank=result.effective_rank, train_rmse=result.train_rmse, val_rmse=result.val_rmse,
        validation=validation if split_desc.get("kind") != "fixed" else None,
        test=(test_sets[0], test_sets[1], *fitted_on) if test_table is not None else None)
    warnings = [warning_terms(w) for w in warnings] if warning_terms is not None else warnings
    summary["seconds_total"] = time.perf_counter() - started
    predictions_info = None
    if predictions is not None:
        predictions_info = {"path": str(out / "predictions.csv"), "rows": int(predictions.num_rows),
                            **({"kind": "pairs"} if pair_cols is not None else {"kind": "top", "n": int(top), "default": not explicit_top})}
    data = report_data(result, summary, table, train, val, test_sets, warnings=warnings, predictions=predictions_info, compare=comparison,
                       row_labels=row_labels, col_labels=col_labels, command=command, peak_memory=peak_memory_bytes(),
                       row_features=row_features, col_features=col_features)
    report_html = render(data, result.history, result)

    b = result.biases
    summary["global_mean"] = b.mean
    with output_dir(out) as tmp:  # the folder appears whole when every file is written, or not at all
        if predictions is not None:
            write_table(predictions, tmp / "predictions.csv")
        write_table(_factor_table(table.row_map.ids, b.rows, result.U), tmp / "row_factors.parquet")
        write_table(_factor_table(table.col_map.ids, b.cols, result.V), tmp / "col_factors.parquet")
        write_table(result.history.to_arrow(), tmp / "history.parquet")
        from_result(result, table.row_map, table.col_map, fitted_on, table.names, {"source": table.source}).save(tmp / "model")
        write_text(tmp / "summary.json", dumps(summary, nonfinite="keep", other="str"))
        write_text(tmp / "report.html", report_html)
        write_text(tmp / "warnings.json", dumps([w.as_dict() for w in warnings], nonfinite="keep", other="str"))
        write_text(tmp / "report.json", dumps(data, nonfinite="keep", other="str"))
        for path in tmp.iterdir():
            if path.name in OUTPUT_FILES:
                path.chmod(0o644)
    files = sorted(str(out / path.name) for path in out.iterdir() if path.name in OUTPUT_FILES)
    summary = CompleteSummary(summary)
    summary.warnings, summary.predictions, summary.files = warnings, predictions_info, files
    return summary


def compare_methods(train, val, test_sets, table, result, summary, progress=None) -> list[dict]:
    """Test RMSE and seconds of the baselines and ours, on the same split;
    `progress(method, done, total)` before each baseline and once at the end."""
    if test_sets is None:
        raise InputError("compare needs a test set: pass test (a file), or let it hold out test_fraction of the data")
    rows = []
    known = (test_sets[0] >= 0) & (test_sets[1] >= 0)  # every method is scored on the pairs whose ids the fit knows
    if not known.any():
        raise InputError(f"compare needs test entries whose row and column ids are in the data; none of the {len(known):,} is", "test")
    methods = (bias_only, soft_impute, als_wr)
    for done, fn in enumerate(methods):
        if progress is not None:
            progress(fn.__name__, done, len(methods))
        fit = fn(*train, table.shape, validation=val)
        pred = fit.predict(test_sets[0][known], test_sets[1][known])
        rows.append({"method": fit.method, "test_rmse": rmse(pred, test_sets[2][known]), "val_rmse": fit.val_rmse, "seconds": fit.seconds, "tuning_seconds": fit.tuning_seconds, "params": fit.config})
    if progress is not None:
        progress("done", len(methods), len(methods))
    rows.append({"method": "asymsense (fgd)", "test_rmse": summary["test_rmse"], "val_rmse": result.val_rmse, "seconds": result.seconds, "tuning_seconds": result.seconds,
                 "params": {"width": result.config["width"], "best_iter": result.best_iter, "eff_rank": round(result.effective_rank, 2)}})
    return rows
