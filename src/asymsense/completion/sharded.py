"""Completion beyond one machine: the fit of `completion.model` with the rows
of the table spread over the workers of a Dask cluster.

Layout. The rows are cut into contiguous blocks of about equal entry counts,
one per worker; worker b holds its block's entries (training and
validation), row biases and rows U_b of U (`completion.shard.Shard`, a Dask
actor). V (n2 × k), the column biases and everything else of size n2 or k
live in this process (the driver) and travel with each call.

One iteration of  U⁺ = U − μ A*(e)V,  V⁺ = V − μ A*(e)ᵀU,  e = A(UVᵀ) − z  is
one round trip: the driver sends V to every worker; each applies its pending
update to U_b, computes e_b, ½‖e_b‖², its validation sum of squares and
A_b*(e_b)ᵀU_b, keeps A_b*(e_b)V (its rows of the U-gradient) for the next
update, and returns the partial; the driver sums the partials
A*(e)ᵀU = Σ_b A_b*(e_b)ᵀU_b pairwise in worker order (the same summation tree
at every iteration, whatever order the answers arrive in) and updates V.
Traffic per iteration: n2·k numbers to and from each worker. The loss,
validation RMSE and monitors (train RMSE, Grams UᵀU = Σ_b U_bᵀU_b) are
reduced the same way at their cadence.

The loop is `solvers.loop.DescentLoop` itself: stopping, divergence,
patience and the best iterate come from there. What it holds in place of U
is a `RowBlocks` handle naming an iterate the workers keep; a worker drops an
iterate once its handle is gone, so, as in one process, the workers hold the
current iterate and the best one. The loop's "residual" is the one-element
vector (‖e‖,): ½‖·‖² of it is the loss, all the loop reads from it.

Equal results. Setup mirrors `completion.model._complete` step by step
(split, damped-mean biases by alternating sweeps, ‖A*(z)‖₂ by the same power
iteration from the same start vector, α and μ, U₀ and V₀ drawn from the same
generator in the same order). Every row-local quantity is computed by the
same code on the same numbers; only sums over rows change their summation
order, so a sharded fit agrees with the single-process one to rounding
(tests/test_completion_sharded.py: RMSE to 1e-6 relative, same iterations).

Why Dask actors. Measured on a LocalCluster of 2 single-threaded workers
(benchmarks/bench_completion_sharded.py --overhead; docs/completion.md
"Tables beyond one machine"): an empty actor call to both workers round-trips
in about 1–2 ms, a task submitted on each worker's persisted state through
the scheduler in several times that, since each task passes through the
scheduler twice. An iteration of a table worth sharding costs seconds, so
either would do; actors also keep the state in place with no key bookkeeping.

A lost worker takes its rows of U with it: the fit stops with an InputError
that says so and what to rerun (the same command with the same seed gives
the same model); nothing is written, never a model missing rows.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from asymsense.errors import InputError
from asymsense.validation import resolve_seed
from asymsense.completion.biases import BIAS_CHOICES, BIAS_DAMPING, BIAS_SWEEPS, Biases
from asymsense.completion.model import (CompletionResult, _gram, checked_entries, checked_fit_parameters, _record_every, _validation_split, monitors_from_grams,
                                        refitted, step_and_scale)
from asymsense.completion.shard import Shard
from asymsense.history import History
from asymsense.solvers.loop import DescentLoop, Objective, Validation
from asymsense.solvers.stepsize import POWER_ITERATIONS, STEP_CONSTANT


LOSS_GRACE = 10.0
"""Seconds a failed call waits for the scheduler to report a lost worker
before the failure counts as an error of the call itself."""


class RowBlocks:
    """What the descent loop holds in place of U: the iterate `version`, whose
    row blocks live on the workers. NumPy is its array namespace, so the loop
    treats it as one trial on the host (loss checked every iteration)."""

    ndim = 2

    def __init__(self, version: int, shape: tuple[int, int]):
        self.version, self.shape = version, shape

    def __array_namespace__(self, api_version=None):
        return np


def row_blocks(row_counts, n_blocks: int) -> list[tuple[int, int]]:
    """Contiguous row ranges [r0, r1) covering all rows, with about equal
    entry counts and at least one entry each (fewer blocks when there are
    fewer non-empty rows)."""
    counts = np.asarray(row_counts, dtype=np.int64)
    n1, m = len(counts), int(counts.sum())
    cum = np.cumsum(counts)
    cuts = np.searchsorted(cum, m * np.arange(1, n_blocks) / n_blocks, side="left") + 1
    edges = [0] + [int(c) for c in np.unique(np.clip(cuts, 1, n1))] + [n1]
    blocks, start = [], 0
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a and counts[start:b].sum() > 0 and b < n1:
            blocks.append((start, b))
            start = b
    blocks.append((start, n1))
    if len(blocks) > 1 and counts[blocks[-1][0]:].sum() == 0:
        last = blocks.pop()
        blocks[-1] = (blocks[-1][0], last[1])
    return blocks


@dataclass
class ShardSet:
    """The actors of one sharded table: `blocks[b]` = (r0, r1) is held by
    `actors[b]` on worker `workers[b]`; `row_map`/`col_map` when built from ids."""

    client: object
    actors: list
    workers: list[str]
    blocks: list[tuple[int, int]]
    shape: tuple[int, int]
    validation: dict | None
    row_map: object = None
    col_map: object = None
    names: tuple = ("row_id", "col_id", "value")
    info: dict = field(default_factory=dict)

    def gather(self, calls, what: str):
        """The results of actor calls (made by the callables `calls`), in worker
        order; a lost worker is an InputError saying what was lost and what to rerun."""
        try:
            return [call.result() for call in [make() for make in calls]]
        except (InputError, ArithmeticError):
            raise
        except Exception as exc:
            lost = self.lost_workers(wait=LOSS_GRACE)
            if not lost:
                raise
            held = ", ".join(f"{w} (rows {self.blocks[b][0]}–{self.blocks[b][1] - 1})" for b, w in enumerate(self.workers) if w in lost)
            raise InputError(
                f"sharded fit: Dask worker {held} was lost during {what} ({type(exc).__name__}); its rows of U existed only there, "
                "so the fit stopped and nothing was written. Rerun the same command: the same seed gives the same model "
                "(on a cluster whose workers stay up, each with memory for its share of the entries)") from None

    def lost_workers(self, wait: float = 0.0) -> set[str]:
        """The shards' workers the scheduler no longer lists, polled for up to
        `wait` seconds (the scheduler hears of a death shortly after the caller)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                lost = set(self.workers) - set(self.client.scheduler_info()["workers"])
            except Exception:  # the scheduler itself is gone
                return set(self.workers)
            if lost or time.monotonic() >= deadline:
                return lost
            time.sleep(0.1)

    def call(self, method: str, *args, what: str | None = None, each=None):
        """actor.method(*args) on every shard (or method(*each[b]) per shard)."""
        calls = [lambda a=a, b=b: getattr(a, method)(*(each[b] if each is not None else args)) for b, a in enumerate(self.actors)]
        return self.gather(calls, what or method)


