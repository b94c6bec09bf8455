"""--backend/--device on the command line and `backend` in sweep trials."""

import json
import subprocess
import sys

import pytest

from asymsense import InputError
from asymsense.spec import resolve_problem
from asymsense.sweep.run import expand


def solve(*args):
    return subprocess.run([sys.executable, "-m", "asymsense", "solve", "--n1", "14", "--n2", "9", "--rank", "2", "--max-iter", "150", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_solve_on_torch_matches_numpy_and_records_the_backend():
    pytest.importorskip("torch")
    numpy_run, torch_run = solve("--json"), solve("--json", "--backend", "torch", "--device", "cpu")
    assert numpy_run.returncode == torch_run.returncode == 0, torch_run.stderr
    a, b = json.loads(numpy_run.stdout), json.loads(torch_run.stdout)
    assert b["config"]["backend"] == "torch" and a["config"]["backend"] == "numpy"
    assert b["rel_error"] == pytest.approx(a["rel_error"], rel=1e-8)


@pytest.mark.slow
def test_unknown_backend_is_one_line_exit_2():
    run = solve("--backend", "jax")
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "--backend" in run.stderr and "Traceback" not in run.stderr


def test_sweep_backend_is_validated_and_kept_out_of_default_keys():
    with pytest.raises(InputError, match="backend must be one of"):
        resolve_problem({"backend": "jax"})
    assert "backend" not in resolve_problem({})
    default = expand({"name": "b", "fixed": {"n1": 6, "n2": 5, "rank": 1}})[0]
    on_torch = expand({"name": "b", "fixed": {"n1": 6, "n2": 5, "rank": 1, "backend": "torch"}})[0]
    assert default.key != on_torch.key and on_torch.params["backend"] == "torch"
