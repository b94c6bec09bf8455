"""Property-based fuzzing of the input boundary (issue 10): for every
generated input the outcome is a success with finite outputs or an
InputError — never another exception.

Three families: the table reader (`completion.io`: CSV bytes, delimiters,
quotes, blank lines, huge/NaN/inf numbers, duplicate headers, truncated
Parquet), the TOML configs (`spec.load_solve_config`, the sweep config and
its expansion), and the Python API's argument validation (`make_operator`,
`planted`, `measure`, `fgd`, `LowRankCompleter`). A run that diverges is the
answer of a valid run (DivergenceError, exit 3), not bad input; it is allowed
where a generated step size can be too large. Sizes are bounded by
$ASYMSENSE_MEMORY_LIMIT (256M here): a generated size that would not fit is
refused by the memory preflight, which is part of what is fuzzed.
$ASYMSENSE_FUZZ_EXAMPLES sets the examples per test (30, derandomized, in
the suite; a deeper search with fresh examples: ASYMSENSE_FUZZ_EXAMPLES=1500).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

from asymsense.errors import DivergenceError, InputError

FUZZ = settings(max_examples=int(os.environ.get("ASYMSENSE_FUZZ_EXAMPLES", "30")), deadline=None,
                derandomize="ASYMSENSE_FUZZ_EXAMPLES" not in os.environ,  # the suite: the same examples every run; a deeper search: fresh ones
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _small_memory(monkeypatch):
    monkeypatch.setenv("ASYMSENSE_MEMORY_LIMIT", "256M")


def _tmpfile(suffix: str, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


def _check_table(table) -> None:
    from asymsense.completion.io import MAX_ABS_VALUE

    assert table.m == len(table.rows) == len(table.cols) == len(table.values) > 0
    assert np.isfinite(table.values).all() and (np.abs(table.values) <= MAX_ABS_VALUE).all()
    assert (table.rows >= 0).all() and (table.cols >= 0).all()
    assert table.rows.max() < table.shape[0] and table.cols.max() < table.shape[1]


def _read(path: Path, **kwargs):
    from asymsense.completion.io import read_table

    try:
        table = read_table(path, **kwargs)
    except InputError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), str(exc)  # one line
        return None
    finally:
        path.unlink(missing_ok=True)
    _check_table(table)
    return table


# --------------------------------------------------------------------------- the table reader
CELLS = st.one_of(
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e101", "1e-320", "0x10", "1_000", '"3"', '""', '"a,b"',
                     '"unclosed', "null", "NULL", "true", "é", "\u00a0", "1.5.2", "--1", "3,5", "\\N"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)
DELIMITERS = st.sampled_from([",", "\t", ";", "|", " ", ":"])


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".parquet", ".txt"]))
def test_random_bytes_are_a_table_or_one_input_error(data, suffix):
    _read(_tmpfile(suffix, data))


@FUZZ
@given(header=st.lists(st.sampled_from(["u", "i", "r", "u", "value", "", '"u"', "time"]), min_size=1, max_size=4),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), min_size=0, max_size=8),
       delimiter=DELIMITERS, blank=st.booleans(), crlf=st.booleans(), duplicates=st.sampled_from(["mean", "last", "error"]),
       encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_generated_csv_is_a_table_with_finite_values_or_one_input_error(header, rows, delimiter, blank, crlf, duplicates, encoding):
    newline = "\r\n" if crlf else "\n"
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in rows]
    if blank:
        lines.insert(len(lines) // 2 + 1, "")
    text = newline.join(lines) + newline
    _read(_tmpfile(".csv", text.encode("utf-8", "surrogatepass")), duplicates=duplicates, encoding=encoding)


@FUZZ
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=12),
       ids=st.lists(st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=3), st.none()), min_size=1, max_size=12),
       cut=st.floats(0.0, 1.0), duplicates=st.sampled_from(["mean", "last", "error"]))
def test_parquet_whole_or_truncated_is_a_table_or_one_input_error(values, ids, cut, duplicates):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = min(len(values), len(ids))
    kinds = {type(v) for v in ids[:n]}
    try:
        table = pa.table({"u": pa.array(ids[:n]) if len(kinds - {type(None)}) <= 1 else pa.array([None if v is None else str(v) for v in ids[:n]]),
                          "i": pa.array(list(range(n))), "r": pa.array(values[:n])})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        assume(False)
    path = _tmpfile(".parquet", b"")
    pq.write_table(table, path)
    data = path.read_bytes()
    path.write_bytes(data if cut > 0.95 else data[: int(len(data) * cut)])
    _read(path, duplicates=duplicates)


@FUZZ
@given(text=st.text(alphabet="ab\n", max_size=60), limit=st.integers(1, 8))
def test_long_line_finds_the_first_line_over_the_limit(text, limit):
    from asymsense.completion.io import long_line

    path = _tmpfile(".csv", text.encode())
    try:
        expected = next((i + 1 for i, line in enumerate(text.split("\n")) if len(line) > limit), None)
        assert long_line(path, limit)[0] == expected
    finally:
        path.unlink()


# --------------------------------------------------------------------------- TOML configs
def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(values: dict) -> str:
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in values.items())


SCALARS = st.one_of(st.integers(-3, 60), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.sampled_from(["auto", "gaussian", "entries", "rank-one", "structured", "gaussian-stream", "linear", "geometric",
                                     "float32", "float64", "numpy", "torch", "cpu", "", "n1", "2*rank", "n1 // 0", "10**10**10"]),
                    st.text(max_size=5))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=3), SCALARS, max_size=2))


def _solve_keys():
    from asymsense.spec import SolveConfig

    return st.sampled_from(list(SolveConfig.model_fields) + ["n-1", "max-iter", "unknown", "fixed", ""])


@FUZZ
@given(values=st.dictionaries(st.deferred(_solve_keys), VALUES, max_size=6))
def test_solve_configs_resolve_or_raise_one_input_error(values):
    from asymsense.spec import load_solve_config

    path = _tmpfile(".toml", _toml(values).encode())
    try:
        config = load_solve_config(path).resolved()
    except InputError as exc:
        assert "\n" not in str(exc).strip()
        return
    finally:
        path.unlink()
    assert config.m >= 1 and config.width >= 1 and config.rank <= min(config.n1, config.n2)


@FUZZ
@given(text=st.text(max_size=80))
def test_any_text_as_a_solve_config_resolves_or_raises_one_input_error(text):
    from asymsense.spec import load_solve_config

    path = _tmpfile(".toml", text.encode("utf-8", "surrogatepass"))
    try:
        load_solve_config(path).resolved()
    except InputError:
        pass
    finally:
        path.unlink()


SWEEP_KEYS = st.sampled_from(["n1", "n2", "rank", "m", "width", "alpha", "max_iter", "step", "operator", "seed", "record_every", "args", "shell"])


@FUZZ
@example(top={"seeds": 10**20}, fixed={"n1": 5, "n2": 4, "rank": 1}, grid={})  # found by this test: expanding 1e20 seeds never ended
@given(top=st.dictionaries(st.sampled_from(["name", "method", "seeds", "chunk_size", "description", "bogus"]), SCALARS, max_size=4),
       fixed=st.dictionaries(SWEEP_KEYS, SCALARS, max_size=5),
       grid=st.dictionaries(SWEEP_KEYS, st.one_of(st.lists(SCALARS, max_size=3), SCALARS), max_size=2))
def test_sweep_configs_expand_or_raise_one_input_error(top, fixed, grid):
    from asymsense.paper.registry import TRIAL_METHODS
    from asymsense.sweep.run import expand, load_sweep_config

    text = _toml(top) + (f"[fixed]\n{_toml(fixed)}" if fixed else "") + (f"[grid]\n{_toml(grid)}" if grid else "")
    path = _tmpfile(".toml", text.encode())
    try:
        trials = expand(load_sweep_config(path), TRIAL_METHODS)
    except InputError as exc:
        assert "\n" not in str(exc).strip()
        return
    finally:
        path.unlink()
    assert all(isinstance(t.key, str) and t.key for t in trials)


# --------------------------------------------------------------------------- the Python API
SIZES = st.one_of(st.integers(-2, 12), st.sampled_from([0, 10**6, 10**12, 2.0, 2.5, True, None, "3", float("nan"), float("inf")]))
REALS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, -1, 1e-3, 0.5, "auto", None, True, "x"]))


@FUZZ
@given(kind=st.sampled_from(["gaussian", "gaussian-stream", "rank-one", "structured", "entries", "Gaussian", "", None, 3]),
       n1=SIZES, n2=SIZES, m=SIZES, seed=st.one_of(st.integers(-1, 5), st.sampled_from([2**64, None, 1.5, "0"])),
       dtype=st.sampled_from(["float64", "float32", "int8", None, np.float32]))
def test_make_operator_builds_or_raises_input_error(kind, n1, n2, m, seed, dtype):
    import asymsense

    kwargs = {"seed": seed} if dtype is None else {"seed": seed, "dtype": dtype}
    try:
        op = asymsense.make_operator(kind, n1, n2, m, **kwargs)
    except InputError:
        return
    assert op.shape == (n1, n2) and op.m == m


@FUZZ
@given(n1=SIZES, n2=SIZES, rank=SIZES, cond=REALS, spectrum=st.sampled_from(["linear", "geometric", "log", None]),
       noise=REALS, m=st.integers(1, 80), kind=st.sampled_from(["gaussian", "entries", "rank-one"]))
@example(n1=10**6, n2=10**6, rank=1, cond=1.0, spectrum="linear", noise=0.0, m=1, kind="entries")
def test_planted_and_measure_succeed_finite_or_raise_input_error(n1, n2, rank, cond, spectrum, noise, m, kind):
    import asymsense

    try:
        problem = asymsense.planted(n1, n2, rank, cond=cond, spectrum=spectrum, seed=0)
        op = asymsense.make_operator(kind, problem.shape[0], problem.shape[1], m, seed=1)
        y = asymsense.measure(problem, op, noise=noise, seed=2)
    except InputError:
        return
    factors = (problem.left, problem.singular_values, problem.right)  # not problem.X: a 10**6 × 10**6 problem is kept as factors
    assert all(np.isfinite(f).all() for f in factors) and np.isfinite(y).all() and y.shape == (m,)


@FUZZ
@given(width=SIZES, init_scale=REALS, step_size=REALS, max_iter=st.one_of(st.integers(-1, 4), st.sampled_from([2.0, None, "3"])),
       seed=st.one_of(st.integers(0, 3), st.sampled_from([-1, None, [0, 1], "a"])), validation=st.one_of(st.none(), REALS),
       patience=st.one_of(st.none(), SIZES), tol=st.one_of(st.none(), REALS), record_every=SIZES,
       y_kind=st.sampled_from(["ok", "short", "nan", "huge", "list", "none", "2d"]))
def test_fgd_runs_finite_or_raises_input_error(width, init_scale, step_size, max_iter, seed, validation, patience, tol, record_every, y_kind):
    import asymsense

    problem = asymsense.planted(8, 6, 2, seed=0)
    op = asymsense.make_operator("gaussian", 8, 6, 60, seed=0)
    y = asymsense.measure(problem, op)
    y = {"ok": y, "short": y[:-1], "nan": np.where(np.arange(60) == 3, np.nan, y), "huge": y * 1e300, "list": list(y), "none": None,
         "2d": y.reshape(6, 10)}[y_kind]
    try:
        result = asymsense.fgd(op, y, width=width, init_scale=init_scale, step_size=step_size, max_iter=max_iter, seed=seed,
                               validation=validation, patience=patience, tol=tol, record_every=record_every, truth=problem)
    except (InputError, DivergenceError):  # divergence: a valid run's answer (exit 3), e.g. for a generated step of 1e300
        return
    for r in result if isinstance(result, tuple) else [result]:  # a BatchResult (several seeds) is a tuple of FGDResults
        summary = r.summary()
        assert np.isfinite(r.U).all() and np.isfinite(r.V).all() and math.isfinite(summary["rel_residual"]) and math.isfinite(summary["rel_error"])


@FUZZ
@given(params=st.fixed_dictionaries({}, optional={
           "width": SIZES, "init_scale": REALS, "step_size": REALS, "max_iter": st.integers(-1, 6), "patience": SIZES,
           "validation": REALS, "validation_kind": st.sampled_from(["entries", "rows", "x"]),
           "biases": st.sampled_from(["both", "rows", "columns", "global", "none", "all"]), "clip": st.sampled_from([True, False, "yes"]),
           "l2": REALS, "duplicates": st.sampled_from(["mean", "last", "error", "x"]), "unknown": st.sampled_from(["biases", "error", "nan", "x"]),
           "dtype": st.sampled_from(["float32", "float64", "int"]), "random_state": st.one_of(st.integers(-1, 3), st.none())}),
       X_kind=st.sampled_from(["int", "float", "nan_id", "str", "1d", "3col", "empty"]), y_kind=st.sampled_from(["ok", "nan", "huge", "short", "str"]))
def test_low_rank_completer_fits_and_predicts_finite_or_raises_input_error(params, X_kind, y_kind):
    pytest.importorskip("sklearn")
    from asymsense.completion import LowRankCompleter

    rng = np.random.default_rng(0)
    pairs = np.array([[u, i] for u in range(12) for i in range(8) if rng.random() < 0.6])
    y = rng.integers(1, 6, len(pairs)).astype(float)
    X = {"int": pairs, "float": pairs.astype(float), "nan_id": np.where(pairs == 3, np.nan, pairs.astype(float)),
         "str": pairs.astype(str), "1d": pairs[:, 0], "3col": np.c_[pairs, pairs[:, :1]], "empty": pairs[:0]}[X_kind]
    y = {"ok": y, "nan": np.where(np.arange(len(y)) == 2, np.nan, y), "huge": y * 1e200, "short": y[:-1], "str": y.astype(str)}[y_kind]
    try:
        model = LowRankCompleter(**params).fit(X, y)
        pred = model.predict(X)
    except (InputError, DivergenceError):
        return
    assert np.isfinite(pred).all() and len(pred) == len(X)


@FUZZ
@given(header=st.lists(st.sampled_from(["u", "i", "r", "u", ""]), min_size=1, max_size=4),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), min_size=0, max_size=6), delimiter=DELIMITERS)
def test_inspect_exits_0_with_strict_json_or_2_with_one_line(header, rows, delimiter):
    """The command line over the same reader: exit 0 and strict JSON, or exit 2 and one `error:` line."""
    from typer.testing import CliRunner

    from asymsense.cli.app import app

    path = _tmpfile(".csv", ("\n".join([delimiter.join(header)] + [delimiter.join(r) for r in rows]) + "\n").encode("utf-8", "surrogatepass"))
    try:
        result = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    finally:
        path.unlink()
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    else:
        json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
