"""Issue 10: every bad input ends in InputError / exit 2 with one line, no code
runs from data, interrupted or failed commands leave no partial output."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from asymsense.errors import InputError


def cli(*args, cwd=None, timeout=120, input=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asymsense", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, input=input)


def one_line_error(run: subprocess.CompletedProcess, code: int = 2) -> str:
    """Assert exit `code` with exactly one `error:` line on stderr and no traceback; return the line."""
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == code, (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr, run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    return lines[0]


# --------------------------------------------------------------------------- security: no code from data
@pytest.mark.parametrize("text, message", [
    ("n1 // 0", "division by zero"),
    ("min()", "one or more"),
    ("n1**40", "exponent"),
    ("10**10**10", "exponent"),
    ("(10**4)**4", "range"),
    ("__import__('os').system('touch pwned')", "only min and max"),
    ("(n1).real", "may only use"),
    ("n1" + "+1" * 200, "longer than"),
    ("n1 +", "cannot parse"),
])
def test_width_expressions_are_evaluated_by_a_bounded_evaluator(text, message):
    from asymsense.spec import integer_expression

    started = time.perf_counter()
    with pytest.raises(InputError, match=message) as info:
        integer_expression("width", text, {"n1": 40, "n2": 30, "rank": 3, "r": 3})
    assert time.perf_counter() - started < 0.5
    assert info.value.parameter == "width"


def test_width_expressions_of_the_experiments_still_evaluate():
    from asymsense.spec import integer_expression

    env = {"n1": 40, "n2": 30, "rank": 3, "r": 3}
    values = [integer_expression("width", t, env) for t in ("rank", "2*rank", "n2//2", "n2", "2*max(n1, n2)", "min(n1, n2)", "n1/2", "r**2 + 1")]
    assert values == [3, 6, 15, 30, 80, 30, 20, 10]


def test_sweep_with_a_bad_width_expression_exits_2_and_leaves_nothing(tmp_path):
    for text in ("n1 // 0", "min()", "n1**40", "10**10**10"):
        (tmp_path / "c.toml").write_text(f'name = "x"\n[fixed]\nn1 = 8\nn2 = 6\nrank = 2\nmax_iter = 5\nwidth = "{text}"\n')
        started = time.perf_counter()
        run = cli("sweep", "c.toml", "--out", "out", "--no-progress", cwd=tmp_path, timeout=60)
        assert "width" in one_line_error(run)
        assert time.perf_counter() - started < 30
        assert not (tmp_path / "out").exists()


def test_sweep_config_cannot_name_subprocess_run(tmp_path):
    (tmp_path / "evil.toml").write_text('name = "evil"\nmethod = "subprocess:run"\n[fixed]\nargs = "touch pwned"\nshell = true\n')
    run = cli("sweep", "evil.toml", "--out", "out", "--no-progress", cwd=tmp_path)
    assert "unknown method 'subprocess:run'" in one_line_error(run)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def test_sweep_query_has_no_file_access(tmp_path):
    from asymsense.sweep import store

    secret = tmp_path / "secret.csv"
    secret.write_text("a\n42\n")
    target = tmp_path / "written.csv"
    (tmp_path / "none").mkdir()
    assert store.query(tmp_path / "none", "SELECT count(*) AS n FROM trials").column("n").to_pylist() == [0]
    for sql in (f"SELECT * FROM read_csv('{secret}')", f"SELECT * FROM '{secret}'",
                f"COPY (SELECT 1) TO '{target}'", f"ATTACH '{tmp_path / 'x.db'}'",
                "SET enable_external_access = true", "INSTALL httpfs",
                f"SELECT 1; COPY (SELECT 1) TO '{target}'"):
        with pytest.raises(InputError):
            store.query(tmp_path / "none", sql)
    assert not target.exists() and not (tmp_path / "x.db").exists()
    (tmp_path / "c.toml").write_text('name = "x"\n[fixed]\nn1 = 8\nn2 = 6\nrank = 2\n')
    run = cli("sweep", "c.toml", "--out", "none", "--query", f"SELECT * FROM read_csv('{secret}')", cwd=tmp_path)
    assert "disabled" in one_line_error(run) and "42" not in run.stdout


def _stored_experiment(out: Path, config) -> Path:
    root = out / "data" / "e1"
    root.mkdir(parents=True)
    path = root / "experiment.json"
    path.write_bytes(config if isinstance(config, bytes) else json.dumps(config).encode())
    return path


def test_report_refuses_a_stored_name_outside_its_folder(tmp_path):
    out = tmp_path / "run" / "out"
    _stored_experiment(out, {"name": "../../X", "sweeps": [], "keys": {}, "analysis": {}})
    run = cli("report", out)
    assert "e1" in one_line_error(run)
    assert not list(tmp_path.rglob("X*")) and not (out / "report.md").exists()


def test_single_component_refuses_paths():
    from asymsense.atomic import single_component

    assert single_component("e1_error.png") == "e1_error.png"
    for bad in ("../X", "..", ".", "", "/etc/passwd", "a/b", "a\\b", "a\0b", None, 3):
        with pytest.raises(InputError):
            single_component(bad)


@pytest.mark.parametrize("content", [b"\x80\x81\xff binary", b"[1, 2]", b'{"name": "e1", "keys": []}'])
def test_report_on_a_binary_or_foreign_experiment_json_exits_2(tmp_path, content):
    out = tmp_path / "out"
    _stored_experiment(out, content)
    run = cli("report", out)
    assert "experiment.json" in one_line_error(run)


def test_report_on_a_store_without_trials_exits_nonzero(tmp_path):
    from asymsense.paper.registry import experiment_config

    out = tmp_path / "out"
    config = experiment_config("e1", "quick")
    config["keys"] = {s["label"]: ["k0"] for s in config["sweeps"]}
    _stored_experiment(out, config)
    run = cli("report", out)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: the stored results of e1 could not be analyzed")
    assert "FAIL" in (out / "report.md").read_text()


@pytest.mark.parametrize("content", [b"\x80\x81\xff", b"[1, 2]"])
def test_reproduce_refuses_a_binary_or_list_manifest(tmp_path, content):
    from asymsense.paper.registry import experiment_config

    out = tmp_path / "out"
    config = experiment_config("e1", "quick")
    config["keys"] = {s["label"]: [] for s in config["sweeps"]}
    _stored_experiment(out, config)
    (out / "reproduce.json").write_bytes(content)
    run = cli("report", out)
    assert "reproduce.json" in one_line_error(run)


# --------------------------------------------------------------------------- memory preflight
MEMORY_CASES = [
    dict(n1=60, n2=50, m=3000), dict(n1=60, n2=50, m=3000, dtype="float32"), dict(n1=60, n2=50, m=3000, validation=0.2),
    dict(n1=200, n2=150, m=3000, width=150, operator="rank-one"), dict(n1=200, n2=150, m=3000, width=150, operator="structured"),
    dict(n1=200, n2=150, m=3000, width=150, operator="entries"), dict(n1=200, n2=150, m=3000, width=150, operator="gaussian-stream"),
]


MEMORY_PROBE = """
import json, sys, tracemalloc
from asymsense.jobs.solve import memory_estimate, run_solve
from asymsense.spec import SolveConfig
for kind in ("gaussian", "rank-one", "structured", "entries", "gaussian-stream"):  # imports and caches outside the measurement
    run_solve(SolveConfig(n1=10, n2=8, rank=2, m=60, max_iter=2, operator=kind))
