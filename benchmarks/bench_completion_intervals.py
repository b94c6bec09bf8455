"""Prediction intervals on MovieLens-100k: empirical coverage of the nominal
50/80/90% intervals (`completion.intervals`: validation residual quantiles by
row × column activity) on the test entries of the fixed 80/10/10 split, for
the default fit of each seed; the single-bin variant (one set of quantiles for
all pairs) for comparison; and the test RMSE of the mean of the seeds' fits
against each single fit.

    python benchmarks/bench_completion_intervals.py [--seeds 0 1 2] [--ensemble 5] [--implicit] [--l2 0.05] [--out FILE.json]

--implicit / --l2 λ: the same measurements for the fit with these options.

With --ensemble B: one seed ensemble (`complete(ensemble=B)`, B members as one
batch): the test RMSE of its mean against each member's, and the coverage of
nominal 80% by (a) the activity-bin conformal intervals around the ensemble
mean (the product's method) and (b) intervals scaled by the members' spread,
ŷ ± q·(s + s̃) with q the level-quantile of |e|/(s + s̃) on the validation
entries (s̃ the median spread) — on the test entries, and on the validation
entries by 2-fold cross-conformal (calibrate on one half, measure the other).

Same as `asymsense complete movielens-100k --out DIR --interval 0.8 --seed S`
(coverage in summary.json) for each seed. --out writes what it prints as a JSON
record (with the command, date and load), which docs/build.py renders.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from asymsense.completion.intervals import fit_calibration
from asymsense.completion.model import complete, member_predictions
from asymsense.completion.saved import from_result
from fixed_split import fixed_split
from asymsense.metrics import rmse
from run_record import RunRecord


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ensemble", type=int, default=0, help="also measure one seed ensemble of this many members (seed: the first)")
    ap.add_argument("--level", type=float, default=0.8)
    ap.add_argument("--implicit", action="store_true")
    ap.add_argument("--l2", type=float, default=0.0)
    ap.add_argument("--out", default=None, help="write the measurements as a JSON record here")
    args = ap.parse_args()
    run_record = RunRecord()
    options = {"implicit": args.implicit, "l2": args.l2}
    t, tr, va, te, observed, test_ids = fixed_split()
    val = (t.rows[va], t.cols[va], t.values[va])
    y = t.values[te]
    record = {"options": options, "test_entries": int(len(te)), "seeds": []}
    print(f"MovieLens-100k fixed split, test entries {len(te)}, options {options}; load average {os.getloadavg()[0]:.1f}")
    if args.ensemble > 1:
        record["ensemble"] = ensemble(t, tr, va, te, observed, args.seeds[0], args.ensemble, args.level, options)
    preds = []
    for seed in args.seeds:
        res = complete(t.rows[tr], t.cols[tr], t.values[tr], t.shape, validation=val, seed=seed, **options)
        row, model = seed_row(res, t, observed, test_ids, y)
        print(f"seed {seed}: test RMSE {row['test_rmse']:.4f}; " + "; ".join(
            f"{r['level']:.0%}: coverage {r['coverage']:.3f} (mean width {r['width']:.2f}; one bin {r['one_bin_coverage']:.3f}, width {r['one_bin_width']:.2f})"
            for r in row["levels"]))
        record["seeds"].append(row)
        preds.append(model.predict(*test_ids))
    if len(preds) > 1:
        singles = [rmse(p, y) for p in preds]
        record["mean_of_seeds_test_rmse"] = rmse(np.mean(preds, axis=0), y)
        print(f"ensemble mean of {len(preds)} seeds: test RMSE {record['mean_of_seeds_test_rmse']:.4f} "
              f"(single fits {', '.join(f'{s:.4f}' for s in singles)}; median {np.median(singles):.4f})")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"recorded": run_record.recorded("bench_completion_intervals.py"), **record}, fh, indent=1)


def seed_row(res, t, observed, test_ids, y) -> tuple[dict, object]:
    """One fit's test RMSE and the coverage and mean width of its nominal 50/80/90% intervals (activity bins,
    and one bin for comparison) on the test entries; and the saved model they come from."""
    model = from_result(res, t.row_map, t.col_map, observed)
    e_val = res.validation_residuals[2]
    row = {"seed": res.config["seed"], "test_rmse": rmse(model.predict(*test_ids), y), "levels": []}
    for level in (0.5, 0.8, 0.9):
        p, lo, hi = model.predict_interval(*test_ids, level=level)
        q = np.quantile(e_val, [(1 - level) / 2, (1 + level) / 2])
        lo1, hi1 = np.clip(p + q[0], *res.clip), np.clip(p + q[1], *res.clip)
        row["levels"].append({"level": level, "coverage": _covered(y, lo, hi), "width": float(np.mean(hi - lo)),
                              "one_bin_coverage": _covered(y, lo1, hi1), "one_bin_width": float(np.mean(hi1 - lo1))})
    return row, model


def _covered(y, lower, upper) -> float:
    return float(np.mean((y >= lower) & (y <= upper)))


def ensemble(t, tr, va, te, observed, seed: int, B: int, level: float, options: dict) -> dict:
    """The --ensemble measurements (module docstring), printed and returned."""
    val = (t.rows[va], t.cols[va], t.values[va])
    y = t.values[te]
    res = complete(t.rows[tr], t.cols[tr], t.values[tr], t.shape, validation=val, seed=seed, ensemble=B, **options)
    model = from_result(res, t.row_map, t.col_map, observed)
    pred = res.predict(t.rows[te], t.cols[te])
    members = np.clip(member_predictions(res, t.rows[te], t.cols[te]), *res.clip)
    singles = [rmse(m, y) for m in members]
    print(f"ensemble of {B} (seeds {res.config['ensemble']['seeds']}, best iterations {res.config['ensemble']['best_iters']}), "
          f"{res.seconds:.1f} s, load {os.getloadavg()[0]:.1f}: test RMSE of the mean {rmse(pred, y):.4f}; members "
          f"{', '.join(f'{s:.4f}' for s in singles)} (median {np.median(singles):.4f})")
    vr, vc, e = res.validation_residuals
    s_val, s_test = res.validation_spread, members.std(axis=0)
    print(f"  members' spread: median {np.median(s_val):.3f} on validation, {np.median(s_test):.3f} on test; "
          f"correlation of |error| with the spread: validation {np.corrcoef(np.abs(e), s_val)[0, 1]:.3f}, "
          f"test {np.corrcoef(np.abs(y - pred), s_test)[0, 1]:.3f}")
    # (a) activity bins (the product's intervals) around the ensemble mean
    lo, hi = model.interval_at(t.rows[te], t.cols[te], pred, level)
    halves = np.arange(len(e)) % 2 == 0
    act_r, act_c = model.activity(np.asarray(vr), np.asarray(vc))
    cross = []
    for cal, test in ((halves, ~halves), (~halves, halves)):
        c = fit_calibration(e[cal], act_r[cal], act_c[cal])
        l, h = c.interval(np.zeros(int(test.sum())), act_r[test], act_c[test], level)
        cross.append(_covered(e[test], l, h))
    print(f"  (a) activity bins, nominal {level:.0%}: test coverage {_covered(y, lo, hi):.3f} (mean width {np.mean(hi - lo):.2f}); "
          f"validation (2-fold cross-conformal) {np.mean(cross):.3f}")
    bins = {"test_coverage": _covered(y, lo, hi), "width": float(np.mean(hi - lo)), "validation_coverage": float(np.mean(cross))}
    # (b) scaled by the members' spread
    floor = float(np.median(s_val))
    q = np.quantile(np.abs(e) / (s_val + floor), level)
    lo_b, hi_b = np.clip(pred - q * (s_test + floor), *res.clip), np.clip(pred + q * (s_test + floor), *res.clip)
    cross = []
    for cal, test in ((halves, ~halves), (~halves, halves)):
        qc = np.quantile(np.abs(e[cal]) / (s_val[cal] + floor), level)
        cross.append(float(np.mean(np.abs(e[test]) <= qc * (s_val[test] + floor))))
    print(f"  (b) spread-scaled, nominal {level:.0%}: test coverage {_covered(y, lo_b, hi_b):.3f} (mean width {np.mean(hi_b - lo_b):.2f}); "
          f"validation (2-fold cross-conformal) {np.mean(cross):.3f}")
    return {"members": B, "seeds": list(res.config["ensemble"]["seeds"]), "best_iters": list(res.config["ensemble"]["best_iters"]),
            "mean_test_rmse": rmse(pred, y), "member_test_rmse": singles, "spread_median_validation": float(np.median(s_val)),
            "spread_median_test": float(np.median(s_test)), "corr_validation": float(np.corrcoef(np.abs(e), s_val)[0, 1]),
            "corr_test": float(np.corrcoef(np.abs(y - pred), s_test)[0, 1]), "level": level,
            "bins": bins, "spread_scaled": {"test_coverage": _covered(y, lo_b, hi_b), "width": float(np.mean(hi_b - lo_b)),
                                             "validation_coverage": float(np.mean(cross))}}


if __name__ == "__main__":
    main()
