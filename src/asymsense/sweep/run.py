"""Resumable parameter sweeps: config → trials → chunks → Parquet store.

A sweep config (TOML or dict) names a method, `fixed` parameters, a `grid`
of lists and `seeds`. `expand` takes the Cartesian product grid × seeds,
resolves every trial's parameters (defaults, derived values, checks) and
keys it by

    key = sha256(canonical JSON of {"method": method, "params": resolved})[:20]

(sorted keys, no whitespace, floats by their shortest repr), so the key is
the same on every run and machine and changes with any parameter.

`run_sweep` skips the trials already in the store, groups the rest into
batches (fgd trials that differ only in alpha, or in alpha and seed, run as
one batched call over the shared operator), packs batches into chunks of at
most `chunk_size` trials, runs chunks in parallel (joblib/loky, or Dask) and
commits each finished chunk as one Parquet file (see `store`). The batch plan
is computed from the full trial list, never from what is left, so a resumed
sweep runs every remaining trial in exactly the batch an uninterrupted one
would have: the stored numbers are the same bit for bit.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictInt, StrictStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from asymsense import __version__
from asymsense.errors import InputError
from asymsense.validation import check_int
from asymsense.spec import parse_toml, read_text
from asymsense.spec import RESERVED, plain
from asymsense.sweep import store
from asymsense.sweep.executors import dask_results, joblib_results, pool_failures
from asymsense.sweep.methods import check_methods, resolve_method
from asymsense.sweep.worker import Chunk

DEFAULT_CHUNK_SIZE = 16


class SweepConfig(BaseModel):
    """A sweep: `method` run on every point of `grid` (Cartesian product of
    its lists) × `seeds`, with `fixed` parameters shared by all trials.
    `seeds` is a count N (seeds 0..N−1) or an explicit list; it sets each
    trial's `seed` parameter (put `seed` in `fixed`/`grid` instead to
    control it there)."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1)
    method: StrictStr = "fgd"
    fixed: dict[str, Any] = {}
    grid: dict[str, list] = {}
    seeds: StrictInt | list[StrictInt] = 1
    record_history: StrictBool = True
    chunk_size: StrictInt = Field(DEFAULT_CHUNK_SIZE, ge=1)
    description: StrictStr = ""
    _source: str | None = PrivateAttr(None)

    @pydantic.field_validator("seeds")
    @classmethod
    def _check_seeds(cls, value):
        if isinstance(value, int):
            if value < 1:
                raise ValueError("a seed count must be >= 1")
            return value
        if not value:
            raise ValueError("the seed list must not be empty")
        if any(s < 0 for s in value) or len(set(value)) != len(value):
            raise ValueError("seeds must be distinct non-negative integers")
        return value

    @pydantic.field_validator("grid")
    @classmethod
    def _check_grid(cls, value):
        for name, values in value.items():
            if not values:
                raise ValueError(f"grid.{name} is an empty list")
        return value

    def seed_list(self) -> list[int] | None:
        """The trial seeds, or None when `seed` is set in fixed/grid."""
        if "seed" in self.fixed or "seed" in self.grid:
            return None
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


class SweepAborted(RuntimeError):
    """A worker process died (e.g. killed for memory) and took the pool down;
    the chunks finished before are stored and a rerun resumes."""


@dataclass(frozen=True)
class Trial:
    """One trial: its stable key and its resolved parameters."""

    key: str
    params: dict


@dataclass
class SweepReport:
    """What one `run_sweep` call did: trials finished now (ok), already in the
    store (skipped), failed now, and the wall time."""

    done: int
    skipped: int
    failed: int
    seconds: float

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.failed


# --------------------------------------------------------------------------- config
def _line_of(text: str, loc: tuple) -> int | None:
    """The 1-based line of the TOML text where the key path `loc` is set."""
    lines = text.splitlines()
    start = 0
    found = None
    for part in loc:
        if isinstance(part, int):
            continue
        pattern = re.compile(rf"^\s*(\[\s*{re.escape(str(part))}\s*\]|[\"']?{re.escape(str(part))}[\"']?\s*=)|[{{,]\s*{re.escape(str(part))}\s*=")
        for i in range(start, len(lines)):
            if pattern.search(lines[i]):
                found, start = i + 1, i
                break
    return found


_TYPE_TAGS = {"int", "str", "bool", "float", "list", "dict"}
"""Names pydantic puts into an error's location for the members of a union."""


def _validation_message(exc: pydantic.ValidationError, where: str, text: str | None) -> str:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p in _TYPE_TAGS or "[" in p)))
    path = ".".join(str(p) for p in loc) or "config"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown key (allowed: {', '.join(SweepConfig.model_fields)})"
    line = _line_of(text, loc) if text is not None else None
    place = f"{where} line {line}" if line else where
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return f"{place}: {path}: {msg}{more}"


