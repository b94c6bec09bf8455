"""Every figure of the performance issue's table as a ratio measured in one run.

Each figure is timed as interleaved rounds (plain loop, bare bound, ours in the
same round), at least 3 rounds, and reported as the median with every round's
value and the machine's load average (os.getloadavg) next to it: the machine
is shared, so absolute times move by ±30 % between runs, ratios much less.

Figures (names as in the JSON):

- dense_f64 / dense_f32: one fgd step (n1 = n2 = 100, m = 10⁴, k = 100: the
  operator's `residual_gradient`, which fgd calls, + the update; with numba
  the fused one-pass kernel) over two bare GEMVs over A (A·x, zᵀA), at 1 and
  2 BLAS threads; with the OpenBLAS path (kernel="blas") in the same rounds.
- batched_f32_b64: per-trial time of a B = 64 batched step over the GEMM
  compute bound (4·B·m·n1·n2 flops at the sgemm rate measured on a
  compute-bound 2048³ product in the same round); and over the two bare
  GEMMs of the step's own shapes (A·Xᵀ and R·A, 64 wide), the rate OpenBLAS
  reaches on those shapes. batched_f32_b64_jax (when jax is installed, one
  thread): the same step with DenseGaussian(kernel="jax") over the same
  bound, and over the bound at XLA's own 2048³ rate (`over_xla_2048_bound`).
- fused_over_blas_<dtype>_b<B>_<T>t: where "auto" stops giving batches to
  the fused kernel (DenseGaussian.FUSED_BATCH_ENTRIES with one thread,
  FUSED_PARTS_ENTRIES with two, the batch in parts): one `residual_gradient`
  with kernel="numba" over the same with kernel="blas", T BLAS threads and
  that thread budget, n1 = n2 = 100, m = 10⁴, k = 100, for batches around
  the limits (float32 and float64: the fused kernel reads float64
  operators' 4-byte normals).
- demo_sweep: the demo's α sweep (60×40, r = 3, κ = 3, m = 1455, k = 60,
  6 α, --demo-iter iterations, monitors every 10): the plain NumPy script of
  bench_end_to_end (one trial at a time, monitors from UVᵀ) over one batched
  `fgd` call (default kernel: with numba the fused one-pass kernel), both with
  1 BLAS thread; with the OpenBLAS kernel (kernel="blas") in the same rounds,
  the bare bound (two bare 6-row GEMMs over A per step) and the monitors'
  share of the fgd run: `monitor_share`, the time fgd spent in its history
  records (`record_seconds`, timed inside the run) over its wall time, and
  `monitor_share_by_difference`, 1 − (a run that records only its last
  iterate) / (the run): the earlier runs' measure, the difference of two
  timings that each move by ±15 %.
- demo_sweep_plain_over_fgd_jax_1t (when jax is installed): the same sweep
  with DenseGaussian(kernel="jax") (XLA's skinny GEMMs; XLA's pool on one
  core, `pin_xla_to_one_core`), in the same rounds, with its final errors
  against the plain loop's.
- demo_sweep_loaded: the same two, default settings (no thread limit in the
  plain script, `fgd`'s default threads), --loaded-iter iterations, while two
  busy processes started by this script hold the cores.
- stream_f64: the matrix-free Gaussian step (`residual_gradient`) over the
  dense step as two OpenBLAS passes (forward_factors, gradient_products; same
  matrix), at 1 and 2 generator threads; and over the dense step `fgd` takes
  (`residual_gradient`: with numba the fused one-pass kernel reading float32
  normals, 4 bytes an entry once per step).
- completion: one completion step at 10⁶ × 10⁵, 10⁷ entries, k = 64,
  float32: as two calls (forward_factors, gradient_products) with the numba
  kernels and with the NumPy fallback, and as one `residual_gradient` (the
  one-pass kernel: U streamed, V's rows gathered, A*(r)ᵀU scattered), with
  the two-pass kernel (SCATTER_BYTES = 0: the forward fused into the CSR
  pass, then the CSC pass) in the same rounds; over the random-gather bound
  (a numba pass summing 10⁷ random rows of V) and over the two gathers the
  two-pass step needs (V's rows, then U's in the CSC pass); wall and CPU
  seconds (all threads; under load the wall time is mostly waiting for a
  core); with the cost of one fresh (n1, k) output written once (its page
  faults, paid by every step); peak RSS of that part (run in a child process).

    python benchmarks/bench_ratios.py [--out results/bench_ratios.json] [--rounds 3]
        [--only dense,batched,crossover,demo,loaded,stream,completion] [--demo-iter 1500] [--loaded-iter 150]
        [--completion-m 10000000]

The JSON goes to --out (default results/bench_ratios.json, a git-ignored
folder); a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PARTS = ("dense", "batched", "crossover", "demo", "loaded", "stream", "completion")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed(f, repeat: int = 1, warm: bool = False) -> float:
    """Seconds per call of f over `repeat` calls; with `warm`, after one untimed
    call, which pays for what the figure timed before it left behind: after a
    product on two threads OpenBLAS's second thread spins for a while, on the
    core that a compiled kernel's second part needs."""
    if warm:
        f()
    t0 = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - t0) / repeat


