"""`asymsense inspect DATA`: what a table looks like before fitting, and the
settings `complete` would use, each with its reason.

Counting argument: a rank-r n1×n2 matrix has r(n1 + n2 − r) degrees of
freedom, so |Ω| below that cannot determine it, and completion theory asks for
a logarithmic factor more (|Ω| ≳ r(n1+n2)·log(n1+n2) for incoherent
matrices). We report |Ω| / (r(n1+n2−r)) for a few r, and the largest r for
which that ratio is at least 3 (roughly where overparameterized GD from small
initialization recovered planted matrices in our reference runs).
"""

from __future__ import annotations

import math

import numpy as np

from asymsense.solvers.stepsize import STEP_CONSTANT, adjoint_norm
from asymsense.operators import EntrySample
from asymsense.completion.biases import BIAS_DAMPING, fit_biases
from asymsense.completion.model import DEFAULT_WIDTH, INIT_RELATIVE
from asymsense.serialize import plain

FEW_OBSERVATIONS = 5
RANKS = (1, 2, 5, 10, 20, 50)
SAMPLING_FACTOR = 3.0


def supported_rank(m: int, n1: int, n2: int, factor: float = SAMPLING_FACTOR) -> int:
    """The largest r with m ≥ factor · r(n1 + n2 − r) (0 when not even r = 1):
    the rank |Ω| = m entries support with `factor` entries per degree of freedom."""
    r = 0
    while r < min(n1, n2) and m >= factor * (r + 1) * (n1 + n2 - r - 1):
        r += 1
    return r


def _distribution(counts) -> dict:
    q = np.percentile(counts, [0, 10, 25, 50, 75, 90, 100])
    return {"min": int(q[0]), "p10": float(q[1]), "p25": float(q[2]), "median": float(q[3]), "p75": float(q[4]), "p90": float(q[5]), "max": int(q[6]), "mean": float(np.mean(counts))}


def inspect_table(table, *, validation: float = 0.1, patience: int = 50, max_iter: int = 2000, few: int = FEW_OBSERVATIONS) -> dict:
    """Shape, density, observation distributions, sparse rows/columns, sample
    sufficiency and the default settings of `complete` with reasons."""
    n1, n2 = table.shape
    m = table.m
    cnt_r = np.bincount(table.rows, minlength=n1)
    cnt_c = np.bincount(table.cols, minlength=n2)
    y = table.values
    few_rows = np.flatnonzero(cnt_r < few)
    few_cols = np.flatnonzero(cnt_c < few)
    sufficiency = []
    for r in RANKS:
        if r > min(n1, n2):
            break
        dof = r * (n1 + n2 - r)
        sufficiency.append({"rank": r, "degrees_of_freedom": dof, "ratio": m / dof, "enough": m >= SAMPLING_FACTOR * dof})
    r_max = supported_rank(m, n1, n2)

    b = fit_biases(table.rows, table.cols, y, table.shape, "both")
    z = y - b(table.rows, table.cols)
    op = EntrySample(table.rows, table.cols, table.shape, dtype="float64")
    scale = adjoint_norm(op, z, seed=0)
    width = min(n1, n2, DEFAULT_WIDTH)
    settings = {
        "width": {"value": width, "reason": f"min(n1, n2, {DEFAULT_WIDTH}): generous, so no rank is chosen in advance; the learned rank is read off UVᵀ (a rank of {r_max} is about what |Ω| supports)."},
        "init_scale": {"value": INIT_RELATIVE * math.sqrt(scale) if scale > 0 else None,
                       "reason": f"α = {INIT_RELATIVE:g}·√‖A*(z)‖₂ with ‖A*(z)‖₂ = {scale:.4g} (z = values minus biases): UVᵀ starts at 10⁻⁶ of the data's spectral scale, small enough for implicit regularization."},
        "step_size": {"value": STEP_CONSTANT / scale if scale > 0 else None,
                      "reason": f"μ = {STEP_CONSTANT}/‖A*(z)‖₂: the curvature of the completion loss along its top direction is ‖A*(z)‖₂; c = {STEP_CONSTANT} was stable in every reference run."},
        "validation": {"value": validation, "reason": f"{validation:.0%} of the entries ({int(round(validation * m))}) held out at random for early stopping" + ("; consider validation_kind='rows' so every row keeps training entries" if len(few_rows) else "") + "."},
        "patience": {"value": patience, "reason": "iterations without a better validation RMSE before stopping; the best iterate is restored."},
        "max_iter": {"value": max_iter, "reason": "budget; early stopping normally ends the run long before."},
        "biases": {"value": "both", "reason": f"damped means (row damping {BIAS_DAMPING[0]:g}, column damping {BIAS_DAMPING[1]:g}) fitted first; the factors model what biases cannot."},
        "clip": {"value": [float(y.min()), float(y.max())], "reason": "predictions clipped to the observed range."},
    }
    return {
        "source": table.source,
        "shape": [n1, n2],
        "observed": m,
        "density": m / (n1 * n2),
        "duplicates_merged": table.n_duplicates,
        "values": {"min": float(y.min()), "max": float(y.max()), "mean": float(y.mean()), "std": float(y.std()), "distinct": int(min(len(np.unique(y)), 10**9))},
        "per_row": _distribution(cnt_r),
        "per_column": _distribution(cnt_c),
        "few_observations_threshold": few,
        "rows_with_few": {"count": int(len(few_rows)), "examples": plain(table.row_map.decode(few_rows[:10]), nonfinite="keep")},
        "columns_with_few": {"count": int(len(few_cols)), "examples": plain(table.col_map.decode(few_cols[:10]), nonfinite="keep")},
        "sample_sufficiency": sufficiency,
        "supported_rank": r_max,
        "residual_spectral_norm": scale,
        "settings": settings,
    }