def load_sweep_config(source) -> SweepConfig:
    """A SweepConfig from a TOML file path, a dict, or a SweepConfig (returned
    as is). Errors are InputError naming the file and line (or the key)."""
    if isinstance(source, SweepConfig):
        return source
    if isinstance(source, dict):
        try:
            return SweepConfig.model_validate(source)
        except pydantic.ValidationError as exc:
            raise InputError(_validation_message(exc, "sweep config", None)) from None
    path = Path(source)
    text = read_text(path, "sweep config")
    data = parse_toml(path, text)
    if not data:
        raise InputError(f"{path}: the sweep config is empty (give at least a [fixed] or [grid] table; see docs/sweeps.md)")
    data.setdefault("name", path.stem)
    try:
        config = SweepConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InputError(_validation_message(exc, str(path), text)) from None
    config._source = str(path)
    return config


# --------------------------------------------------------------------------- trials
def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def trial_key(method: str, params: dict) -> str:
    """sha256 of the canonical JSON of {method, resolved params}, 20 hex digits."""
    return hashlib.sha256(canonical_json({"method": method, "params": params}).encode()).hexdigest()[:20]


MAX_TRIALS = 1_000_000
"""The most trials one sweep config may define (grid points × seeds): each
is a row and a key kept in memory while planning."""


def expand(config, methods: Mapping[str, Callable] | None = None) -> list[Trial]:
    """The trials of a sweep: Cartesian product of the grid lists (in the
    config's order, the last list varying fastest) × seeds (fastest), each
    resolved by its method and keyed by `trial_key`. Duplicates (grid points
    that resolve to the same trial) appear once. `methods`: trial methods by
    name beyond the built-ins and baselines (see `sweep.methods`)."""
    config = load_sweep_config(config)
    where = config._source or f"sweep {config.name!r}"
    overlap = set(config.fixed) & set(config.grid)
    if overlap:
        raise InputError(f"{where}: {', '.join(sorted(overlap))} is set in both fixed and grid")
    reserved = (set(config.fixed) | set(config.grid)) & RESERVED
    if reserved:
        raise InputError(f"{where}: {', '.join(sorted(reserved))} is a reserved column name, not a parameter")
    n_seeds = 1 if "seed" in config.fixed or "seed" in config.grid else config.seeds if isinstance(config.seeds, int) else len(config.seeds)
    count = n_seeds
    for values in config.grid.values():
        count *= len(values)
    if count > MAX_TRIALS:  # checked before expanding: seeds = 10**12 would never finish
        raise InputError(f"{where}: the grid and seeds make {count:,} trials, more than the {MAX_TRIALS:,} a sweep may have; split it into several sweeps")
    seeds = config.seed_list()
    if seeds is None and "seeds" in config.model_fields_set:
        raise InputError(f"{where}: seed is set in fixed/grid, so seeds must not be given too")
    for name, values in config.grid.items():
        canon = [canonical_json(plain(v, f"grid.{name}")) for v in values]
        if len(set(canon)) != len(canon):
            raise InputError(f"{where}: grid.{name} lists a value twice")
    try:
        method = resolve_method(config.method, methods)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    resolve = getattr(method, "resolve_params", None)
    names = list(config.grid)
    trials, seen = [], set()
    for combo in itertools.product(*config.grid.values()):
        point = dict(zip(names, combo))
        for seed in seeds if seeds is not None else [None]:
            raw = {**config.fixed, **point}
            if seed is not None:
                raw["seed"] = seed
            try:
                raw = {name: plain(value, name) for name, value in raw.items()}
                params = resolve(raw) if resolve is not None else raw
            except InputError as exc:
                label = ", ".join(f"{k}={v!r}" for k, v in {**point, **({"seed": seed} if seed is not None else {})}.items())
                raise InputError(f"{where}: trial ({label}): {exc}") from None
            key = trial_key(config.method, params)
            if key not in seen:
                seen.add(key)
                trials.append(Trial(key, params))
    return trials


