"""Trial methods: what one trial of a sweep runs.

A method is a callable `method(params: dict) -> (summary: dict, history)`
where `history` is a `History`, a `pyarrow.Table` or None and `summary` maps
metric names to scalars. A method may carry three optional attributes:

- `resolve_params(params) -> dict`: fill defaults and check values (so that
  equivalent specifications get the same trial key); without it the params
  are used as given;
- `batch_group(params) -> hashable | None`: trials with equal non-None
  groups may run together;
- `plan_batches(list_of_params, max_size) -> list[list[int]]`: split one
  group into calls of at most max_size trials (depending only on the trials);
- `run_batch(list_of_params) -> list[(summary, history)]`: run one such call
  (results in the same order).

A method is found by its plain name in a registry, never by an import path
written in a config file (a sweep config is data; it must not choose code to
run): `METHODS` holds the built-in methods, `asymsense.baselines.BASELINES`
the baselines, and a caller may hand `resolve_method` (and `run_sweep`) a
mapping of further methods by name — the paper runner passes its trial
methods this way (`asymsense.paper.registry.TRIAL_METHODS`).
"""

from __future__ import annotations

import inspect
import json
from typing import Callable, Mapping

import numpy as np

from asymsense.baselines import BASELINES, EXACT_RANK
from asymsense.errors import InputError
from asymsense.problems import planted_instance
from asymsense.solvers.fgd import fgd
from asymsense.spec import STANDARD, drop_unused_noise_seed, plain, resolve_problem, resolve_run, resolve_solver


# --------------------------------------------------------------------------- building blocks
def build_problem(params: dict):
    """(truth, operator, y) of a resolved trial (see `asymsense.problems.planted_instance`)."""
    return planted_instance(params["n1"], params["n2"], params["rank"], cond=params["cond"], spectrum=params["spectrum"],
                            operator=params["operator"], m=params["m"], noise=params["noise"], dtype=params["dtype"],
                            problem_seed=params["problem_seed"], operator_seed=params["operator_seed"], noise_seed=params["noise_seed"],
                            backend=params.get("backend"), device=params.get("device"))


def result_summary(result) -> dict:
    """The scalar summary of an FGDResult-like object (config and seconds dropped)."""
    summary = {k: v for k, v in result.summary().items() if k not in ("config", "seconds")}
    if getattr(result, "best_iter", None) is not None:
        summary["best_iter"] = int(result.best_iter)
    return scalars(summary)


def scalars(summary: dict) -> dict:
    """Keep scalar entries only, as plain Python values."""
    out = {}
    for name, value in summary.items():
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
    return out


# --------------------------------------------------------------------------- fgd
def _fgd_resolve(params: dict) -> dict:
    params = dict(params)
    problem = resolve_problem(params)
    run = resolve_run(params)
    solver = resolve_solver(params, problem)
    if params:
        raise InputError(f"unknown parameter(s) for method fgd: {', '.join(sorted(params))} (known: {', '.join(sorted(STANDARD))})")
    return drop_unused_noise_seed({**problem, **run, **solver})


def _fgd_batch_axes(params: dict) -> tuple[str, ...]:
    """alpha always batches (same seed → the same directions, same step).
    Seeds batch only with a numeric step and no validation split, because
    fgd draws the power-iteration start of step='auto' and the validation
    split from the first seed of a batch: grouping must never change a
    trial's numbers."""
    if params["step"] != "auto" and params["validation"] is None:
        return ("alpha", "seed")
    return ("alpha",)


def _fgd_group(params: dict):
    axes = _fgd_batch_axes(params)
    return json.dumps({k: v for k, v in params.items() if k not in axes}, sort_keys=True)


def _fgd_call(params: dict, op, y, truth, *, init_scale, seed):
    return fgd(
        op, y, width=params["width"], init_scale=init_scale, step_size=params["step"], max_iter=params["max_iter"],
        seed=seed, truth=truth, record_every=params["record_every"], validation=params["validation"],
        patience=params["patience"], tol=params["tol"], dtype=params["dtype"], step_constant=params["step_constant"],
        n_singular=params["n_singular"],
    )


def run_fgd(params: dict):
    """One trial of factorized gradient descent on a planted problem, with truth."""
    truth, op, y = build_problem(params)
    result = _fgd_call(params, op, y, truth, init_scale=params["alpha"], seed=params["seed"])
    return result_summary(result), result.history


def run_fgd_batch(params_list: list[dict]):
    """Trials equal up to alpha (and seed, see `_fgd_batch_axes`) as one
    batched fgd call over the shared operator: the batch is seeds × alphas,
    so `params_list` must cover a full grid of its seeds and alphas."""
    first = params_list[0]
    seeds = sorted({p["seed"] for p in params_list})
    alphas = sorted({p["alpha"] for p in params_list})
    if len(seeds) * len(alphas) != len(params_list):
        raise ValueError("run_fgd_batch needs the full seeds × alphas grid")
    truth, op, y = build_problem(first)
    results = _fgd_call(first, op, y, truth, init_scale=alphas, seed=seeds)
    by_pair = {(r.config["seed"], r.config["init_scale"]): r for r in results}
    return [(result_summary(by_pair[(p["seed"], p["alpha"])]), by_pair[(p["seed"], p["alpha"])].history) for p in params_list]


run_fgd.resolve_params = _fgd_resolve
run_fgd.batch_group = _fgd_group
run_fgd.run_batch = run_fgd_batch