out = []
for case in json.loads(sys.argv[1]):
    config = SolveConfig(rank=3, max_iter=3, record_every=1, **case)
    tracemalloc.start()
    try:
        run_solve(config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out.append([case, peak, memory_estimate(config.resolved())])
print(json.dumps(out))
"""


def test_memory_estimate_is_within_30_percent_of_the_measured_peak():
    """Measured in a fresh process: threads left running by other tests
    (a Dask client, loky workers' helpers) would allocate inside the window."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, json.dumps(MEMORY_CASES)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for case, peak, estimate in json.loads(proc.stdout):
        assert 0.7 * peak <= estimate <= 1.3 * peak, (case, peak, estimate)


def test_a_run_that_cannot_fit_is_refused_at_once(tmp_path, monkeypatch):
    from asymsense.jobs.solve import run_solve
    from asymsense.spec import SolveConfig

    monkeypatch.setenv("ASYMSENSE_MEMORY_LIMIT", "16G")
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"needs about 24.9 GB of memory, more than the 17.2 GB available.*gaussian-stream"):
        run_solve(SolveConfig(n1=1000, n2=1000, rank=3, m=3100, max_iter=1))
    assert time.perf_counter() - started < 1.0
    run = subprocess.run([sys.executable, "-m", "asymsense", "solve", "--n1", "1000", "--n2", "1000", "--rank", "3", "--m", "3100",
                          "--max-iter", "1", "--out", "d"], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**__import__("os").environ, "ASYMSENSE_MEMORY_LIMIT": "16G"})
    line = one_line_error(run)
    assert "24.9 GB" in line and "17.2 GB" in line and "--operator gaussian-stream" in line
    assert not (tmp_path / "d").exists()


