"""E7 — noise: overparameterized models overfit as iterations go on;
validation early stopping against the oracle best iterate."""

from __future__ import annotations

import numpy as np

from asymsense.metrics import as_truth, distance_to_truth
from asymsense.paper import plotting
from asymsense.paper.claims import claim
from asymsense.paper.context import Section  # noqa: F401 (analyze returns one)
from asymsense.paper.fitting import median_ci
from asymsense.paper.regime import regime
from asymsense.solvers.fgd import fgd
from asymsense.sweep.custom import trial_method
from asymsense.sweep.methods import build_problem


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


def claims(res: dict, cfg: dict) -> list:
    """E7.a (res["overfit"]: final/best error of the widest model, per seed) and
    E7.b (res["val_ratio"]: validation-stopped/oracle error per seed, the worse of its k > r widths)."""
    return [
        claim("E7.a", "e7", f"an overparameterized model (k = {res['widest']}) overfits the noise as iterations go on", "final / best test error (median)",
              median_ci(res["overfit"]) if len(res["overfit"]) else None, ">=", cfg["min_overfit_ratio"]),
        claim("E7.b", "e7", "validation early stopping (no truth, 20% held out) is close to the oracle best iterate, k > r", "validation-stopped / oracle error (median over seeds of the worse k > r)",
              median_ci(res["val_ratio"]) if len(res["val_ratio"]) else None, "<=", cfg["max_validation_ratio"]),
    ]


def analyze(ctx):
    cfg = ctx.analysis
    sec = ctx.section()
    t = ctx.trials("noise")
    hist = ctx.histories("noise")
    rank = int(t.num("rank")[0])
    widths = [int(w) for w in t.unique("width")]
    fig, axes = plotting.new(ncols=2, width=5.0, height=3.6)
    cols = plotting.colors(len(widths))
    rows = ["| k | best error (oracle) | best iteration | final error | final/best | validation-stopped error | val/oracle |", "|---|---|---|---|---|---|---|"]
    for pos, (k, c) in enumerate(zip(widths, cols)):
        sub = t.eq(width=k)
        for i, key in enumerate(sub.col("key")):
            if key in hist:
                h = hist[key]
                it, err = np.maximum(h.num("iteration"), 1), h.num("rel_error")
                axes[0].loglog(it, err, color=c, lw=1, label=f"k = {k}" if i == 0 else None)
                best = int(np.argmin(err))
                stop = int(np.argmin(np.abs(it - max(1.0, float(sub.num("val_iter")[i])))))
                first = pos == 0 and i == 0
                axes[0].plot(it[best], err[best], "v", color=c, mec="k", mew=0.5, ms=6, label="oracle best iterate" if first else None)
                axes[0].plot(it[stop], err[stop], "X", color=c, mec="k", mew=0.5, ms=6, label="validation stop (its iteration)" if first else None)
        axes[1].plot(np.full(len(sub), pos - 0.1), sub.num("overfit_ratio"), "o", color=c, ms=4)
        axes[1].plot(np.full(len(sub), pos + 0.1), sub.num("val_ratio"), "s", mfc="none", color=c, ms=5)
        med = {n: float(np.median(sub.num(n))) for n in ("best_error", "best_iter", "final_error", "overfit_ratio", "val_error", "val_ratio")}
        rows.append(f"| {k} | {med['best_error']:.3g} | {med['best_iter']:.0f} | {med['final_error']:.3g} | {med['overfit_ratio']:.2f} | {med['val_error']:.3g} | {med['val_ratio']:.2f} |")
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("rel. test error")
    axes[0].set_title(f"noise σ = {float(t.num('noise')[0]):g}: error along the path")
    axes[0].legend(fontsize=7)
    axes[1].set_xticks(range(len(widths)), [str(k) for k in widths])
    axes[1].set_xlim(-0.5, len(widths) - 0.5)
    axes[1].axhline(1, color="0.5", lw=0.8)
    axes[1].set_xlabel("width k")
    axes[1].set_ylabel("test error ratio")
    axes[1].set_title("● final/best (overfitting), □ validation/oracle")
    sec.figures.append((plotting.save(fig, ctx.figure_path("noise")), "Left: test error along the path; right: per trial, final/best error (dots) and validation-stopped/oracle error (squares)."))
    over = t.where(t.num("width") > rank)
    widest = t.where(t.num("width") == max(widths))
    # one number per seed (the independent unit): the worse of its k > r widths
    per_seed = np.array([float(np.max(over.eq(seed=sd).num("val_ratio"))) for sd in over.unique("seed")])
    sec.claims.extend(claims({"widest": max(widths), "overfit": widest.num("overfit_ratio"), "val_ratio": per_seed}, cfg))
    sec.regimes.append(regime(t, label=f"noise σ = {float(t.num('noise')[0]):g}"))
    sec.notes.append("Medians over seeds:\n\n" + "\n".join(rows))
    return sec
