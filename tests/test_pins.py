"""Numbers pinned from runs made before the architecture restructure
(tests/pins.py wrote tests/data/pins.json on main at fa86785): the README's
solve commands, a compare run, two stored sweeps and a completion fit.

On the machine that made the pins every number was bit-identical after the
restructure. Across machines, OpenBLAS picks its kernels by CPU (this
session's AMD EPYC runs its Haswell kernels), which reorders sums and moves
the last bits (measured: float64 numbers within 5e-13 relative, the float32
run within 3e-5), so the test allows that and nothing more: integers, strings and
stop reasons exactly; float64 numbers to 1e-9 relative (a reassociated sum
differs by a few ulps per operation, amplified by the run's conditioning);
the float32 run to 1e-4 relative; quantities at the rounding floor (below
1e-14 for float64, 1e-9 for float32, e.g. a loss of 1e-19) only to that floor.
A real behaviour change (an iteration more, a different step or seed) moves
numbers by far more than these tolerances."""

import json
import math

import pytest

from pins import PIN_FILE, collect

FLOAT64 = dict(rel_tol=1e-9, abs_tol=1e-14)
FLOAT32 = dict(rel_tol=1e-4, abs_tol=1e-9)


def mismatches(fresh, pinned, tolerance, path=""):
    """Paths where `fresh` differs from `pinned` beyond `tolerance` (floats may be stored as repr strings)."""
    if isinstance(pinned, dict) and isinstance(fresh, dict):
        return [m for key in sorted(set(pinned) | set(fresh)) for m in mismatches(fresh.get(key), pinned.get(key), tolerance, f"{path}.{key}")]
    if isinstance(pinned, list) and isinstance(fresh, list) and len(pinned) == len(fresh):
        return [m for i, (a, b) in enumerate(zip(fresh, pinned)) for m in mismatches(a, b, tolerance, f"{path}[{i}]")]
    if fresh == pinned:
        return []
    try:
        a, b = float(fresh), float(pinned)
    except (TypeError, ValueError):
        return [f"{path}: {fresh!r} != {pinned!r}"]
    is_integer = all(isinstance(v, int) or (isinstance(v, str) and v.lstrip("-").isdigit()) for v in (fresh, pinned))
    if not is_integer and math.isclose(a, b, **tolerance):
        return []
    return [f"{path}: {fresh!r} != {pinned!r}"]


@pytest.fixture(scope="module")
def fresh():
    return collect()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(json.loads(PIN_FILE.read_text())))
def test_pinned_run_is_reproduced(fresh, name):
    pinned = json.loads(PIN_FILE.read_text())[name]
    tolerance = FLOAT32 if "float32" in name else FLOAT64
    assert mismatches(fresh[name], pinned, tolerance) == []


def test_the_tolerance_catches_a_real_change():
    pinned = json.loads(PIN_FILE.read_text())["solve-readme"]
    one_more_iteration = dict(pinned, iterations=pinned["iterations"] + 1)
    slightly_other_error = dict(pinned, rel_error=repr(float(pinned["rel_error"]) * (1 + 1e-7)))
    assert mismatches(one_more_iteration, pinned, FLOAT64)
    assert mismatches(slightly_other_error, pinned, FLOAT64)
    assert mismatches(dict(pinned, stop_reason="tol"), pinned, FLOAT64)
