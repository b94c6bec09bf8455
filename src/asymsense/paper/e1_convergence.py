"""E1 — convergence: test error vs iteration for every width k and several α;
the width-dependence (error floor, time to 0.1), the slow tail of k > r (also
drawn as the best error within a budget T against T), and the failure rates
of k ∈ {r, r + 1} against k ≥ 2r at a low oversampling (sweep "lowm")."""

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


def best_by_budget(h, budgets) -> np.ndarray:
    """The best (smallest) recorded test error within each budget T of `budgets` (iterations ≤ T; NaN
    where nothing is recorded yet): without noise the error a user gets by running T iterations and
    keeping the best iterate."""
    it, err = h.num("iteration"), np.minimum.accumulate(h.num("rel_error"))
    idx = np.searchsorted(it, np.asarray(budgets, dtype=float), side="right") - 1
    return np.where(idx >= 0, err[np.maximum(idx, 0)], np.nan)


def low_m(low) -> dict:
    """The "lowm" sweep's final errors by width: {k: array over seeds}, and its oversampling."""
    if low is None or not len(low):
        return {"low": {}, "low_seeds": 0, "low_oversampling": float("nan")}
    by_k = {int(k): low.eq(width=k).num("rel_error") for k in low.unique("width")}
    return {"low": by_k, "low_seeds": min(len(v) for v in by_k.values()),
            "low_oversampling": float(np.median(low.num("oversampling")))}


def failure_fractions(res: dict, tol: float) -> tuple[float, float]:
    """(failure fraction over k ∈ {r, r + 1}, over k ≥ 2r) of the "lowm" sweep: final error > tol (or not finite)."""
    r = res["rank"]
    narrow = [v for k, v in res["low"].items() if k < 2 * r]
    wide = [v for k, v in res["low"].items() if k >= 2 * r]
    frac = lambda groups: float(np.mean(~(np.concatenate(groups) <= tol))) if groups else float("nan")  # noqa: E731
    return frac(narrow), frac(wide)


def measure(t, hist=None, low=None) -> dict:
    """The small results object of E1, at the smallest α: final errors per seed for
    k = r ("exact") and every k > r ("over"); per seed, for the widths k ≥ 2r, the
    spread of the final error (max/min over k: "floor_spread") and the growth of
    the time to error 0.1 (max over k of t(k)/t(2r): "time_growth"); per trial
    with k > r, err(T)/err(T/4) ("tail", T = the budget); the number of seeds; with `low` (the "lowm"
    sweep's trials) its final errors by width (`low_m`)."""
    rank = int(t.num("rank")[0])
    smallest = min(float(a) for a in t.unique("alpha"))
    last = t.eq(alpha=smallest)
    res = {"alpha": smallest, "rank": rank, "exact": last.where(last.num("width") == rank).num("rel_error"),
           "over": last.where(last.num("width") > rank).num("rel_error"), "seeds": len(last.unique("seed")),
           "floor_spread": [], "time_growth": [], "tail": [], "next_width": [], **low_m(low)}
    if hist is None:
        return res
    budget = float(np.max(t.num("max_iter")))
    for s in last.unique("seed"):
        rows = last.eq(seed=s)
        wide = rows.where(rows.num("width") >= 2 * rank)
        if len(wide) >= 2:
            err = wide.num("rel_error")
            res["floor_spread"].append(float(np.max(err) / np.min(err)))
            nxt = rows.where(rows.num("width") == rank + 1).num("rel_error")
            if nxt.size and 2 * rank > rank + 1:  # k = r + 1 against the k ≥ 2r floors (E1.c is about k ≥ 2r only)
                res["next_width"].append(float(nxt[0] / np.median(err)))
            times = {int(k): first_below(hist[key], 0.1) for k, key in zip(wide.num("width"), wide.col("key")) if key in hist}
            base = times.get(2 * rank, float("nan"))
            res["time_growth"].append(max(v / base for v in times.values()) if times else float("nan"))
        for key in rows.where(rows.num("width") > rank).col("key"):
            if key in hist:
                res["tail"].append(error_at(hist[key], budget) / error_at(hist[key], budget / 4))
    return res


