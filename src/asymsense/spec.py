"""The one resolver of problem, run and solver parameters.

Every parameter is declared once: its rule in `asymsense.validation`
(`PARAMETER_RULES`, plus here the two choices whose lists live in higher
modules: `operator` from `asymsense.operators`, `backend` from
`asymsense.backend`), its default in `DEFAULTS` below. Two doors lead to the
same resolution:

- the sweep engine and the experiments' trial methods hand a flat dict to
  `resolve_problem`, `resolve_run` and `resolve_solver`, which fill the
  defaults, check each value (the messages name the parameter), turn derived
  values into concrete ones and normalize types (ints stay ints, floats
  become floats), so that two specifications of the same trial resolve to the
  same dict and hence the same key;
- `asymsense solve` (and `compare`) build a `SolveConfig` from a TOML file and
  flags: pydantic in strict mode parses the types (a float where an integer is
  needed, a string where a number is needed, NaN or inf are refused) with the
  bounds of the same rules, and `SolveConfig.resolved()` calls the three
  resolvers above, so a solve run and a sweep trial with the same parameters
  are the same computation. Its errors name their source instead of the
  parameter: the flag (`--rank`) or the file and line (`run.toml line 3: rank
  ...`).

Derived values:

- m = ⌈oversampling · r(n1 + n2 − r)⌉ with oversampling 5 unless m or
  oversampling is given (five times the dimension of the rank-r matrices);
- width = min(n1, n2), the smallest k at which UVᵀ can represent any n1×n2
  matrix (the fully overparameterized model); a sweep may also give an
  expression such as "2*rank";
- seeds: `seed` is the initialization seed. Unless given, `problem_seed`,
  `operator_seed` and `noise_seed` are derived from it through
  `numpy.random.SeedSequence([seed, stream])` (streams 1, 2, 3): every seed is
  a fresh, independent replicate (new truth, new operator, new noise, new
  initialization), and the four random streams of one trial never share a
  generator state. Fix `problem_seed`/`operator_seed` to replicate only the
  initialization over one problem.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from asymsense import serialize
from asymsense.backend import BACKENDS as ARRAY_BACKENDS
from asymsense.errors import InputError
from asymsense.operators import OPERATOR_KINDS
from asymsense.solvers.stepsize import STEP_CONSTANT
from asymsense.validation import (DEFAULT_OVERSAMPLING, DTYPES, PARAMETER_RULES, SPECTRA, Choice, check_int,
                                  check_patience_needs_validation, check_rank, check_sampled_measurements,
                                  check_validation_split, degrees_of_freedom, measurements_from_oversampling)

BACKENDS = tuple(name for name in ARRAY_BACKENDS if name != "array-api-strict")
"""The array libraries a run may choose (`asymsense.backend.BACKENDS` without
array-api-strict, the standard's reference namespace that the tests use to keep
the code on the standard)."""

RULES = {**PARAMETER_RULES, "operator": Choice(tuple(OPERATOR_KINDS)), "backend": Choice(BACKENDS)}
"""name → rule of every parameter (see `asymsense.validation`)."""

DEFAULTS = {
    # the planted problem and its measurements
    "n1": 40,
    "n2": 30,
    "rank": 3,
    "cond": 2.0,
    "spectrum": "linear",
    "operator": "gaussian",
    "noise": 0.0,
    "dtype": "float64",
    "m": None,  # None → ⌈oversampling · r(n1 + n2 − r)⌉, oversampling DEFAULT_OVERSAMPLING
    # the run
    "max_iter": 1000,
    "seed": 0,
    "tol": None,
    "record_every": 10,
    "problem_seed": None,  # None → derived from seed (SEED_STREAMS)
    "operator_seed": None,
    "noise_seed": None,
    # factorized gradient descent
    "width": None,  # None → min(n1, n2): the fully overparameterized model
    "alpha": 1e-3,
    "step": "auto",
    "step_constant": STEP_CONSTANT,
    "validation": None,
    "patience": None,
    "n_singular": 10,
    # where it runs
    "threads": 1,
    "backend": "numpy",
    "device": "cpu",
}
"""The default of every parameter, grouped as the resolvers read them (a sweep
trial's resolved dict keeps the order of each group; SolveConfig's fields keep
the key order of summary.json)."""

PROBLEM_DEFAULTS = {name: DEFAULTS[name] for name in ("n1", "n2", "rank", "cond", "spectrum", "operator", "noise", "dtype")}
"""The planted problem and its measurements (m or oversampling resolved separately)."""

RUN_DEFAULTS = {name: DEFAULTS[name] for name in ("max_iter", "seed", "tol", "record_every")}
"""Parameters every trial method receives."""

SOLVER_DEFAULTS = {name: DEFAULTS[name] for name in ("width", "alpha", "step", "step_constant", "validation", "patience", "n_singular")}
"""Parameters of factorized gradient descent."""

SEED_STREAMS = {"problem_seed": 1, "operator_seed": 2, "noise_seed": 3}

BACKEND_PARAMS = ("backend", "device")
"""Where the operator and the iterations live (see asymsense.backend). Kept out
of a sweep trial's resolved parameters unless given, so default trials keep their keys."""

