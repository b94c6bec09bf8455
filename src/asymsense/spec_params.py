"""The standard trial parameters of a sweep: defaults, checks, resolution.

A trial is described by a flat dict of parameters. Resolution fills in the
defaults, checks every value once (the messages name the parameter), turns
derived values into concrete ones (`m` from `oversampling`, a `width`
expression such as "2*rank", the problem/operator/noise seeds from the
trial seed) and normalizes types (ints stay ints, floats become floats), so
that two specifications of the same trial resolve to the same dict and hence
the same key.

Seeds. `seed` is the initialization seed. Unless given, `problem_seed`,
`operator_seed` and `noise_seed` are derived from it through
`numpy.random.SeedSequence([seed, stream])` (streams 1, 2, 3): every seed is a
fresh, independent replicate (new truth, new operator, new noise, new
initialization), and the four random streams of one trial never share a
generator state. Fix `problem_seed`/`operator_seed` (in `fixed`) to
replicate only the initialization over one problem.
"""

from __future__ import annotations

import ast
import math
import numbers

import numpy as np

from asymsense.errors import MAX_SEED, InputError, check_dtype, check_int, check_positive
from asymsense.problems import SPECTRA
from asymsense.solvers.stepsize import STEP_CONSTANT

PROBLEM_DEFAULTS = {
    "n1": 40,
    "n2": 30,
    "rank": 3,
    "cond": 2.0,
    "spectrum": "linear",
    "operator": "gaussian",
    "noise": 0.0,
    "dtype": "float64",
}
"""The planted problem and its measurements (m or oversampling resolved separately)."""

DEFAULT_OVERSAMPLING = 5.0
"""m = ⌈oversampling · r(n1 + n2 − r)⌉ when neither m nor oversampling is given."""

RUN_DEFAULTS = {"max_iter": 1000, "seed": 0, "tol": None, "record_every": 10}
"""Parameters every trial method receives."""

SOLVER_DEFAULTS = {
    "width": None,  # None → min(n1, n2): the fully overparameterized model
    "alpha": 1e-3,
    "step": "auto",
    "step_constant": STEP_CONSTANT,
    "validation": None,
    "patience": None,
    "n_singular": 10,
}
"""Parameters of factorized gradient descent."""

SEED_STREAMS = {"problem_seed": 1, "operator_seed": 2, "noise_seed": 3}

BACKENDS = ("numpy", "torch", "cupy")
BACKEND_PARAMS = ("backend", "device")
"""Where the operator and the iterations live (see asymsense.backend). Kept out
of the resolved parameters unless given, so default trials keep their keys."""

STANDARD = set(PROBLEM_DEFAULTS) | set(RUN_DEFAULTS) | set(SOLVER_DEFAULTS) | set(SEED_STREAMS) | {"m", "oversampling"} | set(BACKEND_PARAMS)


RESERVED = {"key", "method", "status", "error", "seconds", "chunk", "finished_at", "iteration"}
"""Column names of the results tables; no parameter may take them."""


def derived_seed(seed: int, stream: int) -> int:
    """A 32-bit seed for `stream` of trial seed `seed`: SeedSequence hashing,
    identical on every platform."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint32)[0])


def degrees_of_freedom(n1: int, n2: int, rank: int) -> int:
    """r(n1 + n2 − r): the dimension of the rank-r matrices."""
    return rank * (n1 + n2 - rank)


_EXPR_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call,
               ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.USub, ast.Pow)


def integer_expression(name: str, text: str, env: dict[str, int]) -> int:
    """Evaluate an arithmetic expression such as "2*rank" or "2*max(n1, n2)"
    over the problem sizes (names n1, n2, rank, r; functions min, max)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise InputError(f"{name}: cannot parse the expression {text!r}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _EXPR_NODES):
            raise InputError(f"{name}: {text!r} may only use numbers, n1, n2, rank, r, + - * / // ** and min/max")
        if isinstance(node, ast.Name) and node.id not in env and node.id not in ("min", "max"):
            raise InputError(f"{name}: unknown name {node.id!r} in {text!r} (use n1, n2, rank, r)")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in ("min", "max")):
            raise InputError(f"{name}: only min and max may be called in {text!r}")
    value = eval(compile(tree, "<expr>", "eval"), {"__builtins__": {}, "min": min, "max": max}, dict(env))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_int(name, value, minimum=1)


