"""Parameter rules, declared once: the checks every entry point applies.

A leaf module (NumPy, the standard library and `asymsense.errors` only).
Three parts:

- the check helpers of single values (`check_int`, `check_positive`,
  `check_finite_array`, `check_dtype`, `resolve_seed`);
- `PARAMETER_RULES`: name → rule of every problem, run and solver parameter,
  in the style of scikit-learn's `_parameter_constraints` (an integer with
  bounds, a finite real with bounds, a choice, 'auto' or a positive real, a
  fraction in (0, 1), a seed, or None for "derive it"). The choices that
  belong to a higher module (the operator kinds of `asymsense.operators`, the
  array backends of `asymsense.backend`) are added beside their lists in
  `asymsense.spec`, which pairs every rule with its default;
- the cross-field rules (`check_rank`, `check_patience_needs_validation`,
  `measurements_from_oversampling`, `check_sampled_measurements`,
  `check_validation_split`).

Every message names the PARAMETER (`step`, `patience`), never a command-line
flag; the error carries the name in `InputError.parameter`, so the CLI can put
its flag or the config file's line in front of the rest of the message.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from asymsense.errors import InputError

MAX_SEED = 2**63 - 1
"""Seeds are stored in int64 columns (Parquet, DuckDB)."""

SPECTRA = ("linear", "geometric")
"""How the planted singular values fall from 1 to 1/κ (see `problems.spectrum_values`)."""

DTYPES = ("float64", "float32")

DISTINCT_SAMPLING = ("structured", "entries")
"""Operator kinds that sample distinct measurements of X*, so m ≤ n1·n2."""

DEFAULT_OVERSAMPLING = 5.0
"""m = ⌈oversampling · r(n1 + n2 − r)⌉ when neither m nor oversampling is given."""


def _fail(name: str, detail: str):
    raise InputError(f"{name} {detail}", parameter=name)


# --------------------------------------------------------------------------- single values
def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return `value` as an int, refusing bools, fractions and out-of-range values
    (an integral float such as 3.0 is accepted as 3)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
            value = int(value)
        else:
            _fail(name, f"must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        _fail(name, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        _fail(name, f"must be <= {maximum}, got {value}")
    return value


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """Return `value` as a finite float > 0 (or >= 0 with `allow_zero`)."""
    return check_real(name, value, minimum=0.0, open_minimum=not allow_zero)


def check_real(name: str, value, *, minimum: float | None = None, open_minimum: bool = False,
               maximum: float | None = None, open_maximum: bool = False) -> float:
    """Return `value` as a finite float within the bounds (open or closed)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(name, f"must be a number, got {value!r}")
    value = float(value)
    low = minimum is not None and (value < minimum or (open_minimum and value == minimum))
    high = maximum is not None and (value > maximum or (open_maximum and value == maximum))
    if math.isfinite(value) and not low and not high:
        return value
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if open_minimum else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<' if open_maximum else '<='} {maximum:g}")
    bounds = " and ".join(parts)
    if not math.isfinite(value) or (minimum == 0 and maximum is None):
        bounds = "finite" + (f" and {bounds}" if bounds else "")  # a positive or non-negative number: "finite and > 0"
    _fail(name, f"must be {bounds}, got {value!r}")


def check_finite_array(name: str, array) -> None:
    """Refuse arrays holding NaN or inf, saying how many and where the first is."""
    arr = np.asarray(array)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), arr.shape)
        _fail(name, f"contains {int(bad.sum())} non-finite value(s), first at index {tuple(int(i) for i in first)}")


