"""E6 — sample complexity: success-probability heat maps over
m / (r(n1 + n2 − r)) and r for overparameterized FGD, exact-rank FGD and
nuclear-norm minimization."""

from __future__ import annotations

import numpy as np

from asymsense.paper import figures
from asymsense.paper.claims import claim
from asymsense.paper.context import Section
from asymsense.paper.fitting import Estimate

METHODS = (("over", "overparameterized FGD (k = min(n1, n2))"), ("exact", "exact-rank FGD (k = r)"), ("nuclear", "nuclear-norm minimization"))


def success_grid(t, tol: float):
    """(ranks, ratios, success fraction [rank, ratio], seeds per cell)."""
    ranks = [int(r) for r in t.unique("rank")]
    ratios = sorted(float(o) for o in t.unique("oversampling"))
    P = np.full((len(ranks), len(ratios)), np.nan)
    N = np.zeros((len(ranks), len(ratios)), dtype=int)
    for i, r in enumerate(ranks):
        for j, o in enumerate(ratios):
            e = t.eq(rank=r, oversampling=o).num("rel_error")
            if e.size:
                P[i, j] = float(np.mean(e <= tol))
                N[i, j] = e.size
    return ranks, ratios, P, N


def transition(ratios, row, rate: float) -> float:
    """Smallest ratio from which every larger ratio also succeeds (inf if none)."""
    ok = np.asarray(row) >= rate
    for j in range(len(ratios)):
        if ok[j:].all():
            return float(ratios[j])
    return float("inf")


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = Section(ctx.name, ctx.config["title"], ctx.config["summary"])
    fig, axes = figures.new(ncols=3, width=4.0, height=3.2)
    letters = iter("abcdef")
    table = ["| method | " + "transition ratio per rank | min seeds per cell |", "|---|---|---|"]
    for ax, (label, title) in zip(axes, METHODS):
        t = ctx.trials(label)
        if not len(t):
            sec.claims.append(claim(f"E6.{next(letters)}", "e6", f"{title} recovers at oversampling ≤ {cfg['max_transition']:g}", "transition ratio", None, "<=", cfg["max_transition"]))
            continue
        ranks, ratios, P, N = success_grid(t, cfg["success_tol"])
        im = ax.imshow(P, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="magma")
        ax.set_xticks(range(len(ratios)), [f"{o:g}" for o in ratios])
        ax.set_yticks(range(len(ranks)), [str(r) for r in ranks])
        for i in range(len(ranks)):
            for j in range(len(ratios)):
                if np.isfinite(P[i, j]):
                    ax.text(j, i, f"{P[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w" if P[i, j] < 0.5 else "k")
        ax.set_xlabel("m / (r(n1 + n2 − r))")
        ax.set_ylabel("rank r")
        ax.set_title(title, fontsize=9)
        trans = [transition(ratios, P[i], cfg["success_rate"]) for i in range(len(ranks))]
        worst = max(trans)
        table.append(f"| {title} | " + ", ".join(f"r={r}: {x:g}" for r, x in zip(ranks, trans)) + f" | {int(N[N > 0].min()) if (N > 0).any() else 0} |")
        sec.claims.append(claim(f"E6.{next(letters)}", "e6", f"{title} recovers X* (success ≥ {cfg['success_rate']:g} of seeds) from a constant multiple of the degrees of freedom, every rank",
                                "transition ratio m / (r(n1+n2−r)), worst rank", Estimate(worst, worst, worst, 1.0, len(ranks)), "<=", cfg["max_transition"],
                                uncertainty=f"grid resolution ({', '.join(f'{o:g}' for o in ratios)}), ≥ {int(N[N > 0].min()) if (N > 0).any() else 0} seeds a cell"))
    fig.colorbar(im, ax=axes[-1], shrink=0.9, label="success probability")
    sec.figures.append((figures.save(fig, ctx.figure_path("samples")), f"Fraction of seeds with final rel. error ≤ {cfg['success_tol']:g}."))
    sec.notes.append("Transition ratio: the smallest m / (r(n1 + n2 − r)) from which every larger tested ratio succeeds.\n\n" + "\n".join(table))
    return sec
