"""E8 — the lifted view: W = [U; V] follows symmetric GD on the dilation.

With M = A*(A(UVᵀ) − y) and S(M) = [[0, M], [Mᵀ, 0]], the simultaneous FGD
update U⁺ = U − μMV, V⁺ = V − μMᵀU is exactly W⁺ = W − μS(M)W. Early on
M ≈ −A*A(X*) ≈ −X*, so W⁺ ≈ (I + μS(X*))W: a power method on S(X*), whose top
eigenvectors (eigenvalues +σ_i) are e_i = [u_i; v_i]/√2. The trial runs both
updates side by side from the same iterate — the factor path through the
operator's gradient products, the lifted path with M formed explicitly — and
records their relative deviation and the alignment of W with span{e_i}.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from asymsense.metrics import as_truth, monitor
from asymsense.paper import figures
from asymsense.paper.claims import claim
from asymsense.paper.context import Section
from asymsense.paper.fitting import Estimate
from asymsense.solvers.fgd import initial_factors
from asymsense.solvers.stepsize import auto_step_size
from asymsense.sweep.custom import trial_method
from asymsense.sweep.methods import build_problem


def dilation(M: np.ndarray) -> np.ndarray:
    """S(M) = [[0, M], [Mᵀ, 0]] ((n1+n2)×(n1+n2), symmetric)."""
    n1, n2 = M.shape
    S = np.zeros((n1 + n2, n1 + n2), dtype=M.dtype)
    S[:n1, n1:] = M
    S[n1:, :n1] = M.T
    return S


def lifted_directions(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Orthonormal e_i = [u_i; v_i]/√2: eigenvectors of S(X*) for +σ_i."""
    return np.vstack([left, right]) / np.sqrt(2.0)


def alignment_sine(W: np.ndarray, E: np.ndarray) -> float:
    """Sine of the largest principal angle between the top-r left singular
    space of W and span(E) (E orthonormal, r columns)."""
    r = E.shape[1]
    Q = np.linalg.svd(W, full_matrices=False)[0][:, :r]
    return float(np.linalg.norm(Q - E @ (E.T @ Q), 2))


@trial_method({})
def lifted_trial(params: dict):
    """Run FGD and the lifted symmetric update side by side; history columns:
    iteration, deviation (relative, per step), align_sin, w_norm, rel_error."""
    truth, op, y = build_problem(params)
    seed = params["seed"]
    mu = params["step"] if params["step"] != "auto" else auto_step_size(op, y, constant=params["step_constant"], seed=seed)
    U, V = initial_factors(op.n1, op.n2, params["width"], [params["alpha"]], [seed], np.float64)
    U, V = U[0], V[0]
    E = lifted_directions(truth.left, truth.right)
    r = E.shape[1]
    evals, evecs = np.linalg.eigh(dilation(op.adjoint(y)))
    Ey = evecs[:, np.argsort(evals)[::-1][:r]]
    target_sin = float(np.linalg.norm(Ey - E @ (E.T @ Ey), 2))
    top = np.sort(evals)[::-1]
    truth = as_truth(truth)
    rows = {"iteration": [], "deviation": [], "align_sin": [], "align_sin_y": [], "w_norm": [], "rel_error": []}
    max_dev = 0.0
    for t in range(params["max_iter"] + 1):
        W = np.vstack([U, V])
        record = t % params["record_every"] == 0 or t == params["max_iter"]
        if t == params["max_iter"]:
            dev = np.nan
        else:
            residual = op.forward_factors(U, V) - y
            MV, MtU = op.gradient_products(residual, U, V)
            U_next, V_next = U - mu * MV, V - mu * MtU
            M = op.adjoint(residual)
            W_lift = W - mu * (dilation(M) @ W)
            W_next = np.vstack([U_next, V_next])
            dev = float(np.linalg.norm(W_lift - W_next) / max(np.linalg.norm(W_next), np.finfo(float).tiny))
            max_dev = max(max_dev, dev)
        if record:
            rows["iteration"].append(t)
            rows["deviation"].append(dev)
            rows["align_sin"].append(alignment_sine(W, E))
            rows["align_sin_y"].append(alignment_sine(W, Ey))
            rows["w_norm"].append(float(np.linalg.norm(W, 2)))
            rows["rel_error"].append(float(monitor(U[None], V[None], truth=truth)["rel_error"][0]))
        if t < params["max_iter"]:
            U, V = U_next, V_next
    hist = pa.table({k: pa.array(v) for k, v in rows.items()})
    sines = np.asarray(rows["align_sin"])
    summary = {
        "max_deviation": max_dev,
        "min_align_sin": float(np.min(sines)),
        "final_align_sin": float(sines[-1]),
        "target_sin": target_sin,
        "gap_ratio": float(top[r] / top[r - 1]),
        "rel_error": rows["rel_error"][-1],
        "iterations": int(params["max_iter"]),
        "step_size": float(mu),
    }
    return summary, hist


