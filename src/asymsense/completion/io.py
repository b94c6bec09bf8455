"""Reading (row id, column id, value) tables and mapping ids to indices and back.

A table arrives as a CSV/TSV or Parquet file, a pandas DataFrame, a pyarrow
Table, or three arrays. Ids may be integers or strings; they are mapped to
0-based indices by sorting the distinct ids (`IdMap`), so the mapping is
deterministic and round-trips exactly. Every problem in the input is reported
as one `InputError` naming the file and the line (CSV), row (Parquet/arrays)
or column at fault, before anything is fitted or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asymsense.errors import InputError

DUPLICATE_POLICIES = ("mean", "last", "error")
PARQUET_SUFFIXES = (".parquet", ".pq")
TAB_SUFFIXES = (".tsv", ".tab", ".inter")
SNIFFED_DELIMITERS = (",", "\t", ";", "|")
"""Delimiters recognised in a CSV's header line: the most frequent one wins."""
CSV_BLOCK_BYTES = 1 << 24
"""Bytes the CSV reader parses at a time; a line longer than this (16 MiB) is
refused, naming its line number (no table of ids and values has such lines)."""
MAX_ABS_VALUE = 1e100
"""Largest |value| accepted: squares and sums over any realistic table stay finite in float64."""


class IdMap:
    """Distinct ids in sorted order; index i ↔ ids[i].

    `encode` maps ids to indices (−1 for ids never seen), `decode` maps back.
    """

    def __init__(self, ids):
        self.ids = np.unique(_as_id_array(ids))

    def __len__(self) -> int:
        return len(self.ids)

    def encode(self, ids) -> np.ndarray:
        ids = _as_id_array(ids)
        if len(self.ids) == 0 or len(ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        if ids.dtype.kind != self.ids.dtype.kind:
            if ids.dtype.kind in "iu" and self.ids.dtype.kind in "U":
                ids = ids.astype(str)
            elif ids.dtype.kind in "U" and self.ids.dtype.kind in "iu":
                return _encode_strings_as_ints(self, ids)
            else:
                return np.full(len(ids), -1, dtype=np.int64)
        pos = np.searchsorted(self.ids, ids)
        pos_c = np.minimum(pos, len(self.ids) - 1)
        found = self.ids[pos_c] == ids
        return np.where(found, pos_c, -1).astype(np.int64)

    def decode(self, index) -> np.ndarray:
        return self.ids[np.asarray(index, dtype=np.int64)]


def _encode_strings_as_ints(idmap: IdMap, ids) -> np.ndarray:
    out = np.full(len(ids), -1, dtype=np.int64)
    ok = np.char.isdigit(np.char.lstrip(ids, "-"))
    if ok.any():
        out[ok] = idmap.encode(ids[ok].astype(np.int64))
    return out


def _as_id_array(ids) -> np.ndarray:
    """Ids as an int64 array when they are all integers, else as strings."""
    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        ids = ids.to_numpy(zero_copy_only=False)
    arr = np.asarray(ids)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            i = int(np.argmax(~np.isfinite(arr)))
            raise InputError(f"id {arr[i]!r} at row {i} is not a valid id (ids are integers or strings; NaN and inf are refused)")
        if np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        return arr.astype(str)
    if arr.dtype.kind == "O":
        missing = [i for i, v in enumerate(arr) if v is None or (isinstance(v, float) and not np.isfinite(v))]
        if missing:
            raise InputError(f"id {arr[missing[0]]!r} at row {missing[0]} is not a valid id (ids are integers or strings; None, NaN and inf are refused)")
    if arr.dtype.kind == "O" and len(arr) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
        return arr.astype(np.int64)
    return arr.astype(str)


@dataclass
class Table:
    """Observed entries of a table: index arrays, values, and the id maps.

    `rows[i]`, `cols[i]` index `row_map.ids`, `col_map.ids`; `values[i]` is the
    observation. `source` names where it came from, for messages.
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    row_map: IdMap
    col_map: IdMap
    source: str = "<table>"
    n_duplicates: int = 0
    names: tuple[str, str, str] = ("row_id", "col_id", "value")  # the input's column names (kept in outputs)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.row_map), len(self.col_map)

    @property
    def m(self) -> int:
        return len(self.values)

    def row_ids(self) -> np.ndarray:
        return self.row_map.decode(self.rows)

    def col_ids(self) -> np.ndarray:
        return self.col_map.decode(self.cols)


@dataclass
class Columns:
    """Raw id/value columns of a table with where each row came from."""

    row_ids: np.ndarray
    col_ids: np.ndarray
    values: np.ndarray | None
    source: str
    line_offset: int | None  # file line of data row 0 (CSV), None when rows are counted instead
    names: tuple[str, ...]

    def where(self, i: int) -> str:
        if self.line_offset is not None:
            return f"line {int(i) + self.line_offset}"
        return f"row {int(i)}"


def parquet_files(source) -> list[Path] | None:
    """The Parquet files of a directory (searched recursively, e.g. a
    partitioned dataset) or of a glob pattern such as 'data/part-*.parquet',
    sorted; None when `source` is neither (a single file, a DataFrame, ...).
    A directory or glob without Parquet files is an InputError."""
    if not isinstance(source, (str, Path)):
        return None
    text = str(source)
    if any(ch in text for ch in "*?["):
        import glob

        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    elif Path(text).is_dir():
        files = sorted(p for p in Path(text).rglob("*") if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES)
    else:
        return None
    if not files:
        raise InputError(f"{text}: no Parquet files there (a directory of *.parquet files or a glob pattern matching some)")
    other = [p for p in files if p.suffix.lower() not in PARQUET_SUFFIXES]
    if other:
        raise InputError(f"{other[0]}: not a Parquet file (a glob for DATA must match only *.parquet files)")
    return files


def read_arrow(source, *, name: str | None = None, encoding: str = "utf-8") -> tuple[pa.Table, str, int | None]:
    """Any accepted source as a pyarrow Table, its display name and the file
    line of data row 0 (None when lines do not apply). A CSV must be valid
    `encoding` (UTF-8 unless given; a bad byte is an InputError naming line
    and byte offset)."""
    if isinstance(source, pa.Table):
        return source, name or "<table>", None
    if hasattr(source, "to_numpy") and hasattr(source, "columns") and not isinstance(source, (str, Path)):
        try:
            return pa.Table.from_pandas(source, preserve_index=False), name or "<DataFrame>", None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"{name or '<DataFrame>'}: cannot read the DataFrame ({_first_line(exc)})") from None
    if isinstance(source, dict):
        try:
            return pa.table({k: pa.array(np.asarray(v)) for k, v in source.items()}), name or "<dict>", None
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise InputError(f"{name or '<dict>'}: cannot read the columns ({_first_line(exc)})") from None
    if not isinstance(source, (str, Path)):
        raise InputError(f"data must be a file path, a pandas DataFrame, a pyarrow Table or a dict of columns, got {type(source).__name__}")
    files = parquet_files(source)
    if files is not None:  # read whole into this process; a sharded fit reads it block by block instead (completion.outofcore)
        import pyarrow.parquet as pq

        try:
            return pa.concat_tables([pq.read_table(f) for f in files]), name or str(source), None
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{name or source}: not a readable set of Parquet files with one schema ({_first_line(exc)})") from None
    path = Path(source)
    display = name or str(path)
    if not path.exists():
        raise InputError(f"{display}: no such file")
    if path.is_dir():
        raise InputError(f"{display}: is a directory, not a table file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise InputError(f"{display}: cannot read the file ({exc.strerror or exc})") from None
    if size == 0:
        raise InputError(f"{display}: the file is empty")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path), display, None
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{display}: not a readable Parquet file ({_first_line(exc)})") from None
    return _read_csv(path, display, encoding), display, 2


def _first_line(exc) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_encoding(encoding: str) -> str:
    """The canonical name of a text encoding ('utf-8', 'latin-1', 'cp1252', ...); InputError otherwise."""
    import codecs

    try:
        return codecs.lookup(str(encoding)).name
    except (LookupError, TypeError, ValueError):
        raise InputError(f"encoding: unknown text encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)", "encoding") from None


def check_utf8(path: Path, display: str, chunk_size: int = 1 << 24) -> None:
    """Refuse a file that is not valid UTF-8, naming the line and the byte
    offset of the first bad byte (read in chunks; a character split across
    two chunks is carried over)."""
    offset, line, carry = 0, 1, b""
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            data = carry + chunk
            if not data:
                return
            try:
                data.decode("utf-8")
                good, carry = data, b""
            except UnicodeDecodeError as exc:
                if chunk and exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
                    good, carry = data[:exc.start], data[exc.start:]
                else:
                    at = offset + exc.start
                    line += data[:exc.start].count(b"\n")
                    raise InputError(f"{display}: line {line}: byte 0x{data[exc.start]:02x} at offset {at} is not UTF-8 "
                                     f"({exc.reason}); give the file's encoding, e.g. --encoding latin-1") from None
            offset += len(good)
            line += good.count(b"\n")
            if not chunk:
                return


def _read_csv(path: Path, display: str, encoding: str = "utf-8") -> pa.Table:
    import pyarrow.csv as pcsv

    encoding = check_encoding(encoding)
    if encoding == "utf-8":
        check_utf8(path, display)
    line, length = long_line(path, CSV_BLOCK_BYTES)
    if line is not None:
        raise InputError(f"{display}: line {line}: the line is longer than {CSV_BLOCK_BYTES:,} bytes, the most a table line may have "
                         f"({length:,} bytes read; is this a table of row id, column id, value lines?)")
    delimiter = "\t" if path.suffix.lower() in TAB_SUFFIXES else None
    if delimiter is None:
        with open(path, "r", encoding=encoding, errors="replace") as fh:
            head = fh.readline(CSV_BLOCK_BYTES)
        delimiter = max(SNIFFED_DELIMITERS, key=head.count)  # ties (and none found) keep ","
    parse = pcsv.ParseOptions(delimiter=delimiter)
    convert = pcsv.ConvertOptions(strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        table = pcsv.read_csv(path, parse_options=parse, convert_options=convert, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES, encoding=encoding))
    except UnicodeDecodeError as exc:
        raise InputError(f"{display}: not readable as {encoding} ({exc.reason}); give the file's encoding with --encoding") from None
    except pa.ArrowInvalid as exc:
        message = _first_line(exc)
        if "straddl" in message:  # no line is longer than a block (checked above): a quoted value spans lines
            raise InputError(f"{display}: malformed CSV: a quoted value runs on for more than {CSV_BLOCK_BYTES:,} bytes (an unclosed quote?)") from None
        line = _csv_error_line(message)
        raise InputError(f"{display}{f': line {line}' if line else ''}: malformed CSV ({message})") from None
    if table.num_rows == 0:
        raise InputError(f"{display}: the file has a header but no data rows")
    return table


def long_line(path: Path, limit: int) -> tuple[int | None, int]:
    """(line number, length in bytes so far) of the first line of `path`
    longer than `limit` bytes; (None, 0) when there is none. Read in chunks
    of at most `limit` bytes, so a line inside a chunk is shorter than the
    limit and only the line running across chunk edges needs counting (a
    1 GB line is never held in memory; newlines are counted at C speed)."""
    line, run = 1, 0  # run: bytes of the current line read so far
    with open(path, "rb") as fh:
        while chunk := fh.read(max(1, min(limit, 1 << 22))):
            first = chunk.find(b"\n")
            if first == -1:
                run += len(chunk)
                if run > limit:
                    return line, run
                continue
            if run + first > limit:
                return line, run + first
            line += chunk.count(b"\n")
            run = len(chunk) - chunk.rfind(b"\n") - 1
            if run > limit:
                return line, run
    return None, 0


def _csv_error_line(message: str) -> int | None:
    import re

    match = re.search(r"row (\d+)", message)
    if match:
        return None
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


def _pick(table: pa.Table, display: str, wanted, position: int, role: str) -> str:
    names = table.column_names
    if wanted is None:
        if len(names) <= position:
            raise InputError(f"{display}: missing column: the table needs (row id, column id, value) columns but has {len(names)} column(s): {', '.join(map(str, names)) or 'none'}")
        return names[position]
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        if not 0 <= wanted < len(names):
            raise InputError(f"{display}: missing column: {role} column number {wanted} does not exist (columns: {', '.join(names)})")
        return names[wanted]
    if wanted not in names:
        raise InputError(f"{display}: missing column {wanted!r} for the {role} (columns: {', '.join(map(str, names))})")
    return wanted


def read_columns(source, *, row=None, col=None, value=None, values: bool = True, name: str | None = None, encoding: str = "utf-8") -> Columns:
    """The row-id, column-id (and value) columns of a source, validated.

    Columns are chosen by name or position (default: the first three). Ids
    must be present; values must be present, numeric and finite.
    """
    table, display, line_offset = read_arrow(source, name=name, encoding=encoding)
    repeated = sorted({str(n) for n in table.column_names if table.column_names.count(n) > 1})
    if repeated:
        raise InputError(f"{display}: {'line 1: ' if line_offset is not None else ''}column name {repeated[0]!r} appears "
                         f"{table.column_names.count(repeated[0])} times; column names must be unique")
    names = [_pick(table, display, row, 0, "row id"), _pick(table, display, col, 1, "column id")]
    if values:
        names.append(_pick(table, display, value, 2, "value"))
    if table.num_rows == 0:
        raise InputError(f"{display}: the table has no rows")
    cols = Columns(None, None, None, display, line_offset, tuple(names))
    ids = []
    for colname in names[:2]:
        column = table.column(colname)
        if column.null_count:
            first = int(pc.index(pc.is_null(column), True).as_py())
            raise InputError(f"{display}: {cols.where(first)}: missing id in column {colname!r}")
        arr = column.to_numpy(zero_copy_only=False)
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
            if bad.any():
                first = int(np.argmax(bad))
                raise InputError(f"{display}: {cols.where(first)}: id {arr[first]!r} in column {colname!r} is not an integer or a string")
        if arr.dtype.kind == "O":
            empty = np.array([v is None or (isinstance(v, str) and v.strip() == "") for v in arr])
            if empty.any():
                first = int(np.argmax(empty))
                raise InputError(f"{display}: {cols.where(first)}: missing id in column {colname!r}")
        ids.append(_as_id_array(arr))
    cols.row_ids, cols.col_ids = ids
    if values:
        cols.values = _numeric(table.column(names[2]), names[2], cols)
    return cols


def _numeric(column, colname: str, cols: Columns) -> np.ndarray:
    display = cols.source
    if column.null_count:
        first = int(pc.index(pc.is_null(column), True).as_py())
        raise InputError(f"{display}: {cols.where(first)}: missing value in column {colname!r}")
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_decimal(column.type):
        arr = column.to_numpy(zero_copy_only=False).astype(np.float64)
    elif pa.types.is_boolean(column.type):
        arr = column.to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        raw = column.to_numpy(zero_copy_only=False)
        arr = np.empty(len(raw), dtype=np.float64)
        for i, v in enumerate(raw):
            try:
                arr[i] = float(v)
            except (TypeError, ValueError):
                text = "" if v is None else str(v)
                what = "missing value" if text.strip() == "" else f"non-numeric value {text!r}"
                raise InputError(f"{display}: {cols.where(i)}: {what} in column {colname!r}") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argmax(bad))
        raise InputError(f"{display}: {cols.where(first)}: non-finite value {arr[first]!r} in column {colname!r}")
    return arr


def resolve_duplicates(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n2: int, policy: str, where=None, source: str = "<table>"):
    """Collapse repeated (row, column) pairs: mean of the values, the last one
    in input order, or an error naming the first repeated line/row.
    Returns (rows, cols, values, n_duplicates) with pairs in first-seen order."""
    if policy not in DUPLICATE_POLICIES:
        raise InputError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {policy!r}")
    key = rows.astype(np.int64) * n2 + cols
    uniq, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    n_dup = int(len(key) - len(uniq))
    if n_dup == 0:
        return rows, cols, values, 0
    if policy == "error":
        dup_mask = counts[inverse] > 1
        seen_first = np.zeros(len(key), dtype=bool)
        seen_first[first] = True
        i = int(np.flatnonzero(dup_mask & ~seen_first)[0])
        j = int(first[inverse[i]])
        loc = where(i) if where else f"row {i}"
        loc_first = where(j) if where else f"row {j}"
        raise InputError(f"{source}: {loc}: duplicate (row, column) pair, first seen at {loc_first} (use duplicates='mean' or duplicates='last')")
    if policy == "mean":
        new_values = np.bincount(inverse, weights=values, minlength=len(uniq)) / counts
    else:
        last = np.zeros(len(uniq), dtype=np.int64)
        np.maximum.at(last, inverse, np.arange(len(key)))
        new_values = values[last]
    order = np.argsort(first, kind="stable")
    idx = first[order]
    return rows[idx], cols[idx], new_values[order], n_dup


def read_table(source, *, row=None, col=None, value=None, duplicates: str = "error", name: str | None = None, encoding: str = "utf-8") -> Table:
    """Read and validate a (row id, column id, value) table.

    `source`: CSV/TSV path (delimiter sniffed from the header line; .tsv/.inter
    are tab-separated), Parquet path, pandas DataFrame, pyarrow Table, or dict
    of arrays. `row`, `col`, `value` pick columns by name or position
    (default: the first three). `duplicates`: 'mean', 'last' or 'error' for a
    (row, column) pair that appears more than once.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise InputError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    cols = read_columns(source, row=row, col=col, value=value, name=name, encoding=encoding)
    table = table_from_ids(cols.row_ids, cols.col_ids, cols.values, duplicates=duplicates, source=cols.source, where=cols.where)
    table.names = tuple(str(n) for n in cols.names)
    return table


def table_from_ids(row_ids, col_ids, values, *, duplicates: str = "error", source: str = "<table>", where=None) -> Table:
    """A Table from id and value arrays (ids of any kind), applying the duplicate policy."""
    row_ids, col_ids = _as_id_array(row_ids), _as_id_array(col_ids)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not len(row_ids) == len(col_ids) == len(values):
        raise InputError(f"{source}: row ids, column ids and values must have equal lengths, got {len(row_ids)}, {len(col_ids)}, {len(values)}")
    if len(values) == 0:
        raise InputError(f"{source}: the table has no entries")
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{source}: {where(i) if where else f'row {i}'}: non-finite value {values[i]!r}")
    bad = np.abs(values) > MAX_ABS_VALUE
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{source}: {where(i) if where else f'row {i}'}: value {values[i]!r} is too large (|value| > {MAX_ABS_VALUE:.0e}: "
                         "its square overflows float64 in the fit); rescale the values")
    row_map, col_map = IdMap(row_ids), IdMap(col_ids)
    rows, cols = row_map.encode(row_ids), col_map.encode(col_ids)
    rows, cols, values, n_dup = resolve_duplicates(rows, cols, values, len(col_map), duplicates, where, source)
    return Table(rows, cols, values, row_map, col_map, source, n_dup)


def read_pairs(source, *, row=None, col=None, name: str | None = None, encoding: str = "utf-8") -> Columns:
    """Read a file of (row id, column id) pairs to predict (extra columns ignored)."""
    return read_columns(source, row=row, col=col, values=False, name=name, encoding=encoding)
