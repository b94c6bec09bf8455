"""The results store of a sweep: Parquet chunk files, read back with
de-duplication, queried with DuckDB.

Layout of an output folder::

    sweep.json                 the last config run into it (provenance)
    trials/<chunk>.parquet     one row per trial of a finished chunk
    history/<chunk>.parquet    the recorded iterations of those trials

A chunk is written history first, then trials, each atomically (temporary
file + rename), so a trials file exists only when its chunk is complete: a
process killed at any moment leaves complete files and ignorable temporary
files (names starting with "."), never half a result. The trials file is the
commit record; a history file without one is ignored.

Reading is deterministic and de-duplicates by key: a trial that appears in
several chunk files (a retried failure, a repeated chunk) counts once, the
row chosen by status ("ok" before "failed"), then the latest `finished_at`,
then the chunk name. Its history is taken from the same chunk.
"""

from __future__ import annotations

import fcntl
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asymsense.atomic import prepare_out_dir, write_text
from asymsense.errors import InputError
from asymsense.history import write_table

TRIALS_DIR = "trials"
HISTORY_DIR = "history"
STATUS_RANK = {"ok": 0, "failed": 1}


# --------------------------------------------------------------------------- tables
def table_from_rows(rows: list[dict]) -> pa.Table:
    """An Arrow table from dict rows with the union of their keys; a column
    whose values mix types that Arrow cannot unify is stored as strings."""
    names: list[str] = []
    seen = set()
    for row in rows:
        for name in row:
            if name not in seen:
                seen.add(name)
                names.append(name)
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(columns)


