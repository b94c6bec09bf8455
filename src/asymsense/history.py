"""The run history: a columnar table, one row per recorded iteration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from asymsense.atomic import atomic_path


class History:
    """Columns of equal length (NumPy arrays), exportable to Arrow, Parquet, CSV.

    `history["rel_error"]` is a column; `len(history)` the number of rows.
    """

    def __init__(self, columns: dict[str, np.ndarray] | None = None):
        self._rows: list[dict[str, float]] = []
        self._columns = dict(columns) if columns else None

    def append(self, row: dict[str, float]) -> None:
        self._rows.append(row)
        self._columns = None

    @property
    def columns(self) -> dict[str, np.ndarray]:
        if self._columns is None:
            names: list[str] = []
            for row in self._rows:
                names.extend(name for name in row if name not in names)
            self._columns = {name: np.array([row.get(name, np.nan) for row in self._rows], dtype=float) for name in names}
            if "iteration" in self._columns:
                self._columns["iteration"] = self._columns["iteration"].astype(np.int64)
        return self._columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __len__(self) -> int:
        cols = self.columns
        return len(next(iter(cols.values()))) if cols else 0

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def last(self) -> dict[str, float]:
        return {name: col[-1].item() for name, col in self.columns.items()}

    def to_arrow(self, **constant_columns) -> pa.Table:
        """The table, with optional constant columns (e.g. trial=3) prepended."""
        n = len(self)
        data = {name: pa.array([value] * n) for name, value in constant_columns.items()}
        data.update({name: pa.array(col) for name, col in self.columns.items()})
        return pa.table(data)

    def to_pandas(self):
        return self.to_arrow().to_pandas()

    def to_parquet(self, path, **constant_columns) -> None:
        """Write `to_arrow(**constant_columns)` as Parquet (whatever the suffix)."""
        write_table(self.to_arrow(**constant_columns), path, "parquet")

    def to_csv(self, path, **constant_columns) -> None:
        """Write `to_arrow(**constant_columns)` as CSV (whatever the suffix)."""
        write_table(self.to_arrow(**constant_columns), path, "csv")


TABLE_FORMATS = ("parquet", "csv")


def write_table(table: pa.Table, path, fmt: str | None = None) -> None:
    """Write a table as Parquet or CSV, atomically (`asymsense.atomic`); without
    `fmt` the suffix decides (.csv → CSV, anything else → Parquet)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    fmt = fmt or ("csv" if Path(path).suffix == ".csv" else "parquet")
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(TABLE_FORMATS)}, got {fmt!r}")
    with atomic_path(path) as tmp:
        (pcsv.write_csv if fmt == "csv" else pq.write_table)(table, tmp)


def concat_histories(histories, **per_trial_columns) -> pa.Table:
    """One Arrow table for several trials; `per_trial_columns` maps a column
    name to one value per history (e.g. init_scale=[...])."""
    tables = [h.to_arrow(**{name: values[i] for name, values in per_trial_columns.items()}) for i, h in enumerate(histories)]
    return pa.concat_tables(tables, promote_options="default")
