"""Held-out data for early stopping without the truth: the seeded splits.

The descent loop (`asymsense.solvers.loop`) keeps the best iterate on the
held-out part and stops after `patience` iterations without improvement;
this module decides what is held out. Every split draws from
default_rng([seed, salt]) with its own salt (SPLIT_SALTS), so a split never
shares a random stream with the initialization drawn from `seed` itself.
"""

from __future__ import annotations

import numbers

import numpy as np

from asymsense.errors import InputError
from asymsense.validation import check_validation_split

SPLIT_SALTS = {"measurements": 0x5EED, "entries": 0xC0DE}
"""The salt of each split's generator (values fixed: they decide which data are held out)."""

VALIDATION_KINDS = ("entries", "rows")


def split_measurements(operator, y, validation, *, seed: int):
    """Return (train_op, y_train, val_op, y_val, description).

    `validation` is None (no split), a fraction in (0, 1) of the measurements
    held out uniformly at random with `seed`, or an explicit (operator, y) pair.
    """
    if validation is None:
        return operator, y, None, None, None
    if isinstance(validation, tuple):
        if len(validation) != 2:
            raise InputError("validation must be a fraction or an (operator, y) pair")
        val_op, y_val = validation
        if val_op.shape != operator.shape:
            raise InputError(f"validation operator shape {val_op.shape} does not match {operator.shape}")
        return operator, y, val_op, val_op.check_measurements(y_val, "validation y"), {"kind": "given", "m": val_op.m}
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real) or not 0 < validation < 1:
        raise InputError(f"validation must be a fraction in (0, 1) or an (operator, y) pair, got {validation!r}")
    n_val = check_validation_split(validation, operator.m)
    perm = np.random.default_rng([seed, SPLIT_SALTS["measurements"]]).permutation(operator.m)
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    desc = {"kind": "fraction", "fraction": float(validation), "m": n_val, "seed": seed}
    return operator.take(train_idx), y[train_idx], operator.take(val_idx), y[val_idx], desc


def split_entries(rows, n1: int, fraction: float, kind: str, seed: int):
    """(train_index, val_index) of the observed entries.

    kind='entries': a uniformly random `fraction` of all entries.
    kind='rows': round(fraction·|Ω_i|) entries of each row i, always leaving at
    least one in training (rows with a single entry keep it), so every row is
    validated in proportion to how much it is observed.
    """
    if kind not in VALIDATION_KINDS:
        raise InputError(f"validation_kind must be one of {', '.join(VALIDATION_KINDS)}, got {kind!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise InputError(f"validation must be a fraction in (0, 1), got {fraction!r}", "validation")
    m = len(rows)
    rng = np.random.default_rng([seed, SPLIT_SALTS["entries"]])
    if kind == "entries":
        n_val = int(round(fraction * m))
        if n_val < 1 or n_val >= m:
            raise InputError(f"validation={fraction} leaves {n_val} of {m} entries for validation; need at least one on each side")
        perm = rng.permutation(m)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    key = rng.random(m)
    order = np.lexsort((key, rows))
    counts = np.bincount(rows, minlength=n1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m) - starts[rows[order]]
    take = np.minimum(np.round(fraction * counts), np.maximum(counts - 1, 0))
    is_val = rank < take[rows]
    if not is_val.any() or is_val.all():
        raise InputError(f"validation={fraction} with validation_kind='rows' holds out {int(is_val.sum())} of {m} entries; need at least one on each side")
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
