"""E14 — training against test error, and the mechanism of the slow tail.

Interpolation. With noise, y = A(X*) + ε, the truth itself leaves the residual
‖ε‖, and the rank-r least-squares fit ‖ε‖·√(1 − dof/m) (it absorbs the noise's
component in the dof-dimensional tangent space). A model of rank r stays at
that level; an overparameterized one (k = n2 ≫ r) keeps lowering the
training residual below it — it interpolates the noise — while the test error
‖UVᵀ − X*‖_F/‖X*‖_F does not improve.

The tail. Write P*, Q* for the projections on X*'s left and right singular
spaces. Without noise, the error UVᵀ − X* splits into the block
(I − P*)UVᵀ(I − Q*) and the blocks touching X*'s spaces. The latter are
visible to the measurements and decay at a linear rate; the former has
Frobenius norm ≤ √(k − r)·‖(I − P*)U‖₂·‖(I − Q*)V‖₂ (rank ≤ k − r) and a
gradient of the size of that product: it decays only sublinearly. So the error
left after any budget is bounded by the tails' product — which is set by α.
"""

from __future__ import annotations

import math

import numpy as np

from asymsense.paper import plotting
from asymsense.paper.claims import claim
from asymsense.paper.context import Section  # noqa: F401 (analyze returns one)
from asymsense.paper.fitting import Estimate, loglog_slope_ci, median_ci, worst
from asymsense.paper.regime import regime
from asymsense.problems import spectrum_values
from asymsense.sweep.custom import trial_method
from asymsense.sweep.methods import build_problem, run_fgd


@trial_method({})
def noise_fit_trial(params: dict):
    """An fgd trial on a noisy problem that also records the noise level
    ‖ε‖/‖y‖ (`noise_level`) and the rank-r least-squares residual level
    ‖ε‖·√(1 − dof/m)/‖y‖ (`ls_level`), from the same stored seeds."""
    summary, history = run_fgd(params)
    truth, op, y = build_problem(params)
    y = np.asarray(y, dtype=float)
    eps = y - np.asarray(op.forward_factors(truth.left * truth.singular_values, truth.right), dtype=float)
    n1, n2, r, m = params["n1"], params["n2"], params["rank"], params["m"]
    level = float(np.linalg.norm(eps) / np.linalg.norm(y))
    return {**summary, "noise_level": level, "ls_level": level * math.sqrt(max(0.0, 1 - r * (n1 + n2 - r) / m))}, history


