"""Result types of the solvers: one field vocabulary for every factored method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asymsense.history import History, concat_histories


@dataclass(kw_only=True)
class FactorResult:
    """The outcome of a factored method, in one vocabulary for every solver
    (SciPy's `OptimizeResult` is the model: data, no printing).

    U, V: the factors (the best iterate on validation data when there was
    any); history: the recorded iterations; stop_reason: "max_iter",
    "converged" (rel_residual ≤ tol) or "patience" (no better validation
    score for `patience` iterations); n_iter: gradient steps taken;
    best_iter: the iteration of U, V when chosen on validation (else None);
    step_size: μ; seconds: wall time; record_seconds: the part of it spent
    recording the history (the monitors at every `record_every`), where the
    method measures it, else None; config: every resolved parameter, seeds
    included, so the run can be repeated.
    """

    U: np.ndarray
    V: np.ndarray
    history: History
    stop_reason: str
    n_iter: int
    step_size: float
    seconds: float
    config: dict = field(default_factory=dict)
    best_iter: int | None = None
    record_seconds: float | None = None

    def product(self) -> np.ndarray:
        """UVᵀ (n1×n2), formed on demand only."""
        return self.U @ self.V.T


@dataclass(kw_only=True)
class FGDResult(FactorResult):
    """One trial of `fgd` or of a sensing baseline."""

    def summary(self) -> dict:
        """The summary.json record of DESIGN.md."""
        h = self.history
        last = h.last()
        return {
            "rel_error": last.get("rel_error"),
            "loss": last["loss"],
            "rel_residual": last["rel_residual"],
            "iterations": self.n_iter,
            "stop_reason": self.stop_reason,
            "max_rel_imbalance": float(np.max(h["rel_imbalance"])),
            "final_rel_imbalance": last["rel_imbalance"],
            "eff_rank": last["eff_rank"],
            "step_size": self.step_size,
            "seconds": self.seconds,
            "config": self.config,
        }


class BatchResult(tuple):
    """What `fgd` returns when `init_scale` or `seed` is a sequence (even of
    length one): one FGDResult per trial, as a tuple, in the order
    seeds × init scales (init scale varying fastest). A scalar init_scale and
    seed give a plain FGDResult."""

    def history_table(self):
        """All trials' histories in one Arrow table with trial, init_scale and seed columns."""
        return concat_histories(
            [r.history for r in self],
            trial=list(range(len(self))),
            init_scale=[r.config["init_scale"] for r in self],
            seed=[r.config["seed"] for r in self],
        )
