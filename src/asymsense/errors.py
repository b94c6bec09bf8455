"""Exceptions of asymsense and the boundary checks that raise them.

Every public entry point validates its inputs once, here, with messages that
name the parameter and the offending value (scikit-learn style). The CLI turns
`InputError` into exit code 2 and `DivergenceError` into exit code 3.
"""

from __future__ import annotations

import numbers
import numpy as np


class InputError(ValueError):
    """Bad input: the message names the parameter, file or line at fault."""


class DivergenceError(RuntimeError):
    """The loss became non-finite or exploded; the message names the step size."""

    def __init__(self, message: str, step_size: float | None = None, iteration: int | None = None):
        super().__init__(message)
        self.step_size = step_size
        self.iteration = iteration


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return `value` as an int, refusing bools, fractions and out-of-range values."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer() and not isinstance(value, bool):
            value = int(value)
        else:
            raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """Return `value` as a finite float > 0 (or >= 0 with `allow_zero`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def check_finite_array(name: str, array) -> None:
    """Refuse arrays holding NaN or inf, saying how many and where the first is."""
    arr = np.asarray(array)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), arr.shape)
        raise InputError(f"{name} contains {int(bad.sum())} non-finite value(s), first at index {tuple(int(i) for i in first)}")


MAX_SEED = 2**63 - 1
"""Seeds are stored in int64 columns (Parquet, DuckDB)."""


def resolve_seed(seed) -> int:
    """One way to handle seeds everywhere: an int is used as given, None draws a
    fresh one from the OS. The resolved int is recorded with every result so a
    run can be repeated exactly."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % MAX_SEED)
    return check_int("seed", seed, minimum=0, maximum=MAX_SEED)


def check_dtype(dtype) -> np.dtype:
    """Accept float32/float64 by name or numpy dtype."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if resolved not in (np.float32, np.float64):
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return resolved
