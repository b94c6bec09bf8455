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