# --------------------------------------------------------------------------- planning
def plan_units(config: SweepConfig, trials: list[Trial], methods: Mapping[str, Callable] | None = None) -> list[list[Trial]]:
    """Split trials into units, each run as one call: batches of trials of
    the same batch group (as the method plans them, at most chunk_size each),
    single trials otherwise. Depends only on the trials given."""
    method = resolve_method(config.method, methods)
    group_of = getattr(method, "batch_group", None)
    planner = getattr(method, "plan_batches", None)
    if group_of is None or planner is None or not hasattr(method, "run_batch"):
        return [[t] for t in trials]
    groups: dict[Any, list[Trial]] = {}
    units = []
    for t in trials:
        group = group_of(t.params)
        if group is None:
            units.append([t])
        else:
            groups.setdefault(group, []).append(t)
    for members in groups.values():
        for batch in planner([t.params for t in members], config.chunk_size):
            units.append([members[i] for i in batch])
    return units


def pending_units(config: SweepConfig, trials: list[Trial], todo: set[str], methods: Mapping[str, Callable] | None = None) -> list[list[Trial]]:
    """The units of the full plan still to run: whole units when none of their
    trials is in the store, single trials of partly finished units."""
    units = []
    for unit in plan_units(config, trials, methods):
        left = [t for t in unit if t.key in todo]
        if len(left) == len(unit):
            units.append(unit)
        else:
            units.extend([t] for t in left)
    return units


def pack_chunks(config: SweepConfig, units: list[list[Trial]], methods: Mapping[str, Callable] | None = None) -> list[Chunk]:
    """Consecutive units packed into chunks of at most chunk_size trials; a
    chunk's id is a hash of its sorted trial keys. A chunk of one of the
    caller's `methods` carries that function (built-ins and baselines are
    looked up by name in the worker)."""
    function = check_methods(methods).get(config.method)
    chunks, current = [], []

    def close():
        if current:
            keys = sorted(t.key for unit in current for t in unit)
            cid = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
            chunks.append(Chunk(cid, config.method, [[(t.key, t.params) for t in unit] for unit in current], config.record_history, function))

    size = 0
    for unit in units:
        if current and size + len(unit) > config.chunk_size:
            close()
            current, size = [], 0
        current.append(unit)
        size += len(unit)
    close()
    return chunks


# --------------------------------------------------------------------------- running
def _progress_bar(enabled: bool):
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials · [red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def run_sweep(config, out_dir, *, methods: Mapping[str, Callable] | None = None, n_jobs=None, scheduler=None, dask_local=None, progress=True,
              retry_failed=False) -> SweepReport:
    """Run the trials of `config` not yet in `out_dir` and store their results.

    methods : trial methods by name beyond the built-ins and the baselines
        (module-level functions: they travel to the workers by reference).
    n_jobs : joblib worker processes (default: the CPU count, at most one per chunk).
    scheduler : address of an existing Dask scheduler ("tcp://host:port").
    dask_local : start a LocalCluster of this many single-threaded worker processes.
    retry_failed : rerun the trials stored as failed.
    """
    started = time.perf_counter()
    config = load_sweep_config(config)
    if scheduler is not None and dask_local is not None:
        raise InputError("give either scheduler or dask_local, not both")
    if dask_local is not None:
        dask_local = check_int("dask_local", dask_local, minimum=1)
    if n_jobs is not None and (scheduler is not None or dask_local is not None):
        raise InputError("n_jobs applies to the joblib path; on Dask the workers set the parallelism", "n_jobs")
    if n_jobs is not None:
        n_jobs = check_int("n_jobs", n_jobs, minimum=1)
    trials = expand(config, methods)
    with store.session(out_dir) as out:
        existing = store.finished(out)
        todo = {t.key for t in trials if t.key not in existing or (retry_failed and existing[t.key] == "failed")}
        chunks = pack_chunks(config, pending_units(config, trials, todo, methods), methods)
        store.write_manifest(out, {
            "name": config.name, "config": config.model_dump(), "trials": len(trials),
            "asymsense_version": __version__, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        skipped = len(trials) - len(todo)
        done = failed = 0
        if not chunks:
            results = (result for result in ())
        elif scheduler is not None or dask_local is not None:
            results = dask_results(chunks, scheduler=scheduler, dask_local=dask_local)
        else:
            jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
            results = joblib_results(chunks, max(1, min(jobs, len(chunks))))
        with _progress_bar(progress) as bar, closing(results):
            task = bar.add_task(config.name, total=len(todo), failed=0)
            try:
                for result in results:
                    store.write_chunk(out, result.id, result.rows, result.history)
                    n_failed = sum(row["status"] != "ok" for row in result.rows)
                    done += len(result.rows) - n_failed
                    failed += n_failed
                    bar.update(task, advance=len(result.rows), failed=failed)
            except pool_failures() as exc:
                raise SweepAborted(f"a worker process died ({type(exc).__name__}); {done + failed} trials were stored, rerun the same command to resume") from exc
    return SweepReport(done=done, skipped=skipped, failed=failed, seconds=time.perf_counter() - started)

