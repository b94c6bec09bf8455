"""The demo's α sweep: a straightforward NumPy script against `asymsense.solvers.fgd`, in one process.

Problem: the demo's planted 60×40 matrix of rank 3 (κ = 3, linear spectrum),
m = 5·r(n1+n2−r) = 1455 dense Gaussian measurements, width k = 60,
α ∈ {1e-1, …, 1e-6}, the demo's budget (1000 iterations), monitors every
2 iterations, stopping at rel_residual ≤ 1e-12 or the budget.

* naive: one trial at a time, float64, the dense (m, n1·n2) matrix G, two
  matrix–vector products per step (r = G vec(UVᵀ) − y, M = mat(Gᵀr)), and the
  monitors computed from the n1×n2 product UVᵀ at every recorded step (full
  SVD for singular values, angles and effective rank; ‖UVᵀ − X*‖_F; the
  imbalance; the tails).
* asymsense: one batched `fgd` call over the six α (same operator, same
  initialization, same step size, same monitors from thin-QR cores).

Both paths run under each BLAS thread setting of --threads (default 1 and 2).
Prints seconds, the ratio, and the largest difference between the two final
test errors and factors. Target (issue 5 item 5): ratio ≥ 10.

Usage::

    python benchmarks/bench_end_to_end.py [--max-iter 1000] [--threads 1 2] [--out FILE.json] [--out FILE.md]

`--out X.json` writes the record docs/build.py fills docs/performance.md from
(the deterministic errors and iterations of the last thread setting, the
seconds of every setting, the command, date and load); `--out X.md` the
printed report. The errors and iterations do not depend on the machine: the
slow test in tests/test_docs_generated.py recomputes them with `measurements()`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import asymsense
from asymsense.operators import DenseGaussian
from asymsense.solvers.stepsize import auto_step_size
from run_record import RunRecord

N1, N2, RANK, COND, WIDTH = 60, 40, 3, 3.0, 60
ALPHAS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
M = 5 * RANK * (N1 + N2 - RANK)
RECORD_EVERY = 2
TOL = 1e-12


def naive_trial(G, y, truth, alpha, mu, max_iter, seed):
    """Plain NumPy factorized gradient descent for one α, monitors from UVᵀ."""
    n1, n2 = truth.shape
    rng = np.random.default_rng(seed)
    U = alpha * rng.standard_normal((n1, WIDTH)) / math.sqrt(WIDTH)
    V = alpha * rng.standard_normal((n2, WIDTH)) / math.sqrt(WIDTH)
    X_star = truth.X
    x_norm, y_norm = np.linalg.norm(X_star), np.linalg.norm(y)
    L, R, r = truth.left, truth.right, truth.rank
    history = []
    for t in range(max_iter + 1):
        X = U @ V.T
        res = G @ X.ravel() - y
        rel_residual = np.linalg.norm(res) / y_norm
        if t % RECORD_EVERY == 0 or t == max_iter or rel_residual <= TOL:
            W, s, Zt = np.linalg.svd(X)
            p = s / s.sum()
            history.append({
                "iteration": t,
                "loss": 0.5 * res @ res,
                "rel_residual": rel_residual,
                "rel_error": np.linalg.norm(X - X_star) / x_norm,
                "rel_imbalance": np.linalg.norm(U.T @ U - V.T @ V) / truth.singular_values[0],
                "sv": s[:10],
                "eff_rank": math.exp(-np.sum(p[p > 0] * np.log(p[p > 0]))),
                "angle_u": np.linalg.norm(W[:, :r] - L @ (L.T @ W[:, :r]), 2),
                "angle_v": np.linalg.norm(Zt[:r].T - R @ (R.T @ Zt[:r].T), 2),
                "tail_u": np.linalg.norm(U - L @ (L.T @ U), 2),
                "tail_v": np.linalg.norm(V - R @ (R.T @ V), 2),
            })
            if rel_residual <= TOL:
                break
        if t == max_iter:
            break
        Mat = (G.T @ res).reshape(n1, n2)
        U, V = U - mu * Mat @ V, V - mu * Mat.T @ U
    return U, V, history


def setup(seed: int = 0):
    """The demo's planted truth, its dense Gaussian operator and the measurements."""
    truth = asymsense.planted(N1, N2, RANK, cond=COND, seed=seed + 1)
    op = DenseGaussian(N1, N2, M, seed=seed + 2)
    return truth, op, asymsense.measure(truth, op)


def run_both(truth, op, y, max_iter: int, seed: int, threads: int):
    """Both paths under `threads` BLAS threads: (μ, naive trials, fgd batch, naive seconds, fgd seconds)."""
    with threadpool_limits(threads):
        mu = auto_step_size(op, y)
        t0 = time.perf_counter()
        naive = [naive_trial(op.matrix, y, truth, a, mu, max_iter, seed) for a in ALPHAS]
        t_naive = time.perf_counter() - t0
        t0 = time.perf_counter()
        batch = asymsense.fgd(op, y, width=WIDTH, init_scale=ALPHAS, step_size=mu, max_iter=max_iter, seed=seed,
                              truth=truth, record_every=RECORD_EVERY, tol=TOL)
        t_fast = time.perf_counter() - t0
    return mu, naive, batch, t_naive, t_fast


