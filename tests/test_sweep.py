"""Sweep engine: grid expansion and keys, batching, failures, resume after a
kill, the Dask path, the store and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, strategies as st

from asymsense.errors import InputError
from asymsense.sweep import store
from asymsense.sweep.run import expand, load_sweep_config, plan_units, run_sweep, trial_key

TINY = {"n1": 8, "n2": 6, "rank": 2, "m": 60, "max_iter": 150, "record_every": 30, "step": 0.2,
        "problem_seed": 0, "operator_seed": 0}
VOLATILE = ("seconds", "finished_at", "chunk")


def tiny_config(**overrides):
    config = {"name": "tiny", "seeds": 2, "chunk_size": 6, "fixed": dict(TINY),
              "grid": {"alpha": [1e-1, 1e-2, 1e-3], "width": [2, 6]}}
    config.update(overrides)
    return config


def stable(table):
    """A results table without the columns that legitimately differ between runs."""
    return table.select([c for c in table.column_names if c not in VOLATILE])


def raw_rows(out) -> list[str]:
    """Every key in every committed trials file (duplicates included)."""
    return [k for p in sorted((Path(out) / "trials").glob("*.parquet")) for k in pq.read_table(p, columns=["key"]).column("key").to_pylist()]


def flaky_method(params):
    """A trial method that fails while the file `params['flag']` exists."""
    if Path(params["flag"]).exists():
        raise RuntimeError("flaky failure")
    return {"value": 2.0 * params["x"]}, None


def crash_method(params):
    """A trial method that kills its own worker process for x = 3."""
    if params["x"] == 3:
        os._exit(1)
    return {"value": params["x"]}, None


TEST_METHODS = {"flaky": flaky_method, "crash": crash_method}
"""This module's trial methods, handed to the sweep engine by name (a config never names code to import)."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep run once, uninterrupted, in this process."""
    out = tmp_path_factory.mktemp("reference")
    report = run_sweep(tiny_config(), out, n_jobs=1, progress=False)
    assert (report.done, report.failed, report.skipped) == (12, 0, 0)
    return out


# --------------------------------------------------------------------------- expansion and keys
def test_grid_expansion_is_the_cartesian_product_times_seeds():
    trials = expand(tiny_config())
    assert len(trials) == 3 * 2 * 2
    assert len({t.key for t in trials}) == 12
    points = [(t.params["alpha"], t.params["width"], t.params["seed"]) for t in trials]
    assert points[:3] == [(0.1, 2, 0), (0.1, 2, 1), (0.1, 6, 0)]
    assert all(t.params["m"] == 60 and t.params["oversampling"] == pytest.approx(60 / 24) for t in trials)


def test_equivalent_specifications_get_the_same_key():
    a = expand({"name": "a", "fixed": {**TINY, "alpha": 1, "width": 4}})
    b = expand({"name": "b", "fixed": {**TINY, "alpha": 1.0, "width": "2*rank"}})
    assert [t.key for t in a] == [t.key for t in b]
    # seeds: derived per trial unless fixed, and recorded
    c = expand({"name": "c", "seeds": [3], "fixed": {"n1": 8, "n2": 6, "rank": 2}})[0].params
    assert c["seed"] == 3 and c["problem_seed"] != c["operator_seed"] and c["problem_seed"] != 3


params_strategy = st.dictionaries(
    st.text("abcdefghij_", min_size=1, max_size=6),
    st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.booleans(), st.none()),
    min_size=1, max_size=8,
)


@given(params_strategy, st.randoms(use_true_random=False))
def test_key_does_not_depend_on_dict_order(params, rnd):
    items = list(params.items())
    rnd.shuffle(items)
    assert trial_key("fgd", dict(items)) == trial_key("fgd", params)


@given(params_strategy, st.text("xyz", min_size=1, max_size=3), st.integers(0, 10**6))
def test_key_changes_with_any_parameter(params, name, value):
    changed = {**params, name: value}
    if changed != params:
        assert trial_key("fgd", changed) != trial_key("fgd", params)
    assert trial_key("fgd", params) != trial_key("other", params)


