"""Issue 9: the examples and statements of the docs that failed as written,
and the command line's conventions (one test per listed failure)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import asymsense
from asymsense.completion.io import read_table

KINDS = ["gaussian", "gaussian-stream", "rank-one", "structured", "entries"]


def cli(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "asymsense", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


# ----------------------------------------------------------------- measure on every backend and dtype
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch", "array-api-strict"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_measure_on_every_backend_and_dtype(backend, dtype, kind):
    if backend == "torch":
        pytest.importorskip("torch")
    if backend == "array-api-strict":
        pytest.importorskip("array_api_strict")
    truth = asymsense.planted(7, 5, 2, seed=0)
    reference = asymsense.measure(truth, asymsense.make_operator(kind, 7, 5, 24, seed=1, dtype=dtype))
    op = asymsense.make_operator(kind, 7, 5, 24, seed=1, dtype=dtype, backend=backend)
    y = asymsense.measure(truth, op, noise=0.0)
    assert isinstance(y, np.ndarray) and y.dtype == np.dtype(dtype) and y.shape == (24,)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y, reference, rtol=tol, atol=tol * np.abs(reference).max())


# ----------------------------------------------------------------- delimiters
@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed_from_the_header(tmp_path, sep):
    path = tmp_path / "t.csv"
    path.write_text(sep.join(["user", "item", "rating"]) + "\n" + "\n".join(sep.join(r) for r in [("a", "x", "1.5"), ("b", "y", "2"), ("a", "y", "3")]) + "\n")
    table = read_table(path)
    assert table.m == 3 and table.shape == (2, 2)
    assert sorted(table.values.tolist()) == [1.5, 2.0, 3.0]


# ----------------------------------------------------------------- progress bars only on a terminal
SWEEP = """name = "bars"
seeds = 1
[fixed]
n1 = 8
n2 = 6
rank = 2
m = 60
max_iter = 40
record_every = 20
step = 0.2
"""

BAR = re.compile(r"━|ETA|trials ·")


@pytest.mark.slow
def test_sweep_draws_no_progress_bar_into_redirected_stderr_unless_asked(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(SWEEP)
    quiet = cli("sweep", config, "--out", tmp_path / "a", "--jobs", "1")
    assert quiet.returncode == 0, quiet.stderr
    assert not BAR.search(quiet.stderr), quiet.stderr
    assert "1 done" in quiet.stderr
    asked = cli("sweep", config, "--out", tmp_path / "b", "--jobs", "1", "--progress")
    assert asked.returncode == 0, asked.stderr
    assert BAR.search(asked.stderr), asked.stderr


def test_reproduce_progress_is_off_on_a_redirected_stderr_by_default():
    from typer.testing import CliRunner

    from asymsense.cli import app

    result = CliRunner().invoke(app, ["reproduce", "--help"], env={"COLUMNS": "200"})
    assert "--progress" in result.output and "--no-progress" in result.output
    assert "only when stderr is a terminal" in " ".join(result.output.split())


# ----------------------------------------------------------------- a TCP port that is no Dask scheduler
@pytest.mark.slow
def test_a_port_that_is_not_a_dask_scheduler_is_exit_2_with_one_line(tmp_path):
    pytest.importorskip("distributed")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]

    def answer():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6 this is not a dask scheduler\r\n" * 4)
            except OSError:
                pass
            threading.Timer(5, conn.close).start()

    threading.Thread(target=answer, daemon=True).start()
    config = tmp_path / "s.toml"
    config.write_text(SWEEP)
    try:
        result = cli("sweep", config, "--out", tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{port}", timeout=120)
    finally:
        server.close()
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --scheduler tcp://127.0.0.1:{port}: cannot connect"), result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------- a divergence hint that works
@pytest.mark.slow
def test_divergence_hint_suggests_a_step_that_does_not_diverge():
    failed = cli("solve", "--step", "50", "--max-iter", "200")
    assert failed.returncode == 3
    line = failed.stderr.strip()
    match = re.search(r"e\.g\. --step ([0-9.e+-]+)", line)
    assert match, line
    suggested = float(match.group(1))
    assert suggested < 50 / 4  # the auto rule's value, not a quarter of the failed step
    assert "step_size" not in line  # the command line's terms
    ok = cli("solve", "--step", match.group(1), "--max-iter", "200", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["rel_error"] < 0.1


def test_divergence_hint_in_python_names_the_parameter():
    from asymsense.errors import DivergenceError
    from asymsense.jobs.solve import run_solve
    from asymsense.spec import load_solve_config

    with pytest.raises(DivergenceError, match=r"e\.g\. step_size=0\.\d+ \(the auto rule's value") as info:
        run_solve(load_solve_config(None, {"step": 50, "max_iter": 50}))
    assert "--step" not in str(info.value)


def test_fgd_divergence_hint_suggests_a_step_that_converges():
    """The library's own hint (fgd, not only the solve job): the suggested step_size itself converges."""
    from asymsense import fgd, make_operator, measure, planted
    from asymsense.errors import DivergenceError

    truth = planted(30, 20, 2, seed=0)
    op = make_operator("gaussian", 30, 20, 400, seed=1)
    y = measure(truth, op)
    with pytest.raises(DivergenceError) as info:
        fgd(op, y, width=20, init_scale=1e-3, step_size=50.0, max_iter=100)
    match = re.search(r"e\.g\. step_size=([0-9.e+-]+) \(the auto rule's value", str(info.value))
    assert match, str(info.value)
    result = fgd(op, y, width=20, init_scale=1e-3, step_size=float(match.group(1)), max_iter=300, truth=truth)
    assert result.history["rel_error"][-1] < 0.1


