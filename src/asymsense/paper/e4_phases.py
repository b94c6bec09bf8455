"""E4 — singular values, principal angles and tail norms vs iteration, with the
three phases detected automatically (asymsense.paper.phases) and marked."""

from __future__ import annotations

import numpy as np

from asymsense.paper import figures
from asymsense.paper.claims import claim
from asymsense.paper.context import Section
from asymsense.paper.fitting import Estimate
from asymsense.paper.phases import phases_from_history


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = Section(ctx.name, ctx.config["title"], ctx.config["summary"])
    t = ctx.trials("fgd")
    hist = ctx.histories("fgd")
    rank = int(t.num("rank")[0])
    cond = float(t.num("cond")[0])
    sigma_r = 1.0 / cond  # planted problems have σ₁ = 1, σ_r = 1/κ
    detected, spurious, rows = [], [], []
    keys = [k for k in t.col("key") if k in hist]
    for key in keys:
        h = hist[key]
        ph = phases_from_history(h, rank)
        detected.append(ph)
        sv_next = h.get(f"sv_{rank + 1}")
        spurious.append(float(np.max(sv_next)) / sigma_r if sv_next is not None else np.nan)
        rows.append(f"| {key[:8]} | {ph.alignment_end} | {ph.growth_end} | {ph.stop} | {'yes' if ph.complete else 'no'} |")
    if keys:
        h, ph = hist[keys[0]], detected[0]
        fig, axes = figures.new(ncols=3, width=4.4, height=3.6)
        it = h.num("iteration")
        for i in range(1, min(rank + 3, 11)):
            name = f"sv_{i}"
            if name in h:
                axes[0].semilogy(it, h.num(name), lw=1.2 if i <= rank else 0.8, ls="-" if i <= rank else "--", label=f"σ_{i}(UVᵀ)")
        axes[0].set_title("singular values of UVᵀ")
        axes[0].set_ylabel("singular value")
        axes[0].legend(fontsize=6.5, loc="lower right")
        for name, style in (("angle_u", "C0-"), ("angle_v", "C1-")):
            axes[1].semilogy(it, h.num(name), style, lw=1, label=f"{name} (sin θ_max)")
        axes[1].semilogy(it, h.num("rel_error"), "k-", lw=1, label="rel. error")
        axes[1].set_title("principal angles to X*, test error")
        axes[1].set_ylabel("sin θ_max; rel. test error")
        axes[1].legend(fontsize=6.5, loc="lower left")
        for name, style in (("tail_u", "C2-"), ("tail_v", "C3-")):
            axes[2].semilogy(it, h.num(name), style, lw=1, label=f"{name} = ‖(I − P*)·‖₂")
        axes[2].set_title("tail norms")
        axes[2].set_ylabel("‖(I − P*)U‖₂, ‖(I − P*)V‖₂")
        axes[2].legend(fontsize=6.5, loc="lower right")
        for ax in axes:
            figures.mark_phases(ax, ph)
            ax.set_xlabel("iteration")
            ax.set_xlim(0, min(ph.stop, max(3 * ph.growth_end, 10)))
        first = axes[0].get_legend()
        figures.mark_phases(axes[0], ph, legend=True)
        if first is not None:
            axes[0].add_artist(first)
        sec.figures.append((figures.save(fig, ctx.figure_path("phases")), f"One trajectory (seed of key {keys[0][:8]}), phases detected automatically and shaded: {ph.method}."))
    n = len(detected)
    frac = sum(p.complete for p in detected) / n if n else None
    sec.claims.append(claim("E4.a", "e4", "the three phases (spectral alignment, signal growth, local refinement) are detected in order in every trajectory",
                            "fraction of seeds with all three phases", None if frac is None else Estimate(frac, frac, frac, 1.0, n), ">=",
                            cfg["min_complete_fraction"], uncertainty=f"count over {n} seeds"))
    worst = float(np.nanmax(spurious)) if spurious else None
    sec.claims.append(claim("E4.b", "e4", "implicit low-rank bias: σ_(r+1)(UVᵀ) stays small along the whole path (k = n2 ≫ r)",
                            "max_t σ_(r+1)(UVᵀ) / σ_r(X*) (worst seed)", None if worst is None else Estimate(worst, worst, worst, 1.0, n), "<=",
                            cfg["max_spurious"], uncertainty="worst over seeds"))
    sec.notes.append("Detected phase boundaries (iterations):\n\n| trial | alignment ends | growth ends | last | complete |\n|---|---|---|---|---|\n" + "\n".join(rows))
    if keys:
        tails = [float(np.max(np.maximum(hist[k].num("tail_u"), hist[k].num("tail_v"))[hist[k].num("iteration") < p.growth_end])) for k, p in zip(keys, detected)]
        sec.notes.append(f"Largest tail ‖(I − P*)U‖₂, ‖(I − P*)V‖₂ before the end of growth: median {np.median(tails):.3g} (α = {float(t.num('alpha')[0]):g}). "
                         "At this oversampling the power method converges to the top-r space of A*(y), which differs from X*'s by the "
                         "spectral-initialization error, so the tails grow with the signal up to that angle and shrink during refinement; "
                         "the spurious directions themselves (σ_(r+1)) stay small (claim E4.b).")
    return sec
