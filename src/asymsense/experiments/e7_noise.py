"""E7 — noise: overparameterized models overfit as iterations go on;
validation early stopping against the oracle best iterate."""

from __future__ import annotations

import numpy as np

from ..fgd import fgd
from ..metrics import as_truth, distance_to_truth
from .custom import trial_method
from .methods import build_problem


@trial_method({})
def noise_trial(params: dict):
    """Two runs on one noisy problem.

    1. FGD on all m measurements for max_iter iterations, test error recorded:
       the oracle best iterate is the recorded minimum (it needs the truth), the
       final error shows the overfitting.
    2. FGD with a fraction `validation` held out and `patience`: the returned
       iterate is the one with the lowest validation loss (no truth used).

    Summary: best_error, best_iter, final_error, overfit_ratio = final/best,
    val_error (test error of the validation-selected iterate), val_iter,
    val_ratio = val_error/best_error. History: run 1's record.
    """
    truth, op, y = build_problem(params)
    common = dict(width=params["width"], init_scale=params["alpha"], step_size=params["step"], seed=params["seed"],
                  truth=truth, record_every=params["record_every"], dtype=params["dtype"],
                  step_constant=params["step_constant"], n_singular=params["n_singular"])
    full = fgd(op, y, max_iter=params["max_iter"], **common)
    err = full.history["rel_error"]
    best = int(np.argmin(err))
    val = fgd(op, y, max_iter=params["max_iter"], validation=params["validation"], patience=params["patience"], **common)
    t = as_truth(truth)
    val_error = float(distance_to_truth(val.U[None], val.V[None], t)[0] / t.frobenius)
    summary = {
        "rel_error": float(err[-1]),
        "final_error": float(err[-1]),
        "best_error": float(err[best]),
        "best_iter": int(full.history["iteration"][best]),
        "overfit_ratio": float(err[-1] / err[best]),
        "val_error": val_error,
        "val_iter": int(val.best_iter),
        "val_stop_iter": int(val.n_iter),
        "val_ratio": float(val_error / err[best]),
        "iterations": int(full.n_iter),
        "step_size": float(full.step_size),
        "max_rel_imbalance": float(np.max(full.history["rel_imbalance"])),
    }
    return summary, full.history
