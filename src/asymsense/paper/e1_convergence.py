"""E1 — convergence: test error vs iteration for every width k and several α."""

from __future__ import annotations

import numpy as np

from asymsense.paper import figures
from asymsense.paper.claims import claim
from asymsense.paper.context import Section
from asymsense.paper.fitting import Estimate


def _worst(values) -> Estimate | None:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return None
    worst = float(np.nanmax(v)) if np.any(np.isfinite(v)) else float("nan")
    return Estimate(worst, worst, worst, 1.0, int(v.size))


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

    smallest = alphas[0]
    last = t.eq(alpha=smallest)
    exact = last.where(last.num("width") == rank)
    over = last.where(last.num("width") > rank)
    sec.claims.append(claim("E1.a", "e1", f"exact parameterization k = r converges to X* (final error at α = {smallest:g}, worst seed)",
                            "final rel. error", _worst(exact.num("rel_error")), "<=", cfg["exact_tol"], uncertainty="worst over seeds"))
    sec.claims.append(claim("E1.b", "e1", f"every overparameterized width k > r recovers X* (final error at α = {smallest:g}, worst k and seed)",
                            "final rel. error", _worst(over.num("rel_error")), "<=", cfg["over_tol"], uncertainty="worst over k > r and seeds"))
    lines = ["| k | " + " | ".join(f"α = {a:g}" for a in alphas) + " |", "|---|" + "---|" * len(alphas)]
    for k in widths:
        cells = []
        for a in alphas:
            v = t.eq(width=k, alpha=a).num("rel_error")
            cells.append(f"{np.median(v):.2e}" if v.size else "—")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    sec.notes.append("Final test error (median over seeds):\n\n" + "\n".join(lines))
    return sec
