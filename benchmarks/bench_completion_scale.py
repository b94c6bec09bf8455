"""Scale of `asymsense.completion.complete`: seconds per iteration and peak memory
for a synthetic 10⁶ × 10⁵ table with 10⁷ observed entries and width k = 64.

The table is rank 5 plus noise; entries are drawn uniformly (with replacement,
so a few hundred pairs repeat, which the operator accepts). The fit holds out
1% for validation (early stopping needs it) and runs a fixed number of
iterations. Per-iteration wall times come from the progress callback; the
median is reported, with the setup (split, CSR patterns, biases, step size)
separately; the process's CPU seconds per iteration are reported too, since
on a shared machine wall time includes waiting for a core. Peak memory is the process's maximum resident set size
(getrusage), which includes the data themselves (the 10⁷ triples).

    python benchmarks/bench_completion_scale.py [--n1 1000000 --n2 100000 --m 10000000 --k 64 --iters 12]

Targets (issue 4): under 2 s per iteration and under 4 GB peak; issue 14: the step
(without the loop's validation and monitors) under 1 s, see bench_ratios.py.
After the fit, the same process times the random-access bound (`gather_bound`:
a numba pass summing 10⁷ random rows of V, the one random stream no step can
avoid) and reports the median iteration over it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np


def gather_kernel():
    """A compiled pass summing the rows F[idx[e]] (per thread, over halves of
    idx): the random-access bound of one gather of |Ω| rows of width k."""
    from numba import njit, prange

    @njit(parallel=True)
    def gather_sum(F, idx, n_parts):  # pragma: no cover - compiled
        k = F.shape[1]
        m = idx.shape[0]
        out = np.zeros((n_parts, k), dtype=F.dtype)
        for p in prange(n_parts):
            acc = np.zeros(k, dtype=F.dtype)
            for e in range(m * p // n_parts, m * (p + 1) // n_parts):
                j = idx[e]
                for c in range(k):
                    acc[c] += F[j, c]
            out[p] = acc
        return out

    return gather_sum


def gather_bound(F, m: int, seed: int = 0):
    """A function timing-ready for the gather of m random rows of F (compiled on the first call here)."""
    gather_sum = gather_kernel()
    idx = np.random.default_rng(seed).integers(0, F.shape[0], m)
    gather_sum(F, idx[:10], 2)
    threads = os.cpu_count() or 1
    return lambda: gather_sum(F, idx, threads)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n1", type=int, default=1_000_000)
    ap.add_argument("--n2", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=10_000_000)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block-bytes", type=int, default=None, help="override asymsense.operators.entries.BLOCK_BYTES (gathered bytes per forward block)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_info

    from asymsense.completion import complete
    import asymsense.operators.entries as entries
    from asymsense.operators import entry_kernels

    if args.block_bytes:
        entries.BLOCK_BYTES = args.block_bytes

    rng = np.random.default_rng(args.seed)
    rows = rng.integers(0, args.n1, args.m, dtype=np.int64)
    cols = rng.integers(0, args.n2, args.m, dtype=np.int64)
    L = rng.standard_normal((args.n1, 5), dtype=np.float32)
    R = rng.standard_normal((args.n2, 5), dtype=np.float32)
    values = np.empty(args.m)
    for a in range(0, args.m, 1 << 20):
        b = a + (1 << 20)
        values[a:b] = np.einsum("ik,ik->i", L[rows[a:b]], R[cols[a:b]])
    values += 0.1 * rng.standard_normal(args.m)
    del L, R
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    stamps, cpu = [], []
    started = time.perf_counter()
    res = complete(rows, cols, values, (args.n1, args.n2), width=args.k, max_iter=args.iters, patience=None, validation=0.01,
                   seed=args.seed, dtype=args.dtype, progress=lambda t, v: (stamps.append(time.perf_counter()), cpu.append(time.process_time())))
    total = time.perf_counter() - started
    per_iter = np.diff(stamps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    gather = None
    if entry_kernels.available():
        bound = gather_bound(np.ascontiguousarray(res.V.astype(args.dtype)), args.m, args.seed)
        gather = []
        for _ in range(3):
            t0 = time.perf_counter()
            bound()
            gather.append(time.perf_counter() - t0)
    out = {
        "n1": args.n1, "n2": args.n2, "m": args.m, "k": args.k, "dtype": args.dtype, "iterations": int(len(per_iter)),
        "seconds_per_iteration_median": float(np.median(per_iter)),
        "seconds_per_iteration_min": float(np.min(per_iter)),
        "cpu_seconds_per_iteration_median": float(np.median(np.diff(cpu))),
        "seconds_per_iteration_max": float(np.max(per_iter)),
        "setup_seconds": float(stamps[0] - started),
        "total_seconds": total,
        "peak_rss_gb": peak,
        "rss_after_data_gb": rss_data,
        "record_every": res.config["record_every"],
        "forward_block_bytes": entries.BLOCK_BYTES,
        "val_rmse_first_last": [float(res.history["val_rmse"][0]), float(res.history["val_rmse"][-1])],
        "blas_threads": [i.get("num_threads") for i in threadpool_info() if i.get("user_api") == "blas"],
        "kernels": "numba" if entry_kernels.available() else "numpy (set ASYMSENSE_NO_NUMBA or uninstall numba for this path)",
        "gather_bound_seconds": None if gather is None else float(np.median(gather)),
        "ratio_to_gather_bound": None if gather is None else float(np.median(per_iter) / np.median(gather)),
        "load_average": list(os.getloadavg()),
        "target": "< 2 s/iteration and < 4 GB peak",
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        bound_text = "" if gather is None else f"{out['ratio_to_gather_bound']:.2f}× the gather bound {out['gather_bound_seconds']:.3f} s; "
        print(f"{args.n1}×{args.n2}, |Ω| = {args.m:.2e}, k = {args.k} ({args.dtype}): "
              f"{out['seconds_per_iteration_median']:.3f} s/iteration (median of {out['iterations']}; CPU {out['cpu_seconds_per_iteration_median']:.3f} s; min {out['seconds_per_iteration_min']:.3f}, max {out['seconds_per_iteration_max']:.3f}; "
              f"{bound_text}monitors every {out['record_every']}, forward block {entries.BLOCK_BYTES} B, kernels {out['kernels']}, load {out['load_average']}), setup {out['setup_seconds']:.1f} s, peak RSS {peak:.2f} GB (data alone {rss_data:.2f} GB)")


if __name__ == "__main__":
    main()