STANDARD = set(PROBLEM_DEFAULTS) | set(RUN_DEFAULTS) | set(SOLVER_DEFAULTS) | set(SEED_STREAMS) | {"m", "oversampling"} | set(BACKEND_PARAMS)
"""The parameters a sweep trial resolves here (anything else is method-specific)."""

RESERVED = {"key", "method", "status", "error", "seconds", "chunk", "finished_at", "iteration"}
"""Column names of the results tables; no parameter may take them."""


def check(name: str, value):
    """`value` after the rule of parameter `name` (see RULES)."""
    return RULES[name].check(name, value)


def derived_seed(seed: int, stream: int) -> int:
    """A 32-bit seed for `stream` of trial seed `seed`: SeedSequence hashing,
    identical on every platform."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint32)[0])


def default_measurements(n1: int, n2: int, rank: int) -> int:
    """m when none is given: ⌈DEFAULT_OVERSAMPLING · r(n1 + n2 − r)⌉."""
    return measurements_from_oversampling(n1, n2, rank, DEFAULT_OVERSAMPLING)


EXPRESSION_MAX_LENGTH = 200
"""Longest width/size expression accepted (characters)."""
EXPRESSION_BOUND = 10**9
"""Largest magnitude of any constant, intermediate value or result of an expression."""
EXPRESSION_MAX_EXPONENT = 4
"""`**` takes only a literal integer exponent 0…4 (no towers such as 10**10**10)."""

_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b}


def integer_expression(name: str, text: str, env: dict[str, int]) -> int:
    """Evaluate an arithmetic expression such as "2*rank" or "2*max(n1, n2)"
    over the problem sizes (names n1, n2, rank, r; functions min, max).

    A bounded evaluator walks the syntax tree itself (nothing is ever passed to
    `eval`): numbers, the names of `env`, + - * / //, `**` with a literal
    integer exponent 0…4, and min/max of one or more arguments. Every constant,
    intermediate value and the result stay within ±EXPRESSION_BOUND, the text
    within EXPRESSION_MAX_LENGTH characters, so any expression is evaluated in
    microseconds; division by zero and everything else is an InputError naming
    `name`."""
    if not isinstance(text, str):
        raise InputError(f"{name}: an expression must be a string, got {text!r}", name)
    if len(text) > EXPRESSION_MAX_LENGTH:
        raise InputError(f"{name}: the expression is longer than {EXPRESSION_MAX_LENGTH} characters", name)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise InputError(f"{name}: cannot parse the expression {text!r}", name) from None
    try:
        value = _evaluate(tree.body, name, text, env)
    except RecursionError:
        raise InputError(f"{name}: the expression {text!r} is nested too deeply", name) from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_int(name, value, minimum=1)


def _evaluate(node, name: str, text: str, env: dict[str, int]):
    def bounded(value):
        if not -EXPRESSION_BOUND <= value <= EXPRESSION_BOUND:
            raise InputError(f"{name}: {text!r} leaves the range ±{EXPRESSION_BOUND:.0e} of an expression", name)
        return value

    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        if isinstance(node.value, float) and not np.isfinite(node.value):
            raise InputError(f"{name}: {text!r} holds a non-finite number", name)
        return bounded(node.value)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise InputError(f"{name}: unknown name {node.id!r} in {text!r} (use {', '.join(env)})", name)
        return bounded(env[node.id])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, name, text, env)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        exponent = node.right
        if not (isinstance(exponent, ast.Constant) and type(exponent.value) is int and 0 <= exponent.value <= EXPRESSION_MAX_EXPONENT):
            raise InputError(f"{name}: ** needs a literal integer exponent 0…{EXPRESSION_MAX_EXPONENT} in {text!r}", name)
        return bounded(_evaluate(node.left, name, text, env) ** exponent.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, name, text, env), _evaluate(node.right, name, text, env)
        if isinstance(node.op, (ast.Div, ast.FloorDiv)) and right == 0:
            raise InputError(f"{name}: division by zero in {text!r}", name)
        return bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
        if not node.args or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise InputError(f"{name}: {node.func.id}() needs one or more plain arguments in {text!r}", name)
        values = [_evaluate(a, name, text, env) for a in node.args]
        return min(values) if node.func.id == "min" else max(values)
    if isinstance(node, ast.Call):
        raise InputError(f"{name}: only min and max may be called in {text!r}", name)
    raise InputError(f"{name}: {text!r} may only use numbers, {', '.join(env)}, + - * / // ** and min/max", name)


def plain(value, name: str = "parameter"):
    """A parameter value as plain Python (numpy scalars unwrapped, tuples as
    lists); a non-finite number or any other object is an InputError naming `name`."""
    return serialize.plain(value, nonfinite="error", other="error", name=name)


def resolve_problem(params: dict) -> dict:
    """Resolve the planted-problem and measurement parameters (pops them from `params`)."""
    out = {name: check(name, params.pop(name, default)) for name, default in PROBLEM_DEFAULTS.items()}
    n1, n2, rank = out["n1"], out["n2"], out["rank"]
    check_rank(rank, n1, n2)
    if "backend" in params:
        out["backend"] = check("backend", params.pop("backend"))
    if "device" in params:
        out["device"] = check("device", params.pop("device"))

    m, over = params.pop("m", None), params.pop("oversampling", None)
    if m is not None and over is not None:
        raise InputError("give m or oversampling, not both", "m")
    if m is None:
        over = check("oversampling", DEFAULT_OVERSAMPLING if over is None else over)
        m = measurements_from_oversampling(n1, n2, rank, over)
    m = check("m", m)
    check_sampled_measurements(m, n1, n2, out["operator"])
    out["m"], out["oversampling"] = m, (over if over is not None else m / degrees_of_freedom(n1, n2, rank))
    return out


def resolve_run(params: dict) -> dict:
    """Resolve max_iter, seed (and the derived problem/operator/noise seeds), tol, record_every."""
    out = {name: check(name, params.pop(name, default)) for name, default in RUN_DEFAULTS.items()}
    for name, stream in SEED_STREAMS.items():
        value = check(name, params.pop(name, None))
        out[name] = derived_seed(out["seed"], stream) if value is None else value
    return out


def drop_unused_noise_seed(params: dict) -> dict:
    """Without noise the noise seed draws nothing: record it as None, so that
    noiseless trials over one problem differ only in their init seed (and batch)."""
    if params.get("noise") == 0.0:
        params["noise_seed"] = None
    return params


def resolve_solver(params: dict, sizes: dict) -> dict:
    """Resolve the fgd parameters (pops them from `params`): width (int or an
    expression over n1, n2, rank), alpha, step, step_constant, validation,
    patience, n_singular. `sizes` is the resolved problem (n1, n2, rank, m)."""
    out = {name: params.pop(name, default) for name, default in SOLVER_DEFAULTS.items()}
    width = min(sizes["n1"], sizes["n2"]) if out["width"] is None else out["width"]
    if isinstance(width, str):
        out["width"] = integer_expression("width", width, {"n1": sizes["n1"], "n2": sizes["n2"], "rank": sizes["rank"], "r": sizes["rank"]})
    else:
        out["width"] = check("width", width)
    for name in ("alpha", "step", "step_constant", "validation", "patience", "n_singular"):
        out[name] = check(name, out[name])
    check_patience_needs_validation(out["patience"], out["validation"])
    check_validation_split(out["validation"], sizes["m"])
    return out


def _field(name: str, description: str):
    """The pydantic Field of parameter `name`: its default and the bounds of its rule."""
    return Field(DEFAULTS[name], description=description, **RULES[name].bounds())


class SolveConfig(BaseModel):
    """Every parameter of `asymsense solve`; `None` means "derive it" (see `resolved`).
    Defaults and bounds come from DEFAULTS and RULES; the field order is the
    key order of summary.json's `config`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    n1: int = _field("n1", "rows of X*")
    n2: int = _field("n2", "columns of X*")
    rank: int = _field("rank", "rank r of X*")
    cond: float = _field("cond", "condition number κ = σ₁/σ_r")
    spectrum: Literal[SPECTRA] = _field("spectrum", "σ from 1 to 1/κ, evenly or in ratio")
    m: Optional[int] = _field("m", "measurements (default ⌈5·r(n1+n2−r)⌉)")
    operator: Literal[tuple(OPERATOR_KINDS)] = _field("operator", "operator kind of make_operator")
    noise: float = _field("noise", "noise standard deviation σ")
    width: Optional[int] = _field("width", "k (default min(n1, n2))")
    alpha: float = _field("alpha", "initialization scale α")
    step: Union[Literal["auto"], float] = _field("step", "step size μ > 0 or 'auto'")
    step_constant: float = _field("step_constant", "c of the auto step μ = c/‖A*(y)‖₂")
    max_iter: int = _field("max_iter", "iteration budget")
    seed: int = _field("seed", "initialization seed; the other seeds derive from it")
    problem_seed: Optional[int] = _field("problem_seed", "seed of the planted truth")
    operator_seed: Optional[int] = _field("operator_seed", "seed of the operator")
    noise_seed: Optional[int] = _field("noise_seed", "seed of the noise")
    dtype: Literal[DTYPES] = _field("dtype", "float64 or float32")
    tol: Optional[float] = _field("tol", "stop when rel_residual ≤ tol")
    record_every: int = _field("record_every", "history cadence in iterations")
    validation: Optional[float] = _field("validation", "held-out fraction of measurements")
    patience: Optional[int] = _field("patience", "stop after this many iterations without validation improvement")
    threads: int = _field("threads", "BLAS threads (1: robust on a shared machine)")
    backend: Literal[BACKENDS] = _field("backend", "array library of the operator and the iterations")
    device: str = _field("device", "device of that library: cpu, cuda, cuda:1, ...")

    _sources: dict = PrivateAttr(default_factory=dict)

    @field_validator("step", mode="before")
    @classmethod
    def _step(cls, value):
        """A flag gives the step as text: a number or 'auto'."""
        if isinstance(value, str) and value != "auto":
            try:
                value = float(value)
            except ValueError:
                raise ValueError("must be a positive number or 'auto'") from None
        try:
            return check("step", value)
        except InputError as exc:
            raise ValueError(exc.detail) from None

    def source(self, key: str) -> str:
        """Where `key` was set: '--flag', 'FILE line N' or 'default'."""
        return self._sources.get(key, f"{key} (default)")

    def _fail(self, key: str, message: str):
        raise InputError(f"{_prefix(self._sources.get(key), key)}{message}", key)

    def resolved(self) -> "SolveConfig":
        """A copy with m, width and the three derived seeds made concrete by
        the sweep's resolvers (the same rules, defaults and seeds; each error
        names the parameter's source). The noise seed stays None without noise
        unless it was given."""
        params = self.model_dump()
        try:
            problem = resolve_problem(params)
            seeds = {name: value for name, value in resolve_run(params).items() if name in SEED_STREAMS}
            solver = resolve_solver(params, problem)
        except InputError as exc:
            if exc.parameter is None:
                raise
            self._fail(exc.parameter, exc.detail)
        if self.noise == 0.0 and self.noise_seed is None:
            seeds["noise_seed"] = None
        out = self.model_copy(update={"m": problem["m"], "width": solver["width"], **seeds})
        out._sources = dict(self._sources)
        return out

    def record(self) -> dict:
        """The resolved parameters as a plain dict (the `config` of summary.json)."""
        return self.model_dump()


