"""E11 — κ-dependence and incremental learning.

From a small start the i-th component of UVᵀ grows like α²(1 + μσ_i)^{2t}, so
it reaches σ_i(X*)/2 at t_i ≈ log(1/α)/log(1 + μσ_i) + O(1/(μσ_i)): the
components are learned one after another, the larger first (a staircase when
the σ_i are far apart). Measured: t_i for every component, κ ∈ {1, 2, 4, 8}
(linear spectrum) and a geometric spectrum at κ = 10; the slope of t_i against
the predicted p_i = log(1/α)/log(1 + μσ_i); the order of the t_i; the final
error and the success rate against κ.
"""

from __future__ import annotations

import numpy as np

from asymsense.paper import plotting
from asymsense.paper.claims import claim
from asymsense.paper.context import Section  # noqa: F401 (analyze returns one)
from asymsense.paper.fitting import bootstrap, fraction, linear_fit, pooled_points, worst
from asymsense.paper.regime import regime
from asymsense.problems import spectrum_values


def hitting_times(h, sigmas) -> np.ndarray:
    """First recorded iteration with σ_i(UVᵀ) ≥ σ_i(X*)/2, per component (NaN if never)."""
    it = h.num("iteration")
    out = []
    for i, s in enumerate(sigmas, start=1):
        name = f"sv_{i}"
        idx = np.flatnonzero(h.num(name) >= s / 2) if name in h else np.array([], int)
        out.append(float(it[idx[0]]) if idx.size else np.nan)
    return np.array(out)


def measure(tables: dict, hist: dict) -> dict:
    """E11's results object: per seed (p_i, t_i) pairs over all κ (the learning law),
    per staircase trial whether t_1 < … < t_r, per κ the final errors."""
    law, order, finals = {}, [], {}
    for label, t in tables.items():
        for row in range(len(t)):
            key = t.col("key")[row]
            if key not in hist[label]:
                continue
            r, kappa = int(t.num("rank")[row]), float(t.num("cond")[row])
            sig = spectrum_values(r, kappa, str(t.col("spectrum")[row]))
            mu, alpha, seed = float(t.num("step_size")[row]), float(t.num("alpha")[row]), int(t.num("seed")[row])
            times = hitting_times(hist[label][key], sig)
            p = np.log(1 / alpha) / np.log1p(mu * sig)
            xs, ys = law.setdefault(seed, ([], []))
            xs.extend(p), ys.extend(times)
            if label == "staircase":
                order.append(bool(np.all(np.diff(times) > 0)))
            else:
                finals.setdefault(kappa, []).append(float(t.num("rel_error")[row]))
    return {"law": [(np.array(x), np.array(y)) for x, y in law.values()], "order": np.array(order, bool),
            "finals": {k: np.array(v) for k, v in sorted(finals.items())}}


