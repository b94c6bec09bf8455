"""Where chunks run: in this process, in joblib (loky) worker processes, or on
a Dask cluster. Every executor yields `ChunkResult`s in completion order and
runs the same `run_chunk`, so the numbers do not depend on the executor."""

from __future__ import annotations

import os
import uuid
from typing import Iterator

from asymsense.cluster import dask_client
from asymsense.sweep.worker import PARENT_VARIABLE, Chunk, ChunkResult, failed_chunk, run_chunk

DASK_RETRIES = 2
"""Extra attempts Dask gives a chunk whose task raised; a chunk whose worker
died is rescheduled by Dask itself (up to `distributed.scheduler.allowed-failures`)."""


def pool_failures() -> tuple:
    from concurrent.futures.process import BrokenProcessPool

    from joblib.externals.loky.process_executor import TerminatedWorkerError

    return (BrokenProcessPool, TerminatedWorkerError)


def _alone(chunk: Chunk) -> ChunkResult:
    """Run one chunk by itself in a worker process; a chunk whose process
    dies even alone (segfault, out of memory) is recorded as failed."""
    from joblib import Parallel, delayed

    try:
        return Parallel(n_jobs=2, backend="loky")([delayed(run_chunk)(chunk)])[0]
    except pool_failures() as exc:
        return failed_chunk(chunk, exc)


def joblib_results(chunks: list[Chunk], n_jobs: int) -> Iterator[ChunkResult]:
    """Chunks in loky worker processes (or in this process for n_jobs = 1).

    When a worker process dies, the pool breaks and the chunks in flight are
    lost: each of them is rerun alone in a fresh worker, which isolates the
    culprit (recorded as failed with the error) from its innocent neighbours,
    and the remaining chunks continue in a new pool."""
    if n_jobs == 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield run_chunk(chunk)
        return
    from joblib import Parallel, delayed

    os.environ[PARENT_VARIABLE] = str(os.getpid())  # inherited by the loky workers: see worker.watch_parent
    pending = list(chunks)
    while pending:
        dispatched: list[Chunk] = []
        finished: set[str] = set()

        def tasks():
            for chunk in pending:
                dispatched.append(chunk)
                yield delayed(run_chunk)(chunk)

        parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered", batch_size=1, pre_dispatch="2*n_jobs")
        try:
            for result in parallel(tasks()):
                finished.add(result.id)
                yield result
            return
        except pool_failures():
            in_flight = [c for c in dispatched if c.id not in finished]
            sent = {c.id for c in dispatched}
            pending = [c for c in pending if c.id not in sent]
            for chunk in in_flight:
                yield _alone(chunk)


def dask_results(chunks: list[Chunk], *, scheduler: str | None = None, dask_local: int | None = None) -> Iterator[ChunkResult]:
    """Chunks as Dask tasks, on the cluster at `scheduler` or on a fresh
    LocalCluster of `dask_local` single-threaded worker processes (the nanny
    also sets OMP/MKL/OPENBLAS_NUM_THREADS=1 in them; run_chunk limits BLAS
    with threadpoolctl in any case).

    Connects before returning, so an unreachable scheduler is an InputError
    raised here, before any progress output; the returned iterator closes the
    client (and the cluster) when it is exhausted or closed."""
    stream = _dask_stream(chunks, scheduler=scheduler, dask_local=dask_local)
    next(stream)  # runs up to the connection
    return stream


def _dask_stream(chunks, *, scheduler, dask_local):
    with dask_client(scheduler=scheduler, dask_local=dask_local) as client:
        from distributed import as_completed

        yield None
        token = uuid.uuid4().hex[:8]
        futures = {client.submit(run_chunk, chunk, key=f"asymsense-chunk-{chunk.id}-{token}", pure=False, retries=DASK_RETRIES): chunk for chunk in chunks}
        for future in as_completed(futures):
            chunk = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # the task kept failing or its workers kept dying
                result = failed_chunk(chunk, exc)
            future.release()
            yield result