def _common_type(types: list[pa.DataType]) -> pa.DataType | None:
    kinds = [t for t in types if not pa.types.is_null(t)]
    if not kinds:
        return None
    if all(t == kinds[0] for t in kinds):
        return kinds[0]
    if all(pa.types.is_integer(t) for t in kinds):
        return pa.int64()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in kinds):
        return pa.float64()
    return pa.string()


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Concatenate tables whose columns may differ (missing → null) or whose
    types may differ (ints and floats → float64, anything else mixed → string)."""
    tables = [t for t in tables if t is not None]
    if not tables:
        return pa.table({})
    names: list[str] = []
    for t in tables:
        names.extend(n for n in t.column_names if n not in names)
    target = {n: _common_type([t.schema.field(n).type for t in tables if n in t.column_names]) for n in names}
    fixed = []
    for t in tables:
        cols = {}
        for n in names:
            typ = target[n] or pa.null()
            if n in t.column_names:
                col = t.column(n)
                if col.type != typ:
                    col = pc.cast(col, typ) if not pa.types.is_null(col.type) else pa.nulls(t.num_rows, typ)
                cols[n] = col
            else:
                cols[n] = pa.nulls(t.num_rows, typ)
        fixed.append(pa.table(cols))
    return pa.concat_tables(fixed)


# --------------------------------------------------------------------------- writing
def prepare(out_dir) -> Path:
    """Create the folder layout (an unwritable folder raises InputError)."""
    out = prepare_out_dir(out_dir)
    try:
        (out / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
        (out / HISTORY_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output directory {out} cannot be written: {exc.strerror or exc}") from None
    return out


@contextmanager
def exclusive(out_dir):
    """Hold an exclusive lock on the store for the duration of a sweep, so two
    sweeps never write into one folder at once (released by the OS when the
    process dies)."""
    path = Path(out_dir) / ".lock"
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another sweep is writing into {out_dir} (lock {path} is held)") from None
        for stale in list(Path(out_dir).glob(f"{TRIALS_DIR}/.*.tmp")) + list(Path(out_dir).glob(f"{HISTORY_DIR}/.*.tmp")):
            stale.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def session(out_dir):
    """The store of one sweep run: `prepare`d and held `exclusive`ly for the
    block. When the block fails (an unreachable Dask scheduler, Ctrl-C, a
    bug) before any chunk was committed, the folders this call created are
    removed again, so a failed first run leaves nothing behind (no .lock,
    sweep.json or trials/); a store holding results is never touched."""
    import shutil

    out = Path(out_dir)
    created = next((p for p in reversed([out, *out.absolute().parents]) if not p.exists()), None)
    prepare(out)
    with exclusive(out):
        try:
            yield out
        except BaseException:
            if created is not None and not _files(out, TRIALS_DIR):
                shutil.rmtree(created, ignore_errors=True)
            raise


def write_chunk(out_dir, chunk_id: str, rows: list[dict], history: pa.Table | None) -> None:
    """Commit one finished chunk: history file, then trials file (each atomic)."""
    out = Path(out_dir)
    if history is not None and history.num_rows:
        write_table(history.append_column("chunk", pa.array([chunk_id] * history.num_rows, pa.string())), out / HISTORY_DIR / f"{chunk_id}.parquet")
    stamp = time.time()
    rows = [{**row, "chunk": chunk_id, "finished_at": stamp} for row in rows]
    write_table(table_from_rows(rows), out / TRIALS_DIR / f"{chunk_id}.parquet")


def write_manifest(out_dir, manifest: dict) -> None:
    write_text(Path(out_dir) / "sweep.json", json.dumps(manifest, indent=2, sort_keys=True, default=str))


# --------------------------------------------------------------------------- reading
def _files(out_dir, sub: str) -> list[Path]:
    folder = Path(out_dir) / sub
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _read(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read result file {path}: {exc}") from None


def _check_store(out_dir) -> Path:
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"no sweep results in {out}: the folder does not exist")
    return out


def results(out_dir) -> pa.Table:
    """One row per trial (de-duplicated by key, see the module docstring):
    key, method, every parameter, status, error, seconds, the summary
    metrics, chunk and finished_at. Sorted by key."""
    _check_store(out_dir)
    tables = [_read(p) for p in _files(out_dir, TRIALS_DIR)]
    table = concat_tables(tables)
    if table.num_rows == 0:
        return table
    keys = np.asarray(table.column("key").to_pylist(), dtype=object)
    status = np.array([STATUS_RANK.get(s, 2) for s in table.column("status").to_pylist()])
    finished = -np.asarray(table.column("finished_at").to_numpy(zero_copy_only=False), dtype=float)
    chunks = np.asarray(table.column("chunk").to_pylist(), dtype=object)
    order = np.lexsort((chunks, finished, status, keys))
    sorted_keys = keys[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return table.take(pa.array(order[first]))


def finished(out_dir) -> dict[str, str]:
    """key → status of every trial in the store (fast: reads three columns)."""
    out = {}
    if not (Path(out_dir) / TRIALS_DIR).is_dir():
        return out
    for path in _files(out_dir, TRIALS_DIR):
        try:
            t = pq.read_table(path, columns=["key", "status"])
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot read result file {path}: {exc}") from None
        for key, status in zip(t.column("key").to_pylist(), t.column("status").to_pylist()):
            if out.get(key) != "ok":
                out[key] = status
    return out


def histories(out_dir, keys=None) -> pa.Table:
    """key + iteration + every history column, for the trials chosen by
    `results` (optionally only `keys`), sorted by key and iteration."""
    chosen = results(out_dir)
    if chosen.num_rows == 0:
        return pa.table({})
    wanted = None if keys is None else set(keys)
    by_chunk: dict[str, set] = {}
    for key, chunk in zip(chosen.column("key").to_pylist(), chosen.column("chunk").to_pylist()):
        if wanted is None or key in wanted:
            by_chunk.setdefault(chunk, set()).add(key)
    tables = []
    for chunk, chunk_keys in sorted(by_chunk.items()):
        path = Path(out_dir) / HISTORY_DIR / f"{chunk}.parquet"
        if not path.exists():
            continue
        t = _read(path)
        t = t.filter(pc.is_in(t.column("key"), value_set=pa.array(sorted(chunk_keys), pa.string())))
        tables.append(t.drop_columns(["chunk"]))
    table = concat_tables(tables)
    if table.num_rows:
        table = table.sort_by([("key", "ascending"), ("iteration", "ascending")])
    return table


QUERY_CONFIG = {"enable_external_access": False, "lock_configuration": True}
"""The DuckDB settings of `query`: no file, network or extension access (no
read_csv('/etc/...'), COPY ... TO, ATTACH, INSTALL), and the setting cannot be
turned back on from SQL."""


def query(out_dir, sql: str) -> pa.Table:
    """Run DuckDB SQL over the views `trials` (= results) and `history`
    (= histories, loaded only when the query mentions it).

    The query is data a colleague may send: it runs on a private in-memory
    database (discarded afterwards; DuckDB cannot open an in-memory database
    read-only) with external access disabled and the configuration locked
    (`QUERY_CONFIG`), and it must be one SELECT (or EXPLAIN) statement."""
    import duckdb

    con = duckdb.connect(":memory:", config=QUERY_CONFIG)
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise InputError(f"query failed: {str(exc).splitlines()[0]}") from None
        if len(statements) != 1 or statements[0].type not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
            kinds = ", ".join(s.type.name for s in statements) or "none"
            raise InputError(f"query must be a single SELECT statement over the views trials and history, got {len(statements)} statement(s): {kinds}")
        trials = results(out_dir)
        con.register("trials", trials if trials.num_columns else pa.table({"key": pa.array([], pa.string()), "status": pa.array([], pa.string())}))
        if "history" in sql.lower():
            history = histories(out_dir)
            con.register("history", history if history.num_columns else pa.table({"key": pa.array([], pa.string()), "iteration": pa.array([], pa.int64())}))
        try:
            relation = con.sql(sql)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            raise InputError(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def status(out_dir, expected_keys) -> dict:
    """Progress of a sweep whose trials have `expected_keys`: counts of ok,
    failed and pending trials, a DuckDB summary by status and stop reason
    (count, median error, iterations and seconds), up to five errors, and
    `others`: how many stored trials the sweep does not define (another
    config, or an older version of it, wrote into the folder)."""
    import duckdb

    wanted = set(expected_keys)
    table = results(out_dir) if Path(out_dir).is_dir() else pa.table({})
    stored = table.num_rows
    if table.num_rows:
        table = table.filter(pc.is_in(table.column("key"), value_set=pa.array(sorted(wanted), pa.string())))
    counts = {"ok": 0, "failed": 0}
    errors = []
    if table.num_rows:
        for key, st, err in zip(table.column("key").to_pylist(), table.column("status").to_pylist(), table.column("error").to_pylist()):
            counts[st] = counts.get(st, 0) + 1
            if st != "ok" and len(errors) < 5:
                errors.append((key, err))
    counts["pending"] = len(wanted) - table.num_rows
    summary = pa.table({})
    if table.num_rows:
        names = set(table.column_names)
        parts = ["status"] + (["stop_reason"] if "stop_reason" in names else [])
        aggs = ["count(*) AS trials"] + [f"median({c}) AS median_{c}" for c in ("rel_error", "iterations", "seconds") if c in names]
        con = duckdb.connect()
        try:
            con.register("trials", table)
            summary = con.sql(f"SELECT {', '.join(parts)}, {', '.join(aggs)} FROM trials GROUP BY ALL ORDER BY ALL").to_arrow_table()
        finally:
            con.close()
    return {"counts": counts, "table": summary, "errors": errors, "others": stored - table.num_rows}
