"""E6 — sample complexity: success-probability heat maps over
m / (r(n1 + n2 − r)) and r for overparameterized FGD, exact-rank FGD and
nuclear-norm minimization."""

from __future__ import annotations

import numpy as np

from asymsense.paper import plotting
from asymsense.paper.claims import claim
from asymsense.paper.context import Section  # noqa: F401 (analyze returns one)
from asymsense.paper.fitting import worst
from asymsense.paper.regime import regime

METHODS = (("over", "overparameterized FGD (k = min(n1, n2))"), ("exact", "exact-rank FGD (k = r)"), ("nuclear", "nuclear-norm minimization"))


def success_grid(t, tol: float, max_fill: float = float("inf")):
    """(ranks, ratios, success fraction [rank, ratio], seeds per cell); cells with
    m > max_fill·n1·n2 are left out (NaN)."""
    if len(t):
        t = t.where(t.num("m") <= max_fill * t.num("n1") * t.num("n2"))
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
    """Smallest ratio from which every larger tested ratio also succeeds (inf if
    none; untested cells (NaN) are skipped)."""
    row = np.asarray(row, dtype=float)
    tested = np.isfinite(row)
    ok = row >= rate
    for j in range(len(ratios)):
        if tested[j] and ok[j:][tested[j:]].all():
            return float(ratios[j])
    return float("inf")


def measure(tables: dict, cfg: dict) -> dict:
    """E6's results object: per method label, {rank: transition ratio} over the
    cells with m ≤ max_fill·n1·n2, and the largest m/(n1·n2) of any stored cell."""
    out, fills = {}, []
    for label, t in tables.items():
        if not len(t):
            continue
        fills.append(float(np.max(t.num("m") / (t.num("n1") * t.num("n2")))))
        ranks, ratios, P, _ = success_grid(t, cfg["success_tol"], cfg["max_fill"])
        out[label] = {r: transition(ratios, P[i], cfg["success_rate"]) for i, r in enumerate(ranks)}
    return {"transitions": out, "max_fill": max(fills) if fills else float("nan")}


def claims(res: dict, cfg: dict) -> list:
    """E6.a–d from `measure`'s results."""
    tr = res["transitions"]
    fill = res["max_fill"]
    out = [claim("E6.a", "e6", "the sample-complexity grid stays out of the injective regime: largest m / (n1·n2) of any cell",
                 "max m / (n1·n2)", fill if np.isfinite(fill) else None, "<=", cfg["max_fill"])]
    ranks = sorted(set(tr.get("over", {})) & set(tr.get("nuclear", {})))
    # nuclear norm never recovering inside the grid counts as "beyond any tested ratio" (FGD then needs fewer);
    # FGD never recovering leaves the gap undefined: not measured, a FAIL
    gap = worst([tr["over"][r] - min(tr["nuclear"][r], 1e9) for r in ranks]) if ranks else None
    out.append(claim("E6.b", "e6", "overparameterized FGD (k = min(n1, n2)) needs no more samples than nuclear-norm minimization (+ one grid step)",
                     "transition ratio FGD(k = min) − nuclear norm, worst rank", gap, "<=", cfg["max_gap_to_nuclear"],
                     uncertainty=f"grid resolution, ranks {ranks}"))
    for cid, (label, title) in zip(("E6.c", "E6.d", "E6.e"), METHODS):
        trans = tr.get(label)
        value = max(trans.values()) if trans else None
        out.append(claim(cid, "e6", f"{title} recovers X* (success ≥ {cfg['success_rate']:g} of seeds) below the injective regime, every rank",
                         "transition ratio m / (r(n1+n2−r)), worst rank", value, "<=", cfg["max_transition"], uncertainty="grid resolution"))
    return out


def analyze(ctx) -> Section:
    cfg = ctx.analysis
    sec = ctx.section()
    fig, axes = plotting.new(ncols=3, width=4.0, height=3.2)
    tables = {label: ctx.trials(label) for label, _ in METHODS}
    table = ["| method | " + "transition ratio per rank | min seeds per cell |", "|---|---|---|"]
    for ax, (label, title) in zip(axes, METHODS):
        t = tables[label]
        ranks, ratios, P, N = success_grid(t, cfg["success_tol"], cfg["max_fill"])
        im = plotting.success_map(ax, P, ratios, ranks, contour=cfg["success_rate"])
        n1, n2 = int(t.num("n1")[0]), int(t.num("n2")[0])
        injective = [np.interp(n1 * n2 / (r * (n1 + n2 - r)), ratios, np.arange(len(ratios)), right=np.nan) for r in ranks]
        slope = 1 / (ratios[-1] - ratios[-2]) if len(ratios) > 1 else 1.0
        injective = [x if np.isfinite(x) else len(ratios) - 1 + (n1 * n2 / (r * (n1 + n2 - r)) - ratios[-1]) * slope for x, r in zip(injective, ranks)]
        right = len(ratios) + 0.5  # two cells beyond the grid: the injective region shows where it starts, if that close
        edge = {r: n1 * n2 / (r * (n1 + n2 - r)) for r in ranks}
        for i, x in enumerate(injective):
            if x < right:
                ax.fill_betweenx([i - 0.5, i + 0.5], max(x, -0.5), right, facecolor="none", edgecolor="0.45", hatch="//", lw=0)
        ax.fill_betweenx([], [], [], facecolor="none", edgecolor="0.45", hatch="//", lw=0,
                         label="m ≥ n1·n2 (A injective): from m/dof = " + ", ".join(f"{edge[r]:.3g}" for r in ranks) + f" (r = {', '.join(map(str, ranks))})")
        ax.set_xlim(-0.5, right)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
        ax.set_xlabel("m / (r(n1 + n2 − r))")
        ax.set_ylabel("rank r")
        ax.set_title(title, fontsize=9)
        trans = [transition(ratios, P[i], cfg["success_rate"]) for i in range(len(ranks))]
        table.append(f"| {title} | " + ", ".join(f"r={r}: {x:g}" for r, x in zip(ranks, trans)) + f" | {int(N[N > 0].min()) if (N > 0).any() else 0} |")
    fig.colorbar(im, ax=axes[-1], shrink=0.9, label="success probability")
    sec.figures.append((plotting.save(fig, ctx.figure_path("samples")), f"Fraction of seeds with final rel. error ≤ {cfg['success_tol']:g}."))
    sec.claims.extend(claims(measure(tables, cfg), cfg))
    for r in tables["over"].unique("rank"):
        sub = tables["over"].eq(rank=r)
        sec.regimes.append(regime(sub.where(sub.num("oversampling") == max(sub.num("oversampling"))), label=f"r = {int(r)}, largest ratio", limit=5))
    sec.notes.append("Transition ratio: the smallest m / (r(n1 + n2 − r)) from which every larger tested ratio succeeds.\n\n" + "\n".join(table))
    return sec
