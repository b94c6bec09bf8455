"""The `asymsense compare` job: fgd and every sensing baseline on one planted
problem, with the same budget, side by side."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from asymsense.backend import quiet_overflow
from asymsense.baselines import BASELINES, EXACT_RANK
from asymsense.errors import DivergenceError
from asymsense.serialize import plain
from asymsense.jobs.solve import build, enough_memory
from asymsense.solvers.fgd import fgd
from asymsense.solvers.stepsize import adjoint_norm
from asymsense.spec import load_solve_config


def noise_penalty(operator, noise: float, seed: int) -> float:
    """λ_final for nuclear-norm minimization at noise level σ: 2‖A*(ε̃)‖₂ for a
    fresh draw ε̃ ~ N(0, σ²I) — the usual rule λ ≥ 2‖A*(ε)‖₂ (Negahban &
    Wainwright 2011), with the known noise level of the planted problem."""
    eps = noise * np.random.default_rng([seed, 0xBA5E]).standard_normal(operator.m).astype(operator.dtype)
    return 2.0 * adjoint_norm(operator, eps, seed=seed)


def method_calls(*, rank: int, width: int, alpha: float, penalty: float | None) -> dict:
    """Each method's name → (function, method-specific keywords) as compare runs it."""
    small_init = {"width": width, "init_scale": alpha}
    kwargs = {"nuclear": {} if penalty is None else {"penalty": penalty}, "balanced": small_init, "scaled-gd": small_init,
              **{name: {"width": rank} for name in EXACT_RANK}}
    calls = {"fgd": (fgd, small_init)}
    for name, fn in BASELINES.items():
        calls[name] = (fn, kwargs.get(name, {}))
    return calls


def run_compare(config=None, *, progress=None, **parameters) -> list[dict]:
    """Run every method with the same budget on the planted problem that
    `asymsense solve` builds from the same parameters (`SolveConfig`: the same
    validation, defaults and derived seeds, so `compare --seed s` and
    `solve --seed s` share truth, operator, noise and fgd's initialization).

    One record per method: {"method", summary.json keys…, "config", "solver"}
    with `config` every resolved problem parameter and seed (plus
    `nuclear_penalty`) and `solver` what the method recorded; or {"method",
    "diverged": True, "error", "config"} when it diverged. `progress(name)`
    may return a per-iteration callback for that method. BLAS is limited to
    one thread: these problems are small, and a second BLAS thread competing
    with any other busy process slowed such steps 15–25× in our runs.

    `config` is a TOML file of solve's parameters (or a solve summary.json),
    `parameters` override it (None = not given); anything given nowhere takes
    asymsense.spec's default, as in `asymsense solve` (seed 0, max_iter 1000, ...)."""
    overrides = {**parameters, "threads": 1}
    settings = load_solve_config(config, overrides).resolved()
    records = []
    with threadpool_limits(1), enough_memory(settings), quiet_overflow():
        truth, op, y = build(settings)
        penalty = noise_penalty(op, settings.noise, settings.noise_seed) if settings.noise > 0 else None
        config = {**settings.record(), "nuclear_penalty": penalty}
        calls = method_calls(rank=settings.rank, width=settings.width, alpha=settings.alpha, penalty=penalty)
        for name, (fn, kwargs) in calls.items():
            callback = progress(name) if progress is not None else None
            try:
                result = fn(op, y, max_iter=settings.max_iter, truth=truth, record_every=settings.record_every, seed=settings.seed,
                            tol=settings.tol, progress=callback, **kwargs)
            except DivergenceError as exc:
                records.append({"method": name, "diverged": True, "error": str(exc), "config": config})
                continue
            records.append(plain({"method": name, **result.summary(), "config": config, "solver": result.config}))
    return records