def analyze(ctx):
    cfg = ctx.analysis
    sec = Section(ctx.name, ctx.config["title"], ctx.config["summary"])
    t = ctx.trials("lifted")
    hist = ctx.histories("lifted")
    tol = float(cfg["align_tol"])
    fig, axes = figures.new(ncols=2, width=5.0, height=3.6)
    norms, closest, rows = [], [], ["| trial | iteration aligned (S(A*y)) | ‖W‖₂ then | sine to [u;v]/√2 then | closest sine to S(A*y) while ‖W‖₂ ≤ "
                                    f"{cfg['max_aligned_norm']:g} | target offset sin(S(A*y), S(X*)) | σ_(r+1)/σ_r of A*(y) | final sine to [u;v]/√2 |",
                                    "|---|---|---|---|---|---|---|---|"]
    gaps = t.num("gap_ratio") if "gap_ratio" in t else np.full(len(t), np.nan)
    for i, (key, target, gap) in enumerate(zip(t.col("key"), t.num("target_sin"), gaps)):
        if key not in hist:
            continue
        h = hist[key]
        it = h.num("iteration")
        dev = h.num("deviation")
        axes[0].semilogy(it, np.maximum(dev, 1e-17), color="C0", lw=1, label="‖W⁺_lifted − [U⁺;V⁺]‖_F / ‖W⁺‖_F (0 drawn at 1e-17)" if i == 0 else None)
        axes[1].semilogy(it, h.num("align_sin_y"), color="C1", lw=1, label="sin ∠(W, top-r eigvecs of S(A*y))" if i == 0 else None)
        axes[1].semilogy(it, h.num("align_sin"), color="C2", lw=1, label="sin ∠(W, [u_i; v_i]/√2)" if i == 0 else None)
        axes[1].semilogy(it, h.num("w_norm"), color="0.5", lw=1, ls="--", label="‖W‖₂" if i == 0 else None)
        hit = np.flatnonzero(h.num("align_sin_y") <= tol)
        while_small = h.num("align_sin_y")[h.num("w_norm") <= cfg["max_aligned_norm"]]
        closest.append(float(np.min(while_small)) if while_small.size else float("nan"))
        if hit.size:
            j = hit[0]
            norms.append(float(h.num("w_norm")[j]))
            rows.append(f"| {key[:8]} | {int(it[j])} | {h.num('w_norm')[j]:.3g} | {h.num('align_sin')[j]:.3g} | {closest[-1]:.3g} | {target:.3g} | {gap:.3g} | {h.num('align_sin')[-1]:.3g} |")
        else:
            norms.append(float("inf"))
            rows.append(f"| {key[:8]} | never | — | — | {closest[-1]:.3g} | {target:.3g} | {gap:.3g} | {h.num('align_sin')[-1]:.3g} |")
    axes[0].set_title("lifted vs factor update")
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("relative deviation")
    axes[0].legend(fontsize=6.5)
    axes[1].axhline(tol, color="0.6", lw=0.8, label=f"alignment threshold (sine = {tol:g}; ‖W‖₂ ≤ {cfg['max_aligned_norm']:g} for E8.b)")
    axes[1].set_title("power-method alignment")
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("sine of the largest principal angle; ‖W‖₂")
    axes[1].legend(fontsize=6.5)
    sec.figures.append((figures.save(fig, ctx.figure_path("lifted")), "Left: relative deviation between the lifted symmetric update and the FGD update; right: alignment of W = [U; V] with the dilation's top eigenvectors."))
    dev = t.num("max_deviation")
    worst = float(np.max(dev)) if dev.size else None
    sec.claims.append(claim("E8.a", "e8", "W = [U; V] follows W⁺ = W − μS(M)W exactly (FGD = symmetric GD on the dilation)", "max relative deviation over iterations and seeds",
                            None if worst is None else Estimate(worst, worst, worst, 1.0, dev.size), "<=", cfg["max_deviation"], uncertainty="worst over iterations and seeds"))
    small = float(np.mean(np.asarray(norms) <= cfg["max_aligned_norm"])) if norms else None
    sec.claims.append(claim("E8.b", "e8", f"early on the update is a power method: W aligns with the top-r eigenvectors of S(A*(y)) (sine ≤ {tol:g}) while still small (‖W‖₂ ≤ {cfg['max_aligned_norm']:g})",
                            "fraction of seeds", None if small is None else Estimate(small, small, small, 1.0, len(norms)), ">=", cfg["min_aligned_fraction"], uncertainty=f"count over {len(norms)} seeds"))
    fin = t.num("final_align_sin")
    wf = float(np.max(fin)) if fin.size else None
    sec.claims.append(claim("E8.c", "e8", "W ends aligned with [u_i; v_i]/√2, the top eigenvectors of S(X*)", "final sine (worst seed)",
                            None if wf is None else Estimate(wf, wf, wf, 1.0, fin.size), "<=", cfg["max_final_sine"], uncertainty="worst over seeds"))
    sec.notes.extend(_misalignment_notes(norms, closest, list(gaps), cfg["max_aligned_norm"], tol))
    sec.notes.append("Alignment of W (iterations, norms, sines):\n\n" + "\n".join(rows) + "\n\nThe power method converges to the top eigenvectors of the dilation of A*(y), which differ from "
                     "[u_i; v_i]/√2 by the spectral-initialization error (target offset column); signal growth and refinement close the rest.")
    return sec


