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

from ..fgd import initial_factors
from ..metrics import as_truth, monitor
from ..stepsize import auto_step_size
from .custom import trial_method
from .methods import build_problem


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
    truth = as_truth(truth)
    n1 = op.n1
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
    import pyarrow as pa

    hist = pa.table({k: pa.array(v) for k, v in rows.items()})
    sines = np.asarray(rows["align_sin"])
    summary = {
        "max_deviation": max_dev,
        "min_align_sin": float(np.min(sines)),
        "final_align_sin": float(sines[-1]),
        "target_sin": target_sin,
        "rel_error": rows["rel_error"][-1],
        "iterations": int(params["max_iter"]),
        "step_size": float(mu),
    }
    return summary, hist