def resolve_seed(seed) -> int:
    """One way to handle seeds everywhere: an int is used as given, None draws a
    fresh one from the OS. The resolved int is recorded with every result so a
    run can be repeated exactly."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % MAX_SEED)
    return check_int("seed", seed, minimum=0, maximum=MAX_SEED)


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Accept float32/float64 by name or numpy dtype."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved not in (np.float32, np.float64):
        _fail(name, f"must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def check_choice(name: str, value, choices) -> str:
    """Return `value` when it is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        _fail(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


# --------------------------------------------------------------------------- rules
class Rule:
    """A parameter rule: `check(name, value)` returns the value as recorded or
    raises InputError naming `name`; `bounds()` gives the pydantic `Field`
    constraints the solve config declares with it (none by default)."""

    def check(self, name, value):
        raise NotImplementedError

    def bounds(self) -> dict:
        return {}


@dataclass(frozen=True)
class Integer(Rule):
    """An integer in [minimum, maximum] (integral floats such as 3.0 accepted as 3)."""

    minimum: int | None = None
    maximum: int | None = None

    def check(self, name, value):
        return check_int(name, value, minimum=self.minimum, maximum=self.maximum)

    def bounds(self) -> dict:
        """The bounds as pydantic `Field` constraints."""
        return {k: v for k, v in (("ge", self.minimum), ("le", self.maximum)) if v is not None}


@dataclass(frozen=True)
class Real(Rule):
    """A finite real number above `minimum` (strictly when `open_minimum`) and
    below `maximum` (strictly when `open_maximum`)."""

    minimum: float | None = None
    open_minimum: bool = False
    maximum: float | None = None
    open_maximum: bool = False

    def check(self, name, value):
        return check_real(name, value, minimum=self.minimum, open_minimum=self.open_minimum,
                          maximum=self.maximum, open_maximum=self.open_maximum)

    def bounds(self) -> dict:
        out = {"allow_inf_nan": False}
        if self.minimum is not None:
            out["gt" if self.open_minimum else "ge"] = self.minimum
        if self.maximum is not None:
            out["lt" if self.open_maximum else "le"] = self.maximum
        return out


@dataclass(frozen=True)
class Fraction(Rule):
    """A fraction in (0, 1), e.g. of the measurements held out for validation."""

    def check(self, name, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
            _fail(name, f"must be a fraction in (0, 1), got {value!r}")
        return float(value)

    def bounds(self) -> dict:
        return {"gt": 0.0, "lt": 1.0, "allow_inf_nan": False}


POSITIVE = Real(0.0, open_minimum=True)
NONNEGATIVE = Real(0.0)
SEED = Integer(0, MAX_SEED)


@dataclass(frozen=True)
class Choice(Rule):
    """One of the given strings."""

    choices: tuple

    def check(self, name, value):
        return check_choice(name, value, self.choices)


@dataclass(frozen=True)
class Text(Rule):
    """Any text, recorded as a string (a device name: cpu, cuda, cuda:1, ...;
    the array library refuses one it does not know when the run starts)."""

    def check(self, name, value):
        return str(value)


@dataclass(frozen=True)
class DType(Rule):
    """'float64' or 'float32' (a numpy dtype is accepted and recorded by name)."""

    choices: tuple = DTYPES

    def check(self, name, value):
        return check_dtype(value, name).name


@dataclass(frozen=True)
class AutoOr(Rule):
    """The string 'auto' or a value of `rule`."""

    rule: Real

    def check(self, name, value):
        if value == "auto" and isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            _fail(name, f"must be a positive number or 'auto', got {value!r}")
        return self.rule.check(name, value)


@dataclass(frozen=True)
class OrNone(Rule):
    """None ("not given": derive it or leave it off) or a value of `rule`."""

    rule: object

    def check(self, name, value):
        return None if value is None else self.rule.check(name, value)

    def bounds(self) -> dict:
        return self.rule.bounds()


PARAMETER_RULES = {
    # the planted problem and its measurements
    "n1": Integer(1),
    "n2": Integer(1),
    "rank": Integer(1),
    "cond": Real(1.0),
    "spectrum": Choice(SPECTRA),
    "noise": NONNEGATIVE,
    "dtype": DType(),
    "m": OrNone(Integer(1)),
    "oversampling": POSITIVE,
    # the run
    "max_iter": Integer(0),
    "seed": SEED,
    "problem_seed": OrNone(SEED),
    "operator_seed": OrNone(SEED),
    "noise_seed": OrNone(SEED),
    "tol": OrNone(POSITIVE),
    "record_every": Integer(1),
    "threads": Integer(1),
    "device": Text(),
    # factorized gradient descent
    "width": OrNone(Integer(1)),
    "alpha": POSITIVE,
    "step": AutoOr(POSITIVE),
    "step_constant": POSITIVE,
    "validation": OrNone(Fraction()),
    "patience": OrNone(Integer(1)),
    "n_singular": Integer(1),
}
"""name → rule of the parameters whose rule needs nothing above this module;
`asymsense.spec.RULES` adds `operator` and `backend`."""


# --------------------------------------------------------------------------- cross-field rules
def degrees_of_freedom(n1: int, n2: int, rank: int) -> int:
    """r(n1 + n2 − r): the dimension of the rank-r n1×n2 matrices."""
    return rank * (n1 + n2 - rank)


def check_rank(rank: int, n1: int, n2: int) -> int:
    """rank ≤ min(n1, n2): a rank-r n1×n2 matrix exists."""
    if rank > min(n1, n2):
        _fail("rank", f"must be <= min(n1, n2) = {min(n1, n2)}, got {rank}")
    return rank


def check_patience_needs_validation(patience, validation) -> None:
    """Patience counts iterations without improvement of the validation loss,
    so it needs held-out measurements."""
    if patience is not None and validation is None:
        _fail("patience", "needs validation (a held-out fraction of the measurements, e.g. 0.2)")


def measurements_from_oversampling(n1: int, n2: int, rank: int, oversampling: float = DEFAULT_OVERSAMPLING) -> int:
    """m = ⌈oversampling · r(n1 + n2 − r)⌉; the −1e-9 keeps a product that
    rounding lifts just above an integer (1.1 · 100 = 110.00000000000001) at it."""
    return math.ceil(oversampling * degrees_of_freedom(n1, n2, rank) - 1e-9)


def check_sampled_measurements(m: int, n1: int, n2: int, operator: str) -> int:
    """m ≤ n1·n2 for the operators that sample distinct measurements."""
    if operator in DISTINCT_SAMPLING and m > n1 * n2:
        _fail("m", f"must be <= n1·n2 = {n1 * n2} for the {operator} operator (it samples distinct measurements), got {m}")
    return m


def check_validation_split(validation, m: int) -> int | None:
    """The number of measurements a validation fraction holds out,
    round(validation · m); at least one must be left on each side."""
    if validation is None:
        return None
    n_val = int(round(validation * m))
    if n_val < 1 or n_val >= m:
        _fail("validation", f"leaves {n_val} of m = {m} measurements for validation; need at least one on each side")
    return n_val


VALIDATION_SHARE_ADVISED = (0.02, 0.5)
"""The held-out share for early stopping a completion fit that is advised:
below 2% the validation RMSE is too noisy to pick the stopping iteration,
above 50% the fit learns from less than half the data. Outside it a
completion fit warns (`asymsense.completion.guardrails`)."""

VALIDATION_SHARE_ALLOWED = (0.005, 0.8)
"""The held-out share a completion fit accepts at all: beyond it the choice
cannot be what was meant (0.9 trains on a tenth of the data)."""


def check_validation_share(validation, name: str = "validation"):
    """A completion fit's validation share: None (no early stopping) or a
    fraction in VALIDATION_SHARE_ALLOWED; refused beyond, with the advised range."""
    if validation is None:
        return None
    low, high = VALIDATION_SHARE_ALLOWED
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real) or not low <= validation <= high:
        _fail(name, f"must be a share in [{low:g}, {high:g}] of the entries (advised: {VALIDATION_SHARE_ADVISED[0]:g} to "
                    f"{VALIDATION_SHARE_ADVISED[1]:g}), got {validation!r}")
    return float(validation)


# --------------------------------------------------------------------------- memory
MEMORY_LIMIT_VARIABLE = "ASYMSENSE_MEMORY_LIMIT"
"""Environment variable that sets the memory a run may use (bytes, or with a
suffix K, M, G, T: "8G"), in place of the memory available on the machine."""


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1:], 1)
    number = float(text[:-1] if scale > 1 else text)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(text)
    return int(number * scale)