def format_report(info: dict) -> str:
    """Plain-text rendering of `inspect_table`'s dict."""
    n1, n2 = info["shape"]
    lines = [
        f"{info['source']}: {n1} rows × {n2} columns, {info['observed']} observed entries (density {info['density']:.4%})",
        f"values: min {info['values']['min']:.4g}, max {info['values']['max']:.4g}, mean {info['values']['mean']:.4g}, std {info['values']['std']:.4g}, {info['values']['distinct']} distinct"
        + (f"; {info['duplicates_merged']} duplicate pairs merged" if info["duplicates_merged"] else ""),
    ]
    for key, name in (("per_row", "observations per row"), ("per_column", "observations per column")):
        d = info[key]
        lines.append(f"{name}: min {d['min']}, p10 {d['p10']:.0f}, median {d['median']:.0f}, p90 {d['p90']:.0f}, max {d['max']}, mean {d['mean']:.1f}")
    few = info["few_observations_threshold"]
    for key, name in (("rows_with_few", "rows"), ("columns_with_few", "columns")):
        d = info[key]
        ex = f" (e.g. {', '.join(map(str, d['examples'][:5]))})" if d["count"] else ""
        lines.append(f"{name} with fewer than {few} observations: {d['count']}{ex}" + (" — predicted mostly from their biases" if d["count"] else ""))
    lines.append("is |Ω| enough for a low-rank fit? |Ω| / r(n1+n2−r):")
    for s in info["sample_sufficiency"]:
        lines.append(f"  r = {s['rank']:>3}: {s['ratio']:8.2f}  {'ok' if s['enough'] else 'too few (< 3)'}")
    lines.append(f"largest rank with at least {SAMPLING_FACTOR:g}× the degrees of freedom: {info['supported_rank']}")
    lines.append("settings `asymsense complete` would use (μ and α are recomputed on the training part):")
    for name, s in info["settings"].items():
        value = s["value"]
        shown = f"{value:.4g}" if isinstance(value, float) else value
        lines.append(f"  {name} = {shown}: {s['reason']}")
    return "\n".join(lines)
