"""5-fold cross-validation on MovieLens-100k (the protocol of the published
Surprise numbers): `asymsense.completion.cv.cross_validate` with the default
settings (the paper's algorithm: biases, factorized GD from small random
initialization, early stopping on 10% of each run's data, refit), and
optionally the count-weighted L2 option. Prints per-fold test RMSE and fit
seconds (wall) and CPU seconds of the process per fold (`time.process_time`,
all threads: on a shared machine the wall time stretches with the load, the
CPU time much less), and mean ± sd.

    python benchmarks/bench_completion_cv.py [--k 5] [--seed 0] [--l2 0.05] [--json]
    python benchmarks/bench_completion_cv.py --time-split [--seed 0] [--out FILE.json]

The same as `asymsense complete movielens-100k --cv 5 --seed 0 --out DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from asymsense.completion.cv import cross_validate, run_time_split
from asymsense.completion.io import table_from_ids
from asymsense.datasets import movielens_100k
from run_record import RunRecord

PUBLISHED = {"Surprise SVD (published, 5-fold)": 0.934, "Surprise SVD++ (published, 5-fold)": 0.919}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--l2", type=float, nargs="*", default=[], help="also run these optional l2 weights")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--time-split", action="store_true", help="instead: the time split (each user's latest 10%% of ratings held out)")
    ap.add_argument("--out", default=None, help="with --time-split: write its summary as a JSON record here")
    args = ap.parse_args()
    run_record = RunRecord()
    if args.time_split:
        with tempfile.TemporaryDirectory() as out:
            s = run_time_split("movielens-100k", out, fit_options={"seed": args.seed})
        print(f"MovieLens-100k time split (latest 10% of each user's ratings, {s['split']['m_test']} test ratings), seed {args.seed}, "
              f"load average {os.getloadavg()[0]:.1f}: test RMSE {s['test_rmse']:.4f}, biases only {s['test_rmse_biases']:.4f}, "
              f"best iteration {s['best_iter']}, {s['seconds']:.2f} s")
        if args.out:
            keep = {k: s[k] for k in ("test_rmse", "test_rmse_biases", "best_iter", "seconds")}
            with open(args.out, "w") as fh:
                json.dump({"recorded": run_record.recorded("bench_completion_cv.py"), "seed": args.seed, "m_test": s["split"]["m_test"], **keep},
                          fh, indent=1)
        return
    t = table_from_ids(*movielens_100k(), source="movielens-100k")
    load = os.getloadavg()
    runs = {"asymsense default": _with_cpu(t, args)}
    for l2 in args.l2:
        runs[f"asymsense l2={l2:g}"] = _with_cpu(t, args, l2=l2)
    if args.json:
        print(json.dumps({"load_before": load, "runs": runs}, indent=1))
        return
    print(f"MovieLens-100k, {args.k}-fold CV over entries (seed {args.seed}); load average before {load[0]:.1f}")
    for name, cv in runs.items():
        for f in cv["folds"]:
            print(f"  {name} fold {f['fold'] + 1}: test RMSE {f['test_rmse']:.4f}, best iter {f['best_iter']}, {f['seconds']:.2f} s "
                  f"({f['cpu_seconds']:.2f} CPU s, load {f['load']:.1f})")
    print("| method | test RMSE (mean ± sd over folds) | seconds per fold (mean) |")
    print("|---|---|---|")
    for name, cv in runs.items():
        print(f"| {name} | {cv['test_rmse_mean']:.4f} ± {cv['test_rmse_sd']:.4f} | {cv['seconds_mean']:.2f} |")
    for name, value in PUBLISHED.items():
        print(f"| {name} | {value:.3f} | — |")



def _with_cpu(t, args, **options) -> dict:
    """cross_validate, each fold also with the process's CPU seconds (fit + scoring) and the load at its end."""
    marks = [(time.process_time(), os.getloadavg()[0])]

    def progress(fold, score):
        marks.append((time.process_time(), os.getloadavg()[0]))

    cv = cross_validate(t.rows, t.cols, t.values, t.shape, args.k, seed=args.seed, progress=progress, **options)
    for f, a, b in zip(cv["folds"], marks, marks[1:]):
        f["cpu_seconds"], f["load"] = b[0] - a[0], b[1]
    return cv


if __name__ == "__main__":
    main()
