"""`SolveConfig`: the parameters of one `asymsense solve` run, from flags and/or TOML.

Values come from a TOML file (`--config FILE.toml`, flat `key = value`
lines, `-` or `_` in names; or the summary.json of an earlier run, whose
`config` repeats it) and from command-line flags; a flag given on the
command line overrides the file, and anything given nowhere takes the default
below. Validation happens once, here, with pydantic in strict mode (a float
where an integer is needed, a string where a number is needed, NaN or inf are
refused) and with the cross-field checks of DESIGN.md §2 (rank ≤ min(n1, n2),
patience needs validation, ...). Every error becomes an `InputError` whose
one-line message names its source: the flag (`--rank`) or the file and line
(`run.toml line 3: rank ...`).

`resolved()` turns the derived defaults into concrete values, following the
sweep engine's conventions (`asymsense.spec_params`) so that a solve
run and a sweep trial with the same parameters are the same computation:

- m = ⌈5 · r(n1 + n2 − r)⌉, five times the dimension of the rank-r matrices;
- width = min(n1, n2), the smallest k at which UVᵀ can represent any n1×n2
  matrix (the fully overparameterized model);
- problem_seed, operator_seed, noise_seed = SeedSequence([seed, 1|2|3]) unless
  given; `seed` itself seeds the initialization.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from asymsense.errors import InputError
from asymsense.errors import MAX_SEED
from asymsense.spec_params import DEFAULT_OVERSAMPLING, PROBLEM_DEFAULTS, RUN_DEFAULTS, SOLVER_DEFAULTS

Finite = dict(allow_inf_nan=False)


class SolveConfig(BaseModel):
    """Every parameter of `asymsense solve`; `None` means "derive it" (see `resolved`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    n1: int = Field(PROBLEM_DEFAULTS["n1"], ge=1, description="rows of X*")
    n2: int = Field(PROBLEM_DEFAULTS["n2"], ge=1, description="columns of X*")
    rank: int = Field(PROBLEM_DEFAULTS["rank"], ge=1, description="rank r of X*")
    cond: float = Field(PROBLEM_DEFAULTS["cond"], ge=1, **Finite, description="condition number κ = σ₁/σ_r")
    spectrum: Literal["linear", "geometric"] = Field(PROBLEM_DEFAULTS["spectrum"], description="σ from 1 to 1/κ, evenly or in ratio")
    m: Optional[int] = Field(None, ge=1, description="measurements (default ⌈5·r(n1+n2−r)⌉)")
    operator: str = Field(PROBLEM_DEFAULTS["operator"], description="operator kind of make_operator")
    noise: float = Field(PROBLEM_DEFAULTS["noise"], ge=0, **Finite, description="noise standard deviation σ")
    width: Optional[int] = Field(SOLVER_DEFAULTS["width"], ge=1, description="k (default min(n1, n2))")
    alpha: float = Field(SOLVER_DEFAULTS["alpha"], gt=0, **Finite, description="initialization scale α")
    step: Union[Literal["auto"], float] = Field(SOLVER_DEFAULTS["step"], description="step size μ > 0 or 'auto'")
    step_constant: float = Field(SOLVER_DEFAULTS["step_constant"], gt=0, **Finite, description="c of the auto step μ = c/‖A*(y)‖₂")
    max_iter: int = Field(RUN_DEFAULTS["max_iter"], ge=0, description="iteration budget")
    seed: int = Field(RUN_DEFAULTS["seed"], ge=0, le=MAX_SEED, description="initialization seed; the other seeds derive from it")
    problem_seed: Optional[int] = Field(None, ge=0, le=MAX_SEED)
    operator_seed: Optional[int] = Field(None, ge=0, le=MAX_SEED)
    noise_seed: Optional[int] = Field(None, ge=0, le=MAX_SEED)
    dtype: Literal["float64", "float32"] = PROBLEM_DEFAULTS["dtype"]
    tol: Optional[float] = Field(RUN_DEFAULTS["tol"], gt=0, **Finite, description="stop when rel_residual ≤ tol")
    record_every: int = Field(RUN_DEFAULTS["record_every"], ge=1, description="history cadence in iterations")
    validation: Optional[float] = Field(None, gt=0, lt=1, **Finite, description="held-out fraction of measurements")
    patience: Optional[int] = Field(None, ge=1, description="stop after this many iterations without validation improvement")
    threads: int = Field(1, ge=1, description="BLAS threads (1: robust on a shared machine)")
    backend: Literal["numpy", "torch", "cupy"] = Field("numpy", description="array library of the operator and the iterations")
    device: str = Field("cpu", description="device of that library: cpu, cuda, cuda:1, ...")

    _sources: dict = PrivateAttr(default_factory=dict)

    @field_validator("step", mode="before")
    @classmethod
    def _step(cls, value):
        if isinstance(value, str) and value != "auto":
            try:
                value = float(value)
            except ValueError:
                raise ValueError("must be a positive number or 'auto'") from None
        if isinstance(value, bool) or (not isinstance(value, (int, float)) and value != "auto"):
            raise ValueError("must be a positive number or 'auto'")
        if value != "auto" and not (math.isfinite(value) and value > 0):
            raise ValueError("must be a finite number > 0 or 'auto'")
        return value if value == "auto" else float(value)

    @field_validator("operator")
    @classmethod
    def _operator(cls, value):
        from asymsense.operators import OPERATOR_KINDS

        if value not in OPERATOR_KINDS:
            raise ValueError(f"must be one of {', '.join(OPERATOR_KINDS)}")
        return value

    def source(self, key: str) -> str:
        """Where `key` was set: '--flag', 'FILE line N' or 'default'."""
        return self._sources.get(key, f"{key} (default)")

    def _fail(self, key: str, message: str):
        raise InputError(f"{_prefix(self._sources.get(key), key)}{message}")

    def resolved(self) -> "SolveConfig":
        """A copy with m, width and the three derived seeds made concrete, after
        the cross-field checks (each error names the parameter's source)."""
        if self.rank > min(self.n1, self.n2):
            self._fail("rank", f"must be <= min(n1, n2) = {min(self.n1, self.n2)}, got {self.rank}")
        if self.patience is not None and self.validation is None:
            self._fail("patience", "needs validation (a held-out fraction, e.g. --validation 0.2)")
        dof = self.rank * (self.n1 + self.n2 - self.rank)
        m = self.m if self.m is not None else math.ceil(DEFAULT_OVERSAMPLING * dof - 1e-9)
        if self.operator in ("structured", "entries") and m > self.n1 * self.n2:
            self._fail("m", f"must be <= n1·n2 = {self.n1 * self.n2} for the {self.operator} operator (it samples distinct measurements), got {m}")
        if self.validation is not None:
            n_val = round(self.validation * m)
            if n_val < 1 or n_val >= m:
                self._fail("validation", f"leaves {n_val} of m = {m} measurements for validation; need at least one on each side")
        from asymsense.spec_params import SEED_STREAMS, derived_seed

        seeds = {name: getattr(self, name) if getattr(self, name) is not None else derived_seed(self.seed, stream) for name, stream in SEED_STREAMS.items()}
        if self.noise == 0.0 and self.noise_seed is None:
            seeds["noise_seed"] = None
        out = self.model_copy(update={"m": m, "width": self.width if self.width is not None else min(self.n1, self.n2), **seeds})
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
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
            sources[key] = (flag_names or {}).get(key, "--" + key.replace("_", "-"))
    try:
        config = SolveConfig.model_validate(values)
    except ValidationError as exc:
        raise InputError(_describe(exc, values, sources)) from None
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
        message += f", got {values.get(key)!r}"
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    return f"{_prefix(sources.get(key), key)}{message}{more}"
