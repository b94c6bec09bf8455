"""Running one chunk of trials inside a worker (joblib process, Dask worker
or the main process) — the same function on every path, so every scheduler
gives bit-for-bit the same numbers.

BLAS is limited to one thread for the whole chunk (threadpoolctl): parallelism
comes from running chunks side by side, and a fixed thread count keeps the
floating-point results independent of the machine's load and of the scheduler.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
from threadpoolctl import threadpool_limits

from asymsense.backend import quiet_overflow
from asymsense.sweep.methods import resolve_method
from asymsense.sweep.store import concat_tables

MAX_ERROR_CHARS = 2000


@dataclass
class Chunk:
    """A unit of work: `units` are lists of (key, params); a unit with more
    than one trial runs as one batched call of the method. `function` is the
    method itself when the caller registered it (`run_sweep(methods=...)`;
    pickled by reference, as a module-level function); None for a built-in
    or a baseline, which the worker looks up by `method`."""

    id: str
    method: str
    units: list
    record_history: bool = True
    function: Callable | None = None

    @property
    def keys(self) -> list[str]:
        return [key for unit in self.units for key, _ in unit]

    @property
    def size(self) -> int:
        return sum(len(unit) for unit in self.units)


@dataclass
class ChunkResult:
    id: str
    rows: list
    history: pa.Table | None


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:MAX_ERROR_CHARS]


def stored_value(value):
    """Parameters as table cells: lists and tables become JSON strings."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def trial_row(key: str, method: str, params: dict, *, status: str, error: str | None, seconds: float, summary: dict | None) -> dict:
    if summary is not None and not isinstance(summary, dict):
        raise TypeError(f"a trial method must return (summary: dict, history), got a summary of type {type(summary).__name__}")
    row = {"key": key, "method": method}
    row.update({name: stored_value(value) for name, value in params.items()})
    row.update({"status": status, "error": error, "seconds": float(seconds)})
    for name, value in (summary or {}).items():
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()
        row[name if name not in row else f"result_{name}"] = stored_value(value)
    return row


def history_table(key: str, history) -> pa.Table | None:
    if history is None:
        return None
    table = history if isinstance(history, pa.Table) else history.to_arrow()
    if "key" in table.column_names:
        table = table.drop_columns(["key"])
    return table.add_column(0, "key", pa.array([key] * table.num_rows, pa.string()))


def _outcome(key, name, params, summary, history, seconds, record_history):
    row = trial_row(key, name, params, status="ok", error=None, seconds=seconds, summary=summary)
    return row, history_table(key, history) if record_history else None


def _run_unit(method, name: str, unit: list, record_history: bool):
    """Run one unit; a failing batch is rerun trial by trial so that one
    diverging trial does not take its batch-mates down with it."""
    started = time.perf_counter()
    if len(unit) > 1:
        try:
            outcomes = method.run_batch([params for _, params in unit])
            seconds = (time.perf_counter() - started) / len(unit)
            return [_outcome(key, name, params, summary, history, seconds, record_history)
                    for (key, params), (summary, history) in zip(unit, outcomes, strict=True)]
        except Exception:
            return [row for single in unit for row in _run_unit(method, name, [single], record_history)]
    key, params = unit[0]
    try:
        summary, history = method(params)
        return [_outcome(key, name, params, summary, history, time.perf_counter() - started, record_history)]
    except Exception as exc:
        row = trial_row(key, name, params, status="failed", error=describe_error(exc), seconds=time.perf_counter() - started, summary=None)
        return [(row, None)]


PARENT_VARIABLE = "ASYMSENSE_SWEEP_PARENT"
"""The sweep's main process id, set for its worker processes (see `watch_parent`)."""
_watching: list[int] = []


def watch_parent(poll_seconds: float = 0.5) -> None:
    """In a worker process of a sweep (its main process id in
    $ASYMSENSE_SWEEP_PARENT, another process than this one): start, once, a
    daemon thread that ends this process as soon as its parent process is
    gone (its parent pid changes), so no worker outlives a killed sweep
    holding its stdout/stderr open. The main process's own pool shuts down
    normally; this covers kill -9 of the main process."""
    import os
    import threading

    main = os.environ.get(PARENT_VARIABLE)
    if not main or _watching or int(main) == os.getpid():
        return
    parent = int(main)  # loky starts its workers from the main process itself
    if os.getppid() != parent:  # already orphaned (or not a direct worker): nothing to watch
        if os.getppid() == 1:
            os._exit(1)
        return
    _watching.append(parent)

    def watch():
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="asymsense-parent-watchdog", daemon=True).start()


def run_chunk(chunk: Chunk) -> ChunkResult:
    """Run every unit of `chunk` with BLAS limited to one thread (in a worker
    process, with `watch_parent` running)."""
    watch_parent()
    method = chunk.function if chunk.function is not None else resolve_method(chunk.method)
    rows, histories = [], []
    with threadpool_limits(limits=1), quiet_overflow():
        for unit in chunk.units:
            for row, history in _run_unit(method, chunk.method, unit, chunk.record_history):
                rows.append(row)
                if history is not None:
                    histories.append(history)
    return ChunkResult(chunk.id, rows, concat_tables(histories) if histories else None)


def failed_chunk(chunk: Chunk, exc: BaseException) -> ChunkResult:
    """The result of a chunk whose worker failed as a whole (e.g. it was
    killed more often than the scheduler allows): every trial failed."""
    error = f"worker failure: {describe_error(exc)}"
    rows = [trial_row(key, chunk.method, params, status="failed", error=error, seconds=0.0, summary=None)
            for unit in chunk.units for key, params in unit]
    return ChunkResult(chunk.id, rows, None)
