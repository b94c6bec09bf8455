"""The generated regions of README.md and docs/*.md (docs/build.py) equal
what the code prints now: a change that alters a documented deterministic
number fails here until `python docs/build.py` is rerun. Timings are
rendered from committed records of recorded runs; those records must say
how they were measured (command, date, load)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from asymsense.paper.record import REGION

ROOT = Path(__file__).resolve().parents[1]


def _build():
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build()


@pytest.fixture(scope="module")
def rendered():
    """One measurement per test session (module scope): the demo and solve
    subprocesses run while the guide and compare are measured in-process."""
    return build.render(build.measure())


@pytest.mark.parametrize("name", build.DOCUMENTS)
def test_generated_regions_are_what_the_code_prints_now(rendered, name):
    text = (ROOT / name).read_text()
    regions = [m.group("name") for m in REGION.finditer(text)]
    assert regions, f"{name} has no generated region"
    filled = build.fill(text, rendered)
    if filled != text:
        new = {m.group("name"): m.group("body") for m in REGION.finditer(filled)}
        old = {m.group("name"): m.group("body") for m in REGION.finditer(text)}
        stale = [k for k in new if new[k] != old.get(k)]
        pytest.fail(f"{name}: generated regions {stale} differ from what the code prints now; run `python docs/build.py`\n"
                    + "\n".join(f"--- {k} (committed)\n{old.get(k)}\n--- {k} (now)\n{new[k]}" for k in stale))


def test_every_rendered_region_is_used(rendered):
    """A number build.py computes but no document shows is a region someone deleted by hand."""
    used = {m.group("name") for name in build.DOCUMENTS for m in REGION.finditer((ROOT / name).read_text())}
    assert set(rendered) <= used, sorted(set(rendered) - used)


def test_a_changed_number_is_caught(rendered):
    """The check can fail: a region whose number is edited differs after fill."""
    text = (ROOT / "README.md").read_text()
    for region in ("demo-slope", "guide-step-table"):
        tampered = REGION.sub(lambda m: m.group(1) + "0.01" + m.group(4) if m.group("name") == region else m.group(0), text)
        assert tampered != text
        assert build.fill(tampered, rendered) == build.fill(text, rendered)
        assert tampered != build.fill(tampered, rendered)


def test_transcripts_show_no_timing():
    assert build.untimed("wrote 6 files to d/ in 35.9 s: a") == "wrote 6 files to d/ in … s: a"
    assert build.untimed('"seconds": 0.52,') == '"seconds": …,'
    assert "6.382e-01" not in build.untimed("│ seconds             │      6.382e-01 │")


@pytest.mark.parametrize("record", sorted(p.name for p in (ROOT / "docs" / "data").glob("*.json")))
def test_recorded_timings_say_how_they_were_measured(record):
    """Each record of a run (the file's `recorded`, and that of every run it
    collects) names the command that measured, the date (UTC) and the machine's load."""
    def recorded(node):
        if isinstance(node, dict):
            yield from ([node["recorded"]] if "recorded" in node else [])
            for value in node.values():
                yield from recorded(value)
        elif isinstance(node, list):
            for value in node:
                yield from recorded(value)

    found = list(recorded(json.loads((ROOT / "docs" / "data" / record).read_text())))
    assert found, f"{record} has no 'recorded' block"
    for r in found:
        assert re.search(r"\b(python [\w/.-]+\.py|python -m asymsense|asymsense \w+)", r["command"]), r
        assert r["date"][:4].isdigit() and ("UTC" in r["date"] or r["date"].endswith("Z")), r
        assert r["cores"] >= 1 and any(key.startswith("load") and r[key] for key in r), r


@pytest.mark.slow
def test_the_documented_movielens_rmses_are_what_the_code_gives_now():
    """README's MovieLens table comes from a recorded run (docs/data/completion_benchmark.json):
    its deterministic numbers for the default model and the biases are recomputed
    here on the same fixed split (seeds of the record, median as the benchmark
    takes it) and must match to the printed 4 decimals; the optional and tuned
    rows (minutes of fitting) are left to the benchmark."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from asymsense.completion import complete, table_from_ids
    from asymsense.completion.baselines import bias_only
    from asymsense.datasets import movielens_100k, split_indices

    rows = {r["method"]: r for r in json.loads((ROOT / "docs" / "data" / "completion_benchmark.json").read_text())["rows"]}
    t = table_from_ids(*movielens_100k())
    tr, va, te = split_indices(t.m, (0.8, 0.1, 0.1), seed=0)
    train = (t.rows[tr], t.cols[tr], t.values[tr])
    val = (t.rows[va], t.cols[va], t.values[va])

    def test_rmse(model):
        return float(np.sqrt(np.mean((model.predict(t.rows[te], t.cols[te]) - t.values[te]) ** 2)))

    default = rows["asymsense (default)"]
    with threadpool_limits(1):
        fits = [complete(*train, t.shape, validation=val, seed=seed) for seed in default["params"]["seeds"]]
        biases = bias_only(*train, t.shape, validation=val)
    assert f"{np.median([test_rmse(f) for f in fits]):.4f}" == f"{default['test_rmse']:.4f}"
    assert f"{np.median([f.val_rmse for f in fits]):.4f}" == f"{default['val_rmse']:.4f}"
    assert f"{test_rmse(biases):.4f}" == f"{rows['biases']['test_rmse']:.4f}"
