"""E1 — convergence: test error vs iteration for every width k and several α;
the width-dependence (error floor, time to 0.1) and the slow tail of k > r."""

from __future__ import annotations

import numpy as np

from asymsense.paper import plotting
from asymsense.paper.claims import claim
from asymsense.paper.context import Section  # noqa: F401 (analyze returns one)
from asymsense.paper.fitting import worst
from asymsense.paper.regime import regime


def first_below(h, tol: float) -> float:
    """First recorded iteration with rel_error ≤ tol (NaN if never)."""
    idx = np.flatnonzero(h.num("rel_error") <= tol)
    return float(h.num("iteration")[idx[0]]) if idx.size else float("nan")


def error_at(h, iteration: float) -> float:
    """Test error at the last recorded iteration ≤ `iteration`."""
    idx = np.flatnonzero(h.num("iteration") <= iteration)
    return float(h.num("rel_error")[idx[-1]]) if idx.size else float("nan")


def measure(t, hist=None) -> dict:
    """The small results object of E1, at the smallest α: final errors per seed for
    k = r ("exact") and every k > r ("over"); per seed, for the widths k ≥ 2r, the
    spread of the final error (max/min over k: "floor_spread") and the growth of
    the time to error 0.1 (max over k of t(k)/t(2r): "time_growth"); per trial
    with k > r, err(T)/err(T/4) ("tail", T = the budget); the number of seeds."""
    rank = int(t.num("rank")[0])
    smallest = min(float(a) for a in t.unique("alpha"))
    last = t.eq(alpha=smallest)
    res = {"alpha": smallest, "exact": last.where(last.num("width") == rank).num("rel_error"),
           "over": last.where(last.num("width") > rank).num("rel_error"), "seeds": len(last.unique("seed")),
           "floor_spread": [], "time_growth": [], "tail": []}
    if hist is None:
        return res
    budget = float(np.max(t.num("max_iter")))
    for s in last.unique("seed"):
        rows = last.eq(seed=s)
        wide = rows.where(rows.num("width") >= 2 * rank)
        if len(wide) >= 2:
            err = wide.num("rel_error")
            res["floor_spread"].append(float(np.max(err) / np.min(err)))
            times = {int(k): first_below(hist[key], 0.1) for k, key in zip(wide.num("width"), wide.col("key")) if key in hist}
            base = times.get(2 * rank, float("nan"))
            res["time_growth"].append(max(v / base for v in times.values()) if times else float("nan"))
        for key in rows.where(rows.num("width") > rank).col("key"):
            if key in hist:
                res["tail"].append(error_at(hist[key], budget) / error_at(hist[key], budget / 4))
    return res


def claims(res: dict, cfg: dict) -> list:
    """E1.a, E1.b from `measure`'s results; fewer seeds than cfg["min_seeds"] is "not measured"."""
    enough = res["seeds"] >= int(cfg.get("min_seeds", 1))
    a = res["alpha"]
    return [
        claim("E1.a", "e1", f"exact parameterization k = r converges to X* (final error at α = {a:g}, worst seed)", "final rel. error",
              worst(res["exact"]) if enough else None, "<=", cfg["exact_tol"], uncertainty=f"worst over {res['seeds']} seeds"),
        claim("E1.b", "e1", f"every overparameterized width k > r recovers X* (final error at α = {a:g}, worst k and seed)", "final rel. error",
              worst(res["over"]) if enough else None, "<=", cfg["over_tol"], uncertainty=f"worst over k > r and {res['seeds']} seeds"),
        claim("E1.c", "e1", f"the error floor hardly depends on the width: max/min final error over k ≥ 2r (α = {a:g})", "floor spread (worst seed)",
              worst(res["floor_spread"]) if enough and len(res["floor_spread"]) else None, "<=", cfg["max_floor_spread"],
              uncertainty=f"worst over {len(res['floor_spread'])} seeds"),
        claim("E1.d", "e1", f"wider models are not slower: iterations to error 0.1, max over k ≥ 2r relative to k = 2r (α = {a:g})", "t₀.₁(k) / t₀.₁(2r) (worst k and seed)",
              worst(res["time_growth"]) if enough and len(res["time_growth"]) else None, "<=", cfg["max_time_growth"],
              uncertainty=f"worst over {len(res['time_growth'])} seeds"),
        claim("E1.e", "e1", f"the slow tail of k > r: four times the budget buys less than a factor 2 (α = {a:g})", "err(T) / err(T/4) (smallest over k > r and seeds)",
              worst(res["tail"], ">=") if enough and len(res["tail"]) else None, ">=", cfg["min_tail_ratio"], uncertainty="worst (smallest) over k > r and seeds"),
    ]


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = ctx.section()
    t, hist = ctx.trials("fgd"), ctx.histories("fgd")
    widths = [int(w) for w in t.unique("width")]
    alphas = sorted(float(a) for a in t.unique("alpha"))
    rank = int(t.num("rank")[0])
    fig, axes = plotting.new(ncols=len(widths), width=3.4, height=3.2, sharey=True)
    cols = plotting.colors(len(alphas))
    for ax, k in zip(axes, widths):
        for a, c in zip(alphas, cols):
            rows = t.eq(width=k, alpha=a)
            for i, key in enumerate(rows.col("key")):
                h = hist.get(key)
                if h is not None:
                    ax.semilogy(h.num("iteration"), h.num("rel_error"), color=c, lw=1, label=f"α={a:.0e}" if i == 0 else None)
        ax.set_title(f"k = {k}" + (" (= r)" if k == rank else ""))
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(r"$\|UV^T - X^*\|_F / \|X^*\|_F$")
    axes[0].legend(fontsize=7)
    sec.figures.append((plotting.save(fig, ctx.figure_path("convergence")), "Test error vs iteration, one panel per width k, colour = α."))

    sec.regimes.append(regime(t, label="all widths"))
    res = measure(t, hist)
    sec.claims.extend(claims(res, cfg))
    sec.notes.append(f"At α = {res['alpha']:g}: floor spread over k ≥ 2r per seed {', '.join(f'{v:.3g}' for v in res['floor_spread'])}; "
                     f"t₀.₁(k)/t₀.₁(2r) (max over k) per seed {', '.join(f'{v:.3g}' for v in res['time_growth'])}; "
                     f"err(T)/err(T/4) for k > r: {min(res['tail']):.3g}–{max(res['tail']):.3g} (T = {int(np.max(t.num('max_iter')))}).")
    lines = ["| k | " + " | ".join(f"α = {a:g}" for a in alphas) + " |", "|---|" + "---|" * len(alphas)]
    for k in widths:
        cells = []
        for a in alphas:
            v = t.eq(width=k, alpha=a).num("rel_error")
            cells.append(f"{np.median(v):.2e}" if v.size else "—")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    sec.notes.append("Final test error (median over seeds):\n\n" + "\n".join(lines))
    return sec