METHODS: dict[str, Callable] = {"fgd": run_fgd}


# --------------------------------------------------------------------------- baselines
_SOLVER_ALIASES = {"width": ("width", "rank_k", "k"), "alpha": ("init_scale", "alpha"), "step": ("step_size", "step"),
                   "step_constant": ("step_constant",), "validation": ("validation",), "patience": ("patience",),
                   "n_singular": ("n_singular",)}


def baseline_method(name: str) -> Callable:
    """Wrap `asymsense.baselines.BASELINES[name]` as a trial method on the
    planted problem. Solver parameters (width, alpha, step, ...) are kept only
    when the baseline's signature takes them (alpha as init_scale or alpha,
    step as step_size or step); any other non-standard parameter is passed
    through as a method-specific keyword. The exact-rank baselines
    (`baselines.EXACT_RANK`: spectral, als) default to width = "rank"."""
    fn = BASELINES[name]
    sig = inspect.signature(fn)
    accepted = set(sig.parameters)

    def resolve(params: dict) -> dict:
        params = dict(params)
        if name in EXACT_RANK:
            params.setdefault("width", "rank")
        problem = resolve_problem(params)
        run = resolve_run(params)
        solver = resolve_solver(params, problem)
        kept = {k: v for k, v in solver.items() if any(alias in accepted for alias in _SOLVER_ALIASES[k])}
        extras = {k: plain(v, k) for k, v in params.items()}
        return drop_unused_noise_seed({**problem, **run, **kept, **extras})

    def method(params: dict):
        truth, op, y = build_problem(params)
        kwargs = {}
        for k, v in params.items():
            if k in _SOLVER_ALIASES:
                alias = next(a for a in _SOLVER_ALIASES[k] if a in accepted)
                kwargs[alias] = v
            elif k not in STANDARD:
                kwargs[k] = v
        result = fn(op, y, max_iter=params["max_iter"], truth=truth, record_every=params["record_every"],
                    seed=params["seed"], tol=params["tol"], **kwargs)
        return result_summary(result), result.history

    method.resolve_params = resolve
    method.__name__ = f"baseline_{name}"
    return method


# --------------------------------------------------------------------------- lookup
def known_methods(methods: Mapping[str, Callable] | None = None) -> list[str]:
    """The method names a sweep config may use: built-ins, baselines and `methods`."""
    return sorted(set(METHODS) | set(BASELINES) | set(methods or {}))


def check_methods(methods: Mapping[str, Callable] | None) -> dict[str, Callable]:
    """A caller's extra methods as a dict, after checking that every name is a
    plain name that does not shadow a built-in method or a baseline (the trial
    keys of "fgd" and the baselines must mean one thing) and every value is callable."""
    extra = dict(methods or {})
    for name, fn in extra.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"a method name must be a plain non-empty string, got {name!r}")
        if name in METHODS or name in BASELINES:
            raise ValueError(f"method {name!r} is built in; give the extra method another name")
        if not callable(fn):
            raise ValueError(f"method {name!r} is not callable: {fn!r}")
    return extra


def resolve_method(name: str, methods: Mapping[str, Callable] | None = None) -> Callable:
    """The trial method called `name`: a built-in (METHODS), a baseline
    (asymsense.baselines.BASELINES) or one of the caller's `methods`. Nothing
    is ever imported by name: an unknown name (an import path included) is an
    InputError listing the known names."""
    extra = check_methods(methods)
    if not isinstance(name, str) or not name:
        raise InputError(f"method must be a non-empty string, got {name!r}")
    if name in METHODS:
        return METHODS[name]
    if name in BASELINES:
        return baseline_method(name)
    if name in extra:
        return extra[name]
    hint = " (a sweep config names a method, it never imports code)" if ":" in name else ""
    raise InputError(f"unknown method {name!r}{hint}; known: {', '.join(known_methods(extra))}")


def _fgd_plan_batches(params_list: list[dict], max_size: int) -> list[list[int]]:
    """Split one batch group into fgd calls of at most `max_size` trials
    (indices into `params_list`). Each call is a full seeds × alphas grid:
    seeds sharing the same alpha set go together, `max_size // len(alphas)`
    seeds a call; when one seed has `max_size` alphas or more, its alphas are
    split into pieces instead. Sorted by seed and alpha, so the split depends
    only on the trials, not on their order."""
    by_seed: dict[int, list[tuple[float, int]]] = {}
    for i, p in enumerate(params_list):
        by_seed.setdefault(p["seed"], []).append((p["alpha"], i))
    by_alphas: dict[tuple, list[int]] = {}
    for seed in sorted(by_seed):
        by_alphas.setdefault(tuple(sorted(a for a, _ in by_seed[seed])), []).append(seed)
    index = {(p["seed"], p["alpha"]): i for i, p in enumerate(params_list)}
    batches = []
    for alphas, seeds in by_alphas.items():
        if len(alphas) >= max_size:
            for seed in seeds:
                for start in range(0, len(alphas), max_size):
                    batches.append([index[(seed, a)] for a in alphas[start:start + max_size]])
        else:
            per = max_size // len(alphas)
            for start in range(0, len(seeds), per):
                batches.append([index[(s, a)] for s in seeds[start:start + per] for a in alphas])
    return batches


run_fgd.plan_batches = _fgd_plan_batches
