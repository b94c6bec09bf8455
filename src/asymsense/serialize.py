"""Plain JSON: numpy values as the Python values `json` writes.

`plain` is the one conversion of results and parameters to JSON-able Python:
numpy scalars become Python scalars (`.item()`, so a float32 keeps its exact
value as a double), arrays and tuples become lists, dict keys become strings.
What a non-finite float becomes is the caller's choice, because the callers
differ on purpose: strict JSON files write None (`null`), the completion
summary keeps the float (`NaN`, as `json.dumps` writes it), and parameters
refuse it with an InputError naming the parameter.
"""

from __future__ import annotations

import json
import math
import numbers

import numpy as np

from asymsense.errors import InputError

NONFINITE = ("null", "keep", "error")
OTHER = ("error", "str", "keep")


def plain(value, *, nonfinite: str = "null", other: str = "keep", name: str = "value"):
    """`value` as plain Python (None, bool, int, float, str, list, dict with str keys).

    nonfinite : what a NaN or ±inf becomes: "null" → None (strict JSON),
        "keep" → the float itself, "error" → InputError "`name` must be finite".
    other : what any other object becomes: "keep" → unchanged (`json.dumps`
        then raises its TypeError), "str" → str(value) (as `json.dumps(...,
        default=str)` writes it), "error" → InputError naming `name` (for
        values a user gave, e.g. parameters).
    name : the parameter named in errors; dict entries extend it (`name.key`).
    """
    if nonfinite not in NONFINITE:
        raise ValueError(f"nonfinite must be one of {', '.join(NONFINITE)}, got {nonfinite!r}")
    if other not in OTHER:
        raise ValueError(f"other must be one of {', '.join(OTHER)}, got {other!r}")
    return _plain(value, nonfinite, other, name)


def _plain(value, nonfinite, other, name):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isfinite(value) or nonfinite == "keep":
            return value
        if nonfinite == "null":
            return None
        raise InputError(f"{name} must be finite, got {value!r}")
    if isinstance(value, dict):
        return {str(k): _plain(v, nonfinite, other, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, nonfinite, other, name) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), nonfinite, other, name)
    if isinstance(value, np.generic):  # complex, datetime64, ...: their Python counterpart
        return _plain(value.item(), nonfinite, other, name)
    if other == "str":
        return str(value)
    if other == "keep":
        return value
    raise InputError(f"{name}: unsupported value {value!r} (use numbers, strings, booleans, lists or tables)")


def dumps(value, *, nonfinite: str = "null", other: str = "keep", indent: int | None = 2, sort_keys: bool = False) -> str:
    """`json.dumps(plain(value))`; strict JSON (no NaN) unless nonfinite="keep"."""
    return json.dumps(plain(value, nonfinite=nonfinite, other=other), indent=indent, allow_nan=nonfinite == "keep", sort_keys=sort_keys)