def compared(mu, naive, batch, max_iter: int, seed: int) -> dict:
    """The deterministic record of one run of both paths: problem, μ, and per α the two final test
    errors and iteration counts; plus the rounding-level differences between the paths (these depend on
    the BLAS kernels and threads, so they are shown as measured, not checked digit for digit)."""
    rows = []
    for a, (U, V, hist), res in zip(ALPHAS, naive, batch):
        e_naive, e_fast = float(hist[-1]["rel_error"]), float(res.history["rel_error"][-1])
        rows.append({"alpha": a, "naive_error": e_naive, "fgd_error": e_fast,
                     "naive_iterations": int(hist[-1]["iteration"]), "fgd_iterations": int(res.n_iter),
                     "error_difference": abs(e_naive - e_fast) / e_naive,
                     "product_difference": float(np.linalg.norm(U @ V.T - res.product()) / np.linalg.norm(U @ V.T))})
    return {"problem": {"n1": N1, "n2": N2, "rank": RANK, "cond": COND, "m": M, "width": WIDTH, "max_iter": max_iter,
                        "record_every": RECORD_EVERY, "tol": TOL, "seed": seed},
            "step_size": float(mu), "rows": rows}


def measurements(max_iter: int = 1000, seed: int = 0) -> dict:
    """The record's deterministic part, recomputed (one BLAS thread; about 25 s of CPU)."""
    truth, op, y = setup(seed)
    mu, naive, batch, _, _ = run_both(truth, op, y, max_iter, seed, threads=1)
    return compared(mu, naive, batch, max_iter, seed)


def report(record: dict) -> str:
    rows = record["rows"]
    timings = record["timings"]
    worst_err = max(r["error_difference"] for r in rows)
    worst_factor = max(r["product_difference"] for r in rows)
    best_naive, best_fgd = min(t["naive_seconds"] for t in timings), min(t["fgd_seconds"] for t in timings)
    p = record["problem"]
    return "\n".join([
        f"# End-to-end: the demo's α sweep ({p['n1']}×{p['n2']}, r={p['rank']}, κ={p['cond']:g}, m={p['m']}, k={p['width']}, "
        f"{p['max_iter']} iterations, monitors every {p['record_every']})",
        "",
        f"Step size μ = {record['step_size']:.6g} (auto, shared). Load average {', '.join(f'{x:.1f}' for x in record['recorded']['load_average'])} "
        f"({record['recorded']['note']}) on {record['recorded']['cores']} cores (machine shared with other processes).",
        "",
        "| α | rel. error (naive) | rel. error (asymsense) | rel. difference | ‖ΔUVᵀ‖/‖UVᵀ‖ |",
        "|---:|---:|---:|---:|---:|",
        *[f"| {r['alpha']:.0e} | {r['naive_error']:.4e} | {r['fgd_error']:.4e} | {r['error_difference']:.1e} | {r['product_difference']:.1e} |" for r in rows],
        "",
        "| BLAS threads | naive NumPy, one trial at a time (s) | asymsense.solvers.fgd, batched (s) | ratio |",
        "|---:|---:|---:|---:|",
        *[f"| {t['threads']} | {t['naive_seconds']:.2f} | {t['fgd_seconds']:.2f} | {t['naive_seconds'] / t['fgd_seconds']:.1f}× |" for t in timings],
        "",
        f"Best against best: naive {best_naive:.2f} s, asymsense {best_fgd:.2f} s, ratio {best_naive / best_fgd:.1f}×.",
        "",
        f"Largest relative difference in final test error: {worst_err:.1e}; in UVᵀ: {worst_factor:.1e}.",
        "",
    ])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="BLAS thread settings; each runs both paths")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, action="append", default=None,
                   help="write the JSON record (a .json path) or the printed report (any other path); may be given twice")
    args = p.parse_args(argv)
    args.out = args.out or []

    truth, op, y = setup(args.seed)
    run_record = RunRecord(argv)
    timings = []
    for threads in args.threads:
        mu, naive, batch, t_naive, t_fast = run_both(truth, op, y, args.max_iter, args.seed, threads)
        timings.append({"threads": threads, "naive_seconds": t_naive, "fgd_seconds": t_fast})
    record = {"recorded": run_record.recorded("bench_end_to_end.py"), **compared(mu, naive, batch, args.max_iter, args.seed), "timings": timings}
    text = report(record)
    print(text)
    for out in args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n" if out.suffix == ".json" else text)
    ok = max(r["product_difference"] for r in record["rows"]) < 1e-6
    if not ok:
        print("results differ beyond float tolerance", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
