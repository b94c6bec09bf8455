"""What the saved model adds to `asymsense complete` on MovieLens-100k: seconds of
the default fit (fixed 80/10/10 split) against the seconds of building and
writing DIR/model/ (`completion.saved`: the interval calibration and three
Parquet files + model.json), and of loading it back and predicting the 10,000
test pairs.

    python benchmarks/bench_completion_save.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from asymsense.completion.model import complete
from asymsense.completion.saved import from_result, load_model
from fixed_split import fixed_split


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    t, tr, va, te, observed, ids = fixed_split()
    fit_s, save_s, load_s = [], [], []
    for seed in args.seeds:
        started = time.perf_counter()
        res = complete(t.rows[tr], t.cols[tr], t.values[tr], t.shape, validation=(t.rows[va], t.cols[va], t.values[va]), seed=seed)
        fit_s.append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as d:
            started = time.perf_counter()
            from_result(res, t.row_map, t.col_map, observed).save(os.path.join(d, "model"))
            save_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            load_model(d).predict(*ids)
            load_s.append(time.perf_counter() - started)
    med = lambda xs: float(np.median(xs))  # noqa: E731
    print(f"load average {os.getloadavg()[0]:.1f}; fit {med(fit_s):.3f} s, model build + save {med(save_s):.3f} s "
          f"({med(save_s) / med(fit_s):.1%} of the fit), load + predict 10,000 pairs {med(load_s):.3f} s (medians over seeds {args.seeds})")


if __name__ == "__main__":
    main()
