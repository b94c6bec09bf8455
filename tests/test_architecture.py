"""The package's layering (DESIGN.md §3), as the import-linter contracts in
pyproject.toml state it: no module imports a higher layer, no import cycle
between the layers. The same check runs as `lint-imports` in .ci/run; here it
runs with the README's test command too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    run = subprocess.run([lint, "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


HEAVY = ("matplotlib", "torch", "cupy", "dask", "distributed", "sklearn", "cvxpy")


@pytest.mark.slow
@pytest.mark.parametrize("module", ["asymsense", "asymsense.cli"])
def test_heavy_optional_libraries_load_on_first_use_only(module):
    """`import asymsense` and the command line (`asymsense --help`) load none of
    the heavy optional libraries: they are imported where they are used."""
    code = f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", f"import {module} loaded {run.stdout.strip()}"