def _prefix(source: str | None, key: str) -> str:
    if source is None:
        return f"{key} "
    if source.startswith("--"):
        return f"{source} "
    return f"{source}: {key} "


def read_config(path) -> tuple[dict, dict]:
    """(values, key → 'FILE line N') of a config file: flat TOML, or the JSON
    summary of an earlier run (its "config" is used, nulls dropped, so
    `--config out/summary.json` repeats that run). InputError naming the file
    (and the line, for malformed text) when it cannot be read or parsed."""
    path = Path(path)
    text = read_text(path, "config file")
    if path.suffix == ".json":
        return _read_json(path, text)
    data = parse_toml(path, text)
    lines = text.splitlines()
    values, sources = {}, {}
    for key, value in data.items():
        name = key.replace("-", "_")
        pattern = re.compile(rf"""^\s*(\[\s*)?["']?{re.escape(key)}["']?\s*(=|\])""")
        line = next((i + 1 for i, text_line in enumerate(lines) if pattern.match(text_line)), None)
        sources[name] = f"{path} line {line}" if line else str(path)
        values[name] = value
    return values, sources


def read_text(path, what: str = "config file") -> str:
    """The UTF-8 text of `path`; InputError naming the file (and the line of
    the first byte that is not UTF-8) when it cannot be read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path} line {line}: {what} is not UTF-8 text") from None


def parse_toml(path, text: str) -> dict:
    """The TOML document `text` read from `path`; InputError
    `FILE line N: malformed TOML (reason, column C)` when it does not parse."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc).replace("(at end of document)", f"(at line {max(1, len(text.splitlines()))}, column 1)")
        where = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if where:
            reason = message[: where.start()].strip()
            raise InputError(f"{path} line {where.group(1)}: malformed TOML ({reason[:1].lower() + reason[1:]}, column {where.group(2)})") from None
        raise InputError(f"{path}: malformed TOML ({message})") from None


