"""Feature-based biases on MovieLens-100k (issue 12, item 4/6: side features in
training, measured before building): on the fixed 80/10/10 split, the
bias-only model b + r_i + c_j fitted on train + validation, against the same
with one side's biases damped toward a ridge prediction from that side's
features instead of toward 0:

    c_j = (Σ_{i∈Ω_j}(y_ij − b − r_i) + λ·x_jᵀw) / (|Ω_j| + λ),   λ = 25 (rows: 10),

w = `completion.features.feature_map` of the damped biases (each id weighted
by n/(n + 25)). Test RMSE of the clipped predictions. The gain bounds what
such biases could add to the full model, whose factors already carry most of
the items' effects.

    python benchmarks/bench_completion_featurebias.py
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asymsense.completion.biases import BIAS_DAMPING, fit_biases
from asymsense.completion.features import feature_map, read_features
from asymsense.datasets import movielens_100k_path
from asymsense.metrics import rmse
from fixed_split import fixed_split


def main():
    t, tr, va, te, _, _ = fixed_split()
    rest = np.concatenate([tr, va])
    R, C, Y = t.rows[rest], t.cols[rest], t.values[rest]
    b = fit_biases(R, C, Y, t.shape)

    def score(biases):
        return rmse(np.clip(biases(t.rows[te], t.cols[te]), *(Y.min(), Y.max())), t.values[te])

    print(f"bias only: test RMSE {score(b):.4f}")
    for side, suffix, ids, damping in (("columns", ".item", t.col_map.ids, BIAS_DAMPING[1]), ("rows", ".user", t.row_map.ids, BIAS_DAMPING[0])):
        feats = read_features(movielens_100k_path().with_suffix(suffix))
        pos, found = feats.rows_for(ids)
        X = feats.X[pos]
        index, other = (C, b.rows[R]) if side == "columns" else (R, b.cols[C])
        counts = np.bincount(index, minlength=len(ids))
        own = b.cols if side == "columns" else b.rows
        prior = (X @ feature_map(X, own[:, None], counts))[:, 0]
        damped = (np.bincount(index, Y - b.mean - other, minlength=len(ids)) + damping * prior) / (counts + damping)
        changed = dataclasses.replace(b, **({"cols": damped} if side == "columns" else {"rows": damped}))
        print(f"{side} biases damped toward their {suffix[1:]} features ({X.shape[1]} columns, {found.mean():.0%} of ids found): "
              f"test RMSE {score(changed):.4f}")


if __name__ == "__main__":
    main()
