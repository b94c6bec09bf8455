"""E12 — how the sample complexity scales with the rank.

For each rank r the transition m*(r) is the smallest tested m from which every
larger tested m recovers X* in ≥ success_rate of the seeds (`e6_samples.transition`,
cells with m > max_fill·n1·n2 left out). Fitting m*(r)/(n1 + n2) ∝ r^γ by
least squares in log–log coordinates gives γ: the information-theoretic count
dof = r(n1 + n2 − r) gives γ ≈ 1, the theorem's sufficient condition
m ≳ r²(n1 + n2) (up to κ and log factors) γ = 2.

The grid brackets each m*: the true transition lies between the previous grid
ratio and the found one (at the grid's first ratio, 1 = dof, no estimator can
do with fewer). The reported interval [γ_low, γ_high] is exact over those
brackets: a least-squares slope is linear in the data, so its maximum over
the box takes the upper bracket where log r is above its mean and the lower
one below (and the reverse for the minimum).
"""

from __future__ import annotations

import numpy as np

from asymsense.paper import plotting
from asymsense.paper.claims import claim
from asymsense.paper.context import Section  # noqa: F401 (analyze returns one)
from asymsense.paper.e6_samples import success_grid, transition
from asymsense.paper.fitting import Estimate
from asymsense.paper.regime import regime


def measure(t, cfg: dict) -> dict:
    """E12's results object: per rank the transition bracket (lower, upper) in
    units of n1 + n2, the grid's largest m/(n1·n2), and the size."""
    ranks, ratios, P, N = success_grid(t, cfg["success_tol"], cfg["max_fill"])
    n1, n2 = int(t.num("n1")[0]), int(t.num("n2")[0])
    brackets = {}
    for i, r in enumerate(ranks):
        tr = transition(ratios, P[i], cfg["success_rate"])
        if not np.isfinite(tr):
            brackets[r] = (float("inf"), float("inf"))
            continue
        tested = [o for o, p in zip(ratios, P[i]) if np.isfinite(p)]
        below = [o for o in tested if o < tr]
        dof = r * (n1 + n2 - r)
        brackets[r] = ((max(below) if below else tr) * dof / (n1 + n2), tr * dof / (n1 + n2))
    fill = float(np.max(t.num("m") / (t.num("n1") * t.num("n2")))) if len(t) else float("nan")
    return {"brackets": brackets, "max_fill": fill, "n1": n1, "n2": n2, "grid": (ranks, ratios, P, N)}


def gamma(brackets: dict) -> Estimate | None:
    """γ from the upper brackets (the found transitions) with its exact interval over the brackets; None
    when fewer than two ranks have a transition inside the grid."""
    ranks = sorted(brackets)
    if len(ranks) < 2 or not all(np.isfinite(brackets[r][1]) for r in ranks):
        return None
    x = np.log(np.asarray(ranks, dtype=float))
    lo = np.log([brackets[r][0] for r in ranks])
    hi = np.log([brackets[r][1] for r in ranks])
    w = (x - x.mean()) / np.sum((x - x.mean()) ** 2)  # slope = Σ w_i·y_i
    value = float(w @ hi)
    return Estimate(value, float(w @ np.where(w > 0, lo, hi)), float(w @ np.where(w > 0, hi, lo)), 1.0, len(ranks), "grid bracket")


def claims(res: dict, cfg: dict) -> list:
    """E12.a (grid out of the injective regime) and E12.b (γ ≤ max_gamma over the whole bracket)."""
    fill = res["max_fill"]
    est = gamma(res["brackets"])
    return [
        claim("E12.a", "e12", "the rank-scaling grid stays out of the injective regime: largest m / (n1·n2) of any cell", "max m / (n1·n2)",
              fill if np.isfinite(fill) else None, "<=", cfg["max_fill"]),
        claim("E12.b", "e12", "the sample complexity of overparameterized FGD grows at most like the theorem's r²(n1 + n2): "
              "exponent γ of m* ∝ r^γ(n1 + n2)", "fitted γ (every rank's transition inside the grid)", est, "<=", cfg["max_gamma"],
              uncertainty=f"exact range over the grid's brackets, ranks {sorted(res['brackets'])}"),
    ]


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = ctx.section()
    t = ctx.trials("fgd")
    res = measure(t, cfg)
    ranks, ratios, P, N = res["grid"]
    fig, axes = plotting.new(ncols=2, width=4.6, height=3.6)
    ax = axes[0]
    im = plotting.success_map(ax, P, ratios, ranks)
    fig.colorbar(im, ax=ax, shrink=0.85, label="success fraction")
    plotting.finish(ax, xlabel="m / (r(n1 + n2 − r))", ylabel="rank r", title="success fraction (final error ≤ 0.01)")
    ax = axes[1]
    rs = np.array(sorted(res["brackets"]), dtype=float)
    lo = np.array([res["brackets"][int(r)][0] for r in rs])
    hi = np.array([res["brackets"][int(r)][1] for r in rs])
    ok = np.isfinite(hi)
    ax.vlines(rs[ok], lo[ok], hi[ok], color="k", lw=2, label="transition bracket m* / (n1 + n2)")
    ax.plot(rs[ok], hi[ok], "ko", ms=4)
    est = gamma(res["brackets"])
    if ok.any():
        r0, m0 = rs[ok][0], hi[ok][0]
        grid = np.geomspace(rs.min(), rs.max(), 20)
        ax.plot(grid, m0 * (grid / r0), color="C0", ls="--", lw=1, label="γ = 1 (degrees of freedom)")
        ax.plot(grid, m0 * (grid / r0) ** 2, color="C3", ls=":", lw=1.2, label="γ = 2 (theorem's sufficient r²)")
        if est is not None:
            ax.plot(grid, np.exp(np.mean(np.log(hi[ok]) - est.value * np.log(rs[ok]))) * grid ** est.value, color="k", lw=0.8,
                    label=f"fit: γ = {est.value:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(rs, [str(int(r)) for r in rs])
    ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
    plotting.finish(ax, xlabel="rank r", ylabel="m* / (n1 + n2)", title=f"sample complexity vs rank ({res['n1']}×{res['n2']})", legend="upper left")
    sec.figures.append((plotting.save(fig, ctx.figure_path("rank_scaling")),
                        "Left: fraction of seeds recovering X* over the oversampling and the rank (cells with m > "
                        f"{cfg['max_fill']:g}·n1·n2 left out); right: each rank's transition m* / (n1 + n2) with its grid bracket, "
                        "the fitted power law and the references γ = 1 and γ = 2 (both through the smallest rank's point)."))
    sec.claims.extend(claims(res, cfg))
    for r in ranks:
        sub = t.eq(rank=r)
        sec.regimes.append(regime(sub.where(sub.num("oversampling") == max(sub.num("oversampling"))), label=f"r = {r}, largest ratio", limit=3))
    rows = ["| r | transition m/dof | m* bracket / (n1 + n2) | min seeds per cell |", "|---|---|---|---|"]
    for i, r in enumerate(ranks):
        a, b = res["brackets"][r]
        rows.append(f"| {r} | {transition(ratios, P[i], cfg['success_rate']):g} | [{a:.3g}, {b:.3g}] | {int(N[i][N[i] > 0].min()) if (N[i] > 0).any() else 0} |")
    sec.notes.append("Transitions per rank:\n\n" + "\n".join(rows)
                     + ("" if est is None else f"\n\nγ = {est.value:.3g}, exact range over the brackets [{est.low:.3g}, {est.high:.3g}] "
                        "(γ = 1: the degrees of freedom; γ = 2: the theorem's sufficient condition)."))
    return sec
