"""Tables too large for one process: a directory (or glob) of Parquet files
read with DuckDB, block of rows by block of rows.

- `id_counts`: the distinct row ids with their entry counts and the distinct
  column ids — all the driver ever reads of the table (O(n1 + n2), never the
  entries); the ids map to indices in sorted order (`io.IdMap`, the same
  mapping as an in-memory table), so the mapping saved with the model
  (`completion.saved`) is the one every other path uses.
- `read_block`: on a worker, the entries whose row id lies in one block's id
  range, filtered by DuckDB while it scans the files (only the three columns
  are read), mapped to indices, duplicates resolved (a pair's entries share a
  row, hence a block) and split into training and validation.
- `hash_split`: the validation split of an entry is decided by a hash of
  (row index, column index, seed) alone — splitmix64, then a uniform number
  in [0, 1) — so it does not depend on how the rows are cut into blocks, nor
  on the number of workers: 'entries' holds out the entries whose number is
  below `fraction`; 'rows' the round(fraction·|Ω_i|) entries of each row with
  the smallest numbers, leaving at least one in training, as
  `solvers.stopping.split_entries` does with a random permutation.
"""

from __future__ import annotations

import numpy as np

from asymsense.errors import InputError
from asymsense.completion.io import MAX_ABS_VALUE, IdMap, _as_id_array, resolve_duplicates

HASH_SALT = 0x5A17


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _scan(files, filename: bool = False) -> str:
    """DuckDB's read_parquet over the files (with each entry's file name when asked)."""
    listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    return f"read_parquet({listed}, filename=true)" if filename else f"read_parquet({listed})"


def _connect():
    try:
        import duckdb
    except ImportError:
        raise InputError("a Parquet directory or glob needs DuckDB: pip install duckdb") from None
    con = duckdb.connect()
    con.execute("SET threads TO 1")
    return con, duckdb


def _fetch(con, query: str, params=None):
    """A query's result as a pyarrow Table (DuckDB 1.x: .arrow(); 2.x: .to_arrow_table())."""
    rel = con.sql(query, params=params) if params else con.sql(query)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


def columns(files, source: str, row=None, col=None, value=None) -> tuple[str, str, str]:
    """The (row id, column id, value) column names: given by name or position,
    else the first three of the files' schema."""
    con, duckdb = _connect()
    try:
        schema = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_scan(files)}").fetchall()]
    except duckdb.Error as exc:
        raise InputError(f"{source}: not a readable set of Parquet files with one schema ({str(exc).splitlines()[0]})") from None
    finally:
        con.close()
    picked = []
    for position, (role, wanted) in enumerate((("row id", row), ("column id", col), ("value", value))):
        if wanted is None:
            if position >= len(schema):
                raise InputError(f"{source}: needs 3 columns (row id, column id, value), the files have {len(schema)}: {', '.join(schema)}")
            picked.append(schema[position])
        elif isinstance(wanted, int) or str(wanted).isdigit():
            if int(wanted) >= len(schema):
                raise InputError(f"{source}: {role} column position {wanted} is out of range ({len(schema)} columns)")
            picked.append(schema[int(wanted)])
        elif wanted in schema:
            picked.append(wanted)
        else:
            raise InputError(f"{source}: no {role} column {wanted!r}; the columns are {', '.join(schema)}")
    return tuple(picked)


