"""Sweep engine timings, all in one run (medians of --repeats):

- direct : a plain loop calling asymsense.solvers.fgd once per trial (BLAS 1 thread);
- single : the sweep engine with chunk_size = 1 (no batching), --jobs 1;
- batched: the sweep engine batching alphas × seeds over the shared operator, --jobs 1;
- batched -j 2: the same with two loky workers.

    python benchmarks/bench_sweep.py [--repeats 3] [--max-iter 300]

The trials: n1 = 40, n2 = 30, r = 3, m = 1050 dense Gaussian, k = 30, fixed
problem and operator, 2 alphas × 8 seeds, numeric step 0.5.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from threadpoolctl import threadpool_limits

from asymsense.sweep.methods import run_fgd
from asymsense.sweep.run import expand, run_sweep


def config(max_iter: int, chunk_size: int) -> dict:
    return {"name": "bench", "seeds": 8, "chunk_size": chunk_size, "record_history": True,
            "fixed": {"n1": 40, "n2": 30, "rank": 3, "m": 1050, "width": 30, "problem_seed": 0, "operator_seed": 0,
                      "step": 0.5, "max_iter": max_iter, "record_every": 20},
            "grid": {"alpha": [1e-2, 1e-3]}}


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=300)
    args = parser.parse_args()
    trials = expand(config(args.max_iter, 16))

    def direct():
        with threadpool_limits(1):
            for t in trials:
                run_fgd(t.params)

    def sweep(chunk_size, jobs):
        def go():
            with tempfile.TemporaryDirectory() as out:
                report = run_sweep(config(args.max_iter, chunk_size), out, n_jobs=jobs, progress=False)
                assert report.done == len(trials)
        return go

    cases = {"direct loop": direct, "sweep, single (chunk 1), -j1": sweep(1, 1),
             "sweep, batched (chunk 16), -j1": sweep(16, 1), "sweep, batched (chunk 8), -j2": sweep(8, 2)}
    times = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    base = statistics.median(times["direct loop"])
    print(f"{len(trials)} trials, max_iter = {args.max_iter}, medians of {args.repeats}")
    print(f"{'case':34s} {'seconds':>8s} {'per trial':>10s} {'vs direct':>10s}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:34s} {med:8.3f} {med / len(trials):10.4f} {base / med:9.2f}x")


if __name__ == "__main__":
    main()