def _workers(client, max_workers: int | None = None) -> list[str]:
    """Worker addresses, sorted (one shard each); waits briefly for the first one."""
    try:
        client.wait_for_workers(1, timeout=30)
    except Exception:
        raise InputError("scheduler: no Dask worker joined within 30 s; start workers with `dask worker tcp://HOST:PORT --nthreads 1`") from None
    workers = sorted(client.scheduler_info()["workers"])
    return workers[:max_workers] if max_workers else workers


def start_shards(client, blocks, n2: int, workers: list[str], factory=Shard) -> list:
    """One `Shard` actor (or `factory`'s) per block, block b on workers[b],
    computing on as many threads as that worker has (`dask worker --nthreads`)."""
    info = client.scheduler_info()["workers"]
    futures = [client.submit(factory, r0, r1, n2, info.get(w, {}).get("nthreads", 1), actor=True, workers=[w], allow_other_workers=False, pure=False)
               for (r0, r1), w in zip(blocks, workers)]
    return [f.result() for f in futures]


def shard_arrays(client, rows, cols, values, shape, validation=None, *, max_workers: int | None = None) -> ShardSet:
    """Spread training entries (and an explicit validation triple) over the
    cluster's workers by row blocks."""
    n1, n2 = shape
    rows, cols, values = np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(values, np.float64)
    workers = _workers(client, max_workers)
    blocks = row_blocks(np.bincount(rows, minlength=n1), len(workers))
    workers = workers[:len(blocks)]
    actors = start_shards(client, blocks, n2, workers)
    edges = np.array([b[0] for b in blocks[1:]], dtype=np.int64)
    part = np.searchsorted(edges, rows, side="right")
    vpart = np.searchsorted(edges, validation[0], side="right") if validation is not None else None
    each = []
    for b in range(len(blocks)):
        sel = part == b
        val = None
        if validation is not None:
            vs = vpart == b
            val = tuple(np.asarray(a)[vs] for a in validation)
        each.append((rows[sel], cols[sel], values[sel], val))
    desc = None if validation is None else {"kind": "given", "m": int(len(validation[0]))}
    shards = ShardSet(client, actors, workers, blocks, (n1, n2), desc)
    shards.call("load", each=each, what="loading the entries")
    return shards


