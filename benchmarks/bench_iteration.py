"""Seconds per fgd iteration for every operator family, against the memory-bandwidth bound.

One process measures, in this order:

* the read bandwidth a NumPy streaming kernel reaches on this machine now
  (``A @ v`` (GEMV) and ``A.sum()`` over the dense float64 operator, median of
  several), so that "two passes over A" gives the bound of a dense step;
* seconds per iteration (median over iterations, timed between successive
  ``progress`` callbacks of ``asymsense.fgd`` with monitors only at the ends)
  for the dense Gaussian operator in float64 and float32, the matrix-free
  (``gaussian-stream``), structured and rank-one operators;
* per-trial seconds of batched runs (B trials sharing one dense float32 operator);
* the memory of the matrix-free operator (its chunk bytes, and the tracemalloc
  peak of one step) against the dense array's bytes.

Usage::

    python benchmarks/bench_iteration.py --out benchmarks/results/iteration.md
    python benchmarks/bench_iteration.py --n1 30 --n2 30 --m 500 --k 30 --iters 5   # quick check

Targets (issue 2, item 10): dense within 1.15x of the bound; batched B=64
per-trial <= 1/10 of B=1; matrix-free <= 10x dense time with <= 1% of its memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import asymsense
from asymsense.operators import DenseGaussian, StreamGaussian, make_operator


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def read_bandwidth(A: np.ndarray, repeats: int) -> dict[str, float]:
    """Bytes per second that GEMV and a reduction reach streaming over A."""
    v = np.ones(A.shape[1], dtype=A.dtype)
    gemv = median_time(lambda: A @ v, repeats)
    total = median_time(lambda: A.sum(), repeats)
    return {"gemv": A.nbytes / gemv, "sum": A.nbytes / total}


THREADS = None


def seconds_per_iteration(operator, y, *, width: int, batch: int = 1, iters: int, dtype=None, seed: int = 0) -> float:
    """Median wall time of one fgd iteration (forward, loss, gradient, update),
    from the gaps between progress callbacks; monitors run only at t = 0 and at the end."""
    stamps: list[float] = []
    scales = [1e-3] * batch if batch > 1 else 1e-3
    asymsense.fgd(
        operator, y, width=width, init_scale=scales, step_size=0.25, max_iter=iters + 1, seed=seed,
        record_every=10**9, dtype=dtype, progress=lambda t: stamps.append(time.perf_counter()), threads=THREADS,
    )
    return float(np.median(np.diff(stamps)))


def step_peak_bytes(operator, y, *, width: int) -> int:
    """tracemalloc peak over two fgd iterations (NumPy reports its allocations to tracemalloc)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    asymsense.fgd(operator, y, width=width, init_scale=1e-3, step_size=0.25, max_iter=2, seed=0, record_every=10**9)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def blas_description() -> str:
    return ", ".join(f"{i.get('internal_api', i['user_api'])} {i.get('architecture', '?')} x{i['num_threads']}" for i in threadpool_info())


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n1", type=int, default=100)
    p.add_argument("--n2", type=int, default=100)
    p.add_argument("--m", type=int, default=10_000)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--rank", type=int, default=5)
    p.add_argument("--iters", type=int, default=9, help="timed iterations per configuration")
    p.add_argument("--repeats", type=int, default=7, help="repeats of the bandwidth kernels")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="BLAS threads in the fgd loop and the bandwidth kernels (default: process setting)")
    p.add_argument("--out", type=Path, default=None, help="also write the Markdown report here")
    args = p.parse_args(argv)

    n1, n2, m, k = args.n1, args.n2, args.m, args.k
    global THREADS
    THREADS = args.threads
    if args.threads is not None:
        threadpool_limits(args.threads)
    problem = asymsense.planted(n1, n2, min(args.rank, n1, n2), cond=2.0, seed=args.seed)
    lines = [
        f"# fgd iteration benchmark: n1={n1}, n2={n2}, m={m}, k={k}",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; numpy {np.__version__}; "
        f"BLAS {blas_description()}; fgd threads={args.threads}.",
        "",
    ]
    rows: list[tuple[str, ...]] = []
    dense_time: dict[str, float] = {}

    dense = {}
    for dtype in ("float64", "float32"):
        op = DenseGaussian(n1, n2, m, seed=args.seed, dtype=dtype)
        dense[dtype] = op
        bw = read_bandwidth(op.matrix, args.repeats)
        y = asymsense.measure(problem, op)
        sec = seconds_per_iteration(op, y, width=k, iters=args.iters)
        dense_time[dtype] = sec
        best_bw = max(bw.values())
        bound = 2 * op.matrix.nbytes / best_bw
        rows.append((f"dense {dtype}", f"{sec * 1e3:.1f}", f"{bound * 1e3:.1f}", f"{sec / bound:.2f}",
                     f"{fmt_bytes(op.matrix.nbytes)}", f"GEMV {bw['gemv'] / 1e9:.1f} GB/s, sum {bw['sum'] / 1e9:.1f} GB/s"))
        if dtype == "float64":
            del dense["float64"], op

    stream = StreamGaussian(n1, n2, m, seed=args.seed, dtype="float64")
    y = asymsense.measure(problem, stream)
    sec = seconds_per_iteration(stream, y, width=k, iters=max(3, args.iters // 3))
    peak = step_peak_bytes(stream, y, width=k)
    dense_bytes = m * n1 * n2 * 8
    rows.append(("matrix-free float64 (gaussian-stream)", f"{sec * 1e3:.1f}", "", f"{sec / dense_time['float64']:.2f}x dense f64",
                 f"chunks {fmt_bytes(stream.peak_bytes)} ({100 * stream.peak_bytes / dense_bytes:.2f}%), step peak {fmt_bytes(peak)} ({100 * peak / dense_bytes:.2f}%)",
                 f"{stream.threads} threads"))
    stream32 = StreamGaussian(n1, n2, m, seed=args.seed, dtype="float32")
    y32 = asymsense.measure(problem, stream32)
    sec32 = seconds_per_iteration(stream32, y32, width=k, iters=max(3, args.iters // 3))
    rows.append(("matrix-free float32 (gaussian-stream)", f"{sec32 * 1e3:.1f}", "", f"{sec32 / dense_time['float32']:.2f}x dense f32",
                 f"chunks {fmt_bytes(stream32.peak_bytes)} ({100 * stream32.peak_bytes / (dense_bytes / 2):.2f}%)", f"{stream32.threads} threads"))

    for kind in ("structured", "rank-one"):
        if kind == "structured" and m > n1 * n2:
            continue
        op = make_operator(kind, n1, n2, m, seed=args.seed)
        y = asymsense.measure(problem, op)
        sec = seconds_per_iteration(op, y, width=k, iters=args.iters * 3)
        rows.append((f"{kind} float64", f"{sec * 1e3:.2f}", "", f"{sec / dense_time['float64']:.3f}x dense f64", "", ""))

    lines += ["| operator | ms / iteration | bound (ms) | ratio | memory | notes |", "|---|---:|---:|---:|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]

    op = dense["float32"]
    y = asymsense.measure(problem, op)
    lines += ["", "Batched trials sharing one dense float32 operator (B init scales in one call):", "",
              "| B | ms / iteration (all trials) | ms / trial | per-trial vs B=1 |", "|---:|---:|---:|---:|"]
    per_trial = {}
    for B in args.batches:
        sec = seconds_per_iteration(op, y, width=k, batch=B, iters=args.iters)
        per_trial[B] = sec / B
        ref = per_trial[args.batches[0]]
        lines.append(f"| {B} | {sec * 1e3:.1f} | {sec / B * 1e3:.2f} | {per_trial[B] / ref:.3f} |")

    lines += ["", "Bound = 2 passes over A at the best read bandwidth measured above in this process. "
              f"Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
              "(machine shared with other processes while measuring).", ""]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
