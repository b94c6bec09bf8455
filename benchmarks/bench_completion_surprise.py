"""Surprise (scikit-surprise) side by side with asymsense on the SAME 5 folds
of MovieLens-100k: the folds of `asymsense.completion.cv.kfold_indices`
(seeded permutation of the entries, cut in 5), each model fitted on the other
4 folds and scored by test RMSE on the fold. Surprise runs with its default
parameters (SVD: 100 factors, 20 epochs, lr 0.005, reg 0.02; SVD++: 20
factors, 20 epochs, lr 0.007, reg 0.02 — the settings of its README table),
random_state 0; ids unseen in a fold's training set get Surprise's own
fallback (its biases / global mean).

scikit-surprise is a benchmark peer only, not a dependency of asymsense:

    pip install --target /tmp/surprise_pkgs --no-deps scikit-surprise   # 1.1.5: a manylinux wheel
    PYTHONPATH=/tmp/surprise_pkgs python benchmarks/bench_completion_surprise.py [--seed 0] [--k 5] [--skip-svdpp] [--json OUT]

asymsense on the same folds: `asymsense complete movielens-100k --cv 5 --seed 0 --out DIR`
(or benchmarks/bench_completion_cv.py). Fit seconds per fold are printed with
the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from asymsense.completion.cv import kfold_indices
from asymsense.completion.io import table_from_ids
from asymsense.datasets import movielens_100k


def surprise_fold(algo_name: str, users, items, ratings, train, test) -> tuple[float, float]:
    """(test RMSE, fit seconds) of a default Surprise algorithm fitted on `train`, scored on `test`."""
    import pandas as pd
    from surprise import SVD, Dataset, Reader, SVDpp

    algo = {"SVD": SVD, "SVD++": SVDpp}[algo_name](random_state=0)
    frame = pd.DataFrame({"u": users[train], "i": items[train], "r": ratings[train]})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    started = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - started
    pred = np.array([algo.predict(u, i).est for u, i in zip(users[test], items[test])])
    return float(np.sqrt(np.mean((pred - ratings[test]) ** 2))), seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--skip-svdpp", action="store_true", help="SVD only (SVD++ takes minutes per fold)")
    ap.add_argument("--json", default=None, help="write the per-fold results here (rewritten after every fold)")
    args = ap.parse_args(argv)
    users, items, ratings = movielens_100k()
    t = table_from_ids(users, items, ratings, source="movielens-100k")
    # Surprise gets the original ids in the table's entry order, so the folds are the same entries
    u, i, r = t.row_map.decode(t.rows), t.col_map.decode(t.cols), t.values
    folds = kfold_indices(t.m, args.k, args.seed)
    results = {"seed": args.seed, "k": args.k, "runs": {}}
    for name in ["SVD"] + ([] if args.skip_svdpp else ["SVD++"]):
        rows = []
        for f, test in enumerate(folds):
            train = np.ones(t.m, dtype=bool)
            train[test] = False
            load = os.getloadavg()[0]
            score, seconds = surprise_fold(name, u, i, r, train, test)
            rows.append({"fold": f, "test_rmse": score, "seconds": seconds, "load": load})
            print(f"Surprise {name} fold {f + 1}: test RMSE {score:.4f}, fit {seconds:.1f} s, load average {load:.1f}", flush=True)
            results["runs"][name] = rows
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump(results, fh, indent=1)
        s = np.array([x["test_rmse"] for x in rows])
        print(f"| Surprise {name} (run here, defaults, same folds) | {s.mean():.4f} ± {s.std(ddof=1):.4f} | {np.mean([x['seconds'] for x in rows]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
