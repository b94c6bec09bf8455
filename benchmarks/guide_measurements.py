"""Measurements behind the README guide "Choosing α, width, step size and stopping".

Runs on the demo's problem (60×40, rank 3, κ = 3, dense Gaussian, m = 5·r(n1+n2−r))
and prints four Markdown tables:

1. init scale α: final test error at a fixed budget and iterations to reach
   test error 1e-2 (width k = 60, one batched call over α);
2. width k: final error, iterations to 1e-2, seconds per iteration;
3. step constant c in μ = c/‖A*(y)‖₂: iterations to test error 1e-2, or divergence;
4. stopping with noise σ: fixed budget vs validation early stopping vs the
   oracle best iterate (which needs the truth).

    python benchmarks/guide_measurements.py [--out FILE.md]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from asymsense import DivergenceError, fgd, make_operator, measure, planted

N1, N2, RANK, COND = 60, 40, 3, 3.0
M = 5 * RANK * (N1 + N2 - RANK)


def setup(noise=0.0, seed=0):
    p = planted(N1, N2, RANK, cond=COND, seed=seed)
    op = make_operator("gaussian", N1, N2, M, seed=seed + 1)
    return p, op, measure(p, op, noise=noise, seed=seed + 2)


def first_below(history, column, level):
    below = np.flatnonzero(history[column] <= level)
    return int(history["iteration"][below[0]]) if below.size else None


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def alpha_table(p, op, y, budget=1500):
    scales = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8]
    runs = fgd(op, y, width=N1, init_scale=scales, max_iter=budget, seed=0, truth=p, record_every=5)
    rows = [(f"{r.config['init_scale']:.0e}", f"{r.history['rel_error'][-1]:.2e}", first_below(r.history, "rel_error", 1e-2), f"{np.max(r.history['rel_imbalance']):.1e}") for r in runs]
    errors = np.array([r.history["rel_error"][-1] for r in runs])
    slope = np.polyfit(np.log10(scales), np.log10(errors), 1)[0]
    return table(["α", f"test error after {budget} it.", "iterations to 1e-2", "max rel. imbalance"], rows) + f"\n\nFitted slope of log error vs log α: {slope:.2f}"


def width_table(p, op, y, budget=1500):
    rows = []
    for k in [RANK, 2 * RANK, N2 // 2, N2, N1, 2 * N1]:
        started = time.perf_counter()
        r = fgd(op, y, width=k, init_scale=1e-4, max_iter=budget, seed=0, truth=p, record_every=5)
        per_iter = (time.perf_counter() - started) / budget
        rows.append((k, f"{r.history['rel_error'][-1]:.2e}", first_below(r.history, "rel_error", 1e-2), f"{r.history['eff_rank'][-1]:.2f}", f"{per_iter * 1e3:.2f}"))
    return table(["width k", "test error", "iterations to 1e-2", "eff. rank", "ms / iteration"], rows)


def step_table(p, op, y, budget=1500):
    rows = []
    for c in [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]:
        try:
            r = fgd(op, y, width=N1, init_scale=1e-4, max_iter=budget, seed=0, truth=p, step_constant=c, record_every=5)
            rows.append((c, f"{r.step_size:.3f}", first_below(r.history, "rel_error", 1e-2), f"{r.history['rel_error'][-1]:.1e}"))
        except DivergenceError:
            rows.append((c, "—", "diverged", "—"))
    return table(["c", "μ", "iterations to test error 1e-2", f"test error after {budget} it."], rows)


def stopping_table(noise=1e-2, budget=6000):
    p, op, y = setup(noise=noise, seed=4)
    rows = []
    for k in [RANK, N1]:
        full = fgd(op, y, width=k, init_scale=1e-4, max_iter=budget, seed=0, truth=p, record_every=10)
        oracle = int(np.argmin(full.history["rel_error"]))
        early = fgd(op, y, width=k, init_scale=1e-4, max_iter=budget, seed=0, truth=p, record_every=10, validation=0.1, patience=300)
        rows.append((k, f"{full.history['rel_error'][-1]:.3e}", f"{full.history['rel_error'][oracle]:.3e} (it. {full.history['iteration'][oracle]})",
                     f"{early.history['rel_error'][np.argmin(early.history['val_loss'])]:.3e} (it. {early.best_iter}, stopped {early.n_iter})"))
    return table(["width k", f"fixed budget {budget}", "oracle best iterate", "validation 10% + patience 300"], rows) + f"\n\nNoise σ = {noise}, m = {M}."


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="also write the tables to this Markdown file")
    args = parser.parse_args()
    with threadpool_limits(1):  # one BLAS thread: robust when the other core is busy
        run(args)


def run(args):
    p, op, y = setup()
    sections = [
        ("Init scale α (k = 60)", alpha_table(p, op, y)),
        ("Width k (α = 1e-4)", width_table(p, op, y)),
        ("Step constant c (k = 60, α = 1e-4)", step_table(p, op, y)),
        ("Stopping with noisy measurements", stopping_table()),
    ]
    text = "\n\n".join(f"### {title}\n\n{body}" for title, body in sections)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