GAP_MARGIN = 0.02
"""Ratios σ_(r+1)/σ_r closer than this do not tell seeds apart: over the ~20
steps of the alignment phase they change the separation by a few percent."""


def _misalignment_notes(norms, closest, gaps, max_norm: float, tol: float) -> list[str]:
    """A note on the seeds that did not align while small: how close they came,
    and whether the spectral gap of A*(y) tells them apart from the seeds that
    did (the power method separates the r-th direction at the rate
    (1 + μσ_(r+1))/(1 + μσ_r) per step) — stated only when every failing
    seed's ratio exceeds every aligned seed's by more than GAP_MARGIN."""
    failed = [i for i, n in enumerate(norms) if not n <= max_norm]
    if not failed:
        return []
    ok = [i for i in range(len(norms)) if i not in failed]
    note = (f"{len(failed)} of {len(norms)} seeds did not align while small (sine ≤ {tol:g} while ‖W‖₂ ≤ {max_norm:g}); closest sine reached: "
            f"{', '.join(f'{closest[i]:.3g}' for i in failed)}; their σ_(r+1)/σ_r of A*(y): {', '.join(f'{gaps[i]:.3f}' for i in failed)}")
    fail_gaps = [gaps[i] for i in failed if np.isfinite(gaps[i])]
    ok_gaps = [gaps[i] for i in ok if np.isfinite(gaps[i])]
    if fail_gaps and ok_gaps and min(fail_gaps) > max(ok_gaps) + GAP_MARGIN:
        note += (f", above every aligned seed's ({max(ok_gaps):.3f} at most): with a ratio near 1 (a small spectral gap of A*(y), a large RIP "
                 "constant for this draw) the signal saturates before the power method separates the r-th direction.")
    elif ok_gaps:
        note += (f"; the aligned seeds' ratios span {min(ok_gaps):.3f}–{max(ok_gaps):.3f}, so the spectral gap of A*(y) alone does not explain the "
                 "failure here (the alignment threshold and the initial direction matter too).")
    else:
        note += "."
    return [note]
