"""The benchmarks' fixed MovieLens-100k split (80/10/10, seed 0), read from the installed recbole wheel."""

import numpy as np

from asymsense.completion.io import table_from_ids
from asymsense.datasets import movielens_100k, split_indices


def fixed_split():
    """(table, train, validation, test index arrays, observed (rows, cols) of train + validation,
    test ids decoded to the original user and item ids)."""
    t = table_from_ids(*movielens_100k(), source="movielens-100k")
    tr, va, te = split_indices(t.m, (0.8, 0.1, 0.1), seed=0)
    observed = (np.concatenate([t.rows[tr], t.rows[va]]), np.concatenate([t.cols[tr], t.cols[va]]))
    test_ids = (t.row_map.decode(t.rows[te]), t.col_map.decode(t.cols[te]))
    return t, tr, va, te, observed, test_ids
