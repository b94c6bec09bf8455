"""Fold-in of new users (and new items) on MovieLens-100k, against a full refit.

Protocol (issue 12): hold out 10% of the users entirely (seeded), fit the
default model on the other users' ratings, fold the held-out users in from
half of their ratings (seeded per user), score the other half. Compare with
a full refit that also saw those users' same half, with the bias-only
prediction of the folded-in users (their damped-mean bias, no factor) and
with the fallback for an unknown user (b + c_j). The same with 10% of the
items held out. Fold-in methods: the damped least-squares solve for several
λ and the model's own descent with V fixed (`completion.foldin`).

    python benchmarks/bench_completion_foldin.py [--seeds 0 1 2] [--repeat 7] [--json] [--out FILE.json]

Fold-in seconds are the median of --repeat calls (the load average is printed).
--out writes the rows with the command, date and load: docs/data/completion_foldin.json
is the record docs/build.py renders docs/completion.md's fold-in table from.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from asymsense.completion.io import table_from_ids
from asymsense.completion.model import complete
from asymsense.completion.saved import from_result
from asymsense.datasets import movielens_100k
from asymsense.metrics import rmse
from run_record import RunRecord


def held_out_split(ids, frac, seed):
    """Hold out `frac` of the distinct ids; for each, half of its entries (seeded) are the fold-in set."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(ids)
    out = rng.choice(uniq, size=int(round(frac * len(uniq))), replace=False)
    is_out = np.isin(ids, out)
    half = np.zeros(len(ids), dtype=bool)
    for u in out:
        idx = np.flatnonzero(ids == u)
        half[rng.permutation(idx)[: len(idx) // 2]] = True
    return out, is_out, is_out & half, is_out & ~half


def fit_model(r, c, y, seed):
    t = table_from_ids(r, c, y, duplicates="error")
    started = time.perf_counter()
    res = complete(t.rows, t.cols, t.values, t.shape, seed=seed)
    return from_result(res, t.row_map, t.col_map, (t.rows, t.cols)), time.perf_counter() - started


def run(side: str, seed: int, methods, repeat: int = 7) -> dict:
    users, items, y = movielens_100k()
    key = users if side == "rows" else items
    out, is_out, fold, score = held_out_split(key, 0.1, seed)
    rest = ~is_out
    model, fit_s = fit_model(users[rest], items[rest], y[rest], seed)
    row = {"side": side, "seed": seed, "new": int(len(out)), "fold_entries": int(fold.sum()), "score_entries": int(score.sum()), "fit_seconds": fit_s}
    target = y[score]
    row["unknown_fallback"] = rmse(model.predict(users[score], items[score]), target)
    for name, opts in methods.items():
        times = []
        for _ in range(repeat):  # the median of `repeat` calls: single calls are noisy on a shared machine
            started = time.perf_counter()
            folded = model.fold_in(users[fold], items[fold], y[fold], **opts)
            times.append(time.perf_counter() - started)
        row[f"seconds_{name}"] = float(np.median(times))
        row[name] = rmse(folded.predict(users[score], items[score]), target)
        if name == "ridge_5":
            zero = folded.fit.U.copy(), folded.fit.V.copy()
            new_idx = (folded.row_map if side == "rows" else folded.col_map).encode(out)
            (zero[0] if side == "rows" else zero[1])[new_idx] = 0
            from dataclasses import replace
            bias_only = replace(folded, fit=replace(folded.fit, U=zero[0], V=zero[1]))
            row["bias_only_folded"] = rmse(bias_only.predict(users[score], items[score]), target)
    keep = rest | fold
    refit, _ = fit_model(users[keep], items[keep], y[keep], seed)
    row["full_refit"] = rmse(refit.predict(users[score], items[score]), target)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=7, help="fold-in calls timed per method (median reported)")
    ap.add_argument("--out", default=None, help="write the rows as a JSON record here")
    args = ap.parse_args()
    run_record = RunRecord()
    methods = {f"ridge_{lam:g}": {"method": "ridge", "ridge": lam} for lam in (1.0, 2.0, 5.0, 10.0, 20.0)}
    methods["descent"] = {"method": "descent"}
    rows = [run(side, seed, methods, args.repeat) for side in ("rows", "cols") for seed in args.seeds]
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"recorded": run_record.recorded("bench_completion_foldin.py"), "methods": methods, "rows": rows}, fh, indent=1)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    names = list(methods) + ["bias_only_folded", "unknown_fallback", "full_refit"]
    print("side  seed  new  " + "  ".join(f"{n:>16}" for n in names) + "   s(ridge_5)  s(descent)")
    for r in rows:
        print(f"{r['side']:5} {r['seed']:4} {r['new']:4}  " + "  ".join(f"{r[n]:16.4f}" for n in names) + f"   {r['seconds_ridge_5']:.4f}   {r['seconds_descent']:.4f}")
    for side in ("rows", "cols"):
        sub = [r for r in rows if r["side"] == side]
        print(f"median {side}: " + ", ".join(f"{n} {np.median([r[n] for r in sub]):.4f}" for n in names)
              + f"; fold-in seconds ridge_5 {np.median([r['seconds_ridge_5'] for r in sub]):.4f}, descent {np.median([r['seconds_descent'] for r in sub]):.4f}")


if __name__ == "__main__":
    main()
