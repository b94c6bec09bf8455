"""One parameter spec: `SolveConfig.resolved()` (solve, compare) and the sweep's
`resolve_problem/run/solver` apply the same declared rules and defaults.

Property tests (hypothesis) draw parameter dicts, resolve them through both
doors and compare the derived values with each other and with the formulas of
DESIGN.md (m = ⌈5·r(n1+n2−r)⌉, width = min(n1, n2), seeds from
SeedSequence([seed, stream])); invalid values must be refused by both doors
with an InputError naming the parameter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from asymsense.errors import InputError
from asymsense.spec import (BACKENDS, DEFAULTS, RULES, SEED_STREAMS, SolveConfig, load_solve_config, resolve_problem, resolve_run,
                            resolve_solver)
from asymsense.validation import (DISTINCT_SAMPLING, MAX_SEED, PARAMETER_RULES, check_patience_needs_validation, check_rank,
                                  check_validation_split)

OPERATORS = ("gaussian", "gaussian-stream", "rank-one", "structured", "entries")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sweep_path(params: dict) -> dict:
    """The sweep's resolution of a flat trial dict."""
    params = dict(params)
    problem = resolve_problem(params)
    run = resolve_run(params)
    solver = resolve_solver(params, problem)
    return {**problem, **run, **solver}


def solve_path(params: dict) -> dict:
    """The solve command's resolution (flags → SolveConfig → resolved)."""
    return load_solve_config(None, dict(params)).resolved().record()


def expected_seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint32)[0])


@st.composite
def valid_params(draw):
    n1 = draw(st.integers(1, 60))
    n2 = draw(st.integers(1, 60))
    rank = draw(st.integers(1, min(n1, n2)))
    operator = draw(st.sampled_from(OPERATORS))
    params = {"n1": n1, "n2": n2, "rank": rank, "operator": operator, "seed": draw(st.integers(0, MAX_SEED))}
    dof = rank * (n1 + n2 - rank)
    cap = n1 * n2 if operator in DISTINCT_SAMPLING else 10 * dof + 10
    if draw(st.booleans()):
        params["m"] = draw(st.integers(1, cap))
    else:
        assume(math.ceil(5 * dof - 1e-9) <= cap)
    m = params.get("m", math.ceil(5 * dof - 1e-9))
    if draw(st.booleans()):
        params["width"] = draw(st.integers(1, 100))
    if draw(st.booleans()):
        params["noise"] = draw(st.floats(0.0, 1.0, allow_nan=False))
    if draw(st.booleans()):
        params["cond"] = draw(st.floats(1.0, 100.0, allow_nan=False))
    if draw(st.booleans()):
        params["alpha"] = draw(st.floats(1e-12, 1.0, allow_nan=False, exclude_min=True))
    if m >= 2 and draw(st.booleans()):
        n_val = draw(st.integers(1, m - 1))
        params["validation"] = (n_val + 0.25) / m if n_val + 0.25 < m else n_val / m
        assume(1 <= round(params["validation"] * m) < m and 0 < params["validation"] < 1)
        if draw(st.booleans()):
            params["patience"] = draw(st.integers(1, 1000))
    for name in SEED_STREAMS:
        if draw(st.booleans()):
            params[name] = draw(st.integers(0, MAX_SEED))
    return params


def test_the_operator_kinds_drawn_here_are_the_rule():
    assert RULES["operator"].choices == OPERATORS


@SETTINGS
@given(valid_params())
def test_solve_and_sweep_resolve_the_same_parameters(params):
    swept, solved = sweep_path(params), solve_path(params)
    for key in ("n1", "n2", "rank", "cond", "operator", "noise", "m", "width", "alpha", "step", "validation", "patience", "seed",
                "problem_seed", "operator_seed", "max_iter", "tol", "record_every", "dtype", "spectrum"):
        assert swept[key] == solved[key], key
        assert type(swept[key]) is type(solved[key]), key
    # the derived values follow the formulas, whichever door
    n1, n2, r = params["n1"], params["n2"], params["rank"]
    assert solved["m"] == params.get("m", math.ceil(5 * r * (n1 + n2 - r) - 1e-9))
    assert solved["width"] == params.get("width", min(n1, n2))
    for name, stream in SEED_STREAMS.items():
        wanted = params.get(name, expected_seed(params["seed"], stream))
        assert swept[name] == wanted, name
        if name != "noise_seed" or solved["noise"] > 0 or name in params:
            assert solved[name] == wanted, name
    if solved["noise"] == 0 and "noise_seed" not in params:
        assert solved["noise_seed"] is None


@SETTINGS
@given(valid_params())
def test_resolution_is_idempotent(params):
    """Resolving a resolved record again changes nothing (a summary.json repeats its run)."""
    once = solve_path(params)
    assert solve_path({k: v for k, v in once.items() if v is not None}) == once
    swept = sweep_path(params)
    assert sweep_path({k: v for k, v in swept.items() if k != "oversampling"}) == {**swept, "oversampling": swept["m"] / (
        swept["rank"] * (swept["n1"] + swept["n2"] - swept["rank"]))}


# ---------------------------------------------------------------- invalid input: both doors refuse, naming the parameter
def refused(params: dict) -> tuple[InputError, InputError]:
    """The errors of the sweep door and of the solve door (SolveConfig without sources)."""
    with pytest.raises(InputError) as swept:
        sweep_path(params)
    with pytest.raises(InputError) as solved:
        SolveConfig(**params).resolved() if _pydantic_accepts(params) else load_solve_config(None, params)
    return swept.value, solved.value


def _pydantic_accepts(params):
    try:
        SolveConfig(**params)
    except Exception:
        return False
    return True


