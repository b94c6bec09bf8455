"""E3 — implicit balancing: the imbalance UᵀU − VᵀV over a grid of α and μ,
its fitted exponents, and what balance buys (explicit term, unbalanced start)."""

from __future__ import annotations

from .custom import trial_method
from .methods import build_problem, result_summary

VARIANTS = ("fgd", "explicit", "unbalanced")


@trial_method({"variant": "fgd", "balance": 0.5, "unbalance": 300.0})
def compare_trial(params: dict):
    """One of three runs from U₀ = αβG₁, V₀ = (α/β)G₂ (asymsense.baselines.balanced_gd):
    "fgd" (β = 1, no term), "explicit" (β = 1, term (λ/4)‖UᵀU − VᵀV‖²_F with
    λ = balance), "unbalanced" (β = unbalance, no term)."""
    from ..baselines import balanced_gd

    variant = params["variant"]
    if variant not in VARIANTS:
        from ..errors import InputError

        raise InputError(f"variant must be one of {VARIANTS}, got {variant!r}")
    truth, op, y = build_problem(params)
    balance = params["balance"] if variant == "explicit" else 0.0
    unbalance = params["unbalance"] if variant == "unbalanced" else 1.0
    result = balanced_gd(op, y, max_iter=params["max_iter"], truth=truth, record_every=params["record_every"], seed=params["seed"],
                         tol=params["tol"], width=params["width"], init_scale=params["alpha"], unbalance=unbalance, balance=balance,
                         step_size=params["step"], step_constant=params["step_constant"], n_singular=params["n_singular"])
    return result_summary(result), result.history
