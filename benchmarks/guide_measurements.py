"""Measurements behind the README guide "Choosing α, width, step size and stopping".

Runs on one small planted problem (30×20, rank 3, κ = 3, dense Gaussian,
m = 5·r(n1+n2−r) = 705; small so that the whole guide runs in seconds and
tests/test_docs_generated.py can rerun it) and returns four tables:

1. init scale α: final test error at a fixed budget, iterations to reach
   test error 1e-2 and the largest relative imbalance (k = n1, one batched
   call over α), with the fitted slope of log error against log α;
2. width k: final error, iterations to 1e-2, effective rank (and, a timing,
   milliseconds per iteration);
3. step constant c in μ = c/‖A*(y)‖₂: iterations to test error 1e-2, or divergence;
4. stopping with noise σ: fixed budget vs validation early stopping vs the
   oracle best iterate (which needs the truth).

Every number except `ms_per_iteration` is deterministic (fixed seeds, one
BLAS thread); docs/build.py renders the tables into README.md.

    python benchmarks/guide_measurements.py [--json FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from asymsense import DivergenceError, fgd, make_operator, measure, planted

N1, N2, RANK, COND = 30, 20, 3, 3.0
M = 5 * RANK * (N1 + N2 - RANK)
BUDGET = 1000
LEVEL = 1e-2


def setup(noise=0.0, seed=0):
    p = planted(N1, N2, RANK, cond=COND, seed=seed)
    op = make_operator("gaussian", N1, N2, M, seed=seed + 1)
    return p, op, measure(p, op, noise=noise, seed=seed + 2)


def first_below(history, column, level):
    below = np.flatnonzero(history[column] <= level)
    return int(history["iteration"][below[0]]) if below.size else None


def alpha_table(p, op, y, budget=BUDGET):
    """k = n1 over α ∈ {1e-1 … 1e-8} in one batch; slope of log final error vs log α (least squares)."""
    scales = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8]
    runs = fgd(op, y, width=N1, init_scale=scales, max_iter=budget, seed=0, truth=p, record_every=10)
    rows = [{"alpha": r.config["init_scale"], "final_error": float(r.history["rel_error"][-1]),
             "iterations_to_level": first_below(r.history, "rel_error", LEVEL),
             "max_rel_imbalance": float(np.max(r.history["rel_imbalance"]))} for r in runs]
    slope = np.polyfit(np.log10(scales), np.log10([row["final_error"] for row in rows]), 1)[0]
    return {"budget": budget, "width": N1, "rows": rows, "slope": float(slope)}


def width_table(p, op, y, budget=BUDGET, runs=None):
    """`runs`, if given, collects the result of each width (the step table reuses k = n1)."""
    rows = []
    for k in [RANK, 2 * RANK, N2 // 2, N2, N1, 2 * N1]:
        started = time.perf_counter()
        r = fgd(op, y, width=k, init_scale=1e-4, max_iter=budget, seed=0, truth=p, record_every=10)
        if runs is not None:
            runs[k] = r
        rows.append({"width": k, "final_error": float(r.history["rel_error"][-1]),
                     "iterations_to_level": first_below(r.history, "rel_error", LEVEL),
                     "eff_rank": float(r.history["eff_rank"][-1]),
                     "ms_per_iteration": (time.perf_counter() - started) / budget * 1e3})
    return {"budget": budget, "alpha": 1e-4, "rows": rows}


def step_table(p, op, y, budget=BUDGET, auto=None):
    """`auto`: the run at c = 0.5 (k = n1, α = 1e-4) if already made (the width table's), reused."""
    rows = []
    for c in [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]:
        try:
            r = auto if (c == 0.5 and auto is not None) else fgd(op, y, width=N1, init_scale=1e-4, max_iter=budget, seed=0, truth=p, step_constant=c, record_every=10)
            rows.append({"c": c, "step_size": float(r.step_size), "iterations_to_level": first_below(r.history, "rel_error", LEVEL),
                         "final_error": float(r.history["rel_error"][-1]), "diverged_at": None})
        except DivergenceError as exc:
            rows.append({"c": c, "step_size": None, "iterations_to_level": None, "final_error": None, "diverged_at": exc.iteration})
    return {"budget": budget, "width": N1, "alpha": 1e-4, "rows": rows}


def stopping_table(noise=1e-2, budget=3000, patience=300, validation=0.1):
    """Fixed budget, the oracle best iterate (argmin of the test error over the
    recorded iterates) and validation early stopping, for k = r and k = n1."""
    p, op, y = setup(noise=noise, seed=4)
    rows = []
    for k in [RANK, N1]:
        full = fgd(op, y, width=k, init_scale=1e-4, max_iter=budget, seed=0, truth=p, record_every=10)
        oracle = int(np.argmin(full.history["rel_error"]))
        early = fgd(op, y, width=k, init_scale=1e-4, max_iter=budget, seed=0, truth=p, record_every=10,
                    validation=validation, patience=patience)
        rows.append({"width": k, "fixed": float(full.history["rel_error"][-1]),
                     "oracle": float(full.history["rel_error"][oracle]), "oracle_iter": int(full.history["iteration"][oracle]),
                     "early": float(early.history["rel_error"][np.argmin(early.history["val_loss"])]),
                     "best_iter": int(early.best_iter), "stopped": int(early.n_iter)})
    return {"noise": noise, "budget": budget, "patience": patience, "validation": validation, "rows": rows}


def measurements() -> dict:
    """The four tables as plain records (one BLAS thread: the numbers do not depend on the machine's load)."""
    with threadpool_limits(1):
        p, op, y = setup()
        runs = {}
        width = width_table(p, op, y, runs=runs)
        return {"problem": {"n1": N1, "n2": N2, "rank": RANK, "cond": COND, "m": M, "operator": "gaussian", "seed": 0},
                "alpha": alpha_table(p, op, y), "width": width, "step": step_table(p, op, y, auto=runs[N1]),
                "stopping": stopping_table()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the records to this JSON file (default: print them)")
    args = parser.parse_args()
    record = measurements()
    load = os.getloadavg()
    record["recorded"] = {"command": "python benchmarks/guide_measurements.py" + (f" --json {args.json}" if args.json else ""),
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
                          "load_average": [round(x, 1) for x in load]}
    text = json.dumps(record, indent=1)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