def plain(value, name: str = "parameter"):
    """A JSON-able plain Python value (numpy scalars unwrapped, tuples as lists)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise InputError(f"{name} must be finite, got {value!r}")
        return value
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, f"{name}.{k}") for k, v in value.items()}
    raise InputError(f"{name}: unsupported value {value!r} (use numbers, strings, booleans, lists or tables)")


def _optional(name, value, check):
    return None if value is None else check(name, value)


def resolve_problem(params: dict) -> dict:
    """Resolve the planted-problem and measurement parameters (pops them from `params`)."""
    out = {}
    for name, default in PROBLEM_DEFAULTS.items():
        out[name] = params.pop(name, default)
    n1 = out["n1"] = check_int("n1", out["n1"], minimum=1)
    n2 = out["n2"] = check_int("n2", out["n2"], minimum=1)
    rank = out["rank"] = check_int("rank", out["rank"], minimum=1)
    if rank > min(n1, n2):
        raise InputError(f"rank must be <= min(n1, n2) = {min(n1, n2)}, got {rank}")
    out["cond"] = check_positive("cond", out["cond"])
    if out["cond"] < 1:
        raise InputError(f"cond must be >= 1, got {out['cond']}")
    if out["spectrum"] not in SPECTRA:
        raise InputError(f"spectrum must be one of {SPECTRA}, got {out['spectrum']!r}")
    from asymsense.operators import OPERATOR_KINDS

    if out["operator"] not in OPERATOR_KINDS:
        raise InputError(f"operator must be one of {', '.join(OPERATOR_KINDS)}, got {out['operator']!r}")
    out["noise"] = check_positive("noise", out["noise"], allow_zero=True)
    out["dtype"] = check_dtype(out["dtype"]).name
    if "backend" in params:
        out["backend"] = params.pop("backend")
        if out["backend"] not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {out['backend']!r}")
    if "device" in params:
        out["device"] = str(params.pop("device"))

    dof = degrees_of_freedom(n1, n2, rank)
    m, over = params.pop("m", None), params.pop("oversampling", None)
    if m is not None and over is not None:
        raise InputError("give m or oversampling, not both")
    if m is None:
        over = check_positive("oversampling", DEFAULT_OVERSAMPLING if over is None else over)
        m = math.ceil(over * dof - 1e-9)
    m = check_int("m", m, minimum=1)
    if out["operator"] in ("structured", "entries") and m > n1 * n2:
        raise InputError(f"m = {m} exceeds n1·n2 = {n1 * n2}: the {out['operator']} operator samples distinct measurements")
    out["m"], out["oversampling"] = m, (over if over is not None else m / dof)
    return out


def resolve_run(params: dict) -> dict:
    """Resolve max_iter, seed (and the derived problem/operator/noise seeds), tol, record_every."""
    out = {name: params.pop(name, default) for name, default in RUN_DEFAULTS.items()}
    out["max_iter"] = check_int("max_iter", out["max_iter"], minimum=0)
    out["seed"] = check_int("seed", out["seed"], minimum=0, maximum=MAX_SEED)
    out["tol"] = _optional("tol", out["tol"], check_positive)
    out["record_every"] = check_int("record_every", out["record_every"], minimum=1)
    for name, stream in SEED_STREAMS.items():
        value = params.pop(name, None)
        out[name] = derived_seed(out["seed"], stream) if value is None else check_int(name, value, minimum=0, maximum=MAX_SEED)
    return out


def drop_unused_noise_seed(params: dict) -> dict:
    """Without noise the noise seed draws nothing: record it as None, so that
    noiseless trials over one problem differ only in their init seed (and batch)."""
    if params.get("noise") == 0.0:
        params["noise_seed"] = None
    return params


def resolve_solver(params: dict, sizes: dict) -> dict:
    """Resolve the fgd parameters: width (int or expression), alpha, step, validation, patience."""
    out = {name: params.pop(name, default) for name, default in SOLVER_DEFAULTS.items()}
    env = {"n1": sizes["n1"], "n2": sizes["n2"], "rank": sizes["rank"], "r": sizes["rank"]}
    width = out["width"]
    if width is None:
        width = min(sizes["n1"], sizes["n2"])
    out["width"] = integer_expression("width", width, env) if isinstance(width, str) else check_int("width", width, minimum=1)
    out["alpha"] = check_positive("alpha", out["alpha"])
    step = out["step"]
    out["step"] = step if step == "auto" else check_positive("step", step)
    out["step_constant"] = check_positive("step_constant", out["step_constant"])
    validation = out["validation"]
    if validation is not None:
        if isinstance(validation, bool) or not isinstance(validation, numbers.Real) or not 0 < validation < 1:
            raise InputError(f"validation must be a fraction in (0, 1), got {validation!r}")
        out["validation"] = float(validation)
    out["patience"] = _optional("patience", out["patience"], lambda n, v: check_int(n, v, minimum=1))
    if out["patience"] is not None and out["validation"] is None:
        raise InputError("patience needs validation (a held-out fraction, e.g. validation = 0.2)")
    out["n_singular"] = check_int("n_singular", out["n_singular"], minimum=1)
    return out