def claims(res: dict, cfg: dict) -> list:
    """E11.a (slope of t_i on p_i), E11.b (staircase order), E11.c (success at every κ)."""
    lo, hi = cfg["slope_range"]
    slope = bootstrap(res["law"], lambda gs: linear_fit(*pooled_points(gs)).slope) if res["law"] else None
    success = [float(np.mean(v <= cfg["success_tol"])) for v in res["finals"].values()]
    return [
        claim("E11.a", "e11", "incremental learning: the i-th component reaches σ_i(X*)/2 at t_i ≈ log(1/α)/log(1 + μσ_i) + const (all κ and i)",
              "slope of t_i on log(1/α)/log(1 + μσ_i)", slope, "within", (lo, hi)),
        claim("E11.b", "e11", "the components are learned in the order of σ_i (geometric spectrum, κ = 10): t_1 < t_2 < … < t_r",
              "fraction of seeds in order", fraction(res["order"]), ">=", cfg["min_order_fraction"], uncertainty=f"count over {len(res['order'])} seeds"),
        claim("E11.c", "e11", f"recovery at every tested κ (final error ≤ {cfg['success_tol']:g})", "success rate, worst κ",
              worst(success, ">=") if success else None, ">=", cfg["min_success"], uncertainty=f"worst over κ ∈ {{{', '.join(f'{k:g}' for k in res['finals'])}}}"),
    ]


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = ctx.section()
    tables = {label: ctx.trials(label) for label in ("kappa", "staircase")}
    hist = {label: ctx.histories(label) for label in tables}
    res = measure(tables, hist)
    fig, axes = plotting.new(ncols=3, width=4.2, height=3.6)
    st = tables["staircase"]
    if len(st):
        key = st.col("key")[0]
        h = hist["staircase"].get(key)
        sig = spectrum_values(int(st.num("rank")[0]), float(st.num("cond")[0]), str(st.col("spectrum")[0]))
        if h is not None:
            for i, (s, c) in enumerate(zip(sig, plotting.colors(len(sig))), start=1):
                axes[0].semilogy(h.num("iteration"), h.num(f"sv_{i}"), color=c, lw=1.2, label=rf"$\sigma_{{{i}}}(UV^T)$")
                axes[0].axhline(s, color=c, lw=0.8, ls=":")
            axes[0].semilogy(h.num("iteration"), h.num(f"sv_{len(sig) + 1}"), color="0.5", lw=0.8, ls="--", label=rf"$\sigma_{{{len(sig) + 1}}}(UV^T)$")
        plotting.finish(axes[0], xlabel="iteration", ylabel=r"singular value (dotted: $\sigma_i(X^*)$)", title="staircase (geometric spectrum, κ = 10)", legend="lower right")
    for (x, y), c in zip(res["law"], plotting.colors(len(res["law"]))):
        axes[1].plot(x, y, "o", color=c, ms=3, alpha=0.7)
    if res["law"]:
        x, y = pooled_points(res["law"])
        fit = linear_fit(x, y)
        xs = np.linspace(np.nanmin(x), np.nanmax(x), 20)
        axes[1].plot(xs, fit.predict(xs), "k-", lw=1, label=f"fit: slope {fit.slope:.3g}, R² = {fit.r2:.3f}")
        axes[1].plot(xs, xs + (fit.intercept + (fit.slope - 1) * float(np.nanmean(x))), "C3--", lw=1, label="slope 1 (theory)")
    plotting.finish(axes[1], xlabel=r"$\log(1/\alpha) / \log(1 + \mu\sigma_i)$", ylabel=r"$t_i$: first $\sigma_i(UV^T) \geq \sigma_i(X^*)/2$", title="learning time of each component", legend="upper left")
    kap = list(res["finals"])
    for j, k in enumerate(kap):
        axes[2].semilogy(np.full(len(res["finals"][k]), j), res["finals"][k], "o", color="C0", ms=4, alpha=0.7)
    axes[2].axhline(cfg["success_tol"], color="0.5", lw=0.8, ls=":", label=f"success: error ≤ {cfg['success_tol']:g}")
    axes[2].set_xticks(range(len(kap)), [f"{k:g}" for k in kap])
    plotting.finish(axes[2], xlabel="κ", ylabel="final rel. test error", title="final error vs κ", legend="upper left")
    sec.figures.append((plotting.save(fig, ctx.figure_path("kappa")), "Left: the σ_i(UVᵀ) staircase of one seed (geometric spectrum, κ = 10); middle: each component's "
                        "learning time against log(1/α)/log(1 + μσ_i) (all κ, i and seeds); right: final error per seed against κ (linear spectrum)."))
    sec.claims.extend(claims(res, cfg))
    for label, t in tables.items():
        for k in t.unique("cond"):
            sec.regimes.append(regime(t.eq(cond=float(k)), label=f"{label}, κ = {float(k):g}", limit=3))
    sec.notes.append("Final error per κ (median): " + ", ".join(f"κ = {k:g}: {np.median(v):.3g}" for k, v in res["finals"].items())
                     + f"; staircase seeds in order: {int(res['order'].sum())} of {len(res['order'])}.")
    return sec
