"""Cold start from side features on MovieLens-100k: 10% of the items (or users)
held out entirely (seeded), the default model fitted on the rest, and the held-out
ids' test ratings predicted (a) by the biases-only fallback b + r_i (the model
knows nothing about the item) and (b) from the item's features — release year,
genres, title words (the user's age, gender, occupation, zip code) — by
`SavedModel.cold_start` (`completion.features`). The features are the `recbole`
wheel's ml-100k.item / ml-100k.user files.

    python benchmarks/bench_completion_coldstart.py [--seeds 0 1 2] [--out FILE.json]

--out writes the rows as a JSON record (command, date, load) that docs/build.py renders.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from asymsense.completion.features import read_features
from asymsense.completion.io import table_from_ids
from asymsense.completion.model import complete
from asymsense.completion.saved import from_result
from asymsense.datasets import movielens_100k, movielens_100k_path
from asymsense.metrics import rmse
from run_record import RunRecord


def measure(seeds) -> list[dict]:
    """Per side (items, users) and seed: the held-out ids' RMSE by the biases-only fallback and from features."""
    folder = movielens_100k_path().parent
    feats = {"cols": read_features(folder / "ml-100k.item"), "rows": read_features(folder / "ml-100k.user")}
    users, items, y = movielens_100k()
    print(f"load average {os.getloadavg()[0]:.1f}; item features: {feats['cols'].X.shape[1]} columns, user features: {feats['rows'].X.shape[1]}")
    rows = []
    for side in ("cols", "rows"):
        key = items if side == "cols" else users
        for seed in seeds:
            rng = np.random.default_rng(seed)
            uniq = np.unique(key)
            out = rng.choice(uniq, size=int(round(0.1 * len(uniq))), replace=False)
            held = np.isin(key, out)
            t = table_from_ids(users[~held], items[~held], y[~held])
            res = complete(t.rows, t.cols, t.values, t.shape, seed=seed)
            model = from_result(res, t.row_map, t.col_map, (t.rows, t.cols))
            fallback = rmse(model.predict(users[held], items[held]), y[held])
            started = time.perf_counter()
            cold = model.cold_start(**{f"{side[:-1]}_features": feats[side]}, ids=(out, []) if side == "rows" else ([], out))
            seconds = time.perf_counter() - started
            with_features = rmse(cold.predict(users[held], items[held]), y[held])
            name = "items" if side == "cols" else "users"
            print(f"new {name} seed {seed}: {len(out)} ids, {int(held.sum())} test ratings: biases-only fallback {fallback:.4f}, "
                  f"from features {with_features:.4f} (gain {fallback - with_features:.4f}), cold start {seconds:.3f} s")
            rows.append({"side": name, "seed": seed, "new": int(len(out)), "test_ratings": int(held.sum()), "fallback": fallback,
                         "from_features": with_features, "seconds": seconds, "feature_columns": int(feats[side].X.shape[1])})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=None, help="write the rows as a JSON record here")
    args = ap.parse_args()
    run_record = RunRecord()
    rows = measure(args.seeds)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"recorded": run_record.recorded("bench_completion_coldstart.py"), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
