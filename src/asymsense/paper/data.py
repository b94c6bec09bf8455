"""Read stored sweep results as plain NumPy columns for the analyses.

Every number in the report comes through here from the Parquet store
(`asymsense.sweep.store`), never from memory of a run, so `asymsense
report DIR` rebuilds exactly what `reproduce` wrote.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asymsense.errors import InputError
from asymsense.sweep import store


class Columns(dict):
    """name → 1-d NumPy array (numbers as float/int, text as object), all of one length."""

    def __len__(self) -> int:
        return len(next(iter(self.values()))) if dict.__len__(self) else 0

    def where(self, mask) -> "Columns":
        mask = np.asarray(mask, dtype=bool)
        return Columns({k: v[mask] for k, v in self.items()})

    def eq(self, **conditions) -> "Columns":
        """Rows whose columns equal the given values (floats compared with rtol 1e-9)."""
        mask = np.ones(len(self), dtype=bool)
        for name, value in conditions.items():
            col = self.col(name)
            if isinstance(value, float) and col.dtype.kind == "f":
                mask &= np.isclose(col, value, rtol=1e-9, atol=0)
            else:
                mask &= col == value
        return self.where(mask)

    def col(self, name: str) -> np.ndarray:
        if name not in self:
            raise InputError(f"stored results have no column {name!r} (columns: {', '.join(sorted(self))})")
        return self[name]

    def num(self, name: str) -> np.ndarray:
        """A numeric column as float (None → NaN)."""
        col = self.col(name)
        if col.dtype == object:
            return np.array([np.nan if v is None else float(v) for v in col])
        return col.astype(float)

    def unique(self, name: str) -> list:
        return sorted({v for v in self.col(name).tolist() if v is not None})


def table_columns(table) -> Columns:
    """An Arrow table as Columns."""
    out = Columns()
    for name in table.column_names:
        col = table.column(name)
        try:
            arr = col.to_numpy(zero_copy_only=False)
        except Exception:
            arr = np.asarray(col.to_pylist(), dtype=object)
        if arr.dtype.kind in "OU":
            arr = np.asarray(col.to_pylist(), dtype=object)
        out[name] = arr
    return out


def trials(sweep_dir, *, ok_only: bool = True) -> Columns:
    """One row per stored trial of a sweep folder (only status "ok" by default), sorted by trial key: the
    store's row order is the order in which chunks finished (it depends on --jobs and the machine), and a
    bootstrap over seeds must not depend on it (the same resample indices would pick other seeds)."""
    if not Path(sweep_dir).is_dir():
        raise InputError(f"no stored results in {sweep_dir}")
    cols = table_columns(store.results(sweep_dir))
    if len(cols):
        order = np.argsort(cols.col("key").astype(str), kind="stable")
        cols = Columns({k: v[order] for k, v in cols.items()})
    if ok_only and len(cols):
        cols = cols.where(cols.col("status") == "ok")
    return cols


def failures(sweep_dir) -> Columns:
    cols = trials(sweep_dir, ok_only=False)
    return cols.where(cols.col("status") != "ok") if len(cols) else cols


def histories(sweep_dir, keys=None) -> dict[str, Columns]:
    """key → that trial's history columns (sorted by iteration)."""
    table = store.histories(sweep_dir, keys=keys)
    if table.num_rows == 0:
        return {}
    cols = table_columns(table)
    out = {}
    keys_col = cols["key"]
    order = np.argsort(keys_col, kind="stable")
    sorted_keys = keys_col[order]
    bounds = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = order[a:b]
        sub = Columns({k: v[idx] for k, v in cols.items() if k != "key"})
        perm = np.argsort(sub.num("iteration"), kind="stable")
        out[str(sorted_keys[a])] = Columns({k: v[perm] for k, v in sub.items()})
    return out
