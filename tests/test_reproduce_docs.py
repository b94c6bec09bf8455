"""docs/reproduce.md's claims table and timings are generated from the record
of an actual run (docs/data/reproduce_quick.json, asymsense.paper.record):
the document must equal what the record renders to, a verdict in the record
must follow from its numbers, and the record must say how it was measured."""

from __future__ import annotations

import copy
import json
import time

import pytest

from asymsense.paper import record as rec
from asymsense.paper.registry import EXPERIMENTS


@pytest.fixture(scope="module")
def recorded():
    return json.loads(rec.RECORD.read_text(encoding="utf-8"))


def _full():
    return json.loads(rec.RECORD_FULL.read_text(encoding="utf-8")) if rec.RECORD_FULL.is_file() else None


def test_reproduce_doc_equals_the_render_of_the_committed_records(recorded):
    text = rec.DOC.read_text(encoding="utf-8")
    names = {m.group("name") for m in rec.REGION.finditer(text)}
    full = _full()
    assert names == {"reproduce-claims", "reproduce-timing", "reproduce-summary"} | (
        {"reproduce-full-claims", "reproduce-full-summary", "reproduce-full-timing", "reproduce-full-diff"} if full else {"reproduce-full-estimate"})
    assert rec.fill(text, rec.render(recorded, full)) == text, "run `python -m asymsense.paper.record --docs`"


def test_the_full_record_says_how_each_part_was_measured():
    full = _full()
    if full is None:
        pytest.skip("no --full record committed")
    assert full["parts"] and {c["experiment"] for c in full["claims"]} == {e for p in full["parts"] for e in p["experiments"]}
    for p in full["parts"]:
        assert p["command"].startswith("asymsense reproduce --full") and p["commit"] and p["start"] and p["end"]
        assert p["load_start"] and p["load_end"] and p["time"]["wall"] > 0 and p["time"]["user"] > 0
        assert p["manifest"]["mode"] == "full" and set(p["experiments"]) <= set(p["manifest"]["seconds"])


def test_the_record_covers_every_experiment_and_says_how_it_was_measured(recorded):
    r = recorded["recorded"]
    assert r["command"].startswith("asymsense reproduce --quick") and r["commit"] and r["date"] and r["load_start"] and r["load_end"]
    assert r["time"]["wall"] > 0 and r["time"]["user"] > 0
    assert recorded["manifest"]["mode"] == "quick"
    assert set(recorded["manifest"]["experiments"]) == set(EXPERIMENTS)
    assert {c["experiment"] for c in recorded["claims"]} == set(EXPERIMENTS)


def test_a_hand_edited_number_or_verdict_is_caught(recorded):
    text = rec.DOC.read_text(encoding="utf-8")
    edited = copy.deepcopy(recorded)
    row = next(c for c in edited["claims"] if c["op"] == "<=" and c["high"] is not None)
    row["value"] = row["low"] = row["high"] = 10 * max(abs(row["threshold"]), 1.0)      # the number now fails its threshold
    with pytest.raises(ValueError, match="recorded verdict"):
        rec.render(edited)
    row["verdict"], row["passed"] = "FAIL", False                                      # … and with a consistent verdict the doc differs
    assert rec.fill(text, rec.render(edited, _full())) != text


def test_cpu_seconds_counts_this_process_work():
    from asymsense.paper.runner import cpu_seconds

    before, started = cpu_seconds(), time.process_time()
    x = 0
    while time.process_time() - started < 0.3:
        x += 1
    assert cpu_seconds() - before >= 0.25


def _results(folder, claims, seconds):
    """A reproduce output folder holding only claims.json and reproduce.json."""
    from asymsense.paper.claims import claims_json

    folder.mkdir()
    (folder / "claims.json").write_text(claims_json(claims), encoding="utf-8")
    (folder / "reproduce.json").write_text(json.dumps({"mode": "full", "experiments": sorted(seconds), "seconds": seconds,
                                                        "cpu_seconds": {n: 2 * s for n, s in seconds.items()},
                                                        "load": {n: [1.0, 2.0] for n in seconds}}), encoding="utf-8")
    return str(folder)


def test_the_full_record_joins_its_parts_names_what_did_not_run_and_what_differs_from_quick(recorded, tmp_path):
    from asymsense.paper.claims import claim

    quick = {c["id"]: c for c in recorded["claims"]}
    e5a = quick["E5.a"]
    flipped = claim("E5.a", "e5", e5a["statement"], e5a["quantity"], e5a["threshold"] - 1.0, e5a["op"], e5a["threshold"])  # fails in full
    same = claim("E8.a", "e8", quick["E8.a"]["statement"], "q", quick["E8.a"]["value"], quick["E8.a"]["op"], quick["E8.a"]["threshold"])
    stamp = {"commit": "abc", "start": "s", "end": "e", "load_start": "1 1 1", "load_end": "2 2 2"}
    parts = [{**stamp, "command": "asymsense reproduce --full -e e5", "results": _results(tmp_path / "a", [flipped], {"e5": 10.0}),
              "wall": 12.0, "user": 20.0, "sys": 1.0},
             {**stamp, "command": "asymsense reproduce --full -e e8", "results": _results(tmp_path / "b", [same], {"e8": 5.0})}]
    full = rec.make_full_record(parts)
    out = rec.render(recorded, full)
    assert [c["id"] for c in full["claims"]] == ["E5.a", "E8.a"]
    assert "1 of 2 claims pass; failing: E5.a" in out["reproduce-full-summary"] and "e1" in out["reproduce-full-summary"]
    assert "| E5.a | pass" in out["reproduce-full-diff"] and "E8.a" not in out["reproduce-full-diff"]
    timing = out["reproduce-full-timing"]
    assert "`/usr/bin/time`" in timing and "no `/usr/bin/time` total" in timing and "| e1 | not run in --full |" in timing
    assert "wall 0 min 17 s" in timing                                                   # 12 s timed + 5 s from reproduce.json
    with pytest.raises(ValueError, match="two parts"):
        rec.make_full_record([parts[0], {**parts[1], "results": parts[0]["results"]}])
    with pytest.raises(ValueError, match="lacks the claims"):
        rec.make_full_record([{**parts[0], "experiments": ["e5", "e6"]}])
