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

from asymsense.completion import baselines
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


def _benchmark(name):
    """A script of benchmarks/ as a module (its own imports, e.g. fixed_split, resolved from benchmarks/)."""
    import sys

    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def movielens():
    """The benchmark's fixed split (benchmarks/fixed_split.py) and the record, with one BLAS and one numba
    thread for the fits (the RMSEs do not depend on the thread count; on a shared machine one thread is faster)."""
    from threadpoolctl import threadpool_limits

    bench = _benchmark("bench_completion")
    record = json.loads((ROOT / "docs" / "data" / "completion_benchmark.json").read_text())
    try:
        import numba
    except ImportError:  # numba is optional: the NumPy kernels give the same RMSEs to the printed digits
        numba = None
    previous = numba.get_num_threads() if numba else None
    with threadpool_limits(1):
        if numba:
            numba.set_num_threads(1)
        try:
            yield bench, bench.split(), {r["method"]: r for r in record["rows"]}
        finally:
            if numba:
                numba.set_num_threads(previous)


def _printed(row):
    """What README's MovieLens table prints of a row's deterministic numbers (4 decimals)."""
    return f"{row['test_rmse']:.4f}", f"{row['val_rmse']:.4f}"


RERUN_MOVIELENS = "rerun `python benchmarks/bench_completion.py --out docs/data/completion_benchmark.json`, then `python docs/build.py`"


@pytest.mark.slow
def test_the_documented_movielens_rmses_are_what_the_code_gives_now(movielens):
    """README's MovieLens table comes from a recorded run (docs/data/completion_benchmark.json):
    its deterministic numbers for the default model and the biases are recomputed
    here with the benchmark's own functions on the same fixed split (seeds of the
    record, median as the benchmark takes it) and must match to the printed 4 decimals."""
    bench, data, rows = movielens
    default = rows["asymsense (default)"]
    now, _ = bench.ours(data, default["method"], default["params"]["seeds"])
    assert _printed(now) == _printed(default), RERUN_MOVIELENS
    (biases,) = bench.baselines(data, methods=[baselines.bias_only])
    assert _printed(biases) == _printed(rows["biases"]), RERUN_MOVIELENS


@pytest.mark.slow
def test_the_documented_tuned_and_baseline_movielens_rows_are_what_the_code_gives_now(movielens):
    """The other rows of README's MovieLens table, recomputed as the benchmark makes them: the optional
    l2 (three seeds, median), l2 chosen on validation (its grid at the first seed, reusing the l2 row's
    fit of that seed), SoftImpute along its λ path and ALS-WR on its grid; each must match the record
    to the printed 4 decimals, and the chosen l2 must be the recorded one (about 2 min of CPU)."""
    bench, data, rows = movielens
    (name,) = [m for m in rows if m.startswith("asymsense (l2=")]
    recorded = rows[name]
    l2 = recorded["params"]["l2"]
    now, fits = bench.ours(data, name, recorded["params"]["seeds"], l2=l2)
    assert _printed(now) == _printed(recorded), RERUN_MOVIELENS
    chosen = rows["asymsense (l2 chosen on validation)"]
    assert chosen["params"]["seed"] == recorded["params"]["seeds"][0]
    picked = bench.chosen_l2(data, chosen["params"]["grid"], chosen["params"]["seed"], fitted={l2: fits[0]})
    assert (picked["params"]["l2"], *_printed(picked)) == (chosen["params"]["l2"], *_printed(chosen)), RERUN_MOVIELENS
    for row in bench.baselines(data, methods=[baselines.soft_impute, baselines.als_wr]):
        assert _printed(row) == _printed(rows[row["method"]]), (row["method"], RERUN_MOVIELENS)


@pytest.mark.slow
def test_the_documented_end_to_end_errors_are_what_the_code_gives_now():
    """docs/performance.md's end-to-end error table (docs/data/end_to_end.json): both paths rerun
    (one BLAS thread, about 25 s of CPU); the rendered region, errors to 4 digits and iterations,
    must be the record's, and the two paths must still agree far below the printed digits."""
    bench = _benchmark("bench_end_to_end")
    record = json.loads(build.END_TO_END.read_text())
    now = bench.measurements(record["problem"]["max_iter"], record["problem"]["seed"])
    assert build.end_to_end_errors(now) == build.end_to_end_errors(record), \
        "rerun `python benchmarks/bench_end_to_end.py --threads 1 --out docs/data/end_to_end.json`, then `python docs/build.py`"
    assert max(r["product_difference"] for r in now["rows"]) < 1e-9
    assert max(r["error_difference"] for r in now["rows"]) < 1e-9
