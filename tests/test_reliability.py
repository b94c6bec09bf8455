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


@pytest.mark.slow
def test_sweep_with_a_bad_width_expression_exits_2_and_leaves_nothing(tmp_path):
    for text in ("n1 // 0", "min()", "n1**40", "10**10**10"):
        (tmp_path / "c.toml").write_text(f'name = "x"\n[fixed]\nn1 = 8\nn2 = 6\nrank = 2\nmax_iter = 5\nwidth = "{text}"\n')
        started = time.perf_counter()
        run = cli("sweep", "c.toml", "--out", "out", "--no-progress", cwd=tmp_path, timeout=60)
        assert "width" in one_line_error(run)
        assert time.perf_counter() - started < 30
        assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_sweep_config_cannot_name_subprocess_run(tmp_path):
    (tmp_path / "evil.toml").write_text('name = "evil"\nmethod = "subprocess:run"\n[fixed]\nargs = "touch pwned"\nshell = true\n')
    run = cli("sweep", "evil.toml", "--out", "out", "--no-progress", cwd=tmp_path)
    assert "unknown method 'subprocess:run'" in one_line_error(run)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"\x80\x81\xff binary", b"[1, 2]", b'{"name": "e1", "keys": []}'])
def test_report_on_a_binary_or_foreign_experiment_json_exits_2(tmp_path, content):
    out = tmp_path / "out"
    _stored_experiment(out, content)
    run = cli("report", out)
    assert "experiment.json" in one_line_error(run)


def _stored_e1_without_trials(out):
    """A results folder whose e1 manifest names one trial per sweep and stores none; its config."""
    from asymsense.paper.registry import experiment_config

    config = experiment_config("e1", "quick")
    config["keys"] = {s["label"]: ["k0"] for s in config["sweeps"]}
    _stored_experiment(out, config)
    return config


@pytest.mark.slow
def test_report_on_a_store_without_trials_exits_nonzero(tmp_path):
    out = tmp_path / "out"
    _stored_e1_without_trials(out)
    run = cli("report", out)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: the stored results of e1 could not be analyzed")
    assert "FAIL" in (out / "report.md").read_text()


@pytest.mark.slow
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
    dict(n1=200, n2=150, m=3000, width=150, operator="entries"),
    # the stream regenerates A on every product (power iteration included): a smaller A keeps the probe to seconds
    dict(n1=60, n2=50, m=3000, width=50, operator="gaussian-stream"),
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_run_that_cannot_fit_is_refused_at_once(tmp_path, monkeypatch):
    from asymsense.jobs.solve import run_solve
    from asymsense.spec import SolveConfig

    from asymsense.operators import operator_memory, step_memory
    from asymsense.validation import format_bytes

    # 3100 × 10⁶ float64 entries (with numba also their float32 normals) and the 1000-wide factors
    needed = format_bytes(operator_memory("gaussian", 1000, 1000, 3100) + step_memory("gaussian", 1000, 1000, 3100, 1000))
    assert needed in ("24.9 GB", "37.3 GB")
    monkeypatch.setenv("ASYMSENSE_MEMORY_LIMIT", "16G")
    started = time.perf_counter()
    with pytest.raises(InputError, match=rf"needs about {needed} of memory, more than the 17.2 GB available.*gaussian-stream"):
        run_solve(SolveConfig(n1=1000, n2=1000, rank=3, m=3100, max_iter=1))
    assert time.perf_counter() - started < 1.0
    run = subprocess.run([sys.executable, "-m", "asymsense", "solve", "--n1", "1000", "--n2", "1000", "--rank", "3", "--m", "3100",
                          "--max-iter", "1", "--out", "d"], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**__import__("os").environ, "ASYMSENSE_MEMORY_LIMIT": "16G"})
    line = one_line_error(run)
    assert needed in line and "17.2 GB" in line and "--operator gaussian-stream" in line
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


