"""E5 — iterations to reach a tolerance vs log(1/α), linear fit and R²."""

from __future__ import annotations

import numpy as np

from asymsense.paper import plotting
from asymsense.paper.claims import claim
from asymsense.paper.context import Section  # noqa: F401 (analyze returns one)
from asymsense.paper.fitting import bootstrap, linear_fit, median_ci, pooled_points, worst
from asymsense.paper.regime import regime


def first_below(h, tol: float) -> float:
    """First recorded iteration with rel_error ≤ tol (NaN if never)."""
    idx = np.flatnonzero(h.num("rel_error") <= tol)
    return float(h.num("iteration")[idx[0]]) if idx.size else float("nan")


def claims(res: dict, cfg: dict) -> list:
    """E5 claims from res["tolerances"] = [(tol, per-seed R², per-seed slope·μσ_r)]: two per tolerance."""
    out, letters = [], iter("abcdefgh")
    lo, hi = cfg["rate_range"]
    for tol, r2s, rates in res["tolerances"]:
        out.append(claim(f"E5.{next(letters)}", "e5", f"iterations to reach error {tol:g} grow linearly in log(1/α)", "R² of the per-seed linear fit (worst seed)",
                         worst(r2s, ">=") if len(r2s) else None, ">=", cfg["min_r2"], uncertainty=f"worst over {len(r2s)} seeds"))
        out.append(claim(f"E5.{next(letters)}", "e5", f"the cost of a smaller α follows the law log(1/α)/(μσ_r) (tol {tol:g}): per-seed slope × μσ_r",
                         "slope·μσ_r (median over seeds)", median_ci(rates) if len(rates) else None, "within", (lo, hi)))
    return out


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = ctx.section()
    t, hist = ctx.trials("fgd"), ctx.histories("fgd")
    seeds = [int(s) for s in t.unique("seed")]
    tols = [float(x) for x in cfg["tolerances"]]
    fig, axes = plotting.new(ncols=1, width=5.5, height=4.0)
    ax = axes[0]
    notes = []
    floor_factor = float(cfg.get("floor_factor", 10.0))
    measured = []
    for tol, color in zip(tols, ("C0", "C1", "C2", "C3")):
        groups, excluded, per_seed = [], 0, []
        for s in seeds:
            rows = t.eq(seed=s)
            x = np.log(1.0 / rows.num("alpha"))
            y = np.array([first_below(hist[k], tol) if k in hist else np.nan for k in rows.col("key")])
            floor = rows.num("rel_error")
            excluded += int(np.sum(floor > tol / floor_factor))
            y = np.where(floor <= tol / floor_factor, y, np.nan)
            groups.append((x, y))
            if np.unique(x[np.isfinite(y)]).size >= 3:
                f = linear_fit(x, y)
                per_seed.append((f.r2, f.slope * float(np.median(rows.num("step_size"))) / float(rows.num("cond")[0])))
            else:
                per_seed.append((np.nan, np.nan))  # too few reached points: this seed cannot confirm the law
            ax.plot(x, y, "o", color=color, ms=3, alpha=0.6)
        x, y = pooled_points(groups)
        reached = np.isfinite(y)
        fit = linear_fit(x, y) if np.unique(x[reached]).size >= 2 else None
        slope = bootstrap(groups, lambda gs: linear_fit(*pooled_points(gs)).slope) if fit else None
        measured.append((tol, np.array([p[0] for p in per_seed]), np.array([p[1] for p in per_seed])))
        if fit:
            xs = np.linspace(x.min(), x.max(), 20)
            ax.plot(xs, fit.predict(xs), "-", color=color, label=f"tol {tol:g}: {fit.intercept:.1f} + {fit.slope:.2f}·log(1/α), R² = {fit.r2:.3f}")
        mu = float(np.median(t.num("step_size"))) if "step_size" in t else float("nan")
        sigma_min = 1.0 / float(t.num("cond")[0])
        if fit:
            notes.append(f"tol {tol:g}: per-seed R² {', '.join(f'{p[0]:.4f}' for p in per_seed)}, pooled R² {fit.r2:.3f} "
                         f"(the intercept and slope vary between problems); per-seed slope·μ·σ_min = {', '.join(f'{p[1]:.2f}' for p in per_seed)} "
                         "(1 would be the symmetric theory's 1/(μσ_min) law). "
                         f"Pooled slope {slope.format(3)} iterations per unit of log(1/α) "
                         f"({np.log(10) * fit.slope:.1f} per decade); 1/(μσ_min) = {1 / (mu * sigma_min):.2f} for comparison "
                         f"(μ = {mu:.3g}, σ_min = {sigma_min:g}); {excluded} trials excluded (final error above tol/{floor_factor:g}), {int((~reached).sum()) - excluded} more never reached it.")
    ax.set_xlabel("log(1/α)")
    ax.set_ylabel("iterations to reach the tolerance")
    ax.set_title("first iteration with rel. test error ≤ tol, per seed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    sec.figures.append((plotting.save(fig, ctx.figure_path("iterations")), "First iteration with test error ≤ tol vs log(1/α); lines are least-squares fits."))
    sec.notes.append(" ".join(notes))
    sec.claims.extend(claims({"tolerances": measured}, cfg))
    sec.regimes.append(regime(t, label="k = n2"))
    return sec
