"""A Dask client for the commands that run on a cluster (sweeps, sharded completion).

`dask_client(scheduler=..., dask_local=...)` connects to the scheduler at
`scheduler` (tcp://HOST:PORT) or starts a LocalCluster of `dask_local`
single-threaded worker processes (the nanny also sets
OMP/MKL/OPENBLAS_NUM_THREADS=1 in them), and closes both on exit. An
unreachable scheduler — refused, timed out, or a port that answers but is no
Dask scheduler — is an InputError naming it, raised before any work starts.
Dask is imported here, on first use only.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from asymsense.errors import InputError

CONNECT_TIMEOUT = "20s"


@contextmanager
def dask_client(*, scheduler: str | None = None, dask_local: int | None = None):
    """A connected `distributed.Client` (see the module docstring)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("scheduler/dask_local need Dask: pip install 'dask[distributed]'") from None
    cluster = None
    if dask_local is not None:
        cluster = LocalCluster(n_workers=dask_local, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR)
    try:
        try:
            client = Client(cluster if cluster is not None else scheduler, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # refused, timed out, or a port that answers but is no Dask scheduler (garbled frames: MemoryError, ...)
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"scheduler={scheduler!r}: cannot connect to a Dask scheduler there ({type(exc).__name__}: {detail})") from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
