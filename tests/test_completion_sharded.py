"""Sharded completion (completion/sharded.py) on a LocalCluster of 2
single-threaded worker processes, shared by the module: the same fit as one
process up to the summation order of the sums over rows, and a lost worker
stops the fit with a message naming what to rerun — never a model missing rows."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from asymsense.completion.model import complete
from asymsense.completion.sharded import row_blocks
from asymsense.errors import InputError

distributed = pytest.importorskip("distributed")

FIT = dict(seed=3, max_iter=60, patience=5, step_constant=0.9, width=8)


def table(n1=40, n2=30, rank=2, fraction=0.5, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n1, rank)) @ rng.standard_normal((rank, n2))
    rows, cols = np.nonzero(rng.random((n1, n2)) < fraction)
    return rows, cols, X[rows, cols] + noise * rng.standard_normal(len(rows)), (n1, n2)


@pytest.fixture(scope="module")
def client():
    import logging

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    client.run(lambda: __import__("asymsense.completion.shard"))  # the workers' imports, once
    yield client
    client.close()
    cluster.close()


@pytest.mark.parametrize("dtype, refit", [("float64", False), ("float32", True)])
def test_sharded_fit_equals_the_single_process_fit(client, dtype, refit):
    """Same seed: the same iterations (selection and refit), best iteration,
    and RMSEs to 1e-6 relative (float64 agrees to ~1e-15, float32 to ~1e-7)."""
    from asymsense.completion.sharded import complete_sharded

    rows, cols, values, shape = table()
    one = complete(rows, cols, values, shape, dtype=dtype, refit=refit, **FIT)
    two = complete_sharded(rows, cols, values, shape, client=client, dtype=dtype, refit=refit, **FIT)
    assert two.config["sharded"]["workers"] == 2
    assert (two.n_iter, two.best_iter, two.stop_reason) == (one.n_iter, one.best_iter, one.stop_reason) == (32, 27, "patience")
    assert two.config.get("refit") == one.config.get("refit") or two.config["refit"]["iterations"] == one.config["refit"]["iterations"] == 27
    for name in ("val_rmse", "train_rmse", "loss"):
        assert getattr(two, name) == pytest.approx(getattr(one, name), rel=1e-6), name
    np.testing.assert_allclose(two.history["val_rmse"], one.history["val_rmse"], rtol=1e-6)
    np.testing.assert_allclose(two.U @ two.V.T, one.U @ one.V.T, rtol=1e-4, atol=1e-4 * np.abs(one.U @ one.V.T).max())
    np.testing.assert_allclose(two.biases.rows, one.biases.rows, rtol=1e-9, atol=1e-12)
    test_rows, test_cols = np.nonzero(np.ones(shape, dtype=bool))
    np.testing.assert_allclose(two.predict(test_rows, test_cols), one.predict(test_rows, test_cols), rtol=1e-5, atol=1e-5)


def test_a_killed_worker_stops_the_fit_with_a_message_naming_what_to_rerun(client):
    """A worker SIGKILLed mid-fit: an InputError that names the lost worker and
    rows and says to rerun; no result. The cluster then gets a fresh worker."""
    from asymsense.completion.sharded import complete_sharded

    rows, cols, values, shape = table(seed=1)
    pids = client.run(os.getpid)
    started = threading.Event()

    def progress(t, score):
        if t == 3:
            started.set()
            time.sleep(2)  # the kill lands while the fit is between iterations 3 and 4

    victim = sorted(pids.items())[1][1]
    killer = threading.Thread(target=lambda: started.wait(60) and os.kill(victim, signal.SIGKILL))
    killer.start()
    with pytest.raises(InputError, match=r"was lost during .*Rerun the same command") as err:
        complete_sharded(rows, cols, values, shape, client=client, dtype="float64", progress=progress, **{**FIT, "patience": None, "max_iter": 200})
    killer.join()
    assert "rows " in str(err.value) and "nothing was written" in str(err.value)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker: the cluster stays usable


@pytest.mark.parametrize("counts, n, expected", [
    ([3, 0, 3, 0, 3, 3], 2, [(0, 3), (3, 6)]),
    ([5, 0, 0], 2, [(0, 3)]),
    ([0, 0, 4, 4], 4, [(0, 3), (3, 4)]),
    ([1, 1, 1, 1], 2, [(0, 2), (2, 4)]),
])
def test_row_blocks_cover_every_row_once_and_none_is_empty(counts, n, expected):
    blocks = row_blocks(counts, n)
    assert blocks == expected
    assert blocks[0][0] == 0 and blocks[-1][1] == len(counts)
    assert all(a == b for (_, a), (b, _) in zip(blocks[:-1], blocks[1:]))
    assert all(sum(counts[a:b]) > 0 for a, b in blocks)


def test_without_a_cluster_the_call_names_the_parameters():
    from asymsense.completion.sharded import complete_sharded

    with pytest.raises(InputError, match="scheduler, dask_local or client"):
        complete_sharded(*table())
