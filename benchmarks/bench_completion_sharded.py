"""Sharded completion (asymsense.completion.sharded) on local Dask workers.

Two measurements, each printed as one JSON line (with the command, date and load):

--overhead: the per-iteration cost of the coordination alone on a
    LocalCluster of 2 single-threaded workers: an empty call to an actor on
    each worker and waiting for both (what every iteration of the sharded fit
    pays at least), against the same round through the scheduler (a task on
    each worker taking that worker's persisted state as its argument);
    median over interleaved rounds.

--entries M: a synthetic table with M entries, generated on the workers block by
    block (no process ever holds the table): n1 = M / per_row rows, n2 columns,
    `per_row` entries per row at random columns, values = rank-r signal + noise
    from seeded factors; 10% of each row's entries held out for validation.
    Then the sharded fit for `--iters` iterations on 1 worker holding
    M/2 entries and on 2 workers holding M: median seconds per iteration
    (iterations after the first: numba compiles in the first), the setup
    seconds, the communication per iteration (2·n2·k numbers per worker: V out,
    the partial A*(e)ᵀU back) and each worker's peak resident memory
    (getrusage, so the peak, not the current size).

Run nice'd: `nice python3 benchmarks/bench_completion_sharded.py --entries 1e8 --iters 3`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time

import numpy as np


STEP, INIT = 2e-3, 1e-3
"""Fixed step and init scale: the automatic ones cost 60 passes over the table
(power iteration), which the per-iteration numbers do not need."""


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def overhead(rounds: int) -> dict:
    from distributed import Client, LocalCluster, wait

    class Empty:
        def noop(self):
            return None

    def task(state):
        return None

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        workers = sorted(client.scheduler_info()["workers"])
        actors = [client.submit(Empty, actor=True, workers=[w]).result() for w in workers]
        states = [client.submit(np.zeros, 1000, workers=[w], pure=False) for w in workers]
        wait(states)
        t_actor, t_task = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            [f.result() for f in [a.noop() for a in actors]]
            t_actor.append(time.perf_counter() - t)
            t = time.perf_counter()
            futures = [client.submit(task, s, workers=[w], pure=False) for s, w in zip(states, workers)]
            client.gather(futures)
            t_task.append(time.perf_counter() - t)
    return {"what": "empty round trip to 2 workers", "rounds": rounds, "actor_ms": 1e3 * statistics.median(t_actor),
            "task_ms": 1e3 * statistics.median(t_task)}


def synthetic_shard():
    """A Shard that generates its own block of the synthetic table (defined
    here so cloudpickle ships it by value to the workers)."""
    from asymsense.completion.shard import Shard

    class SyntheticShard(Shard):
        def generate(self, per_row: int, rank: int, seed: int, val_fraction: float) -> dict:
            n = self.n_rows
            rng = np.random.default_rng([seed, self.r0])
            Vt = np.random.default_rng([seed, 1 << 40]).standard_normal((self.n2, rank)) / np.sqrt(rank)
            rows = np.repeat(np.arange(self.r0, self.r1, dtype=np.int64), per_row)
            cols = rng.integers(0, self.n2, size=n * per_row)
            Ut = rng.standard_normal((n, rank))
            values = np.empty(len(rows))
            for a in range(0, len(rows), 1 << 20):  # in chunks: no (entries × rank) temporary
                b = min(a + (1 << 20), len(rows))
                values[a:b] = np.einsum("ik,ik->i", Ut[rows[a:b] - self.r0], Vt[cols[a:b]]) + 0.5 * rng.standard_normal(b - a)
            is_val = rng.random(len(rows)) < val_fraction
            val = (rows[is_val], cols[is_val], values[is_val])
            self.load(rows[~is_val], cols[~is_val], values[~is_val], val)
            return {"m": int(len(rows))}

    return SyntheticShard


def fit(entries: int, workers: int, *, per_row: int, n2: int, width: int, iters: int, seed: int = 0) -> dict:
    from distributed import Client, LocalCluster

    from asymsense.completion.sharded import ShardSet, fit_shards, row_blocks, start_shards

    n1 = entries // per_row
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR,
                      memory_limit="12GB") as cluster, Client(cluster) as client:
        addresses = sorted(client.scheduler_info()["workers"])
        blocks = row_blocks(np.full(n1, per_row), workers)
        started = time.perf_counter()
        actors = start_shards(client, blocks, n2, addresses, factory=synthetic_shard())
        shards = ShardSet(client, actors, addresses, blocks, (n1, n2), {"kind": "synthetic", "fraction": 0.1})
        made = shards.call("generate", per_row, 5, seed, 0.1)
        generated = time.perf_counter() - started
        stamps = []
        t0 = time.perf_counter()
        result = fit_shards(shards, refit=False, width=width, max_iter=iters, patience=None, seed=seed, record_every=10**6,
                            step_size=STEP, init_scale=INIT,
                            progress=lambda t, score: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
        per_iter = np.diff(stamps)
        peaks = shards.call("memory")
    return {"entries": int(sum(m["m"] for m in made)), "workers": workers, "n1": n1, "n2": n2, "width": width,
            "iterations": iters, "seconds_generate": generated, "seconds_fit": total,
            "seconds_setup": total - (stamps[-1] - stamps[0]) - (per_iter[0] if len(per_iter) else 0) if stamps else None,
            "seconds_per_iteration": [float(x) for x in per_iter], "median_seconds_per_iteration": float(np.median(per_iter[1:] if len(per_iter) > 1 else per_iter)),
            "floats_per_worker_per_iteration": 2 * n2 * width, "bytes_per_worker_per_iteration": 2 * n2 * width * 4,
            "peak_rss_gb_per_worker": [p / 1e9 for p in peaks], "val_rmse": result.val_rmse}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--entries", type=float, default=None)
    parser.add_argument("--per-row", type=int, default=100)
    parser.add_argument("--n2", type=int, default=20_000)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--one", type=float, default=None, help="entries of the 1-worker run (default: a tenth of --entries)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="which runs: 1 (--one entries), 2 (--entries)")
    args = parser.parse_args(argv)
    stamp = {"command": "python3 benchmarks/bench_completion_sharded.py " + " ".join(sys.argv[1:]),
             "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count()}
    if args.overhead:
        print(json.dumps({**stamp, "load_before": load(), **overhead(args.rounds), "load_after": load()}), flush=True)
    if args.entries:
        m = int(args.entries)
        for workers, entries in ((1, int(args.one or m // 10)), (2, m)):
            if workers not in args.workers:
                continue
            before = load()
            out = fit(entries, workers, per_row=args.per_row, n2=args.n2, width=args.width, iters=args.iters)
            print(json.dumps({**stamp, "load_before": before, **out, "load_after": load()}), flush=True)


if __name__ == "__main__":
    main()
