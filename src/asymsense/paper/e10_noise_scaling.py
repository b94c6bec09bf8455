"""E10 — noise scaling of the best (validation-stopped) error.

With y = A(X*) + ε, ε ~ N(0, σ²I), the least-squares estimator that knows the
rank-r tangent space has E‖X̂ − X*‖²_F ≈ σ²·dof·m/(m − dof) (dof = r(n1+n2−r),
A with N(0, 1/m) entries): the oracle error scales like σ√dof. Overparameterized
FGD with validation early stopping (20% held out, patience) should attain that
rate: slope 1 in σ, and a constant ratio to σ√dof/‖X*‖_F.
"""

from __future__ import annotations

import numpy as np

from asymsense.metrics import as_truth, distance_to_truth
from asymsense.paper import plotting
from asymsense.paper.claims import claim
from asymsense.paper.context import Section  # noqa: F401 (analyze returns one)
from asymsense.paper.fitting import loglog_slope_ci, median_ci
from asymsense.paper.regime import regime
from asymsense.solvers.fgd import fgd
from asymsense.sweep.custom import trial_method
from asymsense.sweep.methods import build_problem


@trial_method({})
def noise_scaling_trial(params: dict):
    """FGD with a held-out validation fraction and patience; summary: rel_error of
    the returned (best-validation) iterate, val_iter, the oracle reference
    σ√dof/‖X*‖_F (`oracle`) and the ratio error/oracle."""
    truth, op, y = build_problem(params)
    res = fgd(op, y, width=params["width"], init_scale=params["alpha"], step_size=params["step"], seed=params["seed"], truth=truth,
              record_every=params["record_every"], dtype=params["dtype"], step_constant=params["step_constant"], n_singular=params["n_singular"],
              max_iter=params["max_iter"], validation=params["validation"], patience=params["patience"])
    t = as_truth(truth)
    err = float(distance_to_truth(res.U[None], res.V[None], t)[0] / t.frobenius)
    n1, n2, r = params["n1"], params["n2"], params["rank"]
    oracle = float(params["noise"]) * np.sqrt(r * (n1 + n2 - r)) / float(t.frobenius)
    summary = {"rel_error": err, "val_iter": int(res.best_iter), "iterations": int(res.n_iter), "step_size": float(res.step_size),
               "oracle": oracle, "ratio": err / oracle if oracle > 0 else float("nan"),
               "max_rel_imbalance": float(np.max(res.history["rel_imbalance"]))}
    return summary, res.history


def measure(t) -> dict:
    """E10's results object: oversampling → {"groups": per-seed (σ, error) pairs, "ratios": per seed
    (the independent unit) the median over σ of error/oracle}."""
    out = {}
    for o in sorted(float(x) for x in t.unique("oversampling")):
        rows = t.eq(oversampling=o)
        out[o] = {"groups": [(rows.eq(seed=s).num("noise"), rows.eq(seed=s).num("rel_error")) for s in rows.unique("seed")],
                  "ratios": np.array([float(np.median(rows.eq(seed=s).num("ratio"))) for s in rows.unique("seed")])}
    return {"by_oversampling": out}


def claims(res: dict, cfg: dict) -> list:
    """Per oversampling: the slope in σ within cfg["slope_range"] and the ratio to the
    oracle within cfg["ratio_range"]."""
    out, letters = [], iter("abcdefghijkl")
    for o, d in res["by_oversampling"].items():
        slope = loglog_slope_ci(d["groups"]) if d["groups"] else None
        out.append(claim(f"E10.{next(letters)}", "e10", f"the validation-stopped error scales linearly with the noise σ (m/dof = {o:g})",
                         "log–log slope in σ", slope, "within", cfg["slope_range"]))
        out.append(claim(f"E10.{next(letters)}", "e10", f"the validation-stopped error is within a constant of the rank-r least-squares oracle σ√dof/‖X*‖_F (m/dof = {o:g})",
                         "error / (σ√dof/‖X*‖_F) (median over seeds of the per-seed median over σ)", median_ci(d["ratios"]) if len(d["ratios"]) else None, "within", cfg["ratio_range"]))
    return out


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = ctx.section()
    t = ctx.trials("noise")
    res = measure(t)
    fig, axes = plotting.new(ncols=2, width=4.6, height=3.6)
    cols = plotting.colors(len(res["by_oversampling"]))
    sig = np.array(sorted(float(x) for x in t.unique("noise")))
    for (o, d), c in zip(res["by_oversampling"].items(), cols):
        for i, (s, e) in enumerate(d["groups"]):
            order = np.argsort(s)
            axes[0].loglog(s[order], e[order], "o-", color=c, ms=3, lw=0.6, alpha=0.7, label=f"m/dof = {o:g}" if i == 0 else None)
        rows = t.eq(oversampling=o)
        axes[1].semilogx(rows.num("noise") * (1 + 0.05 * (o - 5)), rows.num("ratio"), "o", color=c, ms=4, alpha=0.7, label=f"m/dof = {o:g}")
        sec.regimes.append(regime(rows, label=f"m/dof = {o:g}", limit=4))
    fro = float(np.median(t.num("oracle") / t.num("noise")))
    axes[0].loglog(sig, sig * fro, "k--", lw=1, label=r"oracle $\sigma\sqrt{\mathrm{dof}}/\|X^*\|_F$")
    axes[0].grid(alpha=0.3, which="both")
    plotting.finish(axes[0], xlabel="noise σ", ylabel="rel. test error (validation-stopped)", title="error vs noise", legend="upper left")
    lo, hi = cfg["ratio_range"]
    axes[1].axhspan(lo, hi, color="0.9", zorder=0, label=f"claimed range [{lo:g}, {hi:g}]")
    axes[1].axhline(1, color="0.5", lw=0.8)
    plotting.finish(axes[1], xlabel="noise σ", ylabel=r"error / $(\sigma\sqrt{\mathrm{dof}}/\|X^*\|_F)$", title="ratio to the rank-r least-squares oracle", legend="upper right")
    sec.figures.append((plotting.save(fig, ctx.figure_path("noise_scaling")), "Left: validation-stopped test error vs σ per oversampling (one line per seed), dashed: the oracle "
                        "σ√dof/‖X*‖_F; right: the ratio to the oracle per trial (the shaded band is the claimed range)."))
    sec.claims.extend(claims(res, cfg))
    med = [f"m/dof = {o:g}: median ratio {np.median(d['ratios']):.3g}, median stopping iteration {np.median(t.eq(oversampling=o).num('val_iter')):.0f}"
           for o, d in res["by_oversampling"].items()]
    sec.notes.append("; ".join(med) + ". Expected ratio without the hold-out: √(m/(m − dof)) (1.22 at m/dof = 3, 1.05 at 10); with 20% held out "
                     "the training set has 0.8·m measurements, which raises it.")
    return sec
