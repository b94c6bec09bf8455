"""The generated regions of README.md and docs/cli.md (docs/build.py) equal
what the code prints now: a change that alters a documented deterministic
number fails here until `python docs/build.py` is rerun."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build():
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build()


@pytest.fixture(scope="module")
def rendered():
    return build.render(build.measure())


@pytest.mark.parametrize("name", build.DOCUMENTS)
def test_generated_regions_are_what_the_code_prints_now(rendered, name):
    text = (ROOT / name).read_text()
    regions = [m.group("name") for m in build.REGION.finditer(text)]
    assert regions, f"{name} has no generated region"
    filled = build.fill(text, rendered)
    if filled != text:
        new = {m.group("name"): m.group("body") for m in build.REGION.finditer(filled)}
        old = {m.group("name"): m.group("body") for m in build.REGION.finditer(text)}
        stale = [k for k in new if new[k] != old.get(k)]
        pytest.fail(f"{name}: generated regions {stale} differ from what the code prints now; run `python docs/build.py`\n"
                    + "\n".join(f"--- {k} (committed)\n{old.get(k)}\n--- {k} (now)\n{new[k]}" for k in stale))


def test_a_changed_number_is_caught(rendered):
    """The check can fail: a region whose number is edited differs after fill."""
    text = (ROOT / "README.md").read_text()
    tampered = build.REGION.sub(lambda m: m.group(1) + "0.01" + m.group(4) if m.group("name") == "demo-slope" else m.group(0), text)
    assert build.fill(tampered, rendered) == build.fill(text, rendered)
    assert tampered != build.fill(tampered, rendered)


def test_transcripts_show_no_timing():
    assert build.untimed("wrote 6 files to d/ in 35.9 s: a") == "wrote 6 files to d/ in … s: a"
    assert build.untimed('"seconds": 0.52,') == '"seconds": …,'
    assert "6.382e-01" not in build.untimed("│ seconds             │      6.382e-01 │")
