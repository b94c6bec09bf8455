"""Prediction intervals on MovieLens-100k: empirical coverage of the nominal
50/80/90% intervals (`completion.intervals`: validation residual quantiles by
row × column activity) on the test entries of the fixed 80/10/10 split, for
the default fit of each seed; the single-bin variant (one set of quantiles for
all pairs) for comparison; and the test RMSE of the mean of the seeds' fits
against each single fit.

    python benchmarks/bench_completion_intervals.py [--seeds 0 1 2]

Same as `asymsense complete movielens-100k --out DIR --interval 0.8 --seed S`
(coverage in summary.json) for each seed.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from asymsense.completion.model import complete
from asymsense.completion.saved import from_result
from movielens_split import fixed_split
from asymsense.metrics import rmse


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    t, tr, va, te, observed, test_ids = fixed_split()
    val = (t.rows[va], t.cols[va], t.values[va])
    y = t.values[te]
    print(f"MovieLens-100k fixed split, test entries {len(te)}; load average {os.getloadavg()[0]:.1f}")
    preds = []
    for seed in args.seeds:
        res = complete(t.rows[tr], t.cols[tr], t.values[tr], t.shape, validation=val, seed=seed)
        model = from_result(res, t.row_map, t.col_map, observed)
        e_val = res.validation_residuals[2]
        line = [f"seed {seed}: test RMSE {rmse(model.predict(*test_ids), y):.4f}"]
        for level in (0.5, 0.8, 0.9):
            p, lo, hi = model.predict_interval(*test_ids, level=level)
            cover = np.mean((y >= lo) & (y <= hi))
            q = np.quantile(e_val, [(1 - level) / 2, (1 + level) / 2])
            lo1, hi1 = np.clip(p + q[0], *res.clip), np.clip(p + q[1], *res.clip)
            cover1 = np.mean((y >= lo1) & (y <= hi1))
            line.append(f"{level:.0%}: coverage {cover:.3f} (mean width {np.mean(hi - lo):.2f}; one bin {cover1:.3f}, width {np.mean(hi1 - lo1):.2f})")
        print("; ".join(line))
        preds.append(model.predict(*test_ids))
    if len(preds) > 1:
        singles = [rmse(p, y) for p in preds]
        print(f"ensemble mean of {len(preds)} seeds: test RMSE {rmse(np.mean(preds, axis=0), y):.4f} "
              f"(single fits {', '.join(f'{s:.4f}' for s in singles)}; median {np.median(singles):.4f})")


if __name__ == "__main__":
    main()
