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
from asymsense.jobs.predict import run_predict
from asymsense.completion.sharded_workflow import run_complete_sharded

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


@pytest.mark.slow
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


@pytest.mark.slow
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


# --------------------------------------------------------------------------- Parquet input, CLI
def parquet_table(folder, n1=50, n2=20, seed=4):
    """A table with string row ids and integer column ids in 3 Parquet files
    (rows mixed across files); returns the folder and the table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, cols, values, _ = table(n1, n2, fraction=0.6, noise=0.3, seed=seed)
    row_ids = np.array([f"customer-{i * 7 % n1:03d}" for i in range(n1)])[rows]
    col_ids = (1000 + 3 * cols).astype(np.int64)
    folder.mkdir()
    part = np.random.default_rng(seed).integers(0, 3, len(rows))
    for p in range(3):
        sel = part == p
        pq.write_table(pa.table({"customer": row_ids[sel], "product": col_ids[sel], "spend": values[sel]}), folder / f"part-{p}.parquet")
    return folder, row_ids, col_ids, values


def run_cli(*args):
    import subprocess

    return subprocess.run(["asymsense", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_parquet_directory_fit_on_the_cluster_round_trips_through_predict(client, tmp_path):
    """`complete DIR --scheduler ...` on a directory of Parquet files (read by
    the workers), then `predict` on the result: the saved id maps are the
    table's ids, and the predictions at the table's pairs reproduce the fit's
    own train RMSE (after the refit every entry is fitted), which a wrong id
    mapping would not."""
    import json

    folder, row_ids, col_ids, values = parquet_table(tmp_path / "data")
    out = tmp_path / "out"
    # what `asymsense complete DATA --out OUT --scheduler ADDRESS --seed 2 --max-iter 12` runs (in this process: no second start-up)
    summary = run_complete_sharded(folder, out, scheduler=client.scheduler.address, fit_options={"seed": 2, "max_iter": 12})
    assert sorted(p.name for p in out.iterdir()) == ["history.parquet", "model", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["iterations"] == summary["iterations"]
    assert summary["m"] == len(values) and summary["shape"] == [len(set(row_ids)), len(set(col_ids))]
    assert summary["config"]["sharded"]["workers"] == 2 and summary["config"]["validation"]["split"] == "hash"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("customer,product\n" + "".join(f"{r},{c}\n" for r, c in zip(row_ids, col_ids)))
    pred = tmp_path / "pred.csv"
    run_predict(out, pred, pairs=pairs, precision=12)  # what `asymsense predict OUT --pairs PAIRS --out PRED` runs
    import pandas as pd

    got = pd.read_csv(pred)
    assert list(got.columns) == ["customer", "product", "prediction"]
    rmse = float(np.sqrt(np.mean((got["prediction"].to_numpy() - values) ** 2)))
    assert rmse == pytest.approx(summary["train_rmse"], rel=1e-5)
    assert rmse < float(np.std(values))  # a fitted model, not the global mean


def test_hash_split_does_not_depend_on_the_row_blocks():
    """The validation entries of a Parquet input: the same mask whether the
    rows are split in one block or three; 'rows' keeps every row in training."""
    from asymsense.completion.outofcore import hash_split

    rows, cols, _, (n1, n2) = table(60, 40, fraction=0.3, seed=5)
    for kind in ("entries", "rows"):
        whole = hash_split(rows, cols, n2, 0.2, kind, 7)
        cut = np.searchsorted([20, 45], rows, side="right")
        parts = np.concatenate([hash_split(rows[cut == b], cols[cut == b], n2, 0.2, kind, 7) for b in range(3)])
        assert np.array_equal(whole, parts)
        assert 0.15 < whole.mean() < 0.25
        assert not np.array_equal(whole, hash_split(rows, cols, n2, 0.2, kind, 8))
    in_training = np.bincount(rows[~hash_split(rows, cols, n2, 0.5, "rows", 7)], minlength=n1)
    assert (in_training[np.bincount(rows, minlength=n1) > 0] >= 1).all()


@pytest.mark.slow
def test_cli_sharded_refuses_what_it_does_not_write_with_one_line(tmp_path):
    """Before any cluster starts: exit 2, one line naming the flag and what to run instead."""
    data = tmp_path / "t.csv"
    data.write_text("r,c,v\n1,1,1.0\n1,2,2.0\n2,1,0.5\n")
    run = run_cli("complete", data, "--out", tmp_path / "o", "--dask-local", 2, "--compare")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "--compare is not available with --scheduler/--dask-local" in run.stderr and "asymsense predict" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_estimator_with_a_scheduler_predicts_as_the_single_process_estimator(client):
    from asymsense.completion.estimator import LowRankCompleter

    rows, cols, values, _ = table(seed=6)
    X = np.column_stack([rows * 10, cols + 500])
    params = dict(width=4, max_iter=8, patience=None, random_state=1, dtype="float64")
    one = LowRankCompleter(**params).fit(X, values)
    two = LowRankCompleter(**params, scheduler=client.scheduler.address).fit(X, values)
    assert two.get_params()["scheduler"] == client.scheduler.address and two.result_.config["sharded"]["workers"] == 2
    assert (two.n_iter_, two.best_iter_) == (one.n_iter_, one.best_iter_)
    np.testing.assert_allclose(two.predict(X), one.predict(X), rtol=1e-9, atol=1e-12)
    with pytest.raises(InputError, match="ensemble=2 is not available with scheduler/dask_local"):
        LowRankCompleter(**params, ensemble=2, scheduler=client.scheduler.address).fit(X, values)


@pytest.mark.parametrize("damage, message", [
    ("nan", r"part-1\.parquet: value nan in column 'spend' is not finite"),
    ("duplicate", r"data: the entry of row id 'customer-\d+' and column id \d+: duplicate \(row, column\) pair"),
])
@pytest.mark.slow
def test_bad_parquet_entries_are_refused_naming_the_file_or_the_ids(client, tmp_path, damage, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from asymsense.completion.io import parquet_files
    from asymsense.completion.sharded import shard_parquet

    folder, *_ = parquet_table(tmp_path / "data")
    part = pq.read_table(folder / "part-1.parquet").to_pydict()
    if damage == "nan":
        part["spend"][3] = float("nan")
    else:
        for name in part:
            part[name].append(part[name][0])
    pq.write_table(pa.table(part), folder / "part-1.parquet")
    with pytest.raises(InputError, match=message):
        shard_parquet(client, parquet_files(folder), source="data")
