"""`asymsense demo` and `asymsense solve` through subprocesses: outputs, recovery of
rectangular problems, TOML configs, exit codes, one-line errors, determinism.

Every command of this module is started once, concurrently (a small thread pool
of `subprocess.run` calls), when the first test asks for it; each test then
checks its own process. Python start-up dominates these small runs, so running
them side by side keeps the module well under a minute on 2 shared cores.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest

SUMMARY_KEYS = {"rel_error", "loss", "rel_residual", "iterations", "stop_reason", "max_rel_imbalance", "final_rel_imbalance", "eff_rank",
                "step_size", "seconds", "config"}

# Shapes used by no other test: a tall, a wide, and one with width >= max(n1, n2).
RECOVERY = {
    "tall": ["--n1", "48", "--n2", "14", "--rank", "2", "--alpha", "1e-5", "--max-iter", "500", "--seed", "7"],
    "wide": ["--n1", "16", "--n2", "44", "--rank", "3", "--width", "8", "--alpha", "1e-5", "--max-iter", "500", "--seed", "7"],
    "wider-than-max": ["--n1", "26", "--n2", "21", "--rank", "2", "--width", "30", "--alpha", "1e-5", "--max-iter", "500", "--seed", "7"],
}

SMALL = ["--n1", "10", "--n2", "7", "--rank", "2", "--max-iter", "30"]

TOML = """\
# a solve config
n1 = 36
n2 = 18
rank = 2
cond = 2.5
max-iter = 200
alpha = 1e-5
record_every = 5
seed = 11
"""

CONFIGS = {
    "malformed.toml": 'n1 = 20\nrank = "oops\n',
    "unknown.toml": "n1 = 20\n\nbogus_key = 3\n",
    "wrongtype.toml": "n1 = 20\nn2 = 10\nrank = 2.5\n",
    "rank.toml": "n1 = 20\nn2 = 10\n# comment\nrank = 11\n",
    "table.toml": "[solve]\nn1 = 20\n",
    "broken.json": '{"config": {"n1": 5,\n  "n2": }}',
}

# name → (arguments, text that the one-line message must contain); through subprocesses
BAD = {
    "rank>min": (["solve", "--n1", "8", "--n2", "6", "--rank", "7"], "--rank"),
    "alpha=0": (["solve", "--alpha", "0", "--out", "{tmp}/never"], "--alpha"),
    "config-malformed": (["solve", "--config", "{tmp}/malformed.toml"], "malformed.toml line 2"),
    "out-unwritable": (["solve", *SMALL, "--out", "{tmp}/a-file/out"], "{tmp}/a-file/out"),
    "demo-max-iter=0": (["demo", "--max-iter", "0", "--out", "{tmp}/demo-never"], "--max-iter"),
}

# more bad input, checked in-process (typer's CliRunner) to spare a Python start-up each
BAD_IN_PROCESS = {
    "m=0": (["solve", "--m", "0"], "--m"),
    "width=0": (["solve", "--width", "0"], "--width"),
    "step=0": (["solve", "--step", "0"], "--step"),
    "n1=2.5": (["solve", "--n1", "2.5"], "--n1"),
    "noise=nan": (["solve", "--noise", "nan"], "--noise"),
    "operator": (["solve", "--operator", "wavelet"], "--operator"),
    "config-missing": (["solve", "--config", "{tmp}/missing.toml"], "missing.toml"),
    "config-unknown-key": (["solve", "--config", "{tmp}/unknown.toml"], "unknown.toml line 3: bogus_key"),
    "config-wrong-type": (["solve", "--config", "{tmp}/wrongtype.toml"], "wrongtype.toml line 3: rank"),
    "step=word": (["solve", "--step", "fast"], "--step"),
    "unknown-flag": (["solve", "--bogus", "1"], "--bogus"),
    "max-iter=abc": (["solve", "--max-iter", "abc"], "--max-iter"),
    "seed<0": (["solve", "--seed", "-1"], "--seed"),
    "alpha<0": (["solve", "--alpha", "-1e-3"], "--alpha"),
    "step<0": (["solve", "--step", "-0.1"], "--step"),
    "noise<0": (["solve", "--noise", "-0.1"], "--noise"),
    "noise=inf": (["solve", "--noise", "inf"], "--noise"),
    "cond<1": (["solve", "--cond", "0.5"], "--cond"),
    "dtype": (["solve", "--dtype", "float16"], "--dtype"),
    "spectrum": (["solve", "--spectrum", "cubic"], "--spectrum"),
    "validation>=1": (["solve", "--validation", "1.5"], "--validation"),
    "patience-without-validation": (["solve", "--patience", "5"], "--patience"),
    "validation-leaves-nothing": (["solve", "--validation", "0.0001"], "--validation"),
    "entries-m>n1n2": (["solve", "--operator", "entries", "--n1", "6", "--n2", "5", "--rank", "1", "--m", "31"], "--m"),
    "config-rank>min": (["solve", "--config", "{tmp}/rank.toml"], "rank.toml line 4: rank"),
    "config-table": (["solve", "--config", "{tmp}/table.toml"], "table.toml line 1: solve"),
    "config-not-utf8": (["solve", "--config", "{tmp}/binary.toml"], "binary.toml line 2"),
    "config-json-malformed": (["solve", "--config", "{tmp}/broken.json"], "broken.json line 2"),
    "config-dir": (["solve", "--config", "{tmp}"], "cannot read config file"),
    "demo-out-unwritable": (["demo", "--out", "{tmp}/a-file/demo"], "{tmp}/a-file/demo"),
    "demo-tol=0": (["demo", "--tol", "0", "--out", "{tmp}/demo-never"], "tol"),
    "demo-unknown-flag": (["demo", "--alpha", "1"], "--alpha"),
    "seed>int64": (["solve", "--seed", str(2**63)], "--seed must be <= 9223372036854775807"),
    "demo-seed>int64": (["demo", "--seed", str(2**63), "--out", "{tmp}/demo-never"], "seed must be <= 9223372036854775807"),
    "compare-seed>int64": (["compare", "--seed", str(2**63)], "--seed must be <= 9223372036854775807"),
}


def _run(args):
    return subprocess.run([sys.executable, "-m", "asymsense", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    (path / "a-file").write_text("not a folder")
    (path / "run.toml").write_text(TOML)
    for name, text in CONFIGS.items():
        (path / name).write_text(text)
    (path / "binary.toml").write_bytes(b"n1 = 20\n\xff\xfe = 1\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp):
    """name → Future of the CompletedProcess, all started at once."""
    jobs = {
        "demo": ["demo", "--max-iter", "30", "--out", f"{tmp}/demo", "--seed", "3"],
        "config": ["solve", "--config", f"{tmp}/run.toml", "--max-iter", "120", "--out", f"{tmp}/config-out", "--json"],
        "same-1": ["solve", *SMALL, "--seed", "5", "--out", f"{tmp}/same-1", "--json"],
        "other-seed": ["solve", *SMALL, "--seed", "6", "--out", f"{tmp}/other-seed"],
        "diverge": ["solve", *SMALL, "--step", "50", "--out", f"{tmp}/diverged", "--json"],
        "diverge-overflow": ["solve", *SMALL, "--alpha", "1e300"],
        "compare-overflow": ["compare", *SMALL, "--alpha", "1e300"],
    }
    jobs.update({f"recover-{name}": ["solve", *args, "--json"] for name, args in RECOVERY.items()})
    jobs.update({f"bad-{name}": [a.format(tmp=tmp) for a in args] for name, (args, _) in BAD.items()})
    pool = ThreadPoolExecutor(max_workers=6)
    futures = {name: pool.submit(_run, args) for name, args in jobs.items()}
    yield futures
    pool.shutdown(wait=True)


def _ok(proc):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def _one_line_error(proc, code):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert proc.stdout == ""
    return lines[0]


# ---------------------------------------------------------------- demo
@pytest.mark.slow
def test_demo_writes_every_file_and_a_complete_summary(runs, tmp):
    proc = _ok(runs["demo"].result())
    out = tmp / "demo"
    for name in ("test_error.png", "imbalance.png", "singular_values.png", "error_vs_alpha.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    summary = json.loads((out / "summary.json").read_text())
    cfg = summary["config"]
    assert (cfg["n1"], cfg["n2"], cfg["rank"], cfg["cond"]) == (60, 40, 3, 3.0)
    assert cfg["m"] == 5 * 3 * (60 + 40 - 3)
    assert cfg["widths"] == [60, 3] and cfg["alphas"] == [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
    assert cfg["max_iter"] == 30 and cfg["seed"] == 3
    assert isinstance(cfg["problem_seed"], int) and isinstance(cfg["operator_seed"], int)
    trials = summary["trials"]
    assert [(t["width"], t["init_scale"]) for t in trials] == [(w, a) for w in (60, 3) for a in cfg["alphas"]]
    for t in trials:
        assert SUMMARY_KEYS - {"config", "seconds"} <= set(t) and "seconds" not in t and t["batch_seconds_per_trial"] >= 0
        assert t["iterations"] == 30 and t["stop_reason"] == "max_iter" and t["seed"] == 3
        assert 0 < t["rel_error"] < 1.5
    assert math.isfinite(summary["fitted_slope"])
    assert summary["fitted_slope"] == summary["fits"]["60"]["slope"]
    assert set(summary["files"]) >= {"history.parquet", "summary.json", "error_vs_alpha.png"}
    table = pq.read_table(out / "history.parquet")
    assert {"width", "trial", "init_scale", "seed", "iteration", "rel_error", "rel_imbalance", "sv_1"} <= set(table.column_names)
    assert sorted(set(table.column("trial").to_pylist())) == list(range(12))
    assert max(table.column("iteration").to_pylist()) == 30
    assert "1e-06" in proc.stdout and "max rel. imbalance" in proc.stdout


# ---------------------------------------------------------------- solve: the "Done when"
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECOVERY))
def test_solve_json_recovers_rectangular_problems(runs, name):
    proc = _ok(runs[f"recover-{name}"].result())
    summary = json.loads(proc.stdout)  # stdout holds the JSON and nothing else
    assert SUMMARY_KEYS <= set(summary)
    assert summary["rel_error"] < 1e-3
    args = dict(zip(RECOVERY[name][::2], RECOVERY[name][1::2]))
    cfg = summary["config"]
    assert (cfg["n1"], cfg["n2"], cfg["rank"]) == (int(args["--n1"]), int(args["--n2"]), int(args["--rank"]))
    assert cfg["width"] == int(args.get("--width", min(cfg["n1"], cfg["n2"])))
    assert cfg["m"] == math.ceil(5 * cfg["rank"] * (cfg["n1"] + cfg["n2"] - cfg["rank"]))
    for key in ("seed", "problem_seed", "operator_seed"):
        assert isinstance(cfg[key], int)
    assert summary["solver"]["operator"]["seed"] == cfg["operator_seed"]


def test_wider_than_max_case_is_really_wider():
    args = dict(zip(RECOVERY["wider-than-max"][::2], RECOVERY["wider-than-max"][1::2]))
    assert int(args["--width"]) >= max(int(args["--n1"]), int(args["--n2"]))


@pytest.mark.slow
def test_solve_reads_toml_and_flags_override_it(runs, tmp):
    proc = _ok(runs["config"].result())
    summary = json.loads(proc.stdout)
    cfg = summary["config"]
    assert (cfg["n1"], cfg["n2"], cfg["rank"], cfg["cond"], cfg["alpha"], cfg["seed"], cfg["record_every"]) == (36, 18, 2, 2.5, 1e-5, 11, 5)
    assert cfg["max_iter"] == 120 and summary["iterations"] == 120  # the flag beats the file's 200
    written = json.loads((tmp / "config-out" / "summary.json").read_text())
    assert written == summary
    history = pq.read_table(tmp / "config-out" / "history.parquet")
    assert history.column("iteration").to_pylist() == list(range(0, 121, 5))
    assert history.column("rel_error").to_pylist()[-1] == pytest.approx(summary["rel_error"])
    assert summary["rel_error"] < 1e-2


@pytest.mark.slow
def test_solve_prints_a_table_without_json(runs):
    proc = _ok(runs["other-seed"].result())
    assert "rel_error" in proc.stdout and "stop_reason" in proc.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(proc.stdout)


# ---------------------------------------------------------------- exit codes and messages
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_exits_2_with_one_line(runs, tmp, name):
    line = _one_line_error(runs[f"bad-{name}"].result(), 2)
    assert BAD[name][1].format(tmp=tmp) in line


@pytest.mark.parametrize("name", sorted(BAD_IN_PROCESS))
def test_more_bad_input_exits_2_with_one_line(tmp, name):
    from typer.testing import CliRunner

    from asymsense.cli import app

    args, expected = BAD_IN_PROCESS[name]
    result = CliRunner().invoke(app, [a.format(tmp=tmp) for a in args])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert expected.format(tmp=tmp) in lines[0]


@pytest.mark.slow
def test_bad_input_creates_no_output(runs, tmp):
    for name in ("alpha=0", "demo-max-iter=0"):
        _one_line_error(runs[f"bad-{name}"].result(), 2)
    test_more_bad_input_exits_2_with_one_line(tmp, "demo-seed>int64")
    assert not (tmp / "never").exists()
    assert not (tmp / "demo-never").exists()


@pytest.mark.slow
def test_divergence_exits_3_and_writes_no_summary(runs, tmp):
    line = _one_line_error(runs["diverge"].result(), 3)
    assert "--step 50" in line and "smaller --step" in line and "step_size" not in line
    assert not (tmp / "diverged" / "summary.json").exists()
    assert not (tmp / "diverged" / "history.parquet").exists()


@pytest.mark.slow
def test_overflowing_runs_exit_3_with_one_line_and_no_numpy_warnings(runs):
    """An init scale of 1e300 overflows at once: one error line, not a burst of RuntimeWarnings."""
    line = _one_line_error(runs["diverge-overflow"].result(), 3)
    assert "--alpha 1e+300" in line and "init_scale" not in line
    proc = runs["compare-overflow"].result()
    assert proc.returncode == 3 and "RuntimeWarning" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: diverged: fgd, balanced, scaled-gd"], proc.stderr


# ---------------------------------------------------------------- determinism
@pytest.mark.slow
def test_same_seed_same_summary_and_history(runs, tmp):
    """Rerunning from the recorded config (summary.json as --config) repeats the
    run exactly; another seed gives other numbers."""
    a = json.loads(_ok(runs["same-1"].result()).stdout)
    b = json.loads(_ok(_run(["solve", "--config", f"{tmp}/same-1/summary.json", "--out", f"{tmp}/same-2", "--json"])).stdout)
    _ok(runs["other-seed"].result())
    other = json.loads((tmp / "other-seed" / "summary.json").read_text())
    for summary in (a, b, other):
        summary.pop("seconds")
        summary["solver"].pop("seconds", None)
    assert a == b
    assert other["rel_error"] != a["rel_error"]
    assert other["config"]["problem_seed"] != a["config"]["problem_seed"]
    assert pq.read_table(tmp / "same-1" / "history.parquet").equals(pq.read_table(tmp / "same-2" / "history.parquet"))


# ---------------------------------------------------------------- help texts
def test_solve_help_shows_every_default():
    """solve's flags default to None (so a flag can override a config file); the
    help still shows the effective defaults (rich markup must not eat them)."""
    from typer.testing import CliRunner

    from asymsense.cli import app
    from asymsense.spec import SolveConfig

    text = " ".join(CliRunner().invoke(app, ["solve", "--help"], env={"COLUMNS": "200"}).stdout.split())
    for flag, default in (("--n1", 40), ("--rank", 3), ("--alpha", "1e-3"), ("--max-iter", 1000), ("--step", "auto"), ("--seed", 0)):
        assert f"{flag} " in text
        assert f"[default: {default}]" in text, flag
    assert SolveConfig().n1 == 40 and SolveConfig().max_iter == 1000
    assert text.count("[default:") >= 20


# ---------------------------------------------------------------- one problem per seed, across commands
def test_solve_compare_and_a_sweep_trial_run_the_same_fgd():
    """The parameters resolve once (asymsense.spec; tests/test_spec.py checks the
    two doors agree); what stays three-fold is the fgd call of `solve`,
    `compare` and a sweep trial: the same parameters and seed give the same run."""
    from asymsense.jobs.compare import run_compare
    from asymsense.jobs.solve import run_solve
    from asymsense.spec import load_solve_config
    from asymsense.sweep.methods import resolve_method

    params = dict(n1=9, n2=7, rank=2, noise=0.01, max_iter=40, seed=4)
    solved, _ = run_solve(load_solve_config(None, params).resolved())
    compared = {r["method"]: r for r in run_compare(**params)}
    method = resolve_method("fgd")
    swept, _ = method(method.resolve_params(dict(params)))
    assert compared["fgd"]["rel_error"] == solved["rel_error"] == swept["rel_error"]
    assert compared["fgd"]["solver"]["operator"]["seed"] == solved["config"]["operator_seed"]


def test_demo_help_paragraphs_are_not_broken_mid_sentence():
    from typer.testing import CliRunner

    from asymsense.cli import app

    text = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "240"}).stdout
    assert any("k = 3 over α = 1e-1" in line for line in text.splitlines()), text
    listing = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "240"}).stdout
    demo_line = next(line for line in listing.splitlines() if " demo " in line)
    assert "summary.json" in demo_line


@pytest.mark.parametrize("library, cli", [
    ("diverged at iteration 3 with step_size=50: try a smaller step_size, e.g. 12.5", "diverged at iteration 3 with --step 50: try a smaller --step, e.g. 12.5"),
    ("step_size='auto' needs nonzero measurements", "--step auto needs nonzero measurements"),
    ("repeated pairs; pass duplicates='mean'", "repeated pairs; pass --duplicates mean"),
    ("init_scale must be > 0, got -1.0", "--alpha must be > 0, got -1.0"),
    ("run.toml line 3: alpha must be > 0", "run.toml line 3: alpha must be > 0"),
    ("--rank must be <= 30", "--rank must be <= 30"),
])
def test_library_messages_are_shown_in_the_command_lines_terms(library, cli):
    from asymsense.cli.app import in_cli_terms

    assert in_cli_terms(library) == cli