def shard_parquet(client, files, *, source: str, row=None, col=None, value=None, duplicates: str = "error", validation=0.1,
                  validation_kind: str = "entries", seed: int = 0, max_workers: int | None = None) -> ShardSet:
    """Spread a Parquet table (a list of files) over the workers by row blocks,
    each worker reading its own rows (`completion.outofcore`); the validation
    entries are chosen by a hash of each entry (`outofcore.hash_split`), the
    same whatever the number of workers."""
    from asymsense.completion.outofcore import columns, id_counts
    from asymsense.validation import check_validation_share

    if validation is not None:
        check_validation_share(validation)
    names = columns(files, source, row, col, value)
    row_map, counts, col_map = id_counts(files, names, source)
    workers = _workers(client, max_workers)
    blocks = row_blocks(counts, len(workers))
    workers = workers[:len(blocks)]
    actors = start_shards(client, blocks, len(col_map), workers)
    split = None if validation is None else (float(validation), validation_kind)
    shards = ShardSet(client, actors, workers, blocks, (len(row_map), len(col_map)), None, row_map, col_map, names)
    infos = shards.call("load_parquet", what="reading the Parquet files",
                        each=[(list(map(str, files)), names, row_map.ids[a:b], col_map.ids, duplicates, split, seed, source) for a, b in blocks])
    m_val = sum(i["m_val"] for i in infos)
    if validation is not None:
        shards.validation = {"kind": validation_kind, "fraction": float(validation), "split": "hash", "m": m_val, "seed": seed}
    shards.info = {"m": sum(i["m"] for i in infos), "duplicates_merged": sum(i["duplicates_merged"] for i in infos), "files": len(files)}
    return shards


