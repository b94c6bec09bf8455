"""Helpers for trial methods registered in Python code (the paper's
experiments pass theirs to `run_sweep(..., methods=...)`): parameter
resolution shared with the built-in fgd method, so custom trials get the same
defaults, checks, derived m and seeds."""

from __future__ import annotations

from asymsense.errors import InputError
from asymsense.spec import plain, resolve_problem, resolve_run, resolve_solver


def trial_method(extra: dict):
    """Decorate `fn(params) -> (summary, history)` with a `resolve_params`
    that resolves the standard parameters and keeps the method-specific ones
    in `extra` (name → default); anything else is refused by name."""

    def wrap(fn):
        def resolve(params: dict) -> dict:
            params = dict(params)
            problem = resolve_problem(params)
            run = resolve_run(params)
            solver = resolve_solver(params, problem)
            own = {name: plain(params.pop(name, default), name) for name, default in extra.items()}
            if params:
                raise InputError(f"unknown parameter(s) for {fn.__module__}:{fn.__name__}: {', '.join(sorted(params))}")
            return {**problem, **run, **solver, **own}

        fn.resolve_params = resolve
        return fn

    return wrap