def assert_names(error: InputError, name: str):
    message = str(error)
    assert message.startswith(name + " ") or message.startswith(f"--{name.replace('_', '-')} "), message
    assert error.parameter == name, (error.parameter, message)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 10))
def test_rank_above_min_is_refused_by_both(n1, n2, excess):
    rank = min(n1, n2) + excess
    for error in refused({"n1": n1, "n2": n2, "rank": rank}):
        assert_names(error, "rank")
        assert f"min(n1, n2) = {min(n1, n2)}" in str(error)


@SETTINGS
@given(st.integers(1, 10_000))
def test_patience_without_validation_is_refused_by_both(patience):
    for error in refused({"n1": 8, "n2": 6, "rank": 2, "patience": patience}):
        assert_names(error, "patience")
        assert "needs validation" in str(error) and "--" not in str(error)


@SETTINGS
@given(st.sampled_from(DISTINCT_SAMPLING), st.integers(1, 12), st.integers(1, 12), st.integers(1, 50))
def test_too_many_measurements_for_a_sampling_operator_are_refused_by_both(operator, n1, n2, excess):
    params = {"n1": n1, "n2": n2, "rank": 1, "operator": operator, "m": n1 * n2 + excess}
    for error in refused(params):
        assert_names(error, "m")
        assert f"n1·n2 = {n1 * n2}" in str(error)
    params["m"] = n1 * n2
    assert sweep_path(params)["m"] == solve_path(params)["m"] == n1 * n2


@pytest.mark.parametrize("operator", DISTINCT_SAMPLING)
def test_the_derived_m_is_checked_too(operator):
    """3×3 rank 2: 5·r(n1+n2−r) = 40 > 9 distinct entries."""
    for error in refused({"n1": 3, "n2": 3, "rank": 2, "operator": operator}):
        assert_names(error, "m")


@SETTINGS
@given(st.sampled_from(["n1", "n2", "rank", "max_iter", "record_every", "width", "patience", "seed", "m"]),
       st.floats(0.5, 1e6).filter(lambda x: not float(x).is_integer()))
def test_a_fraction_where_an_integer_is_needed_is_refused_by_both(name, value):
    params = {"n1": 8, "n2": 6, "rank": 2, name: value}
    if name == "patience":
        params["validation"] = 0.25
    for error in refused(params):
        assert "integer" in str(error), str(error)
        assert name in str(error).split(" ")[0].replace("-", "_"), str(error)


@pytest.mark.parametrize("name", ["alpha", "noise", "cond", "step", "step_constant", "tol", "validation"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_nan_and_inf_are_refused_by_both(name, value):
    for error in refused({"n1": 8, "n2": 6, "rank": 2, name: value}):
        assert name == str(error).split(" ")[0].lstrip("-").replace("-", "_"), str(error)


@pytest.mark.parametrize("fraction", [1e-4, 0.9999])
def test_a_validation_split_leaving_a_side_empty_is_refused_by_both(fraction):
    for error in refused({"n1": 8, "n2": 6, "rank": 2, "validation": fraction}):
        assert_names(error, "validation")
        assert "at least one on each side" in str(error)


def test_the_solve_door_names_the_flag_or_the_file_line(tmp_path):
    with pytest.raises(InputError, match=r"^--rank must be <= min\(n1, n2\) = 6, got 7$"):
        load_solve_config(None, {"n1": 8, "n2": 6, "rank": 7}).resolved()
    path = tmp_path / "run.toml"
    path.write_text("n1 = 8\nn2 = 6\n\npatience = 3\n")
    with pytest.raises(InputError, match=r"run\.toml line 4: patience needs validation"):
        load_solve_config(path).resolved()
    with pytest.raises(InputError, match=r"^--n1 must be an integer, got 2\.5$"):
        load_solve_config(None, {"n1": 2.5})


# ---------------------------------------------------------------- one declaration
def test_solve_config_fields_take_their_defaults_and_bounds_from_the_declarations():
    for name, field in SolveConfig.model_fields.items():
        assert field.default == DEFAULTS[name], name
        assert name in RULES, name
    assert SolveConfig.model_fields["rank"].metadata and SolveConfig(rank=1).rank == 1
    with pytest.raises(InputError, match=r"^--rank must be >= 1, got 0$"):
        load_solve_config(None, {"rank": 0})
    with pytest.raises(InputError, match=r"^--seed must be <= 9223372036854775807"):
        load_solve_config(None, {"seed": MAX_SEED + 1})


def test_one_list_of_backends():
    from asymsense.backend import BACKENDS as ARRAY_BACKENDS

    assert set(BACKENDS) == set(ARRAY_BACKENDS) - {"array-api-strict"}
    assert RULES["backend"].choices == BACKENDS
    with pytest.raises(InputError, match="backend must be one of numpy, torch, cupy, got 'jax'"):
        resolve_problem({"backend": "jax"})


def test_library_messages_name_the_parameter_never_a_flag():
    cases = [
        (lambda: check_rank(4, 3, 5), "rank"),
        (lambda: check_patience_needs_validation(3, None), "patience"),
        (lambda: check_validation_split(0.5, 1), "validation"),
        (lambda: PARAMETER_RULES["step"].check("step", -1.0), "step"),
        (lambda: PARAMETER_RULES["validation"].check("validation", 1.0), "validation"),
        (lambda: resolve_solver({"width": "2*k"}, {"n1": 4, "n2": 3, "rank": 1, "m": 20}), "width"),
    ]
    for call, name in cases:
        with pytest.raises(InputError) as info:
            call()
        assert info.value.parameter == name and str(info.value).startswith(name) and "--" not in str(info.value)
    check_patience_needs_validation(None, None)
    check_patience_needs_validation(3, 0.2)
    assert check_validation_split(0.25, 8) == 2
