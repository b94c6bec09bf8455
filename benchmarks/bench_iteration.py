"""Seconds per fgd iteration for every operator family, against the memory-bandwidth bound.

One process measures, in this order:

* the read bandwidth a streaming kernel of the backend reaches now (``A @ v``
  (GEMV) and ``sum(A)`` over the dense operator, median of several), so that
  "two passes over A" gives the bound of a dense step;
* seconds per iteration (median over iterations, timed between successive
  ``progress`` callbacks of ``asymsense.solvers.fgd``, monitors only at the ends) for
  the dense Gaussian operator in float64 and float32, the matrix-free
  (``gaussian-stream``), structured and rank-one operators;
* per-trial seconds of batched runs (B trials sharing one dense float32 operator);
* the memory of the matrix-free operator (its generation buffers, and the
  tracemalloc peak of a step) against the dense array's bytes.

``--large`` instead runs the matrix-free, structured and rank-one operators at
sizes where a dense operator cannot fit in this machine's memory, with time
per iteration and peak memory.

``--backend torch --device cuda`` runs the same on a GPU (synchronizing at each
timestamp; the dense operators are then drawn on the device with torch's
generator, since only their timing matters here).

Usage::

    python benchmarks/bench_iteration.py --threads 1 --out benchmarks/results/iteration.md
    python benchmarks/bench_iteration.py --large --threads 1 --out benchmarks/results/large.md
    python benchmarks/bench_iteration.py --n1 30 --n2 30 --m 500 --k 30 --iters 5   # quick check

Targets (issue 2, item 10): dense within 1.15x of the bound; batched B=64
per-trial <= 1/10 of B=1; matrix-free <= 10x dense time with <= 1% of its memory.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import asymsense
from asymsense import backend as bk
from asymsense.operators import DenseGaussian, make_operator

THREADS = None
BACKEND, DEVICE = "numpy", None


def sync() -> None:
    """Wait for queued device work (a no-op on the CPU)."""
    if BACKEND == "torch" and DEVICE is not None and str(DEVICE).startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    elif BACKEND == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def median_time(fn, repeats: int) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def read_bandwidth(A, repeats: int) -> dict[str, float]:
    """Bytes per second that GEMV and a reduction reach streaming over A."""
    xp = bk.namespace(A)
    nbytes = math.prod(A.shape) * np.dtype(str(A.dtype).split(".")[-1]).itemsize
    v = xp.ones((A.shape[1],), dtype=A.dtype, device=bk.device_of(A))
    gemv = median_time(lambda: A @ v, repeats)
    total = median_time(lambda: xp.sum(A), repeats)
    return {"gemv": nbytes / gemv, "sum": nbytes / total}


def two_passes(A, repeats: int) -> float:
    """Median time of the two bare matrix–vector products a dense step needs, A·x and zᵀA."""
    xp = bk.namespace(A)
    x = xp.ones((A.shape[1],), dtype=A.dtype, device=bk.device_of(A))
    z = xp.ones((A.shape[0],), dtype=A.dtype, device=bk.device_of(A))
    return median_time(lambda: (A @ x, z @ A), repeats)


def seconds_per_iteration(operator, y, *, width: int, batch: int = 1, iters: int, dtype=None, seed: int = 0) -> float:
    """Median wall time of one fgd iteration (forward, loss, gradient, update),
    from the gaps between progress callbacks; monitors run only at t = 0 and at the end."""
    stamps: list[float] = []

    def stamp(t):
        sync()
        stamps.append(time.perf_counter())

    scales = [1e-3] * batch if batch > 1 else 1e-3
    asymsense.fgd(
        operator, y, width=width, init_scale=scales, step_size=0.25, max_iter=iters + 1, seed=seed,
        record_every=10**9, dtype=dtype, progress=stamp, threads=THREADS,
    )
    return float(np.median(np.diff(stamps)))


def step_peak_bytes(operator, y, *, width: int) -> int:
    """tracemalloc peak over two fgd iterations (NumPy reports its allocations to tracemalloc)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    asymsense.fgd(operator, y, width=width, init_scale=1e-3, step_size=0.25, max_iter=2, seed=0, record_every=10**9, threads=THREADS)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def dense_operator(n1, n2, m, dtype, seed):
    """The dense Gaussian operator on the chosen backend; on a GPU drawn there directly."""
    if BACKEND == "numpy" or DEVICE in (None, "cpu"):
        return make_operator("gaussian", n1, n2, m, seed=seed, dtype=dtype, backend=BACKEND, device=DEVICE)
    op = DenseGaussian(n1, n2, 1, seed=seed, dtype=dtype).to_namespace(bk.get_namespace(BACKEND), DEVICE)
    xp = op.xp
    if BACKEND == "torch":
        import torch

        gen = torch.Generator(device=op.device).manual_seed(seed)
        op.matrix = torch.randn((m, n1 * n2), generator=gen, dtype=getattr(torch, dtype), device=op.device) / math.sqrt(m)
    else:
        op.matrix = xp.asarray(xp.random.standard_normal((m, n1 * n2), dtype=dtype) / math.sqrt(m))
    op.m = m
    return op