def test_python_api_refuses_huge_sizes_with_input_error(monkeypatch):
    import asymsense

    monkeypatch.setenv("ASYMSENSE_MEMORY_LIMIT", "4G")
    with pytest.raises(InputError, match="operator.*needs about"):
        asymsense.make_operator("gaussian", 10**4, 10**4, 10**4)
    op = asymsense.make_operator("structured", 30, 20, 300, seed=0)
    y = op.forward(asymsense.planted(30, 20, 2, seed=0).X)
    with pytest.raises(InputError, match="width") as info:
        asymsense.fgd(op, y, width=10**8, init_scale=1e-3, max_iter=2)
    assert info.value.parameter == "width"


def test_complete_with_a_huge_width_exits_2_at_once(tmp_path):
    data = tmp_path / "r.csv"
    data.write_text("user,item,rating\n" + "".join(f"{u},{i},{(u * i) % 5 + 1}\n" for u in range(20) for i in range(10)))
    run = cli("complete", data, "--out", tmp_path / "o", "--width", "100000000", timeout=60)
    assert "width" in one_line_error(run) and "memory" in run.stderr
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- tracebacks → exit 2
@pytest.fixture
def ratings(tmp_path) -> Path:
    data = tmp_path / "r.csv"
    rng = np.random.default_rng(0)
    data.write_text("user,item,rating\n" + "".join(f"{u},{i},{rng.integers(1, 6)}\n" for u in range(30) for i in rng.choice(20, 10, replace=False)))
    return data


@pytest.mark.parametrize("content, line, offset", [
    (b"user,item,rating\n1,2,3.0\n1,3\xff,4.0\n2,2,5\n", 3, 28),
    (b"us\xe9r,item,rating\n1,2,3.0\n2,2,5\n", 1, 2),
])
def test_non_utf8_csv_names_file_line_and_byte_offset(tmp_path, ratings, content, line, offset):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    for args in (("inspect", bad), ("complete", bad, "--out", tmp_path / "o"), ("complete", ratings, "--out", tmp_path / "o", "--pairs", bad),
                 ("complete", ratings, "--out", tmp_path / "o", "--test", bad)):
        message = one_line_error(cli(*args))
        assert f"bad.csv: line {line}: byte" in message and f"offset {offset}" in message and "--encoding" in message
    assert not (tmp_path / "o").exists()
    run = cli("inspect", bad, "--encoding", "latin-1", "--json")
    assert run.returncode == 0, run.stderr
    assert one_line_error(cli("inspect", bad, "--encoding", "no-such-codec")).count("encoding") >= 1


def test_utf8_check_across_chunk_boundaries(tmp_path):
    from asymsense.completion.io import check_utf8

    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("a,b,c\né,ü,1\n日本,x,2\n", encoding="utf-8")
    bad.write_bytes("a,b,c\né,ü,1\n日本,x,2".encode() + b"\xe6\x97")
    for size in (1, 2, 3, 5, 1 << 20):
        check_utf8(good, "good.csv", size)
        with pytest.raises(InputError, match="line 3: byte 0xe6 at offset 24"):
            check_utf8(bad, "bad.csv", size)


@pytest.mark.parametrize("args, words", [
    (("--out", "o", "--validation", "nan"), "validation"),
    (("--out", "o", "--validation", "0"), "validation"),
    (("--out", ""), "--out"),
])
def test_complete_bad_options_exit_2(tmp_path, ratings, args, words):
    run = cli("complete", ratings, *args, cwd=tmp_path)
    assert words in one_line_error(run)
    assert not (tmp_path / "o").exists() and not (tmp_path / "summary.json").exists()


def test_huge_ratings_are_refused_before_iterating(tmp_path, ratings):
    lines = ratings.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",1e308"
    ratings.write_text("\n".join(lines) + "\n")
    message = one_line_error(cli("complete", ratings, "--out", tmp_path / "o"))
    assert "line 3" in message and "too large" in message
    run = cli("inspect", ratings, "--json")
    assert run.returncode == 2 or (run.returncode == 0 and json.loads(run.stdout, parse_constant=lambda c: pytest.fail(c)))


def test_auto_step_that_comes_out_non_finite_is_input_error():
    from asymsense.solvers.stepsize import resolve_step

    for curvature in (0.0, float("inf"), float("nan")):
        with pytest.raises(InputError, match="step_size='auto' comes out"):
            resolve_step("auto", curvature=lambda: curvature)