# ----------------------------------------------------------------- complete: a fixed default seed
@pytest.mark.slow
def test_complete_without_seed_uses_the_documented_default_and_records_it(tmp_path):
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(rng.random((30, 20)) < 0.6)
    values = (rng.standard_normal((30, 2)) @ rng.standard_normal((2, 20)))[rows, cols] + 3
    data = tmp_path / "t.csv"
    data.write_text("row,col,value\n" + "\n".join(f"r{r},c{c},{v:.6f}" for r, c, v in zip(rows, cols, values)) + "\n")
    first = cli("complete", data, "--out", tmp_path / "a", "--json")
    second = cli("complete", data, "--out", tmp_path / "b", "--json")
    seeded = cli("complete", data, "--out", tmp_path / "c", "--json", "--seed", "0")
    assert first.returncode == second.returncode == seeded.returncode == 0, first.stderr + second.stderr
    a, b, c = (json.loads(r.stdout) for r in (first, second, seeded))
    text = json.dumps(a)
    assert '"seed": 0' in text
    for key in ("validation_rmse", "val_rmse", "test_rmse", "iterations"):
        if key in a:
            assert a[key] == b[key] == c[key]


# ----------------------------------------------------------------- one command line
@pytest.mark.slow
def test_version():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"asymsense {asymsense.__version__}"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["solve", "compare", "sweep", "reproduce", "demo", "complete", "report"])
def test_boolean_flags_show_no_type(command):
    result = subprocess.run([sys.executable, "-m", "asymsense", command, "--help"], capture_output=True, text=True, env={**__import__("os").environ, "COLUMNS": "200"})
    assert result.returncode == 0
    assert "<bool>" not in result.stdout and "BOOLEAN" not in result.stdout


@pytest.mark.slow
def test_compare_takes_solves_flags_defaults_config_and_out(tmp_path):
    from asymsense.cli.cmd_compare import RECORDS_FILE
    from asymsense.spec import DEFAULTS

    config = tmp_path / "p.toml"
    config.write_text("n1 = 10\nn2 = 8\nrank = 2\nmax_iter = 30\n")
    result = cli("compare", "--config", config, "--seed", "2", "--out", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["method"] for r in records][0] == "fgd"
    stored = json.loads((tmp_path / "out" / RECORDS_FILE).read_text())
    assert stored == records
    cfg = records[0]["config"]
    assert (cfg["n1"], cfg["n2"], cfg["rank"], cfg["max_iter"], cfg["seed"]) == (10, 8, 2, 30, 2)
    assert cfg["alpha"] == DEFAULTS["alpha"] and cfg["record_every"] == DEFAULTS["record_every"]
    from asymsense.jobs.compare import run_compare

    default = run_compare(n1=6, n2=5, rank=1, max_iter=None, seed=None)  # nothing given: solve's defaults
    assert default[0]["config"]["max_iter"] == DEFAULTS["max_iter"] and default[0]["config"]["seed"] == DEFAULTS["seed"]


@pytest.mark.slow
def test_threads_and_jobs_are_explained_in_one_sentence():
    from asymsense.cli.options import JOBS_HELP, THREADS_HELP

    for text in (THREADS_HELP, JOBS_HELP):
        assert text.count(". ") == 0 and text.endswith(".")
    help_text = " ".join(cli("solve", "--help").stdout.split())
    assert "BLAS threads inside each process" in help_text