def summarize(rounds: list[dict], num: str, den: str) -> dict:
    ratios = [r[num] / r[den] for r in rounds]
    return {
        "ratio": float(np.median(ratios)),
        "ratios": [round(x, 3) for x in ratios],
        num: float(np.median([r[num] for r in rounds])),
        den: float(np.median([r[den] for r in rounds])),
        "load": [r["load"] for r in rounds],
    }


# --- dense steps -------------------------------------------------------------------------


def dense_step_figures(rounds: int, threads_list=(1, 2)) -> dict:
    from asymsense.operators import DenseGaussian

    n, m, k = 100, 10_000, 100
    out = {}
    for dtype in ("float64", "float32"):
        op = DenseGaussian(n, n, m, seed=3, dtype=dtype)
        G = op.matrix
        rng = np.random.default_rng(0)
        U = (0.1 * rng.standard_normal((n, k))).astype(dtype)
        V = (0.1 * rng.standard_normal((n, k))).astype(dtype)
        y = rng.standard_normal(m).astype(dtype)
        x = rng.standard_normal(n * n).astype(dtype)
        mu = np.dtype(dtype).type(1e-3)

        op_blas = DenseGaussian(n, n, m, seed=3, dtype=dtype, matrix=G, kernel="blas")

        def ours(operator=op):
            r, MV, MtU = operator.residual_gradient(U, V, y, dtype)
            return U - mu * MV, V - mu * MtU

        def bare():
            r = G @ x
            return r @ G

        for threads in threads_list:
            with threadpool_limits(threads):
                ours(), ours(op_blas), bare()
                rs = []
                for _ in range(rounds):
                    rs.append({"bare": timed(bare, 3), "ours": timed(ours, 3, warm=True), "blas": timed(lambda: ours(op_blas), 3), "load": load()})
            fig = summarize(rs, "ours", "bare")
            fig["kernel"] = op.step_kernel(1)
            fig["blas_over_bare"] = summarize(rs, "blas", "bare")["ratio"]
            out[f"dense_{dtype[-2:]}_step_over_two_gemvs_{threads}t"] = fig
        op = op_blas = G = None  # free A (800 MB in float64) before the next dtype
    return out


def pin_xla_to_one_core():
    """Start jax's CPU client (when jax is installed) with this thread's CPU
    affinity set to one core, then restore it: XLA's worker threads inherit
    that one core, so the XLA figures are one core's like the 1-thread BLAS
    ones. (XLA_FLAGS "--xla_cpu_multi_thread_eigen=false
    intra_op_parallelism_threads=1" did not do it: a 2048³ product took twice
    its wall time in CPU time on 2 cores.) Returns the cores XLA may use, or
    None without jax."""
    from asymsense.operators import jax_kernels

    if not jax_kernels.available():
        return None
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        import jax
        import jax.numpy as jnp

        jax.jit(lambda a: a + 1)(jnp.zeros(4)).block_until_ready()
    finally:
        os.sched_setaffinity(0, cores)
    return 1