def _range(values) -> Estimate | None:
    """Median of the per-seed values with their whole range as the interval (every seed must clear a "within")."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return None
    return Estimate(float(np.median(v)), float(v.min()), float(v.max()), 1.0, int(v.size), "range")


def final_tails(tail, hist) -> dict:
    """Per tail trial (in stored order, those with a history): alpha, seed, width, rank, the relative error and
    ‖(I − P*)U‖₂, ‖(I − Q*)V‖₂ of the last recorded iterate, and ‖X*‖_F (from the planted spectrum)."""
    keep = [i for i, key in enumerate(tail.col("key")) if key in hist]
    last = [hist[tail.col("key")[i]] for i in keep]
    out = {name: tail.num(name)[keep] for name in ("alpha", "seed", "width", "rank")}
    for name in ("rel_error", "tail_u", "tail_v"):
        out[name] = np.array([h.num(name)[-1] for h in last])
    out["fro"] = np.array([float(np.linalg.norm(spectrum_values(int(tail.num("rank")[i]), float(tail.num("cond")[i]),
                                                                 (tail.col("spectrum")[i] if "spectrum" in tail else None) or "linear")))
                           for i in keep])
    return out


def measure(noise, hist, tails: dict) -> dict:
    """E14's results object: per seed for k > r and k = r the final training residual over the rank-r least-squares
    level and the test error's ratio test(T)/test(T/2); per tail trial the final error in units of the tails'
    product ‖(I − P*)U‖₂‖(I − Q*)V‖₂ / √(k − r)."""
    rank = int(noise.num("rank")[0])
    out = {"over_train": [], "exact_train": [], "test_ratio": [], "train_ratio": []}
    for i in range(len(noise)):
        key = noise.col("key")[i]
        k = int(noise.num("width")[i])
        ratio = float(noise.num("rel_residual")[i] / noise.num("ls_level")[i])
        out["over_train" if k > rank else "exact_train"].append(ratio)
        if k > rank and key in hist:
            h = hist[key]
            it, test, train = h.num("iteration"), h.num("rel_error"), h.num("rel_residual")
            half = int(np.argmin(np.abs(it - it[-1] / 2)))
            out["test_ratio"].append(float(test[-1] / test[half]))
            out["train_ratio"].append(float(train[-1] / train[half]))
    bound = np.sqrt(tails["width"] - tails["rank"]) * tails["tail_u"] * tails["tail_v"]
    out["tail_ratio"] = tails["rel_error"] * tails["fro"] / bound
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def claims(res: dict, cfg: dict) -> list:
    over, exact = res["over_train"], res["exact_train"]
    return [
        claim("E14.a", "e14", "an overparameterized model (k = n2) interpolates: its final training residual falls below the "
              "rank-r least-squares level ‖ε‖√(1 − dof/m)", "final train residual / least-squares level (worst seed)",
              worst(over) if over.size else None, "<=", cfg["max_overfit_residual"]),
        claim("E14.b", "e14", "the exact-rank model (k = r) stays at the rank-r least-squares level (it cannot fit the noise)",
              "final train residual / least-squares level (median, range over seeds)", _range(exact), "within", cfg["exact_residual_range"]),
        claim("E14.c", "e14", "while the training residual keeps falling (k = n2), the test error does not improve over the budget's second half",
              "test error(T) / test error(T/2) (median)", median_ci(res["test_ratio"]) if res["test_ratio"].size else None, ">=",
              cfg["min_test_ratio"]),
        claim("E14.d", "e14", "the tail mechanism (no noise): the error left after the budget is bounded by the spurious block, "
              "‖UVᵀ − X*‖_F ≤ √(k − r)·‖(I − P*)U‖₂‖(I − Q*)V‖₂, at every α", "‖UVᵀ − X*‖_F / (√(k − r)·tail product) (worst α and seed)",
              worst(res["tail_ratio"]) if res["tail_ratio"].size else None, "<=", cfg["max_tail_ratio"]),
    ]


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = ctx.section()
    noise, tail = ctx.trials("noise"), ctx.trials("tail")
    hist = ctx.histories("noise")
    tails = final_tails(tail, ctx.histories("tail"))
    res = measure(noise, hist, tails)
    rank = int(noise.num("rank")[0])
    fig, axes = plotting.new(ncols=3, width=4.2, height=3.6)
    ax = axes[0]
    widths = sorted(int(k) for k in noise.unique("width"))
    for k, color in zip(widths, ("C1", "C0")):
        for i, key in enumerate(noise.eq(width=k).col("key")):
            if key not in hist:
                continue
            h = hist[key]
            lvl = float(noise.where(noise.col("key") == key).num("ls_level")[0])
            it = np.maximum(h.num("iteration"), 1)
            ax.loglog(it, h.num("rel_residual") / lvl, color=color, lw=1, ls="-", alpha=0.8, label=f"train, k = {k}" if i == 0 else None)
            ax.loglog(it, h.num("rel_error") / float(np.min(h.num("rel_error"))), color=color, lw=1, ls=":", alpha=0.8,
                      label=f"test / its minimum, k = {k}" if i == 0 else None)
    ax.axhline(1, color="0.4", lw=0.8)
    ax.set_ylim(0.2, 5)
    plotting.finish(ax, xlabel="iteration", ylabel="train: residual / LS level; test: error / min", title="noise: train falls, test does not",
                   legend="upper right")
    alphas = sorted(set(tails["alpha"].tolist()))
    groups = []
    for s in sorted(set(tails["seed"].tolist())):
        sel = tails["seed"] == s
        order = np.argsort(tails["alpha"][sel])
        a, tu = tails["alpha"][sel][order], tails["tail_u"][sel][order]
        axes[1].loglog(a, tu, "o-", color="C0", ms=3, lw=0.8, alpha=0.7, label=r"$\|(I - P^*)U\|_2$ at the budget" if not groups else None)
        axes[1].loglog(a, tails["rel_error"][sel][order], "s--", color="C3", ms=3, lw=0.8, alpha=0.7, label="rel. test error" if not groups else None)
        groups.append((a, tu))
    plotting.finish(axes[1], xlabel="α (init scale)", ylabel="size at the budget", title="the tail against α (no noise)", legend="lower right")
    prod = tails["tail_u"] * tails["tail_v"] * np.sqrt(tails["width"] - tails["rank"])
    err = tails["rel_error"] * tails["fro"]
    cols = plotting.colors(len(alphas))
    for a, c in zip(alphas, cols):
        sel = np.isclose(tails["alpha"], a)
        axes[2].loglog(prod[sel], err[sel], "o", color=c, ms=4, label=f"α = {a:.0e}")
    line = np.geomspace(prod.min(), prod.max(), 10)
    axes[2].loglog(line, line, "k--", lw=1, label="bound (equality)")
    plotting.finish(axes[2], xlabel=r"$\sqrt{k - r}\,\|(I - P^*)U\|_2\|(I - Q^*)V\|_2$", ylabel=r"$\|UV^T - X^*\|_F$",
                   title="error vs the spurious block's bound", legend="upper left")
    sec.figures.append((plotting.save(fig, ctx.figure_path("train_test")),
                        "Left: noisy measurements — training residual over the rank-r least-squares level (solid) and test error over its "
                        f"minimum (dotted), k = {rank} and k = n2, one line per seed; middle: without noise, the tail ‖(I − P*)U‖₂ and the "
                        "test error at the budget against α, one line per seed; right: the error against its bound by the spurious block."))
    sec.claims.extend(claims(res, cfg))
    slope = loglog_slope_ci(groups)
    sec.notes.append(f"The tail ‖(I − P*)U‖₂ at the budget scales like α^{slope.value:.2f} [{slope.low:.2f}, {slope.high:.2f}] ({slope.label}); "
                     f"over the budget's second half the training residual (k = n2) falls by a median factor "
                     f"{np.median(res['train_ratio']):.3g} while the test error changes by {np.median(res['test_ratio']):.3g}.")
    sec.regimes.append(regime(noise, label="noisy runs", limit=5))
    sec.regimes.append(regime(tail, label="tail runs (no noise)", limit=5))
    return sec