def test_every_command_follows_one_command_line():
    """Literally the bullets of issue 9 §4, over every command: --out on each
    command that writes; --threads and --jobs explained by the one sentence of
    cli.options wherever they appear; a boolean that defaults to on can be
    turned off (--x/--no-x)."""
    import click
    import typer

    from asymsense.cli import app
    from asymsense.cli.options import JOBS_HELP, THREADS_HELP

    commands = typer.main.get_command(app).commands
    writers = {"demo", "solve", "compare", "sweep", "reproduce", "report", "complete", "predict", "pilot"}
    assert set(commands) == writers | {"inspect"}, sorted(commands)
    for name, command in commands.items():
        params = {opt: p for p in command.params for opt in [*p.opts, *p.secondary_opts]}
        if name in writers:
            assert "--out" in params, name
        if "--threads" in params:
            assert THREADS_HELP in params["--threads"].help, name
        if "--jobs" in params:
            assert JOBS_HELP in params["--jobs"].help, name
        for p in command.params:
            if isinstance(p, click.Option) and p.is_flag and p.default is True:
                assert p.secondary_opts and p.secondary_opts[0].startswith("--no-"), (name, p.opts)


def test_duplicate_hint_is_in_the_syntax_of_the_interface():
    """The library says duplicates='mean' or duplicates='last'; the command line
    says --duplicates mean or --duplicates last (not a mix of the two)."""
    from asymsense.cli.app import in_cli_terms
    from asymsense.completion.io import table_from_ids
    from asymsense.errors import InputError

    with pytest.raises(InputError) as caught:
        table_from_ids(["a", "a"], ["x", "x"], [1.0, 2.0])
    message = str(caught.value)
    assert "duplicates='mean' or duplicates='last'" in message
    shown = in_cli_terms(message, caught.value.parameter)
    assert "--duplicates mean or --duplicates last" in shown and "'" not in shown.split("(use", 1)[1]


# ----------------------------------------------------------------- the demo's figures and summary
@pytest.mark.slow
def test_demo_singular_value_panels_have_reference_lines_above_curves_and_a_legend(tmp_path, monkeypatch):
    import json as _json

    from asymsense.jobs import demo

    figures = {}
    real_save = demo.save

    def keep(fig, path):
        figures[Path(path).name] = [(ax, ax.get_legend(), list(ax.get_lines())) for ax in fig.axes]
        return real_save(fig, path)

    from pathlib import Path

    monkeypatch.setattr(demo, "save", keep)
    outcome = demo.run_demo(tmp_path / "d", max_iter=20, record_every=5)
    panels = figures[demo.FIGURES["singular_values"]]
    assert len(panels) == len(demo.ALPHAS)
    for ax, legend, lines in panels:
        assert legend is not None, ax.get_title()
        references = [ln for ln in lines if ln.get_linestyle() == ":"]
        curves = [ln for ln in lines if ln.get_linestyle() != ":"]
        assert len(references) == 3 and curves
        assert min(ln.get_zorder() for ln in references) > max(ln.get_zorder() for ln in curves)
        assert "σ(X*)" in [t.get_text() for t in legend.get_texts()]
    summary = _json.loads((tmp_path / "d" / "summary.json").read_text())
    assert all("batch_seconds_per_trial" in t and "seconds" not in t for t in summary["trials"])
    assert outcome.summary["trials"][0]["batch_seconds_per_trial"] >= 0


# ----------------------------------------------------------------- following the docs leaves a clean clone
GENERATORS = {"docs_screenshots.py": "regenerates the docs' screenshots, like docs/build.py its regions"}


def test_benchmarks_write_committed_files_only_when_given_out():
    """A benchmark run without --out writes nothing, or only under a git-ignored folder."""
    root = Path(__file__).resolve().parents[1]
    checked = 0
    for script in sorted((root / "benchmarks").glob("*.py")):
        if script.name in GENERATORS:
            continue
        for default in re.findall(r'add_argument\(\s*"--out"[^\n]*?default=([^,)\n]+)', script.read_text()):
            checked += 1
            if default.strip() == "None":
                continue
            path = re.search(r'"([^"]+)"', default).group(1)
            ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=root).returncode == 0
            assert ignored, f"{script.name}: --out defaults to {path}, which git tracks"
    assert checked >= 4


@pytest.mark.slow
def test_output_folders_are_named_by_out_everywhere(tmp_path):
    """report takes --out as well as its positional folder; reproduce has a default folder."""
    for args in (["report", "--out", tmp_path / "none"], ["report", tmp_path / "none"]):
        result = cli(*args)
        assert result.returncode == 2 and "is not a folder with stored results" in result.stderr, result.stderr
    both = cli("report", tmp_path / "a", "--out", tmp_path / "b")
    assert both.returncode == 2 and "give the folder once" in both.stderr
    help_text = " ".join(cli("reproduce", "--help").stdout.split())
    assert "[default: results]" in help_text
    for command in ("solve", "compare", "demo", "sweep", "reproduce", "report", "complete"):
        assert "--out" in cli(command, "--help").stdout, command