@pytest.mark.slow
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
@pytest.mark.slow
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
@pytest.mark.slow
def test_complete_bad_options_exit_2(tmp_path, ratings, args, words):
    run = cli("complete", ratings, *args, cwd=tmp_path)
    assert words in one_line_error(run)
    assert not (tmp_path / "o").exists() and not (tmp_path / "summary.json").exists()


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    import signal

    # a terminal's Ctrl-C reaches a process whose SIGINT is not ignored: pytest-xdist's workers ignore it, and an
    # ignored signal is inherited through exec (Python then installs no KeyboardInterrupt handler), so restore it
    proc = subprocess.Popen([sys.executable, "-m", "asymsense", "solve", "--n1", "60", "--n2", "50", "--rank", "3", "--max-iter", "1000000",
                             "--out", "d"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(psutil.Process(proc.pid).cpu_times()[:2]) < 2.5:  # imports take ~1 s of CPU: then it iterates
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    run = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert "interrupted" in one_line_error(run, 130)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- no orphans
SLOW_SWEEP = ('name = "slow"\nseeds = {seeds}\nchunk_size = 1\n[fixed]\nn1 = 60\nn2 = 50\nrank = 3\nmax_iter = 20000\n'
              'record_every = 1000\nstep = 0.01\n')


def assert_workers_die_with_the_sweep(tmp_path, executor, seeds, running, wait_s):
    """Start a long sweep with the `executor` flags; once `running(main)` gives
    (its worker processes, whether two of them run trials), SIGKILL the main
    process: every worker must be gone 5 s later."""
    import os
    import signal

    psutil = pytest.importorskip("psutil")
    (tmp_path / "slow.toml").write_text(SLOW_SWEEP.format(seeds=seeds))
    proc = subprocess.Popen([sys.executable, "-m", "asymsense", "sweep", "slow.toml", "--out", "out", *executor, "--no-progress"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + wait_s
        workers, started = [], False
        while time.monotonic() < deadline and not started:
            time.sleep(0.5)
            workers, started = running(psutil.Process(proc.pid))
        assert started, "the sweep's workers did not start"
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


@pytest.mark.slow
def test_sweep_workers_die_with_the_main_process(tmp_path):
    def running(main):  # two loky workers running a chunk (their watchdog thread is up)
        workers = [c for c in main.children(recursive=True) if "python" in c.name().lower()]
        busy = [w for w in workers if "loky_posix" in " ".join(w.cmdline()) and w.num_threads() >= 3]
        return workers, len(busy) == 2

    assert_workers_die_with_the_sweep(tmp_path, ["--jobs", "2"], 40, running, wait_s=60)


# --------------------------------------------------------------------------- empty paths, empty configs, long lines
OUT_COMMANDS = [("demo",), ("report",), ("reproduce",), ("complete", "r.csv"), ("pilot", "r.csv"), ("predict", "model"),
                ("solve",), ("compare",), ("sweep", "c.toml")]


@pytest.mark.slow
@pytest.mark.parametrize("command", OUT_COMMANDS, ids=lambda c: c[0])
def test_an_empty_out_is_refused_by_every_command_before_any_work(tmp_path, command):
    """`--out ''` (typer would read it as the current directory): exit 2, one
    line, nothing written; in-process, `--out=` and `-o ''` too."""
    from typer.testing import CliRunner

    from asymsense.cli.app import app

    run = cli(*command, "--out", "", cwd=tmp_path, timeout=60)
    assert "--out must name a folder or file, not the current directory" in one_line_error(run)
    for args in ((*command, "--out="), (*command, "--out", " "), (*command, "--out", ".")):
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 2 and "not the current directory" in result.output, (args, result.output)
    assert not list(tmp_path.iterdir())


def test_check_out_path_refuses_empty_and_current_directory():
    from asymsense.atomic import check_out_path

    for bad in (None, "", "  ", ".", "./", Path(""), Path(".")):
        with pytest.raises(InputError, match="not the current directory") as info:
            check_out_path(bad, "out")
        assert info.value.parameter == "out"
    assert check_out_path("a/b") == Path("a/b")


@pytest.mark.slow
@pytest.mark.parametrize("text", ["", "# nothing set\n\n"])
def test_an_empty_solve_config_is_refused_naming_the_file(tmp_path, text):
    from asymsense.spec import load_solve_config

    (tmp_path / "empty.toml").write_text(text)
    assert "empty.toml: the config file sets no parameters" in one_line_error(cli("solve", "--config", "empty.toml", "--out", "d", cwd=tmp_path))
    with pytest.raises(InputError, match="sets no parameters"):
        load_solve_config(tmp_path / "empty.toml", {"n1": 10})
    assert not (tmp_path / "d").exists()


def test_an_over_long_csv_line_is_refused_with_its_line_number(tmp_path, monkeypatch):
    from asymsense.completion import io

    data = tmp_path / "long.csv"
    data.write_text("u,i,r\n1,1,3\n2,2,4\n3," + "x" * 5000 + ",5\n4,4,4\n")
    monkeypatch.setattr(io, "CSV_BLOCK_BYTES", 1024)
    with pytest.raises(InputError, match=r"long.csv: line 4: the line is longer than 1,024 bytes"):
        io.read_table(data)
    assert io.long_line(data, 1024)[0] == 4 and io.long_line(data, 10**6) == (None, 0)


@pytest.mark.slow
def test_an_over_long_csv_line_exits_2_from_the_command_line(tmp_path):
    """A real 17 MB line (over the 16 MiB block): one line naming line 3, no traceback."""
    data = tmp_path / "long.csv"
    with open(data, "w") as fh:
        fh.write("u,i,r\n1,1,3\n2," + "7" * (17 << 20) + ",5\n")
    message = one_line_error(cli("inspect", data, timeout=60))
    assert "long.csv: line 3: the line is longer than 16,777,216 bytes" in message


# --------------------------------------------------------------------------- strict JSON from inspect
def test_inspect_json_writes_non_finite_numbers_as_null(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from asymsense.cli import cmd_inspect
    from asymsense.cli.app import app

    data = tmp_path / "r.csv"
    data.write_text("u,i,r\n1,1,3\n1,2,4\n2,1,5\n")
    real = cmd_inspect.inspect_table
    monkeypatch.setattr(cmd_inspect, "inspect_table", lambda t: {**real(t), "residual_spectral_norm": float("inf"), "values": {"std": float("nan")}})
    result = CliRunner().invoke(app, ["inspect", str(data), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert info["residual_spectral_norm"] is None and info["values"]["std"] is None


# --------------------------------------------------------------------------- sweep store: no leftovers, no probe race
def test_a_sweep_that_cannot_reach_its_scheduler_leaves_nothing(tmp_path, monkeypatch):
    from asymsense.sweep import run as sweep_run

    def unreachable(chunks, **_):
        raise InputError("scheduler='tcp://127.0.0.1:9': cannot connect to a Dask scheduler there")

    monkeypatch.setattr(sweep_run, "dask_results", unreachable)
    config = {"name": "x", "fixed": {"n1": 8, "n2": 6, "rank": 2, "max_iter": 5}}
    with pytest.raises(InputError, match="cannot connect"):
        sweep_run.run_sweep(config, tmp_path / "a" / "out", scheduler="tcp://127.0.0.1:9", progress=False)
    assert not list(tmp_path.iterdir())  # no out/, no .lock, sweep.json or trials/, not even the parent it created
    sweep_run.run_sweep(config, tmp_path / "kept", n_jobs=1, progress=False)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "kept").rglob("*"))
    with pytest.raises(InputError, match="cannot connect"):  # a second seed is pending: the run connects, and fails
        sweep_run.run_sweep({**config, "seeds": 2}, tmp_path / "kept", scheduler="tcp://127.0.0.1:9", progress=False)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "kept").rglob("*")) == before  # a store with results is untouched


def test_two_writers_probing_one_folder_never_fail_on_each_others_probe(tmp_path):
    import threading

    from asymsense.sweep import store

    errors, barrier = [], threading.Barrier(8)

    def probe(i):
        barrier.wait()
        for _ in range(100):
            try:
                store.prepare(tmp_path / "out")
            except Exception as exc:  # noqa: BLE001 - any failure is the bug
                errors.append(exc)

    threads = [threading.Thread(target=probe, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["history", "trials"]


def test_available_memory_reads_psutil(monkeypatch):
    psutil = pytest.importorskip("psutil")
    from asymsense import validation

    monkeypatch.delenv(validation.MEMORY_LIMIT_VARIABLE, raising=False)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("VM", (), {"available": 12345})())
    assert validation.available_memory() == 12345  # a cgroup limit can only lower it


# --------------------------------------------------------------------------- atomic output folders: complete, demo, report, pilot
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*tmp-*")) + sorted(p.name for p in folder.rglob(".*.old-*"))


@pytest.mark.slow
def test_complete_outputs_appear_whole_or_not_at_all(tmp_path, ratings):
    from asymsense.completion.workflow import run_complete
    from asymsense.errors import DivergenceError

    fast = {"max_iter": 30}
    with pytest.raises(DivergenceError):
        run_complete(ratings, tmp_path / "o", fit_options={**fast, "step_size": 1e9}, top=2)
    assert not (tmp_path / "o").exists()
    run_complete(ratings, tmp_path / "o", fit_options=fast, top=2)
    summary = (tmp_path / "o" / "summary.json").read_bytes()
    with pytest.raises(DivergenceError):
        run_complete(ratings, tmp_path / "o", fit_options={**fast, "step_size": 1e9, "seed": 1}, top=2, overwrite=True)
    assert (tmp_path / "o" / "summary.json").read_bytes() == summary  # the failed rerun left the old outputs whole
    run_complete(ratings, tmp_path / "o", fit_options={**fast, "seed": 1}, top=2, overwrite=True)
    assert (tmp_path / "o" / "summary.json").read_bytes() != summary
    assert not _leftovers(tmp_path) and sorted(p.name for p in tmp_path.iterdir()) == ["o", "r.csv"]
    started = time.perf_counter()
    assert "another run's outputs; choose another --out or give --overwrite" in one_line_error(cli("complete", ratings, "--out", tmp_path / "o"))
    assert time.perf_counter() - started < 30


@pytest.mark.slow
def test_complete_interrupted_while_writing_leaves_nothing(tmp_path, ratings, monkeypatch):
    from asymsense.completion import workflow

    real = workflow.write_text

    def interrupted(path, text):
        if Path(path).name == "report.html":  # predictions, factors, model and summary are already written
            raise KeyboardInterrupt
        return real(path, text)

    monkeypatch.setattr(workflow, "write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        workflow.run_complete(ratings, tmp_path / "o", fit_options={"max_iter": 20})
    assert not (tmp_path / "o").exists() and not _leftovers(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "summary.json").write_text("{}")
    from asymsense.completion.cv import run_cv, run_time_split

    for run in (lambda: workflow.run_complete(ratings, tmp_path / "busy"), lambda: run_cv(ratings, tmp_path / "busy", 2),
                lambda: run_time_split(ratings, tmp_path / "busy")):
        with pytest.raises(InputError, match="holds another run's outputs; choose another out or give overwrite=True"):
            run()


@pytest.mark.slow
def test_demo_outputs_appear_whole_or_not_at_all(tmp_path, monkeypatch):
    from asymsense.jobs import demo

    def one_figure(out, *args):  # the figures themselves are test_cli's; here only where they land
        (out / "fig.png").write_bytes(b"png")
        return [out / "fig.png"]

    monkeypatch.setattr(demo, "draw_figures", one_figure)
    outcome = demo.run_demo(tmp_path / "d", max_iter=4, record_every=2)
    assert all(p.parent == tmp_path / "d" and p.exists() for p in outcome.files)
    before = {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()}
    started = time.perf_counter()
    with pytest.raises(InputError, match="holds another run's outputs"):
        demo.run_demo(tmp_path / "d", max_iter=4)
    assert time.perf_counter() - started < 1.0  # refused before any work

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(demo, "draw_figures", broken)
    with pytest.raises(RuntimeError):
        demo.run_demo(tmp_path / "d", max_iter=4, seed=1, overwrite=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()} == before
    with pytest.raises(RuntimeError):
        demo.run_demo(tmp_path / "new", max_iter=4)
    assert not (tmp_path / "new").exists() and not _leftovers(tmp_path)
    assert "another run" in one_line_error(cli("demo", "--out", tmp_path / "d", "--max-iter", "4"))


def test_report_outputs_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    from asymsense.paper import report
    from asymsense.paper.registry import experiment_config

    out = tmp_path / "out"
    config = experiment_config("e1", "quick")
    config["keys"] = {s["label"]: ["k0"] for s in config["sweeps"]}
    _stored_experiment(out, config)
    report.build_report(out)
    assert "FAIL" in (out / "report.md").read_text() and (out / "claims.json").exists()
    (out / "report.md").write_text("previous report")
    (out / "figures" / "previous.png").write_bytes(b"png")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "render_html", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.build_report(out)
    assert (out / "report.md").read_text() == "previous report" and (out / "figures" / "previous.png").exists()
    assert not _leftovers(out)
    monkeypatch.undo()
    report.build_report(out)
    assert "FAIL" in (out / "report.md").read_text() and not (out / "figures" / "previous.png").exists() and not _leftovers(out)


@pytest.mark.slow
def test_pilot_refuses_another_runs_folder_before_any_work(tmp_path, ratings):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "pilot.json").write_text("{}")
    started = time.perf_counter()
    assert "another run" in one_line_error(cli("pilot", ratings, "--out", tmp_path / "p"))
    assert time.perf_counter() - started < 30 and (tmp_path / "p" / "pilot.json").read_text() == "{}"


@pytest.mark.slow
def test_predict_save_model_is_written_whole(tmp_path, ratings, monkeypatch):
    from asymsense.completion import saved
    from asymsense.completion.workflow import run_complete
    from asymsense.jobs.predict import run_predict

    run_complete(ratings, tmp_path / "fit", fit_options={"max_iter": 20}, top=0)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n0,1\n1,2\n")

    def broken(self, folder):
        (Path(folder) / "rows.parquet").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(saved.SavedModel, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        run_predict(tmp_path / "fit", tmp_path / "p.csv", pairs=pairs, save_model=tmp_path / "m2")
    assert not (tmp_path / "m2").exists() and not _leftovers(tmp_path)
    with pytest.raises(InputError, match="save_model must name"):
        run_predict(tmp_path / "fit", tmp_path / "p.csv", pairs=pairs, save_model="")


# --------------------------------------------------------------------------- honest test RMSE: unknown ids apart
def _held_out(ratings: Path, n: int) -> list[str]:
    """n (user, item, rating) lines whose pair is not in `ratings` (both ids are)."""
    seen = {tuple(line.split(",")[:2]) for line in ratings.read_text().splitlines()[1:]}
    free = [(u, i) for u in range(30) for i in range(20) if (str(u), str(i)) not in seen]
    return [f"{u},{i},{(u + i) % 5 + 1}" for u, i in free[:n]]


def test_test_entries_with_unknown_ids_are_counted_and_scored_apart(tmp_path, ratings, monkeypatch):
    from asymsense.completion import workflow
    from asymsense.completion.workflow import run_complete

    monkeypatch.setattr(workflow, "render", lambda *args: "")  # the report's figures are test_completion_report's
    fast = {"max_iter": 30, "seed": 0}
    (tmp_path / "alien.csv").write_text("user,item,rating\n" + "".join(f"{100 + u},{500 + u},3\n" for u in range(10)))
    s = run_complete(ratings, tmp_path / "a", test=tmp_path / "alien.csv", fit_options=fast, top=0)
    assert s["test_rmse"] is None and s["test_unknown_ids"] == 10 == s["test_m"] and np.isfinite(s["test_rmse_unknown_ids"])
    (warning,) = [w for w in s.warnings if w.code == "test_set"]
    assert "10 of 10 test entries have a row or column id the fit never saw" in warning.message and "no test RMSE" in warning.message

    known = _held_out(ratings, 40)
    (tmp_path / "known.csv").write_text("user,item,rating\n" + "\n".join(known) + "\n")
    (tmp_path / "mixed.csv").write_text("user,item,rating\n" + "\n".join(known) + "\n999,1,5\n")  # 1 of 41 unknown: under 5%
    only = run_complete(ratings, tmp_path / "k", test=tmp_path / "known.csv", fit_options=fast, top=0)
    mixed = run_complete(ratings, tmp_path / "m", test=tmp_path / "mixed.csv", fit_options=fast, top=0)
    assert mixed["test_rmse"] == pytest.approx(only["test_rmse"], rel=1e-12)  # the RMSE is of the known pairs only
    assert mixed["test_unknown_ids"] == 1 and mixed["test_m"] == 41 and np.isfinite(mixed["test_rmse_unknown_ids"])
    assert not [w for w in mixed.warnings if w.code == "test_set"]  # 1 of 41 unknown and no overlap: no warning
    (tmp_path / "many.csv").write_text("user,item,rating\n" + "\n".join(known[:10]) + "\n999,1,5\n")  # 1 of 11: over 5%
    many = run_complete(ratings, tmp_path / "n", test=tmp_path / "many.csv", fit_options=fast, top=0)
    assert [w.values["unknown_ids"] for w in many.warnings if w.code == "test_set"] == [1]


@pytest.mark.slow
def test_complete_with_no_known_test_id_prints_no_test_rmse_and_warns(tmp_path, ratings):
    (tmp_path / "alien.csv").write_text("user,item,rating\n" + "".join(f"{100 + u},{500 + u},3\n" for u in range(10)))
    run = cli("complete", ratings, "--out", tmp_path / "o", "--test", tmp_path / "alien.csv", "--max-iter", "30", "--top", "0")
    assert run.returncode == 0, run.stderr
    assert "no test RMSE (10 with ids not in the data" in run.stdout and "test RMSE 0" not in run.stdout
    assert "warning: 10 of 10 test entries have a row or column id the fit never saw" in run.stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["test_rmse"] is None


# --------------------------------------------------------------------------- truncated Parquet
def _truncated_parquet(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user": list(range(40)), "item": [i % 7 for i in range(40)], "rating": [1.0 + i % 5 for i in range(40)]}), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.slow
def test_a_truncated_parquet_input_exits_2_naming_the_file(tmp_path, ratings):
    bad = _truncated_parquet(tmp_path / "cut.parquet")
    for args in (("complete", bad, "--out", tmp_path / "o"), ("complete", ratings, "--out", tmp_path / "o", "--test", bad)):
        message = one_line_error(cli(*args))
        assert "cut.parquet: not a readable Parquet file" in message
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_report_on_a_truncated_result_file_exits_2_naming_it(tmp_path):
    out = tmp_path / "out"
    config = _stored_e1_without_trials(out)
    trials = out / "data" / "e1" / config["sweeps"][0]["label"] / "trials"
    trials.mkdir(parents=True)
    _truncated_parquet(trials / "c1.parquet")
    run = cli("report", out)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the stored results of e1 could not be analyzed") and "c1.parquet" in last


@pytest.mark.slow  # starts a Dask LocalCluster (~10 s on 2 cores): the only way to see its workers outlive a killed sweep or not
def test_dask_local_workers_die_with_the_main_process(tmp_path):
    pytest.importorskip("distributed")

    def running(main):  # both Dask workers started and running trials
        workers = [c for c in main.children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]
        return workers, len(workers) == 2 and all(w.cpu_times().user > 1.0 for w in workers)

    assert_workers_die_with_the_sweep(tmp_path, ["--dask-local", "2"], 20, running, wait_s=90)