def measurements(problem, op):
    """y = A(X*) on the host (forward applied on the operator's backend)."""
    return bk.to_numpy(op.forward_factors(op.asarray(problem.left * problem.singular_values), op.asarray(problem.right))).astype(np.float64)


def blas_description() -> str:
    return ", ".join(f"{i.get('internal_api', i['user_api'])} {i.get('architecture', '?')} x{i['num_threads']}" for i in threadpool_info())


def machine_description() -> str:
    text = f"{platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; BLAS {blas_description()}; fgd threads={THREADS}"
    if BACKEND == "torch":
        import torch

        text += f"; torch {torch.__version__}"
        if str(DEVICE).startswith("cuda"):
            text += f" on {torch.cuda.get_device_name(torch.device(DEVICE))}"
    return text + f"; backend={BACKEND}, device={DEVICE or 'cpu'}"


def load_note() -> str:
    return (f"Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
            "(the machine may be shared with other processes while measuring).")


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return ""


def standard(args) -> list[str]:
    n1, n2, m, k = args.n1, args.n2, args.m, args.k
    problem = asymsense.planted(n1, n2, min(args.rank, n1, n2), cond=2.0, seed=args.seed)
    lines = [f"# fgd iteration benchmark: n1={n1}, n2={n2}, m={m}, k={k}", "", f"Machine: {machine_description()}.", ""]
    rows: list[tuple[str, ...]] = []
    dense_time: dict[str, float] = {}
    dense_bytes: dict[str, int] = {}
    kept = None
    for dtype in args.dtypes:
        op = dense_operator(n1, n2, m, dtype, args.seed)
        dense_bytes[dtype] = m * n1 * n2 * np.dtype(dtype).itemsize
        y = measurements(problem, op)
        secs, bounds, twos, gemvs, sums = [], [], [], [], []
        for _ in range(args.rounds):
            # Interleaved rounds: bandwidth, iterations, bare passes, bandwidth again; a round's
            # ratio uses only its own figures, so load that drifts between rounds cancels.
            bw = read_bandwidth(op.matrix, args.repeats)
            sec = seconds_per_iteration(op, y, width=k, iters=args.iters)
            two = two_passes(op.matrix, args.repeats)
            bw_after = read_bandwidth(op.matrix, args.repeats)
            best_bw = max(*bw.values(), *bw_after.values())
            secs.append(sec)
            bounds.append(2 * dense_bytes[dtype] / best_bw)
            twos.append(two)
            gemvs.append(max(bw["gemv"], bw_after["gemv"]))
            sums.append(max(bw["sum"], bw_after["sum"]))
        med = lambda values: float(np.median(values))  # noqa: E731
        sec = med(secs)
        dense_time[dtype] = sec
        ratios = [a / b for a, b in zip(secs, bounds)]
        rows.append((f"dense {dtype}", f"{sec * 1e3:.2f}", f"{med(bounds) * 1e3:.2f}", f"{med(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})",
                     fmt_bytes(dense_bytes[dtype]),
                     f"GEMV {med(gemvs) / 1e9:.1f} GB/s, sum {med(sums) / 1e9:.1f} GB/s; "
                     f"iteration = {med([a / b for a, b in zip(secs, twos)]):.2f}x two bare GEMVs (A·x, zᵀA: {med(twos) * 1e3:.2f} ms)"))
        if dtype == args.batch_dtype:
            kept = (op, y)
        del op

    ref = args.dtypes[0]
    if "gaussian-stream" in args.kinds:
        for dtype in args.dtypes:
            stream = make_operator("gaussian-stream", n1, n2, m, seed=args.seed, dtype=dtype, backend=BACKEND, device=DEVICE)
            y = measurements(problem, stream)
            sec = seconds_per_iteration(stream, y, width=k, iters=max(3, args.iters // 3))
            memory = f"buffers {fmt_bytes(stream.peak_bytes)} ({100 * stream.peak_bytes / dense_bytes[dtype]:.2f}% of dense)"
            if BACKEND == "numpy":
                peak = step_peak_bytes(stream, y, width=k)
                memory += f", step peak {fmt_bytes(peak)} ({100 * peak / dense_bytes[dtype]:.2f}%)"
            rows.append((f"matrix-free {dtype} (gaussian-stream)", f"{sec * 1e3:.1f}", "", f"{sec / dense_time[dtype]:.2f}x dense {dtype}", memory,
                         f"{stream.threads} generator threads"))
    for kind in ("structured", "rank-one"):
        if kind not in args.kinds or (kind == "structured" and m > n1 * n2):
            continue
        op = make_operator(kind, n1, n2, m, seed=args.seed, dtype=ref, backend=BACKEND, device=DEVICE)
        y = measurements(problem, op)
        sec = seconds_per_iteration(op, y, width=k, iters=args.iters * 3)
        rows.append((f"{kind} {ref}", f"{sec * 1e3:.2f}", "", f"{sec / dense_time[ref]:.3f}x dense {ref}", "", ""))

    lines += ["| operator | ms / iteration | bound (ms) | ratio | memory | notes |", "|---|---:|---:|---:|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]

    if kept is not None and args.batches:
        op, y = kept
        lines += ["", f"Batched trials sharing one dense {args.batch_dtype} operator (B init scales in one call):", "",
                  "| B | BLAS threads | ms / iteration (all trials) | ms / trial | per-trial vs B=1 |", "|---:|---:|---:|---:|---:|"]
        global THREADS
        chosen = THREADS
        for threads in args.batch_threads or [chosen]:
            THREADS = threads
            per_trial = {}
            for B in args.batches:
                sec = seconds_per_iteration(op, y, width=k, batch=B, iters=args.iters)
                per_trial[B] = sec / B
                lines.append(f"| {B} | {threads} | {sec * 1e3:.1f} | {sec / B * 1e3:.3f} | {per_trial[B] / per_trial[args.batches[0]]:.3f} |")
        THREADS = chosen
    lines += ["", "Dense rows: medians over interleaved rounds (each round: bandwidth, iterations, two bare GEMVs, bandwidth); "
              "the ratio column lists each round's ratio. Bound = 2 passes over A at the best read bandwidth (GEMV or sum) "
              "measured just before and after in that round. " + load_note(), ""]
    return lines


LARGE = [
    # (kind, n1, n2, m, k, dtype)
    ("gaussian-stream", 2000, 2000, 1000, 10, "float64"),
    ("structured", 4000, 3000, 6_000_000, 10, "float64"),
    ("rank-one", 2000, 2500, 22_500, 10, "float64"),
]


def large(args) -> list[str]:
    """Operators at sizes whose dense form cannot be held here (m·n1·n2 entries)."""
    total_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    lines = [
        "# Large single problems (no dense operator could be stored)", "", f"Machine: {machine_description()}; memory {fmt_bytes(total_memory)}.", "",
        "| operator | n1 × n2 | m | m·n1·n2 | k | dense would need | ms / iteration | peak traced memory | max RSS after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, n1, n2, m, k, dtype in LARGE:
        if args.kinds and kind not in args.kinds:
            continue
        tracemalloc.start()
        problem = asymsense.planted(n1, n2, 3, seed=args.seed)
        op = make_operator(kind, n1, n2, m, seed=args.seed, dtype=dtype, backend=BACKEND, device=DEVICE)
        y = measurements(problem, op)
        iters = 1 if kind == "gaussian-stream" else 3
        sec = seconds_per_iteration(op, y, width=k, iters=iters)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        dense = m * n1 * n2 * np.dtype(dtype).itemsize
        lines.append(f"| {kind} {dtype} | {n1} × {n2} | {m:,} | {m * n1 * n2:.2e} | {k} | {fmt_bytes(dense)} | {sec * 1e3:.0f} | {fmt_bytes(peak)} | {fmt_bytes(rss)} |")
        print(lines[-1], flush=True)
        del op, y
    lines += ["", "Peak traced memory: tracemalloc peak (NumPy arrays) from building the operator through the timed iterations. " + load_note(), ""]
    return lines


def main(argv=None) -> int:
    global THREADS, BACKEND, DEVICE
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n1", type=int, default=100)
    p.add_argument("--n2", type=int, default=100)
    p.add_argument("--m", type=int, default=10_000)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--rank", type=int, default=5)
    p.add_argument("--iters", type=int, default=9, help="timed iterations per configuration")
    p.add_argument("--repeats", type=int, default=7, help="repeats of the bandwidth kernels")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the dense measurements (median reported)")
    p.add_argument("--batches", type=int, nargs="*", default=[1, 4, 16, 64])
    p.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    p.add_argument("--batch-dtype", default="float32")
    p.add_argument("--batch-threads", type=int, nargs="*", default=None, help="BLAS thread counts for the batched rows (default: --threads)")
    p.add_argument("--kinds", nargs="*", default=["gaussian-stream", "structured", "rank-one"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="BLAS threads in the fgd loop and the bandwidth kernels (default: process setting)")
    p.add_argument("--backend", default="numpy", choices=bk.BACKENDS)
    p.add_argument("--device", default=None)
    p.add_argument("--large", action="store_true", help="the large single problems instead")
    p.add_argument("--out", type=Path, default=None, help="also write the Markdown report here")
    args = p.parse_args(argv)
    THREADS, BACKEND, DEVICE = args.threads, args.backend, args.device
    if args.threads is not None:
        threadpool_limits(args.threads)
        if BACKEND == "torch":
            import torch

            torch.set_num_threads(args.threads)
    text = "\n".join(large(args) if args.large else standard(args))
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