def _read_json(path: Path, text: str) -> tuple[dict, dict]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} line {exc.lineno}: malformed JSON ({exc.msg}, column {exc.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise InputError(f"{path}: a JSON config must be an object of parameters (or a summary.json with a 'config' object)")
    values = {key.replace("-", "_"): value for key, value in data.items() if value is not None}
    return values, {key: str(path) for key in values}


def load_solve_config(path=None, overrides: dict[str, Any] | None = None, flag_names: dict[str, str] | None = None) -> SolveConfig:
    """Merge a TOML file (optional) and command-line overrides (None = not given),
    validate, and return the SolveConfig (not yet `resolved`).

    `flag_names` maps a parameter to its flag (default `--max-iter` style)."""
    values, sources = read_config(path) if path is not None else ({}, {})
    if path is not None and not values:  # an empty file is a mistake (the wrong file, a lost edit), not "all defaults"
        raise InputError(f"{path}: the config file sets no parameters (known: {', '.join(SolveConfig.model_fields)})")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
            sources[key] = (flag_names or {}).get(key, "--" + key.replace("_", "-"))
    try:
        config = SolveConfig.model_validate(values)
    except ValidationError as exc:
        key = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else None
        raise InputError(_describe(exc, values, sources), key) from None
    config._sources = sources
    return config


_MESSAGES = {
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "extra_forbidden": "is not a known parameter",
}


_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _describe(exc: ValidationError, values: dict, sources: dict) -> str:
    """One line for the first validation error, naming its source."""
    errors = exc.errors()
    error = errors[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        known = ", ".join(SolveConfig.model_fields)
        message = f"is not a known parameter (known: {known})"
    else:
        ctx = error.get("ctx") or {}
        bound = next(((op, ctx[name]) for name, op in _BOUNDS.items() if name in ctx), None)
        if bound is not None:
            message = f"must be {bound[0]} {bound[1]}"
        else:
            message = _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ").removeprefix("Input should be ").strip()
            if error["type"] == "literal_error":
                message = f"must be {message}"
        message = message[:1].lower() + message[1:]
        if ", got " not in message:
            message += f", got {values.get(key)!r}"
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    return f"{_prefix(sources.get(key), key)}{message}{more}"
