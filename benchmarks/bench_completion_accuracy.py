"""Accuracy levers of issue 12 on MovieLens-100k, each configuration measured
the same two ways: the fixed 80/10/10 split of benchmarks/fixed_split.py
(fit on train, early-stopped on validation, refit on train + validation unless
refit=False; test RMSE) and 5-fold CV over entries (`completion.cv.cross_validate`,
the folds of `asymsense complete movielens-100k --cv 5 --seed 0`: mean ± sd of
the fold test RMSEs, fit seconds per fold).

Configurations (`--configs`, names below): the default (the paper's algorithm),
a seed ensemble of B members run as one batch (`ensemble=B`), the optional
count-weighted L2, both together, the default without the refit, and the
rating pattern as known row features (`implicit=True`, SVD++'s implicit term)
alone and with the others.
Every line carries the load average before and after it (2 shared cores:
seconds are only comparable within one run).

    python benchmarks/bench_completion_accuracy.py [--configs default ensemble3 l2 l2_ensemble3 no_refit] [--seed 0] [--no-cv] [--json OUT]
    python benchmarks/bench_completion_accuracy.py --timing-rounds 3 --configs default implicit ...

--timing-rounds N: instead, the fixed-split fit of each configuration N times,
interleaved (round 1: every configuration, round 2: …), and the median
seconds and their ratio to the first configuration's (the load moves on a
shared machine; interleaving exposes every configuration to the same moments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from asymsense.completion.cv import cross_validate
from asymsense.completion.model import complete
from asymsense.metrics import rmse
from fixed_split import fixed_split

CONFIGS = {
    "default": {},
    "ensemble3": {"ensemble": 3},
    "ensemble5": {"ensemble": 5},
    "l2": {"l2": 0.05},
    "l2_ensemble3": {"l2": 0.05, "ensemble": 3},
    "l2_0.1": {"l2": 0.1},
    "no_refit": {"refit": False},
    "implicit": {"implicit": True},
    "implicit_l2": {"implicit": True, "l2": 0.05},
    "implicit_l2_ensemble3": {"implicit": True, "l2": 0.05, "ensemble": 3},
    "implicit_l2_0.1": {"implicit": True, "l2": 0.1},
}


def measure(name: str, t, tr, va, te, seed: int = 0, with_cv: bool = True, cv_folds=None) -> dict:
    """One configuration: the fixed split's test and validation RMSE, best iteration and seconds, and (with_cv) the 5-fold CV
    of `cross_validate` (the folds of `asymsense complete DATA --cv 5 --seed S`; `cv_folds`: only those), each with the load
    before and after."""
    kw = CONFIGS[name]
    train, val = (t.rows[tr], t.cols[tr], t.values[tr]), (t.rows[va], t.cols[va], t.values[va])
    load0 = os.getloadavg()[0]
    started = time.perf_counter()
    res = complete(*train, t.shape, validation=val, seed=seed, **kw)
    seconds = time.perf_counter() - started
    row = {"options": kw, "fixed": {"test_rmse": rmse(res.predict(t.rows[te], t.cols[te]), t.values[te]), "val_rmse": res.val_rmse,
                                    "seconds": seconds, "best_iter": res.best_iter, "load": [load0, os.getloadavg()[0]]}}
    print(f"{name} {kw}: fixed split test RMSE {row['fixed']['test_rmse']:.4f} (val {res.val_rmse:.4f}, best iter {res.best_iter}), "
          f"{seconds:.1f} s, load {load0:.1f}->{os.getloadavg()[0]:.1f}", flush=True)
    if with_cv:
        load0 = os.getloadavg()[0]
        cv = cross_validate(t.rows, t.cols, t.values, t.shape, 5, seed=seed, only=cv_folds, **kw)
        row["cv"] = {**cv, "load": [load0, os.getloadavg()[0]]}
        scores = ", ".join(f"{f['test_rmse']:.4f}" for f in cv["folds"])
        times = ", ".join(f"{f['seconds']:.1f}" for f in cv["folds"])
        print(f"{name}: 5-fold CV {cv['test_rmse_mean']:.4f} ± {cv['test_rmse_sd']:.4f} (folds {scores}); fit s per fold {times}; "
              f"load {load0:.1f}->{os.getloadavg()[0]:.1f}", flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["default", "ensemble3", "l2", "l2_ensemble3", "no_refit"], choices=sorted(CONFIGS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cv", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here (rewritten after every configuration)")
    ap.add_argument("--timing-rounds", type=int, default=0, help="only time the fixed-split fits, interleaved (see above)")
    args = ap.parse_args(argv)
    t, tr, va, te, _, _ = fixed_split()
    train, val = (t.rows[tr], t.cols[tr], t.values[tr]), (t.rows[va], t.cols[va], t.values[va])
    if args.timing_rounds:
        seconds = {name: [] for name in args.configs}
        loads = [os.getloadavg()[0]]
        for _ in range(args.timing_rounds):
            for name in args.configs:
                started = time.perf_counter()
                complete(*train, t.shape, validation=val, seed=args.seed, **CONFIGS[name])
                seconds[name].append(time.perf_counter() - started)
            loads.append(os.getloadavg()[0])
        first = float(np.median(seconds[args.configs[0]]))
        for name in args.configs:
            med = float(np.median(seconds[name]))
            print(f"{name}: median {med:.2f} s over {args.timing_rounds} interleaved rounds ({', '.join(f'{x:.2f}' for x in seconds[name])}), "
                  f"{med / first:.2f}x {args.configs[0]}")
        print(f"load average at the start and after each round: {', '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} cores")
        return
    started_at = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    out = {"seed": args.seed, "cores": os.cpu_count(), "configs": {},
           "recorded": {"command": "python benchmarks/bench_completion_accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                        "date": started_at + " UTC", "cores": os.cpu_count(), "load_average": [os.getloadavg()[0]] * 2,
                        "note": "1-minute load average at the start → at the end"}}
    for name in args.configs:
        row = measure(name, t, tr, va, te, args.seed, with_cv=not args.no_cv)
        out["configs"][name] = row
        out["recorded"]["date"] = f"{started_at}–{time.strftime('%H:%M', time.gmtime())} UTC"
        out["recorded"]["load_average"][1] = os.getloadavg()[0]
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(out, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
