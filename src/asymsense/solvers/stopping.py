"""Early stopping without the truth: a validation split, patience, the best iterate."""

from __future__ import annotations

import numbers

import numpy as np

from asymsense.errors import InputError


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
    n_val = int(round(validation * operator.m))
    if n_val < 1 or n_val >= operator.m:
        raise InputError(f"validation={validation} leaves {n_val} of m = {operator.m} measurements for validation; need at least one on each side")
    perm = np.random.default_rng([seed, 0x5EED]).permutation(operator.m)
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    desc = {"kind": "fraction", "fraction": float(validation), "m": n_val, "seed": seed}
    return operator.take(train_idx), y[train_idx], operator.take(val_idx), y[val_idx], desc


class BestIterate:
    """Tracks, per trial, the lowest validation loss, the iterate that reached
    it, and whether `patience` iterations have passed without improvement."""

    def __init__(self, batch: int, patience: int | None):
        self.patience = patience
        self.best_loss = np.full(batch, np.inf)
        self.best_iter = [0] * batch
        self.U: dict[int, np.ndarray] = {}
        self.V: dict[int, np.ndarray] = {}

    def update(self, t, trials, val_loss, U, V):
        """Record losses of `trials` at iteration t; yields (trial, should_stop)."""
        for j, b in enumerate(trials):
            if val_loss[j] < self.best_loss[b]:
                self.best_loss[b] = val_loss[j]
                self.best_iter[b] = t
                self.U[b], self.V[b] = U[b].copy(), V[b].copy()
            yield b, self.patience is not None and t - self.best_iter[b] >= self.patience

    def restore(self, U, V):
        U, V = U.copy(), V.copy()
        for b in self.U:
            U[b], V[b] = self.U[b], self.V[b]
        return U, V
