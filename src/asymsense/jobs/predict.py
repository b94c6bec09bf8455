"""The `asymsense predict` job: load a saved completion model, optionally fold
in new rows/columns, and predict pairs or the top N columns per row.

Output: one CSV whose id columns keep the names of the input (the pairs file's
header for `pairs`; the fitted table's id columns for `top`), plus
`prediction` (and `rank` for `top`), rounded to `precision` decimals. All input
is read and validated, and every prediction computed, before the file is
written (atomically).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from asymsense.atomic import check_out_path, output_dir
from asymsense.completion.foldin import DEFAULT_RIDGE
from asymsense.completion.features import read_features
from asymsense.completion.intervals import check_level
from asymsense.completion.io import _as_id_array, read_arrow, read_columns, read_pairs
from asymsense.completion.saved import load_model
from asymsense.errors import InputError
from asymsense.history import write_table
from asymsense.validation import check_int


def _check_out_file(out) -> Path:
    out = check_out_path(out, "out")
    if out.is_dir():
        raise InputError(f"out {out}: is a directory; give a file name such as {out / 'predictions.csv'}", "out")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"out {out}: folder {parent} does not exist", "out")
    return out


def _read_ids(source) -> np.ndarray:
    """The first column of a file of row ids."""
    table, display, _ = read_arrow(source)
    if table.num_columns < 1 or table.num_rows == 0:
        raise InputError(f"{display}: no row ids")
    column = table.column(0)
    if column.null_count:
        raise InputError(f"{display}: missing row id in column {table.column_names[0]!r}")
    return _as_id_array(column.to_numpy(zero_copy_only=False))


def run_predict(model_dir, out, *, pairs=None, top=None, rows=None, fold_in=None, fold_in_method: str = "ridge",
                ridge: float = DEFAULT_RIDGE, precision: int = 4, save_model=None, row=None, col=None, value=None,
                interval: float | None = None, row_features=None, col_features=None) -> dict:
    """Run the whole command; returns a summary dict (what was predicted, the
    fold-in counts and seconds). `save_model`: a folder for the model with the
    folded-in rows/columns (the loaded one is never modified)."""
    started = time.perf_counter()
    if (pairs is None) == (top is None):
        raise InputError("give either pairs (a file of row id, column id pairs) or top (N best columns per row)")
    if rows is not None and top is None:
        raise InputError("rows (a file of row ids) goes with top", "rows")
    precision = check_int("precision", precision, minimum=0)
    if interval is not None:
        interval = check_level(interval)
    if top is not None:
        top = check_int("top", top, minimum=1)
    out = _check_out_file(out)
    if save_model is not None:
        save_model = check_out_path(save_model, "save_model")
    model = load_model(model_dir)
    if interval is not None and model.calibration is None:
        raise InputError(f"interval: the model in {model_dir} has no calibration (fitted without validation entries)", "interval")
    pair_cols = read_pairs(pairs, row=row, col=col) if pairs is not None else None
    row_ids = _read_ids(rows) if rows is not None else None
    summary: dict = {"model": str(model_dir), "shape": list(model.shape)}
    if fold_in is not None:
        new = read_columns(fold_in, row=row, col=col, value=value)
        t = time.perf_counter()
        model = model.fold_in(new.row_ids, new.col_ids, new.values, method=fold_in_method, ridge=ridge)
        summary["fold_in"] = {**model.meta["fold_in"], "source": new.source, "seconds": time.perf_counter() - t}
        summary["shape"] = list(model.shape)
    if row_features is not None or col_features is not None:
        feats = {"row_features": read_features(row_features) if row_features is not None else None,
                 "col_features": read_features(col_features) if col_features is not None else None}
        wanted = (pair_cols.row_ids, pair_cols.col_ids) if pair_cols is not None else None
        model = model.cold_start(**feats, ids=wanted)
        summary["cold_start"] = model.meta["cold_start"]
    if pair_cols is not None:
        p_rows, p_cols = model.encode(pair_cols.row_ids, pair_cols.col_ids)
        p = model.predict(pair_cols.row_ids, pair_cols.col_ids)
        names = pair_cols.names
        columns = {names[0]: pa.array(pair_cols.row_ids), names[1]: pa.array(pair_cols.col_ids)}
        summary["predictions"] = {"kind": "pairs", "n": int(len(p)), "unknown_ids_biases_only": int(np.sum((p_rows < 0) | (p_cols < 0)))}
    else:
        r, c, k, p = model.top(top, row_ids)
        p_rows, p_cols = model.encode(r, c)
        columns = {model.names[0]: pa.array(r), model.names[1]: pa.array(c), "rank": pa.array(k)}
        summary["predictions"] = {"kind": "top", "n": int(top), "rows": int(len(np.unique(r)))}
    columns["prediction"] = pa.array(np.round(p, precision))
    if interval is not None:
        lower, upper = model.calibration.interval(p, *model.activity(p_rows, p_cols), interval, model.fit.clip)
        columns["lower"], columns["upper"] = pa.array(np.round(lower, precision)), pa.array(np.round(upper, precision))
        summary["predictions"]["interval"] = interval
    table = pa.table(columns)
    write_table(table, out, fmt="csv")
    if save_model is not None:
        with output_dir(save_model) as tmp:  # the model folder appears whole, or the old one stays
            model.save(tmp)
        summary["saved_model"] = str(save_model)
    summary["out"] = str(out)
    summary["seconds"] = time.perf_counter() - started
    return summary

