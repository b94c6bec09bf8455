"""Measure the baselines: seconds per iteration of each method on one planted
problem, and the partial-vs-full SVD trade-off of the nuclear-norm SVT.

    python benchmarks/bench_baselines.py [--repeats 5]

Medians over repeats, measured in one run with BLAS limited to one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import asymsense as a
from asymsense.baselines import BASELINES
from asymsense.baselines.nuclear import svt


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def per_iteration(repeats):
    n1, n2, r = 40, 30, 3
    m = 5 * r * (n1 + n2 - r)
    truth = a.planted(n1, n2, r, cond=2.0, seed=1)
    op = a.make_operator("gaussian", n1, n2, m, seed=2)
    y = a.measure(truth, op)
    iters = 100
    kwargs = {"fgd": dict(width=30, init_scale=1e-3), "nuclear": {}, "spectral": dict(width=r), "balanced": dict(width=30),
              "scaled-gd": dict(width=30), "als": dict(width=r)}
    methods = {"fgd": a.fgd, **BASELINES}
    print(f"seconds per iteration, n1={n1} n2={n2} r={r} m={m} gaussian, {iters} iterations, record_every=10 (median of {repeats})")
    base = None
    for name, fn in methods.items():
        t = median_time(lambda: fn(op, y, max_iter=iters, truth=truth, record_every=10, seed=0, **kwargs[name]), repeats) / iters
        base = base or t
        print(f"  {name:10s} {t * 1e3:8.3f} ms   ×{t / base:5.2f} of fgd")


def svt_tradeoff(repeats):
    print(f"SVT of an n×n matrix of rank 5 + noise 1e-3, threshold above the noise (median of {repeats})")
    rng = np.random.default_rng(0)
    for n in (100, 300, 600, 1000):
        Z = rng.standard_normal((n, 5)) @ rng.standard_normal((5, n)) + 1e-3 * rng.standard_normal((n, n))
        tau = 0.5
        full = median_time(lambda: svt(Z, tau, guess=6, partial=False), repeats)
        part = median_time(lambda: svt(Z, tau, guess=6, partial=True), repeats)
        print(f"  n={n:5d}  full {full * 1e3:9.2f} ms   partial {part * 1e3:9.2f} ms   full/partial {full / part:6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with threadpool_limits(1):
        per_iteration(args.repeats)
        svt_tradeoff(args.repeats)