@given(st.floats(1e-6, 1.0), st.floats(1e-6, 1.0))
def test_keys_of_resolved_trials_differ_exactly_when_alpha_differs(a, b):
    ka = expand({"name": "k", "fixed": {**TINY, "alpha": a}})[0].key
    kb = expand({"name": "k", "fixed": {**TINY, "alpha": b}})[0].key
    assert (ka == kb) == (a == b)


@pytest.mark.slow
def test_keys_are_stable_across_processes():
    """sha256 of canonical JSON: the same in a fresh interpreter with another hash seed."""
    keys = [t.key for t in expand(tiny_config())]
    code = "import json; from asymsense.sweep.run import expand; import sys; print(json.dumps([t.key for t in expand(json.loads(sys.argv[1]))]))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(tiny_config())], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == keys
    assert trial_key("fgd", {"alpha": 0.001, "n1": 8}) == "c2d1fc0192da08d9acd8"


# --------------------------------------------------------------------------- config errors
def test_config_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseeds = 2\nchunk_size = 0\n')
    with pytest.raises(InputError, match=r"bad\.toml line 3: chunk_size"):
        load_sweep_config(bad)
    bad.write_text('name = "x"\n[grid]\nalpha = [1e-3, 1e-2\n')
    with pytest.raises(InputError, match=r"bad\.toml line 3: malformed TOML"):
        load_sweep_config(bad)
    bad.write_text('name = "x"\n[grid]\nalhpa = [1e-3]\n')
    with pytest.raises(InputError, match=r"bad\.toml.*alhpa"):
        expand(load_sweep_config(bad))
    bad.write_text('name = "x"\n[fixed]\nn1 = 4\nn2 = 4\n[grid]\nrank = [2, 5]\n')
    with pytest.raises(InputError, match=r"rank=5.*rank must be <= min"):
        expand(load_sweep_config(bad))
    with pytest.raises(InputError, match="unknown method"):
        expand({"name": "x", "method": "no-such-method"})