def batched_figures(rounds: int, threads_list=(1, 2), B: int = 64) -> dict:
    from asymsense.backend import limit_threads
    from asymsense.operators import DenseGaussian

    n, m, k = 100, 10_000, 100
    op = DenseGaussian(n, n, m, seed=3, dtype="float32")
    rng = np.random.default_rng(0)
    U = (0.1 * rng.standard_normal((B, n, k))).astype(np.float32)
    V = (0.1 * rng.standard_normal((B, n, k))).astype(np.float32)
    y = rng.standard_normal(m).astype(np.float32)
    mu = np.float32(1e-3)
    big = rng.standard_normal((2048, 2048)).astype(np.float32)
    flops = 4.0 * B * m * n * n

    def ours(operator=op):
        r, MV, MtU = operator.residual_gradient(U, V, y, np.float32)
        return U - mu * MV, V - mu * MtU

    G = op.matrix
    X = rng.standard_normal((B, n * n)).astype(np.float32)

    def bare_gemms():
        r = (G @ X.T).T - y
        return r @ G

    from asymsense.operators import jax_kernels

    xla = None
    if jax_kernels.available():
        import jax
        import jax.numpy as jnp

        op_jax = DenseGaussian(n, n, m, seed=3, dtype="float32", matrix=G, kernel="jax")
        big_jax = jnp.asarray(big)
        square = jax.jit(lambda a: a @ a)
        xla = {"step": lambda: ours(op_jax), "big": lambda: square(big_jax).block_until_ready()}

    out = {}
    for threads in threads_list:
        with limit_threads(np, threads):  # what fgd sets: BLAS threads and the budget the kernel choice reads
            kernel = op.step_kernel(B)
            with_xla = xla is not None and threads == 1  # XLA's pool runs on one core (pin_xla_to_one_core)
            ours(), bare_gemms()
            if with_xla:
                xla["step"](), xla["big"]()
            rs = []
            for _ in range(rounds):
                t_big = timed(lambda: big @ big, 2)
                rate = 2.0 * 2048**3 / t_big
                t = timed(ours, 2, warm=True)
                row = {"ours": t / B, "bound": flops / rate / B, "gemms": timed(bare_gemms, 2) / B, "gflops_peak": rate / 1e9, "load": load()}
                if with_xla:
                    row["xla"] = timed(xla["step"], 2) / B
                    row["xla_gflops"] = 2.0 * 2048**3 / timed(xla["big"], 2) / 1e9
                    row["xla_bound"] = flops / (row["xla_gflops"] * 1e9) / B
                rs.append(row)
        fig = summarize(rs, "ours", "bound")
        fig["sgemm_gflops"] = float(np.median([r["gflops_peak"] for r in rs]))
        fig["ours_over_bare_gemms"] = summarize(rs, "ours", "gemms")["ratio"]
        fig["bare_gemms_over_bound"] = summarize(rs, "gemms", "bound")["ratio"]
        fig["kernel"] = kernel
        out[f"batched_f32_b{B}_per_trial_over_gemm_bound_{threads}t"] = fig
        if with_xla:
            fig = summarize(rs, "xla", "bound")
            fig["xla_sgemm_gflops"] = float(np.median([r["xla_gflops"] for r in rs]))
            fig["over_xla_2048_bound"] = summarize(rs, "xla", "xla_bound")["ratio"]
            fig["xla_over_blas_step"] = summarize(rs, "xla", "ours")["ratio"]
            out[f"batched_f32_b{B}_jax_per_trial_over_gemm_bound_{threads}t"] = fig
    return out


CROSSOVER_BATCHES = {"float32": (32, 64, 96, 104, 128), "float64": (16, 32, 48, 52, 64, 96)}
"""Batches around FUSED_BATCH_ENTRIES (65 trials of 10⁴ entries)."""
CROSSOVER_BATCHES_2T = {"float32": (8, 10, 12, 14, 24, 48, 64, 96), "float64": (8, 10, 12, 14, 24, 32, 48, 64, 96)}
"""Two threads: batches below 12 trials run on one core (around FUSED_SINGLE_ENTRIES, 13 trials of
10⁴ entries), from 12 on in parts (up to FUSED_PARTS_ENTRIES, 65 trials)."""