def _tree_sum(parts: list):
    """Σ parts pairwise, in list order (the same tree at every call)."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


class _Driver:
    """The Objective, Validation, direction, update and record callbacks of
    one sharded run of DescentLoop (see the module docstring)."""

    def __init__(self, shards: ShardSet, *, k: int, dtype, l2: float, counts_c, m_train: int, m_val: int,
                 record_every: int, n_singular: int, history: History):
        self.shards, self.k, self.dtype, self.l2, self.counts_c = shards, k, dtype, l2, counts_c
        self.m_train, self.m_val, self.record_every, self.n_singular, self.history = m_train, m_val, record_every, n_singular, history
        self.version, self.dead, self.pending, self.t = 0, [], None, 0
        self.last = None

    def handle(self) -> RowBlocks:
        h = RowBlocks(self.version, (self.shards.shape[0], self.k))
        weakref.finalize(h, self.dead.append, self.version)
        self.version += 1
        return h

    def residual(self, U: RowBlocks, V):
        parent, step = (self.pending[1], self.pending[2]) if self.pending and self.pending[0] == U.version else (None, None)
        self.pending = None
        drop, self.dead[:] = list(self.dead), []
        eager = self.t % self.record_every == 0
        out = self.shards.call("step", U.version, V, parent, step, drop, eager, what=f"iteration {self.t}")
        self.t += 1
        losses, sses, parts, monitors = zip(*out)
        self.last = {"version": U.version, "MtU": _tree_sum(list(parts)),
                     "val": math.sqrt(sum(s for s in sses if s is not None) / self.m_val) if self.m_val else None,
                     "monitors": self._reduce_monitors(monitors) if eager else None}
        return np.array([math.sqrt(2.0 * math.fsum(losses))])

    @staticmethod
    def _reduce_monitors(monitors):
        return sum(m[0] for m in monitors), _tree_sum([m[1] for m in monitors])

    def gradient(self, r, U, V):
        return U, self.last["MtU"]

    def direction(self, U, V, MV, MtU):
        """The gradient, with the count-weighted L2 term on V (the workers add it to their rows)."""
        if self.l2:
            MtU += self.l2 * self.counts_c * V
        return MV, MtU

    def update(self, U, V, D_U, D_V, step):
        """V⁺ = V − μD_V here (as fresh_gradient_step); U⁺ is applied on the workers at the next call."""
        D_V *= -step
        D_V += V
        new = self.handle()
        self.pending = (new.version, U.version, step)
        return new, D_V

    def val_score(self, U, V, rows):
        assert self.last["version"] == U.version
        return [self.last["val"]]

    def record(self, t, U, V, loss, rel_residual, rows, scores, final):
        row = {"iteration": t, "loss": float(loss[0])}
        if scores is not None:
            row["val_rmse"] = float(scores[0])
        if t % self.record_every == 0 or final:
            monitors = self.last["monitors"]
            if monitors is None:
                monitors = self._reduce_monitors(self.shards.call("monitors", U.version, what=f"the monitors at iteration {t}"))
            row["train_rmse"] = math.sqrt(monitors[0] / self.m_train)
            row.update(monitors_from_grams(monitors[1], _gram(V), self.n_singular))
        self.history.append(row)


def _biases(shards: ShardSet, kind: str, m: int, total: float, counts_c) -> tuple[float, np.ndarray]:
    """`completion.biases.fit_biases` with the row sums on the workers: the
    same sweeps c_j = Σ(y − b − r_i)/(|Ω_j| + λ_c), r_i = Σ(y − b − c_j)/(|Ω_i| + λ_r)."""
    if kind not in BIAS_CHOICES:
        raise InputError(f"biases must be one of {', '.join(BIAS_CHOICES)}, got {kind!r}")
    n2 = shards.shape[1]
    c = np.zeros(n2)
    if kind == "none":
        return 0.0, c
    mean = total / m
    fit_r, fit_c = kind in ("both", "rows"), kind in ("both", "columns")
    if kind == "global":
        return mean, c
    for _ in range(BIAS_SWEEPS if fit_r and fit_c else 1):
        if fit_c:
            c = _tree_sum(shards.call("column_sums", mean, what="the column biases")) / (counts_c + BIAS_DAMPING[1])
        if fit_r:
            shards.call("fit_rows", mean, c, BIAS_DAMPING[0], what="the row biases")
    return mean, c


def _adjoint_norm(shards: ShardSet, n2: int, dtype, seed: int) -> float:
    """`solvers.stepsize.adjoint_norm` with A*(z)v on the row blocks and
    A*(z)ᵀu summed over them: the same start vector and iterations."""
    v = np.random.default_rng(seed).standard_normal((n2, 1))
    v = (v / np.linalg.norm(v)).astype(dtype)
    sigma = 0.0
    for _ in range(POWER_ITERATIONS):
        sigma = math.sqrt(math.fsum(shards.call("power_u", v, what="the step size")))
        if sigma == 0.0:
            return 0.0
        v = _tree_sum(shards.call("power_v", sigma, what="the step size"))
        v = v / float(np.linalg.norm(v))
    return sigma


def _fit(shards: ShardSet, *, width=None, init_scale="auto", step_size="auto", step_constant: float = STEP_CONSTANT,
         max_iter: int = 2000, patience: int | None = 50, biases: str = "both", clip: bool = True, l2: float = 0.0,
         seed=None, dtype="float32", record_every="auto", n_singular: int = 10, progress=None) -> CompletionResult:
    """One run of `completion.model._complete` on the shards (its parameters)."""
    started = time.perf_counter()
    n1, n2 = shards.shape
    seed = resolve_seed(seed)
    k, max_iter, patience, l2, dtype, n_singular = checked_fit_parameters(width, max_iter, patience, l2, dtype, n_singular, clip, n1, n2)
    facts = shards.call("summary", what="reading the shards")
    m = sum(f["m"] for f in facts)
    m_val = sum(f["m_val"] for f in facts)
    if m < 2:
        raise InputError(f"need at least 2 observed entries, got {m}")
    counts_c = _tree_sum([f["col_counts"] for f in facts])
    mean, c = _biases(shards, biases, m, math.fsum(f["sum"] for f in facts), counts_c)
    clip_range = (min(f["min"] for f in facts), max(f["max"] for f in facts)) if clip else None
    z2 = shards.call("prepare", mean, c, clip_range, dtype.name, l2, what="the targets")
    y_norm = math.sqrt(math.fsum(z2) or 1.0)
    # ‖A*(z)‖₂ (60 passes over the entries) only when the step or the scale is automatic
    scale = _adjoint_norm(shards, n2, dtype, seed) if isinstance(step_size, str) or isinstance(init_scale, str) else None
    max_count = max(max(int(f["row_counts"].max()) for f in facts), int(counts_c.max()))
    mu, step_rule, alpha = step_and_scale(scale or 0.0, max_count, l2=l2, step_size=step_size, step_constant=step_constant, init_scale=init_scale)
    record_every = _record_every(record_every, n1, n2, k, m)
    if m_val == 0:
        patience = None

    rng = np.random.default_rng(seed)
    history = History()
    driver = _Driver(shards, k=k, dtype=dtype, l2=l2, counts_c=counts_c.astype(dtype)[:, None], m_train=m, m_val=m_val,
                     record_every=record_every, n_singular=n_singular, history=history)
    U = driver.handle()
    for (r0, r1), actor in zip(shards.blocks, shards.actors):  # U₀ block by block from the one generator (never whole here)
        block = (alpha / math.sqrt(k) * rng.standard_normal((r1 - r0, k))).astype(dtype)
        shards.gather([lambda: actor.set_factor(U.version, block)], "the initialization")
    V = (alpha / math.sqrt(k) * rng.standard_normal((n2, k))).astype(dtype)
    report = None if progress is None else (lambda n, score: progress(n, score))
    outcome = DescentLoop(
        Objective(driver.residual, driver.gradient, y_norm), U, V, step=mu, max_iter=max_iter, record=driver.record,
        direction=driver.direction, update=driver.update, progress=report,
        validation=None if m_val == 0 else Validation(driver.val_score, "val_rmse", every=1, patience=patience)).run()
    best, V = outcome.U, outcome.V
    t, stop_reason = outcome.last_iteration, outcome.stop_reason[0]
    best_iter = outcome.best_iter[0] if m_val else t
    U = np.concatenate(shards.call("factor", best.version, what="collecting U"))
    finals = shards.call("final", best.version, V, what="the final RMSEs")
    r = np.concatenate(shards.call("row_biases", what="collecting the row biases"))
    val_res = None
    if m_val:
        parts = [f[2] for f in finals if f[2] is not None]
        val_res = tuple(np.concatenate([p[i] for p in parts]) for i in range(3))
    config = {
        "shape": [n1, n2], "m": m + m_val, "m_train": m, "width": k, "init_scale": alpha,
        "init_rule": "auto" if isinstance(init_scale, str) else "fixed", "step_size": mu, "step_rule": step_rule,
        "step_constant": step_constant, "residual_spectral_norm": scale, "max_iter": max_iter, "patience": patience,
        "validation": shards.validation if m_val else None, "biases": biases, "bias_damping": list(BIAS_DAMPING),
        "clip": list(clip_range) if clip_range else None, "l2": l2, "seed": seed, "dtype": dtype.name, "record_every": record_every,
        "sharded": {"workers": len(shards.actors), "row_blocks": [list(b) for b in shards.blocks], **shards.info},
    }
    return CompletionResult(
        U=U, V=V, biases=Biases(mean, r, c), clip=clip_range, history=history, stop_reason=stop_reason, n_iter=t,
        best_iter=best_iter, step_size=mu, init_scale=alpha, seconds=time.perf_counter() - started,
        train_rmse=math.sqrt(math.fsum(f[0] for f in finals) / m), val_rmse=float(outcome.best_score[0]) if m_val else None,
        loss=math.fsum(f[1] for f in finals), config=config, validation_residuals=val_res,
    )


def fit_shards(shards: ShardSet, *, refit: bool = True, **kwargs) -> CompletionResult:
    """`completion.model.complete` on a ShardSet: early-stopped on the shards'
    validation entries, then (refit=True) refit on training + validation for
    the chosen number of iterations. The shards hold the merged entries afterwards."""
    if not isinstance(refit, (bool, np.bool_)):
        raise InputError(f"refit must be True or False, got {refit!r}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        selected = _fit(shards, **kwargs)
        if not refit or selected.config["validation"] is None or selected.best_iter == 0:
            return selected
        shards.call("merge_validation", what="merging the validation entries")
        options = {**kwargs, "patience": None, "max_iter": selected.best_iter, "seed": selected.config["seed"], "progress": None}
        final = _fit(shards, **options)
    return refitted(selected, final)


def complete_sharded(rows, cols, values, shape, *, scheduler: str | None = None, dask_local: int | None = None, client=None,
                     validation=0.1, validation_kind: str = "entries", seed=None, **kwargs) -> CompletionResult:
    """`completion.model.complete` with the rows spread over a Dask cluster:
    the scheduler at `scheduler` (tcp://HOST:PORT), a fresh LocalCluster of
    `dask_local` single-threaded workers, or a connected `client`. The split
    is the single-process one (same seed, same held-out entries), so the
    result equals `complete`'s up to the summation order of the sums over rows."""
    from asymsense.cluster import dask_client

    rows, cols, y, (n1, n2) = checked_entries(rows, cols, values, shape)
    seed = resolve_seed(seed)
    train, val, desc = _validation_split(validation, validation_kind, rows.astype(np.int64), cols.astype(np.int64), y, n1, seed)
    if client is None:
        if scheduler is None and dask_local is None:
            raise InputError("complete_sharded needs scheduler, dask_local or client")
        with dask_client(scheduler=scheduler, dask_local=dask_local) as own:
            return complete_sharded(rows, cols, values, shape, client=own, validation=validation, validation_kind=validation_kind, seed=seed, **kwargs)
    shards = shard_arrays(client, rows[train], cols[train], y[train], (n1, n2), val)
    shards.validation = desc
    try:
        return fit_shards(shards, seed=seed, **kwargs)
    finally:
        shards.actors.clear()