def test_inspect_json_is_strict_json(tmp_path):
    data = tmp_path / "one.csv"
    data.write_text("u,i,r\n1,1,3\n1,2,3\n")  # one row: std and spectral quantities may be undefined
    run = cli("inspect", data, "--json")
    assert run.returncode == 0, run.stderr
    json.loads(run.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_fgd_refuses_non_operators_and_nan_truth():
    import asymsense

    problem = asymsense.planted(10, 8, 2, seed=0)
    op = asymsense.make_operator("gaussian", 10, 8, 100, seed=0)
    y = op.forward(problem.X)
    for bad in (None, np.zeros((100, 80)), "gaussian"):
        with pytest.raises(InputError, match="operator must be a measurement operator") as info:
            asymsense.fgd(bad, y, width=3, init_scale=1e-3, max_iter=2)
        assert info.value.parameter == "operator"
    X = problem.X.copy()
    X[0, 0] = np.nan
    with pytest.raises(InputError, match="truth contains 1 non-finite"):
        asymsense.fgd(op, y, width=3, init_scale=1e-3, max_iter=2, truth=X)


def test_completer_refuses_nan_ids_and_validation_zero():
    pytest.importorskip("sklearn")
    from asymsense.completion import LowRankCompleter

    rng = np.random.default_rng(0)
    X = np.array([[u, i] for u in range(20) for i in range(10) if rng.random() < 0.6], dtype=float)
    y = rng.integers(1, 6, len(X)).astype(float)
    X_nan = X.copy()
    X_nan[3, 0] = np.nan
    with pytest.raises(InputError, match="not a valid id"):
        LowRankCompleter(max_iter=5).fit(X_nan, y)
    for validation in (0, 0.0, float("nan"), 1.0):
        with pytest.raises(InputError, match="validation"):
            LowRankCompleter(max_iter=5, validation=validation).fit(X, y)
    with pytest.raises(InputError, match="too large"):
        LowRankCompleter(max_iter=5).fit(X, y * 1e300)


# --------------------------------------------------------------------------- atomic outputs, interrupts
SMALL_SOLVE = ("solve", "--n1", "10", "--n2", "8", "--rank", "2", "--max-iter", "5")


def test_solve_outputs_appear_whole_or_not_at_all(tmp_path):
    one_line_error(cli(*SMALL_SOLVE, "--step", "50", "--out", "d", cwd=tmp_path), 3)
    assert not (tmp_path / "d").exists() and not list(tmp_path.iterdir())
    assert cli(*SMALL_SOLVE, "--out", "d", cwd=tmp_path).returncode == 0
    first = (tmp_path / "d" / "summary.json").read_text()
    assert "another run" in one_line_error(cli(*SMALL_SOLVE, "--seed", "3", "--out", "d", cwd=tmp_path))
    assert (tmp_path / "d" / "summary.json").read_text() == first
    assert cli(*SMALL_SOLVE, "--seed", "3", "--out", "d", "--overwrite", cwd=tmp_path).returncode == 0
    assert (tmp_path / "d" / "summary.json").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"] and sorted(p.name for p in (tmp_path / "d").iterdir()) == ["history.parquet", "summary.json"]
    assert "--out" in one_line_error(cli(*SMALL_SOLVE, "--out", "", cwd=tmp_path))


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "asymsense", "solve", "--n1", "60", "--n2", "50", "--rank", "3", "--max-iter", "1000000",
                             "--out", "d"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    run = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert "interrupted" in one_line_error(run, 130)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- no orphans
def test_sweep_workers_die_with_the_main_process(tmp_path):
    import os
    import signal

    psutil = pytest.importorskip("psutil")
    (tmp_path / "slow.toml").write_text('name = "slow"\nseeds = 40\nchunk_size = 1\n[fixed]\nn1 = 60\nn2 = 50\nrank = 3\nmax_iter = 20000\n'
                                        'record_every = 1000\nstep = 0.01\n')
    proc = subprocess.Popen([sys.executable, "-m", "asymsense", "sweep", "slow.toml", "--out", "out", "--jobs", "2", "--no-progress"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers = []
        busy = []
        while time.monotonic() < deadline and len(busy) < 2:  # until two workers run a chunk (the watchdog thread is up)
            time.sleep(0.5)
            workers = [c for c in psutil.Process(proc.pid).children(recursive=True) if "python" in c.name().lower()]
            busy = [w for w in workers if "loky_posix" in " ".join(w.cmdline()) and w.num_threads() >= 3]
        assert len(busy) == 2, "the sweep's workers did not start"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, [p.pid for p in alive]
    finally:
        for child in psutil.Process().children(recursive=True):
            if child.pid != os.getpid():
                try:
                    child.kill()
                except psutil.Error:
                    pass