def crossover_figures(rounds: int) -> dict:
    from asymsense.backend import limit_threads
    from asymsense.operators import DenseGaussian

    n, m, k = 100, 10_000, 100
    out = {}
    for dtype in CROSSOVER_BATCHES:
        fused = DenseGaussian(n, n, m, seed=3, dtype=dtype, kernel="numba")
        blas = DenseGaussian(n, n, m, seed=3, dtype=dtype, matrix=fused.matrix, kernel="blas")
        rng = np.random.default_rng(0)
        y = rng.standard_normal(m).astype(dtype)
        for threads, batches in ((1, CROSSOVER_BATCHES[dtype]), (2, CROSSOVER_BATCHES_2T[dtype])):
            with limit_threads(np, threads):  # BLAS threads and the budget fused_parts reads
                for B in batches:
                    U = (0.1 * rng.standard_normal((B, n, k))).astype(dtype)
                    V = (0.1 * rng.standard_normal((B, n, k))).astype(dtype)

                    def step(operator):
                        return operator.residual_gradient(U, V, y, dtype)

                    step(fused), step(blas)
                    rs = [{"fused": timed(lambda: step(fused), 2, warm=True), "blas": timed(lambda: step(blas), 2, warm=True), "load": load()}
                          for _ in range(rounds)]
                    fig = summarize(rs, "fused", "blas")
                    fig["batch_mib"] = B * n * n * np.dtype(dtype).itemsize / 2**20
                    fig["parts"] = fused.fused_parts(B)
                    out[f"fused_over_blas_{dtype[-2:]}_b{B}_{threads}t"] = fig
        fused = blas = None  # free G before the next dtype
    return out


# --- the demo sweep ----------------------------------------------------------------------


def demo_setup(iters: int):
    import bench_end_to_end as be

    import asymsense
    from asymsense.operators import DenseGaussian
    from asymsense.solvers.stepsize import auto_step_size

    be.RECORD_EVERY = 10
    truth = asymsense.planted(be.N1, be.N2, be.RANK, cond=be.COND, seed=1)
    op = DenseGaussian(be.N1, be.N2, be.M, seed=2)
    y = asymsense.measure(truth, op)
    with threadpool_limits(1):
        mu = auto_step_size(op, y)

    def plain():
        return [be.naive_trial(op.matrix, y, truth, a, mu, iters, 0) for a in be.ALPHAS]

    from asymsense.operators import jax_kernels

    operators = {"default": op, "blas": DenseGaussian(be.N1, be.N2, be.M, seed=2, matrix=op.matrix, kernel="blas")}
    if jax_kernels.available():
        operators["jax"] = DenseGaussian(be.N1, be.N2, be.M, seed=2, matrix=op.matrix, kernel="jax")

    def ours(threads=1, record_every=10, kernel="default"):
        return asymsense.fgd(operators[kernel], y, width=be.WIDTH, init_scale=be.ALPHAS, step_size=mu, max_iter=iters, seed=0, truth=truth,
                             record_every=record_every, tol=be.TOL, threads=threads)

    G = op.matrix
    rng = np.random.default_rng(0)
    X = rng.standard_normal((len(be.ALPHAS), G.shape[1]))

    def bare():
        for _ in range(iters):
            r = X @ G.T - y
            r @ G

    return be, plain, ours, bare


def demo_kernel() -> str:
    """The kernel the demo's default operator takes for its batch of len(ALPHAS) trials."""
    import bench_end_to_end as be
    from asymsense.operators import DenseGaussian

    return DenseGaussian(be.N1, be.N2, be.M, seed=2).step_kernel(len(be.ALPHAS))