def id_counts(files, names, source: str) -> tuple[IdMap, np.ndarray, IdMap]:
    """(row IdMap, entries per row index, column IdMap), from GROUP BY queries;
    null ids are refused naming the file."""
    r, c, v = (_quote(n) for n in names)
    con, duckdb = _connect()
    try:
        bad = con.execute(f"SELECT filename FROM {_scan(files, filename=True)} "
                          f"WHERE {r} IS NULL OR {c} IS NULL OR {v} IS NULL LIMIT 1").fetchone()
        if bad is not None:
            raise InputError(f"{bad[0]}: a row id, column id or value is missing (null); every entry needs all three")
        rows = _fetch(con, f"SELECT {r} AS id, count(*) AS n FROM {_scan(files)} GROUP BY {r}")
        cols = _fetch(con, f"SELECT DISTINCT {c} AS id FROM {_scan(files)}")
    except duckdb.Error as exc:
        raise InputError(f"{source}: cannot read the id columns ({str(exc).splitlines()[0]})") from None
    finally:
        con.close()
    row_ids = _as_id_array(rows.column("id"))
    row_map = IdMap(row_ids)
    counts = np.zeros(len(row_map), dtype=np.int64)
    counts[row_map.encode(row_ids)] = rows.column("n").to_numpy()
    return row_map, counts, IdMap(cols.column("id"))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_split(rows, cols, n2: int, fraction: float, kind: str, seed: int) -> np.ndarray:
    """A boolean mask of the validation entries (see the module docstring);
    `rows` are global row indices."""
    key = np.asarray(rows, np.uint64) * np.uint64(n2) + np.asarray(cols, np.uint64)
    salt = _splitmix64(np.array([seed, HASH_SALT], dtype=np.uint64)).sum(dtype=np.uint64)
    u = (_splitmix64(key ^ salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    if kind == "entries":
        return u < fraction
    if kind != "rows":
        raise InputError(f"validation_kind must be one of entries, rows, got {kind!r}")
    rows = np.asarray(rows, np.int64)
    order = np.lexsort((u, rows))
    first = np.searchsorted(rows[order], rows[order], side="left")
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows)) - first
    counts = np.bincount(rows - rows.min()) if len(rows) else np.zeros(0, np.int64)
    per_row = counts[rows - rows.min()] if len(rows) else counts
    take = np.minimum(np.round(fraction * per_row), np.maximum(per_row - 1, 0))
    return rank < take


def read_block(files, names, row_ids, col_ids, duplicates: str, validation, seed: int, r0: int, source: str = "DATA") -> dict:
    """The entries of the rows whose ids are `row_ids` (sorted; global
    indices r0, r0 + 1, …): {"train": (rows, cols, values), "val": triple or
    None, "info": counts}. `validation` is None or (fraction, kind)."""
    r, c, v = (_quote(n) for n in names)
    row_ids = np.asarray(row_ids)
    lo, hi = row_ids[0].item(), row_ids[-1].item()
    con, duckdb = _connect()
    try:
        table = _fetch(con, f"SELECT {r} AS r, {c} AS c, CAST({v} AS DOUBLE) AS v FROM {_scan(files)} WHERE {r} >= ? AND {r} <= ?", [lo, hi])
        values = table.column("v").to_numpy()
        bad = ~np.isfinite(values) | (np.abs(values) > MAX_ABS_VALUE)
        if bad.any():
            shown = float(values[np.argmax(bad)])
            found = con.execute(f"SELECT filename FROM {_scan(files, filename=True)} WHERE {r} >= ? AND {r} <= ? "
                                f"AND (NOT isfinite(CAST({v} AS DOUBLE)) OR abs(CAST({v} AS DOUBLE)) > ?) LIMIT 1", [lo, hi, MAX_ABS_VALUE]).fetchone()
            raise InputError(f"{found[0] if found else source}: value {shown!r} in column {names[2]!r} is not finite or too large "
                             f"(|value| > {MAX_ABS_VALUE:.0e}); every value must be a finite number")
    except duckdb.Error as exc:
        raise InputError(f"cannot read the Parquet entries of rows {lo!r}..{hi!r} ({str(exc).splitlines()[0]})") from None
    finally:
        con.close()
    rows = IdMap(row_ids).encode(table.column("r"))
    cols = IdMap(col_ids).encode(table.column("c"))
    keep = rows >= 0  # ids between lo and hi that the driver did not see (a file changed meanwhile) would be -1
    if not keep.all() or (cols < 0).any():
        raise InputError("the Parquet files changed while they were read (ids appeared that the first scan did not see); rerun on files that stay put")
    row_col = (table.column("r"), table.column("c"))
    where = lambda i: f"the entry of row id {row_col[0][i].as_py()!r} and column id {row_col[1][i].as_py()!r}"  # noqa: E731
    rows, cols, values, n_dup = resolve_duplicates(rows, cols, values, len(col_ids), duplicates, where, source)
    rows = rows + r0
    is_val = np.zeros(len(rows), dtype=bool) if validation is None else hash_split(rows, cols, len(col_ids), *validation, seed)
    train = (rows[~is_val], cols[~is_val], values[~is_val])
    val = (rows[is_val], cols[is_val], values[is_val]) if is_val.any() else None
    return {"train": train, "val": val, "info": {"m": int(len(rows)), "m_val": int(is_val.sum()), "duplicates_merged": int(n_dup)}}