def available_memory() -> int | None:
    """Bytes a new allocation may use: $ASYMSENSE_MEMORY_LIMIT when set, else
    the memory the system reports available (psutil's
    virtual_memory().available; MemAvailable of /proc/meminfo only when psutil
    cannot be imported), capped by a cgroup limit (memory.max) when there is
    one; None when nothing can be read (no check then)."""
    import os

    override = os.environ.get(MEMORY_LIMIT_VARIABLE)
    if override:
        try:
            return _parse_bytes(override)
        except (ValueError, IndexError):
            raise InputError(f"{MEMORY_LIMIT_VARIABLE} must be a number of bytes such as 8G, got {override!r}") from None
    limits = []
    try:
        import psutil
    except ImportError:  # psutil is a dependency; /proc/meminfo only where it is missing
        psutil = None
    if psutil is not None:
        limits.append(int(psutil.virtual_memory().available))
    else:
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        limits.append(int(line.split()[1]) * 1024)
        except (OSError, ValueError, IndexError):
            pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
            limit = int(text)
        except (OSError, ValueError):
            continue
        if 0 < limit < 2**60:
            try:
                with open(path.replace("memory.max", "memory.current").replace("limit_in_bytes", "usage_in_bytes")) as fh:
                    limit -= int(fh.read().strip())
            except (OSError, ValueError):
                pass
            limits.append(max(limit, 0))
        break
    return min(limits) if limits else None


def format_bytes(n: float) -> str:
    """1.5 GB, 820 MB, 12 kB (decimal units)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


def check_memory(estimate: float, what: str, reduce: str, parameter: str | None = None, *, limit: int | None = None) -> None:
    """Refuse a run whose estimated peak memory `estimate` (bytes) exceeds the
    available memory (`available_memory`, or `limit`) before anything is
    allocated: an InputError naming the estimate, the limit and how to reduce
    it (`reduce`, e.g. "use operator='gaussian-stream'")."""
    limit = available_memory() if limit is None else limit
    if limit is not None and estimate > limit:
        raise InputError(f"{what} needs about {format_bytes(estimate)} of memory, more than the {format_bytes(limit)} available "
                         f"(${MEMORY_LIMIT_VARIABLE} sets the limit); {reduce}", parameter)