def demo_figures(rounds: int, iters: int) -> dict:
    from asymsense.operators import jax_kernels

    with_jax = jax_kernels.available()
    be, plain, ours, bare = demo_setup(iters)
    rs = []
    with threadpool_limits(1):
        for _ in range(rounds):
            t0 = time.perf_counter()
            naive = plain()
            t_plain = time.perf_counter() - t0
            t_bare = timed(bare)
            t0 = time.perf_counter()
            batch = ours(threads=1)
            t_ours = time.perf_counter() - t0
            t_nomon = timed(lambda: ours(threads=1, record_every=iters + 1))
            t_blas = timed(lambda: ours(threads=1, kernel="blas"))
            row = {"plain": t_plain, "ours": t_ours, "bare": t_bare, "ours_without_monitors": t_nomon, "ours_blas": t_blas, "load": load(),
                   "record_share": sum(r.record_seconds for r in batch) / sum(r.seconds for r in batch)}
            if with_jax:
                t0 = time.perf_counter()
                batch_jax = ours(threads=1, kernel="jax")
                row["ours_jax"] = time.perf_counter() - t0
            rs.append(row)
    errs = [(h[-1]["rel_error"], res.history["rel_error"][-1]) for (_, _, h), res in zip(naive, batch)]
    out = {}
    if with_jax:
        fig = summarize(rs, "plain", "ours_jax")
        fig["jax_over_blas_fgd"] = summarize(rs, "ours", "ours_jax")["ratio"]
        errs_jax = [(h[-1]["rel_error"], res.history["rel_error"][-1]) for (_, _, h), res in zip(naive, batch_jax)]
        fig["max_rel_diff_final_error"] = float(max(abs(a - b) / a for a, b in errs_jax))
        fig["iterations"] = iters
        fig["xla_cores"] = 1
        out["demo_sweep_plain_over_fgd_jax_1t"] = fig
    fig = summarize(rs, "plain", "ours")
    fig["kernel"] = demo_kernel()
    fig["plain_over_fgd_blas"] = summarize(rs, "plain", "ours_blas")["ratio"]
    fig["ours_over_bare_gemms"] = summarize(rs, "ours", "bare")["ratio"]
    fig["monitor_share"] = float(np.median([r["record_share"] for r in rs]))
    fig["monitor_shares"] = [round(r["record_share"], 4) for r in rs]
    fig["monitor_share_by_difference"] = float(np.median([1 - r["ours_without_monitors"] / r["ours"] for r in rs]))
    fig["max_rel_diff_final_error"] = float(max(abs(a - b) / a for a, b in errs))
    fig["iterations"] = iters
    return {"demo_sweep_plain_over_fgd_1t": fig, **out}


def _spin(stop):
    x = 0
    while not stop.is_set():
        x += 1


def loaded_figures(rounds: int, iters: int) -> dict:
    """The demo sweep with default thread settings while two busy processes run."""
    be, plain, ours, _ = demo_setup(iters)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    hogs = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(2)]
    for h in hogs:
        h.start()
    try:
        time.sleep(1.0)
        rs = []
        for _ in range(rounds):
            t_plain = timed(plain)
            t_ours = timed(lambda: ours(threads=None))
            rs.append({"plain": t_plain, "ours": t_ours, "load": load()})
    finally:
        stop.set()
        for h in hogs:
            h.join(5)
    fig = summarize(rs, "plain", "ours")
    fig["iterations"] = iters
    fig["busy_processes"] = 2
    return {"demo_sweep_loaded_plain_over_fgd_default": fig}


# --- matrix-free -------------------------------------------------------------------------


def stream_figures(rounds: int, threads_list=(1, 2)) -> dict:
    from asymsense.operators import DenseGaussian, StreamGaussian

    n, m, k = 100, 10_000, 100
    rng = np.random.default_rng(0)
    U = 0.1 * rng.standard_normal((n, k))
    V = 0.1 * rng.standard_normal((n, k))
    y = rng.standard_normal(m)
    dense = DenseGaussian(n, n, m, seed=3)
    out = {}

    def dense_step():
        r = dense.forward_factors(U, V) - y
        return dense.gradient_products(r, U, V)

    for threads in threads_list:
        stream = StreamGaussian(n, n, m, seed=3, threads=threads)
        with threadpool_limits(threads):
            dense_step(), stream.residual_gradient(U, V, y, np.float64)
            rs = []
            for _ in range(rounds):
                # a pause before each: OpenBLAS's worker spins ~0.1 s after a 2-thread product and would take a core
                # from the next timing (measured: the stream step 122 ms right after the dense one, 79 ms after 0.2 s)
                time.sleep(0.2)
                t_dense = timed(dense_step, 2)
                time.sleep(0.2)
                t_stream = timed(lambda: stream.residual_gradient(U, V, y, np.float64))
                time.sleep(0.2)
                t_two = timed(lambda: stream.gradient_products(stream.forward_factors(U, V) - y, U, V))
                time.sleep(0.2)
                t_fused = timed(lambda: dense.residual_gradient(U, V, y, np.float64), 2)
                rs.append({"stream": t_stream, "dense": t_dense, "two_pass": t_two, "dense_fgd": t_fused, "load": load()})
        fig = summarize(rs, "stream", "dense")
        fig["two_pass_over_dense"] = summarize(rs, "two_pass", "dense")["ratio"]
        fig["stream_over_dense_fgd_step"] = summarize(rs, "stream", "dense_fgd")["ratio"]
        fig["dense_fgd_kernel"] = dense.step_kernel(1)
        out[f"stream_f64_step_over_dense_{threads}t"] = fig
    return out


