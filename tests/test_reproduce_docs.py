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


def test_reproduce_doc_equals_the_render_of_the_committed_record(recorded):
    text = rec.DOC.read_text(encoding="utf-8")
    names = {m.group("name") for m in rec.REGION.finditer(text)}
    assert names == {"reproduce-claims", "reproduce-timing", "reproduce-summary", "reproduce-full-estimate"}
    assert rec.fill(text, rec.render(recorded)) == text, "run `python -m asymsense.paper.record --docs`"


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
    assert rec.fill(text, rec.render(edited)) != text


def test_cpu_seconds_counts_this_process_work():
    from asymsense.paper.runner import cpu_seconds

    before, started = cpu_seconds(), time.process_time()
    x = 0
    while time.process_time() - started < 0.3:
        x += 1
    assert cpu_seconds() - before >= 0.25
