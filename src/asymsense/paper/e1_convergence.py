"""E1 — convergence: test error vs iteration for every width k and several α."""

from __future__ import annotations

import numpy as np

from asymsense.paper import figures
from asymsense.paper.claims import claim
from asymsense.paper.context import Section
from asymsense.paper.fitting import worst
from asymsense.paper.regime import regime


def measure(t) -> dict:
    """The small results object of E1: final errors at the smallest α, per seed,
    for k = r ("exact") and every k > r ("over"), and the number of seeds."""
    rank = int(t.num("rank")[0])
    smallest = min(float(a) for a in t.unique("alpha"))
    last = t.eq(alpha=smallest)
    return {"alpha": smallest, "exact": last.where(last.num("width") == rank).num("rel_error"),
            "over": last.where(last.num("width") > rank).num("rel_error"), "seeds": len(last.unique("seed"))}


def claims(res: dict, cfg: dict) -> list:
    """E1.a, E1.b from `measure`'s results; fewer seeds than cfg["min_seeds"] is "not measured"."""
    enough = res["seeds"] >= int(cfg.get("min_seeds", 1))
    a = res["alpha"]
    return [
        claim("E1.a", "e1", f"exact parameterization k = r converges to X* (final error at α = {a:g}, worst seed)", "final rel. error",
              worst(res["exact"]) if enough else None, "<=", cfg["exact_tol"], uncertainty=f"worst over {res['seeds']} seeds"),
        claim("E1.b", "e1", f"every overparameterized width k > r recovers X* (final error at α = {a:g}, worst k and seed)", "final rel. error",
              worst(res["over"]) if enough else None, "<=", cfg["over_tol"], uncertainty=f"worst over k > r and {res['seeds']} seeds"),
    ]


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = Section(ctx.name, ctx.config["title"], ctx.config["summary"])
    t = ctx.trials("fgd")
    hist = ctx.histories("fgd")
    widths = [int(w) for w in t.unique("width")]
    alphas = sorted(float(a) for a in t.unique("alpha"))
    rank = int(t.num("rank")[0])
    fig, axes = figures.new(ncols=len(widths), width=3.4, height=3.2)
    cols = figures.colors(len(alphas))
    for ax, k in zip(axes, widths):
        for a, c in zip(alphas, cols):
            rows = t.eq(width=k, alpha=a)
            for i, key in enumerate(rows.col("key")):
                h = hist.get(key)
                if h is not None:
                    ax.semilogy(h.num("iteration"), h.num("rel_error"), color=c, lw=1, label=f"α={a:.0e}" if i == 0 else None)
        ax.set_title(f"k = {k}" + (" (= r)" if k == rank else ""))
        ax.set_xlabel("iteration")
        ax.set_ylabel("‖UVᵀ − X*‖_F / ‖X*‖_F")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    sec.figures.append((figures.save(fig, ctx.figure_path("convergence")), "Test error vs iteration, one panel per width k, colour = α."))

    sec.regimes.append(regime(t, label="all widths"))
    sec.claims.extend(claims(measure(t), cfg))
    lines = ["| k | " + " | ".join(f"α = {a:g}" for a in alphas) + " |", "|---|" + "---|" * len(alphas)]
    for k in widths:
        cells = []
        for a in alphas:
            v = t.eq(width=k, alpha=a).num("rel_error")
            cells.append(f"{np.median(v):.2e}" if v.size else "—")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    sec.notes.append("Final test error (median over seeds):\n\n" + "\n".join(lines))
    return sec