# --- completion --------------------------------------------------------------------------


def completion_child(m: int, rounds: int, fallback: bool) -> dict:
    """Run in a child process: one completion step at 10⁶ × 10⁵, m entries, k = 64, f32."""
    if fallback:
        os.environ["ASYMSENSE_NO_NUMBA"] = "1"
    from asymsense.operators import EntrySample

    n1, n2, k = 1_000_000, 100_000, 64
    rng = np.random.default_rng(0)
    rows = rng.integers(0, n1, m)
    cols = rng.integers(0, n2, m)
    order = np.lexsort((cols, rows))  # the completion model passes entries row-major
    rows, cols = rows[order], cols[order]
    del order
    op = EntrySample(rows, cols, (n1, n2), dtype="float32")
    del rows
    U = (0.1 * rng.standard_normal((n1, k))).astype(np.float32)
    V = (0.1 * rng.standard_normal((n2, k))).astype(np.float32)
    target = rng.standard_normal(m).astype(np.float32)
    def step():
        r = op.forward_factors(U, V) - target
        MV, MtU = op.gradient_products(r, U, V)
        return MV, MtU

    def fused():
        return op.residual_gradient(U, V, target, np.float32)

    def two_pass():
        """residual_gradient with the one-pass kernel switched off: the CSR pass
        (forward fused) and the CSC pass."""
        import asymsense.operators.entries as entries

        keep, entries.SCATTER_BYTES = entries.SCATTER_BYTES, 0
        try:
            return op.residual_gradient(U, V, target, np.float32)
        finally:
            entries.SCATTER_BYTES = keep

    def fresh_gradient_block():
        """A fresh array of A*(r)V's size, written once: the page faults every step pays for its output."""
        out = np.empty_like(U)
        out[:] = 0
        return out

    timers = {"step": step}
    if not fallback:
        from bench_completion_scale import gather_bound

        timers.update(fused=fused, two_pass=two_pass, gather=gather_bound(V, m), gather_U=gather_bound(U, m, seed=1),
                      fresh_output=fresh_gradient_block)
    for f in timers.values():
        f()
    rs = []
    for _ in range(rounds):
        row = {}
        for name, f in timers.items():
            cpu = time.process_time()
            row[name] = timed(f)
            row[name + "_cpu"] = time.process_time() - cpu  # all threads: what the step costs when cores are shared
        row["load"] = load()
        rs.append(row)
    return {"rounds": rs, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def completion_figures(rounds: int, m: int) -> dict:
    out = {}
    for fallback in (False, True):
        cmd = [sys.executable, __file__, "--child-completion", str(m), "--rounds", str(rounds)] + (["--fallback"] if fallback else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            out[f"completion_{'numpy' if fallback else 'numba'}"] = {"error": proc.stderr[-2000:]}
            continue
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        rs = child["rounds"]
        fig = {"seconds": float(np.median([r["step"] for r in rs])), "rounds": [round(r["step"], 3) for r in rs],
               "load": [r["load"] for r in rs], "peak_rss_gb": child["peak_rss_gb"], "m": m}
        if not fallback:
            med = lambda name: float(np.median([r[name] for r in rs]))  # noqa: E731
            fig["gather_bound_seconds"] = med("gather")
            fig["ratio_to_gather_bound"] = float(np.median([r["step"] / r["gather"] for r in rs]))
            fused = {"seconds": med("fused"), "rounds": [round(r["fused"], 3) for r in rs], "load": fig["load"],
                     "peak_rss_gb": child["peak_rss_gb"], "m": m, "gather_bound_seconds": med("gather"),
                     "ratio_to_gather_bound": float(np.median([r["fused"] / r["gather"] for r in rs])),
                     "gather_U_seconds": med("gather_U"),
                     "ratio_to_two_gathers": float(np.median([r["fused"] / (r["gather"] + r["gather_U"]) for r in rs])),
                     "fresh_output_seconds": med("fresh_output"),
                     "two_calls_over_fused": float(np.median([r["step"] / r["fused"] for r in rs])),
                     "two_pass_seconds": med("two_pass"),
                     "two_pass_over_fused": float(np.median([r["two_pass"] / r["fused"] for r in rs])),
                     "cpu_seconds": med("fused_cpu"), "two_pass_cpu_seconds": med("two_pass_cpu"),
                     "gather_cpu_seconds": med("gather_cpu"), "gather_U_cpu_seconds": med("gather_U_cpu"),
                     "cpu_ratio_to_gather_bound": float(np.median([r["fused_cpu"] / r["gather_cpu"] for r in rs]))}
        out[f"completion_f32_k64_step_{'numpy' if fallback else 'numba'}"] = fig
        if not fallback:
            out["completion_f32_k64_residual_gradient_numba"] = fused
    return out


# --- main --------------------------------------------------------------------------------


TARGETS = {
    "dense_64_step_over_two_gemvs": "≤ 1.05",
    "dense_32_step_over_two_gemvs": "≤ 1.05",
    "batched_f32_b64": "≤ 1.2",
    "demo_sweep_plain_over_fgd": "≥ 5",
    "demo_sweep_loaded": "≥ 2",
    "stream_f64": "≤ 3",
    "completion_f32_k64_step_numba": "< 1 s, < 3 GB",
    "completion_f32_k64_residual_gradient_numba": "< 1 s, < 3 GB",
}


def target_of(name: str) -> str:
    return next((t for prefix, t in TARGETS.items() if name.startswith(prefix)), "")


def table(results: dict) -> str:
    lines = ["| figure | ratio (median) | per round | load (1-min avg per round) | target |", "|---|---:|---|---|---|"]
    for name, fig in results.items():
        if "error" in fig:
            lines.append(f"| {name} | error | | | |")
            continue
        if "ratio" in fig:
            value = f"{fig['ratio']:.2f}×"
            per = ", ".join(f"{x:.2f}" for x in fig["ratios"])
        else:
            value = f"{fig['seconds']:.3f} s" + (f" ({fig['ratio_to_gather_bound']:.2f}× gather bound)" if "ratio_to_gather_bound" in fig else "")
            per = ", ".join(f"{x:.3f}" for x in fig["rounds"]) + f"; peak RSS {fig['peak_rss_gb']:.2f} GB"
        loads = "; ".join(f"{r[0]:.1f}" for r in fig["load"])
        lines.append(f"| {name} | {value} | {per} | {loads} | {target_of(name)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results/bench_ratios.json"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default=",".join(PARTS))
    p.add_argument("--demo-iter", type=int, default=1500)
    p.add_argument("--loaded-iter", type=int, default=150, help="iterations of the sweep under load (the plain script with 2 BLAS threads is slow there)")
    p.add_argument("--completion-m", type=int, default=10_000_000)
    p.add_argument("--child-completion", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--fallback", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_completion is not None:
        print(json.dumps(completion_child(args.child_completion, args.rounds, args.fallback)))
        return 0
    if args.rounds < 3:
        p.error("--rounds must be at least 3 (medians of ≥ 3 repeats)")
    xla_cores = pin_xla_to_one_core()
    parts = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        p.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    try:
        import numba

        numba_version = numba.__version__
    except ImportError:
        numba_version = None

    results: dict = {}
    started = time.time()
    runners = {
        "dense": lambda: dense_step_figures(args.rounds),
        "batched": lambda: batched_figures(args.rounds),
        "crossover": lambda: crossover_figures(args.rounds),
        "demo": lambda: demo_figures(args.rounds, args.demo_iter),
        "loaded": lambda: loaded_figures(args.rounds, args.loaded_iter),
        "stream": lambda: stream_figures(args.rounds),
        "completion": lambda: completion_figures(args.rounds, args.completion_m),
    }
    for part in parts:
        t0 = time.perf_counter()
        results.update(runners[part]())
        print(f"[{part}: {time.perf_counter() - t0:.0f} s, load {load()}]", file=sys.stderr, flush=True)
    meta = {
        "xla_cores": xla_cores,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "numpy": np.__version__,
        "numba": numba_version,
        "blas": [f"{i.get('internal_api')} {i.get('architecture')} x{i.get('num_threads')}" for i in threadpool_info() if i.get("user_api") == "blas"],
        "rounds": args.rounds,
        "load_at_end": load(),
    }
    text = table(results)
    print(text)
    print(f"\nload average at the end: {meta['load_at_end']} on {os.cpu_count()} cores; numba {meta['numba']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "figures": results}, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