# --------------------------------------------------------------------------- methods: a registry, never an import path
def test_a_config_naming_code_is_refused_and_imports_nothing(tmp_path, monkeypatch):
    """"module:function" in a config is an unknown method name: an InputError
    listing the known names, and the module is never imported."""
    (tmp_path / "probe_module_never_imported.py").write_text("import pathlib\npathlib.Path(__file__).with_suffix('.imported').touch()\ndef run(params):\n    return {}, None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("os:system", "probe_module_never_imported:run", "test_sweep:flaky_method"):
        with pytest.raises(InputError, match=rf"unknown method '{name}'.*known: .*fgd.*nuclear"):
            expand({"name": "x", "method": name, "fixed": {"x": 1}})
        with pytest.raises(InputError, match="unknown method"):
            run_sweep({"name": "x", "method": name, "fixed": {"x": 1}}, tmp_path / "out", n_jobs=1, progress=False, methods=TEST_METHODS)
    assert "probe_module_never_imported" not in sys.modules
    assert not (tmp_path / "probe_module_never_imported.imported").exists()
    assert not (tmp_path / "out").exists(), "refused before anything was written"


@pytest.mark.slow
def test_cli_config_naming_os_system_exits_2_and_runs_nothing(tmp_path):
    path = tmp_path / "evil.toml"
    path.write_text('name = "evil"\nmethod = "os:system"\n[fixed]\ncommand = "touch pwned"\n')
    result = subprocess.run(["asymsense", "sweep", str(path), "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown method 'os:system'" in lines[0] and "evil.toml" in lines[0] and "fgd" in lines[0]
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def test_extra_methods_are_plain_names_that_do_not_shadow_built_ins(tmp_path):
    from asymsense.sweep.methods import known_methods, resolve_method

    assert resolve_method("flaky", TEST_METHODS) is flaky_method
    assert {"fgd", "nuclear", "scaled-gd", "flaky"} <= set(known_methods(TEST_METHODS))
    for bad in ({"fgd": flaky_method}, {"nuclear": flaky_method}, {"pkg:fn": flaky_method}, {"x": "not callable"}):
        with pytest.raises(ValueError):
            resolve_method("fgd", bad)


# --------------------------------------------------------------------------- batching
def test_batched_grouping_gives_the_numbers_of_single_runs(reference, tmp_path):
    config = tiny_config()
    units = plan_units(load_sweep_config(config), expand(config))
    assert sorted(len(u) for u in units) == [6, 6], "alphas × both seeds share one batched call per width"
    single = run_sweep({**config, "chunk_size": 1}, tmp_path, n_jobs=1, progress=False)
    assert single.done == 12
    batched, alone = store.results(reference), store.results(tmp_path)
    assert batched.column("key").to_pylist() == alone.column("key").to_pylist()
    for name in ("rel_error", "loss", "rel_residual", "max_rel_imbalance", "eff_rank"):
        np.testing.assert_allclose(batched.column(name).to_numpy(), alone.column(name).to_numpy(), rtol=1e-9, atol=1e-14)
    assert batched.column("iterations").to_pylist() == alone.column("iterations").to_pylist()
    hb, ha = store.histories(reference), store.histories(tmp_path)
    assert hb.num_rows == ha.num_rows == 12 * 6
    np.testing.assert_allclose(hb.column("rel_error").to_numpy(), ha.column("rel_error").to_numpy(), rtol=1e-9, atol=1e-14)


def test_auto_step_batches_over_alpha_only():
    config = tiny_config(fixed={**TINY, "step": "auto"})
    units = plan_units(load_sweep_config(config), expand(config))
    assert sorted(len(u) for u in units) == [3, 3, 3, 3]
    assert all(len({t.params["seed"] for t in u}) == 1 for u in units)


# --------------------------------------------------------------------------- failures
def test_failed_trials_are_recorded_and_batch_mates_survive(tmp_path):
    config = {"name": "div", "chunk_size": 8, "fixed": dict(TINY), "grid": {"alpha": [1e-1, 1e-3, 30.0]}}
    assert [len(u) for u in plan_units(load_sweep_config(config), expand(config))] == [3]
    report = run_sweep(config, tmp_path, n_jobs=1, progress=False)
    assert (report.done, report.failed) == (2, 1)
    for row in store.results(tmp_path).to_pylist():
        if row["alpha"] == 30.0:
            assert row["status"] == "failed" and row["error"].startswith("DivergenceError") and row["rel_error"] is None
        else:
            assert row["status"] == "ok" and row["error"] is None and row["rel_error"] < 0.5
    assert store.histories(tmp_path).num_rows == 2 * 6


def test_retry_failed_reruns_only_failed_trials(tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("")
    config = {"name": "flaky", "method": "flaky", "fixed": {"flag": str(flag)}, "grid": {"x": [1.0, 2.0]}}
    out = tmp_path / "out"
    assert run_sweep(config, out, methods=TEST_METHODS, n_jobs=1, progress=False).failed == 2
    assert run_sweep(config, out, methods=TEST_METHODS, n_jobs=1, progress=False).skipped == 2
    flag.unlink()
    report = run_sweep(config, out, methods=TEST_METHODS, n_jobs=1, progress=False, retry_failed=True)
    assert (report.done, report.failed) == (2, 0)
    rows = store.results(out).to_pylist()
    assert sorted((r["x"], r["status"], r["value"]) for r in rows) == [(1.0, "ok", 2.0), (2.0, "ok", 4.0)]
    assert len(raw_rows(out)) == 2, "the same trials make the same chunk file: the retry replaced it atomically"


@pytest.mark.slow
def test_a_trial_that_kills_its_worker_is_isolated_and_recorded(tmp_path):
    config = {"name": "crash", "method": "crash", "chunk_size": 1, "grid": {"x": [1, 2, 3, 4, 5]}}
    report = run_sweep(config, tmp_path, methods=TEST_METHODS, n_jobs=2, progress=False)
    assert (report.done, report.failed) == (4, 1)
    rows = {r["x"]: r for r in store.results(tmp_path).to_pylist()}
    assert rows[3]["status"] == "failed" and "TerminatedWorkerError" in rows[3]["error"]
    assert all(rows[x]["status"] == "ok" and rows[x]["value"] == x for x in (1, 2, 4, 5))
    assert len(raw_rows(tmp_path)) == 5


# --------------------------------------------------------------------------- store
def test_store_deduplicates_deterministically_and_ignores_partial_files(tmp_path):
    store.prepare(tmp_path)
    base = {"key": "k1", "method": "m", "x": 1, "error": None, "seconds": 0.1}
    store.write_chunk(tmp_path, "b", [{**base, "status": "failed", "error": "boom"}], None)
    store.write_chunk(tmp_path, "a", [{**base, "status": "ok", "value": 3.0}, {**base, "key": "k2", "status": "ok", "value": 1}], None)
    store.write_chunk(tmp_path, "c", [{**base, "key": "k2", "status": "ok", "value": 2.5}], None)
    (tmp_path / "trials" / ".c.parquet.123.tmp").write_bytes(b"PAR1 half a file")
    rows = {r["key"]: r for r in store.results(tmp_path).to_pylist()}
    assert set(rows) == {"k1", "k2"}
    assert rows["k1"]["status"] == "ok" and rows["k1"]["chunk"] == "a"
    assert rows["k2"]["value"] == 2.5 and rows["k2"]["chunk"] == "c", "the later of two ok rows wins"
    assert store.query(tmp_path, "select count(*) as n from trials").column("n").to_pylist() == [2]
    with pytest.raises(InputError, match="query failed"):
        store.query(tmp_path, "select no_such_column from trials")
    (tmp_path / "trials" / "d.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="d.parquet"):
        store.results(tmp_path)


# --------------------------------------------------------------------------- resume after a kill
@pytest.mark.slow
def test_resume_after_sigkill_gives_every_trial_once_and_equal_to_an_uninterrupted_run(tmp_path):
    config = {"name": "kill", "seeds": 3, "chunk_size": 2, "fixed": {**TINY, "max_iter": 250, "step": "auto"},
              "grid": {"alpha": [1e-1, 1e-2], "width": [2, 4, 6]}}
    path = tmp_path / "kill.toml"
    path.write_text(to_toml(config))
    out, ref = tmp_path / "out", tmp_path / "ref"
    n = len(expand(config))
    proc = subprocess.Popen(["asymsense", "sweep", str(path), "--out", str(out), "--jobs", "2", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 40
        while len(list((out / "trials").glob("*.parquet"))) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    stored = raw_rows(out)
    assert 0 < len(stored) < n, "the sweep must be killed mid-way"
    assert len(set(stored)) == len(stored)
    report = run_sweep(path, out, n_jobs=1, progress=False)
    assert report.skipped == len(stored) and report.done == n - len(stored)
    assert sorted(raw_rows(out)) == sorted(t.key for t in expand(config)), "every trial on disk exactly once"
    run_sweep(path, ref, n_jobs=1, progress=False)
    assert stable(store.results(out)).equals(stable(store.results(ref)))
    assert store.histories(out).equals(store.histories(ref))


def to_toml(config: dict) -> str:
    def value(v):
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for section in ("fixed", "grid"):
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {value(v)}" for k, v in config.get(section, {}).items())
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Dask
@pytest.mark.slow
def test_dask_local_cluster_with_a_killed_worker_gives_the_joblib_results_once(tmp_path):
    """--dask-local 2: one worker is SIGKILLed mid-sweep; Dask reruns its
    chunks elsewhere, and the store holds every trial exactly once, equal bit
    for bit to the in-process (joblib path) run."""
    distributed = pytest.importorskip("distributed")
    config = {"name": "dask", "seeds": 4, "chunk_size": 2, "fixed": {**TINY, "max_iter": 300, "step": "auto"},
              "grid": {"alpha": [1e-1, 1e-2], "width": [2, 6]}}
    n = len(expand(config))
    out, ref = tmp_path / "dask", tmp_path / "ref"
    reports = []
    thread = threading.Thread(target=lambda: reports.append(run_sweep(config, out, dask_local=2, progress=False)))
    thread.start()
    deadline = time.time() + 60
    while not list((out / "trials").glob("*.parquet")) and time.time() < deadline and thread.is_alive():
        time.sleep(0.01)
    stored_at_kill = len(raw_rows(out))
    pids = distributed.default_client().run(os.getpid)  # the sweep's own client and cluster
    os.kill(sorted(pids.values())[0], signal.SIGKILL)
    thread.join(120)
    assert 0 < stored_at_kill < n, "the worker must be killed mid-sweep"
    assert reports and (reports[0].done, reports[0].failed) == (n, 0)
    assert sorted(raw_rows(out)) == sorted(t.key for t in expand(config)), "every trial present exactly once"
    run_sweep(config, ref, n_jobs=1, progress=False)
    assert stable(store.results(out)).equals(stable(store.results(ref)))
    assert store.histories(out).equals(store.histories(ref))


# --------------------------------------------------------------------------- CLI
def run_cli(*args):
    return subprocess.run(["asymsense", "sweep", *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("text, message", [
    ('name = "x"\n[grid]\nalpha = [1e-3,\n', "malformed TOML"),
    ('name = "x"\n[fixed]\nalpha = -1.0\n', "alpha must be finite and > 0"),
    ('name = "x"\nseeds = [9223372036854775808]\n', "seed must be <= 9223372036854775807"),
])
@pytest.mark.slow
def test_cli_bad_config_exits_2_with_one_line(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    result = run_cli(path, "--out", tmp_path / "out")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "c.toml" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "no-port"], "--scheduler no-port: cannot connect to a Dask scheduler there"),
    (["--jobs", "0"], "--jobs must be >= 1"),
])
@pytest.mark.slow
def test_cli_bad_execution_options_exit_2_with_one_line_before_any_progress(tmp_path, args, message):
    path = tmp_path / "s.toml"
    path.write_text(to_toml({"name": "cli", "seeds": 1, "fixed": TINY}))
    result = run_cli(path, "--out", tmp_path / "out", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("out/**/*.parquet"))


def test_empty_config_is_refused(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("# nothing here\n")
    with pytest.raises(InputError, match=r"empty\.toml: the sweep config is empty"):
        load_sweep_config(path)


@pytest.mark.slow
def test_cli_runs_resumes_and_reports_status(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(to_toml({"name": "cli", "seeds": 1, "chunk_size": 4, "fixed": TINY, "grid": {"alpha": [0.1, 0.01]}}))
    out = tmp_path / "out"
    assert run_cli(path, "--out", out, "--jobs", "1", "--no-progress").returncode == 0
    status = run_cli(path, "--out", out, "--status")
    assert status.returncode == 0 and "2 trials: 2 ok, 0 failed, 0 pending" in status.stdout
    other = tmp_path / "other.toml"
    other.write_text(to_toml({"name": "other", "seeds": 1, "chunk_size": 4, "fixed": TINY, "grid": {"alpha": [0.1, 0.001]}}))
    mixed = run_cli(other, "--out", out, "--status")
    assert mixed.returncode == 0 and "2 trials: 1 ok, 0 failed, 1 pending" in mixed.stdout
    assert "also holds 1 trials that other does not define" in mixed.stdout
    query = run_cli(path, "--out", out, "--query", "select alpha, status from trials order by alpha", "--csv")
    assert query.returncode == 0 and query.stdout.splitlines() == ['"alpha","status"', '0.01,"ok"', '0.1,"ok"']


def test_exact_rank_baselines_default_to_width_rank_as_in_compare():
    """A sweep of `spectral` without a width runs k = r, the run compare makes:
    same problem, same numbers."""
    from asymsense.jobs.compare import run_compare
    from asymsense.sweep.methods import resolve_method

    params = {"n1": 9, "n2": 7, "rank": 2, "max_iter": 30, "seed": 4}
    compared = {r["method"]: r for r in run_compare(**params, record_every=10)}
    for name in ("spectral", "als"):
        method = resolve_method(name)
        trial = method.resolve_params(dict(params))
        assert trial["width"] == 2
        summary, _ = method(trial)
        assert compared[name]["solver"]["width"] == 2
        assert summary["rel_error"] == compared[name]["rel_error"], name
    assert resolve_method("spectral").resolve_params({**params, "width": 5})["width"] == 5
    assert resolve_method("balanced").resolve_params(dict(params))["width"] == 7


@pytest.mark.slow
def test_cli_missing_config_argument_is_one_line_naming_it():
    result = subprocess.run(["asymsense", "sweep"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == ["error: Missing argument 'CONFIG'. (see 'asymsense sweep --help')"]
