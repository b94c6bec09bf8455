"""The two test tiers: the README's test command runs the default tier (pyproject's
addopts leave out `slow`), and CI runs that command verbatim and then the `slow`
tier, so no test is run by neither."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    block = re.search(r"# 2\. [^\n]*\n(?P<command>[^\n]+)\n", (ROOT / "README.md").read_text())
    assert block, "README's set-up block has no second command"
    return block.group("command")


def test_ci_runs_the_readme_test_command_verbatim_then_the_slow_tier():
    command = _readme_test_command()
    assert command.endswith("python3 -m pytest"), command
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert command in lines, "the README's test command is not in .ci/run verbatim"
    assert any(line.startswith("python3 -m pytest -m slow") and i > lines.index(command) for i, line in enumerate(lines))


def test_the_default_run_leaves_out_exactly_the_slow_tier():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert re.search(r'-m "not slow"$', options["addopts"]), options["addopts"]
    assert any(marker.startswith("slow:") for marker in options["markers"])