def claims(res: dict, cfg: dict) -> list:
    """E1.a–E1.f from `measure`'s results; fewer seeds than cfg["min_seeds"] (E1.f: cfg["min_low_seeds"] per
    width) is "not measured"."""
    enough = res["seeds"] >= int(cfg.get("min_seeds", 1))
    a = res["alpha"]
    narrow, wide = failure_fractions(res, cfg["fail_tol"])
    low_enough = res["low_seeds"] >= int(cfg.get("min_low_seeds", 1)) and np.isfinite(narrow) and np.isfinite(wide)
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
        claim("E1.f", "e1", f"far from the RIP regime (m/dof = {res['low_oversampling']:g}) a wider model fails no more often: "
              f"failure fraction (final error > {cfg['fail_tol']:g}) of k ≥ 2r minus that of k ∈ {{r, r + 1}}",
              "failure fraction k ≥ 2r − k < 2r", wide - narrow if low_enough else None, "<=", cfg["max_failure_excess"],
              uncertainty=f"counts over {res['low_seeds']} seeds per width (k < 2r: {narrow:.2f}, k ≥ 2r: {wide:.2f})"),
    ]


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = ctx.section()
    t, hist = ctx.trials("fgd"), ctx.histories("fgd")
    widths = [int(w) for w in t.unique("width")]
    alphas = sorted(float(a) for a in t.unique("alpha"))
    rank = int(t.num("rank")[0])
    ncols = min(len(widths), 3)
    fig, axes = plotting.new(ncols=ncols, nrows=-(-len(widths) // ncols), width=3.4, height=3.0, sharey=True)
    for ax in axes[len(widths):]:
        ax.remove()
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
    for ax in axes[:len(widths):ncols]:
        ax.set_ylabel(r"$\|UV^T - X^*\|_F / \|X^*\|_F$")
    axes[0].legend(fontsize=7)
    sec.figures.append((plotting.save(fig, ctx.figure_path("convergence")), "Test error vs iteration, one panel per width k, colour = α."))
    sec.figures.append((budget_figure(ctx, t, hist, widths, alphas, rank),
                        "The best test error within an iteration budget T against T: left one line per width k at the smallest α, "
                        "right one line per α at k = n2; median over seeds, band = range over seeds."))

    sec.regimes.append(regime(t, label="all widths"))
    low = ctx.trials("lowm") if "lowm" in ctx.config.get("keys", {}) else None
    if low is not None:
        sec.regimes.append(regime(low, label="low m (E1.f)"))
    res = measure(t, hist, low)
    sec.claims.extend(claims(res, cfg))
    sec.notes.append(f"At α = {res['alpha']:g}: floor spread over k ≥ 2r per seed {', '.join(f'{v:.3g}' for v in res['floor_spread'])}; "
                     f"t₀.₁(k)/t₀.₁(2r) (max over k) per seed {', '.join(f'{v:.3g}' for v in res['time_growth'])}; "
                     f"err(T)/err(T/4) for k > r: {min(res['tail']):.3g}–{max(res['tail']):.3g} (T = {int(np.max(t.num('max_iter')))})."
                     + (f" E1.c compares the widths k ≥ 2r; k = r + 1's final error relative to their median, per seed: "
                        f"{', '.join(f'{v:.3g}' for v in res['next_width'])}." if res["next_width"] else ""))
    lines = ["| k | " + " | ".join(f"α = {a:g}" for a in alphas) + " |", "|---|" + "---|" * len(alphas)]
    for k in widths:
        cells = []
        for a in alphas:
            v = t.eq(width=k, alpha=a).num("rel_error")
            cells.append(f"{np.median(v):.2e}" if v.size else "—")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    sec.notes.append("Final test error (median over seeds):\n\n" + "\n".join(lines))
    if res["low"]:
        tols = (cfg["fail_tol"], 10 * cfg["fail_tol"])
        rows = ["| k | seeds | median final error | max | " + " | ".join(f"failed (> {x:g})" for x in tols) + " |", "|---|---|---|---|" + "---|" * len(tols)]
        for k, v in sorted(res["low"].items()):
            rows.append(f"| {k}{' (= r)' if k == rank else ''} | {v.size} | {np.median(v):.2e} | {np.max(v):.2e} | "
                        + " | ".join(f"{np.mean(~(v <= x)):.1f}" for x in tols) + " |")
        sec.notes.append(f"Low oversampling (m/dof = {res['low_oversampling']:g}, α = 1e-6, sweep lowm), failure fractions per width:\n\n" + "\n".join(rows))
    return sec


def budget_figure(ctx, t, hist, widths, alphas, rank):
    """Best error within the budget T against T (log–log): per width at the smallest α, per α at the widest
    k ≤ n2; median line over seeds with the seeds' range as a band."""
    n2 = int(t.num("n2")[0])
    budget = float(np.max(t.num("max_iter")))
    step = float(np.median(np.diff(next(iter(hist.values())).num("iteration")))) if hist else 1.0
    grid = np.unique(np.round(np.geomspace(max(step, 1.0), budget, 40)))
    fig, axes = plotting.new(ncols=2, width=4.6, height=3.6, sharey=True)
    k_panel = max(k for k in widths if k <= n2)
    panels = [(axes[0], [(f"k = {k}" + (" (= r)" if k == rank else ""), t.eq(width=k, alpha=alphas[0])) for k in widths],
               f"per width k, α = {alphas[0]:.0e}"),
              (axes[1], [(f"α = {a:.0e}", t.eq(width=k_panel, alpha=a)) for a in alphas], f"per α, k = {k_panel}")]
    for ax, groups, title in panels:
        for (label, rows), color in zip(groups, plotting.colors(len(groups))):
            curves = np.array([best_by_budget(hist[key], grid) for key in rows.col("key") if key in hist])
            if not curves.size:
                continue
            curves = np.maximum(curves, 1e-16)  # k = r reaches rounding: keep it on the log axis
            ax.fill_between(grid, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.2, lw=0)
            ax.plot(grid, np.median(curves, axis=0), color=color, lw=1.5, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        plotting.finish(ax, xlabel="iteration budget T", ylabel=r"best $\|UV^T - X^*\|_F / \|X^*\|_F$ within T",
                        title=title, legend="lower left")
    return plotting.save(fig, ctx.figure_path("budget"))
