"""The record of an actual `reproduce` run, and the parts of docs/reproduce.md
generated from it.

    python -m asymsense.paper.record RESULTS_DIR --command "..." --wall 612 --user 540 --sys 12 --load "9.1 8.7 8.2"
        # writes docs/data/reproduce_quick.json from RESULTS_DIR/claims.json and reproduce.json
    python -m asymsense.paper.record --docs            # rewrites the generated regions of docs/reproduce.md
    python -m asymsense.paper.record --docs --check    # exit 1 when they differ from the record

A claim row in the docs is never typed by hand: the claims table is rendered
from the committed record (`claims`: the run's claims.json), each claim's
verdict recomputed from its numbers (`Claim` evaluates it) and checked
against the recorded one; the timing table from the run's reproduce.json
(wall and CPU seconds and the load per experiment) and the command's
/usr/bin/time totals. Regions use docs/build.py's syntax
`<!-- generated:NAME -->…<!-- /generated -->`; tests/test_reproduce_docs.py
fails when docs/reproduce.md differs from `render(record)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path

from asymsense.paper.claims import Claim, claims_markdown

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "reproduce.md"
RECORD = ROOT / "docs" / "data" / "reproduce_quick.json"
REGION = re.compile(r"(<!-- generated:(?P<name>[\w.-]+) -->)(?P<body>.*?)(<!-- /generated -->)", re.S)
FIELDS = {f.name for f in dataclasses.fields(Claim) if f.init}


def claims_of(record: dict) -> list[Claim]:
    """The recorded claims as `Claim`s (verdicts recomputed from the numbers); a recorded verdict that the
    numbers do not give is an error (the record was edited by hand)."""
    out = []
    for row in record["claims"]:
        c = Claim(**{k: v for k, v in row.items() if k in FIELDS})
        if c.verdict != row["verdict"]:
            raise ValueError(f"claim {c.id}: recorded verdict {row['verdict']!r}, the numbers give {c.verdict!r}")
        out.append(c)
    return out


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def render(record: dict) -> dict[str, str]:
    """The generated regions of docs/reproduce.md from a run record."""
    claims = claims_of(record)
    rec, manifest = record["recorded"], record["manifest"]
    passed = sum(c.passed for c in claims)
    failed = [c.id for c in claims if not c.passed]
    names = manifest["experiments"]
    rows = ["| experiment | wall s | CPU s | load (1 min) at start, end |", "|---|---|---|---|"]
    for name in names:
        load = manifest.get("load", {}).get(name, [])
        rows.append(f"| {name} | {manifest['seconds'][name]:.0f} | {manifest.get('cpu_seconds', {}).get(name, float('nan')):.0f} | "
                    + ", ".join(f"{x:.1f}" for x in load) + " |")
    wall, cpu = sum(manifest["seconds"][n] for n in names), sum(manifest.get("cpu_seconds", {}).get(n, 0.0) for n in names)
    rows.append(f"| all experiments | {wall:.0f} | {cpu:.0f} | |")
    t = rec["time"]
    timing = (f"\n`{rec['command']}` on commit {rec['commit']}, {rec['date']}, {rec['cores']} cores shared with other jobs; "
              f"load average (1, 5, 15 min) at the start {rec['load_start']}, at the end {rec['load_end']}.\n\n"
              f"**Whole command (experiments and report):** wall {_minutes(t['wall'])}, CPU {_minutes(t['user'] + t['sys'])} "
              f"(user {t['user']:.0f} s + system {t['sys']:.0f} s, `/usr/bin/time`, this process and the workers it waited for).\n\n"
              + "\n".join(rows) + "\n\n"
              "Per experiment, CPU seconds are this process's and its workers' (`reproduce.json`, key `cpu_seconds`); the wall "
              "seconds depend on the machine's load, the CPU seconds do not.\n")
    est_rows, est_total = full_estimate(manifest)
    estimate = ("\n| experiment | quick CPU s (measured) | work full / quick | full CPU s (estimate) |\n|---|---|---|---|\n"
                + "\n".join(f"| {n} | {c:.0f} | {r:.1f} | {e:.0f} |" for n, c, r, e in est_rows)
                + f"\n| all | {sum(r[1] for r in est_rows):.0f} | | {est_total:.0f} (≈ {est_total / 3600:.1f} h of CPU) |\n")
    summary = f"{passed} of {len(claims)} claims pass" + (f"; failing: {', '.join(failed)}" if failed else "")
    return {"reproduce-claims": "\n" + claims_markdown(claims) + "\n", "reproduce-timing": timing, "reproduce-summary": summary,
            "reproduce-full-estimate": estimate}


def trial_cost(name: str, mode: str) -> float:
    """Σ over the experiment's trials of max_iter·m·n1·n2: the work of the dense operator's two passes per
    iteration, which dominates every trial here (the factors' products are k/m times smaller)."""
    from asymsense.paper.registry import TRIAL_METHODS, experiment_config
    from asymsense.paper.runner import sweep_configs
    from asymsense.sweep.run import expand, load_sweep_config

    cfg = experiment_config(name, mode)
    return float(sum(t.params["max_iter"] * t.params["m"] * t.params["n1"] * t.params["n2"]
                     for _, sc in sweep_configs(cfg) for t in expand(load_sweep_config(sc), TRIAL_METHODS)))


def full_estimate(manifest: dict) -> tuple[list[tuple[str, float, float, float]], float]:
    """Per experiment (name, quick CPU s, cost ratio full/quick, estimated full CPU s) and the total: an
    estimate, scaling each measured quick CPU time by `trial_cost`'s ratio (it ignores early stopping and
    the sizes' cache effects)."""
    rows = []
    for name in manifest["experiments"]:
        cpu = manifest.get("cpu_seconds", {}).get(name)
        if cpu is None:
            continue
        ratio = trial_cost(name, "full") / trial_cost(name, "quick")
        rows.append((name, cpu, ratio, cpu * ratio))
    return rows, sum(r[3] for r in rows)


def fill(text: str, rendered: dict[str, str]) -> str:
    """`text` with each `<!-- generated:NAME -->…<!-- /generated -->` region's
    body replaced by rendered[NAME]: the one filler of generated regions
    (docs/build.py and this module's --docs); an unknown NAME is a ValueError."""

    def replace(m):
        name = m.group("name")
        if name not in rendered:
            raise ValueError(f"unknown generated region {name!r}")
        return m.group(1) + rendered[name] + m.group(4)

    return REGION.sub(replace, text)


def make_record(results: Path, *, command: str, commit: str, wall: float, user: float, sys_: float, load_start: str, load_end: str,
                cores: int = 2) -> dict:
    """A run record from RESULTS_DIR (claims.json, reproduce.json) and the command's measured totals."""
    claims = json.loads((results / "claims.json").read_text(encoding="utf-8"))
    manifest = json.loads((results / "reproduce.json").read_text(encoding="utf-8"))
    return {"recorded": {"command": command, "commit": commit, "date": manifest.get("finished", time.strftime("%Y-%m-%d")),
                         "cores": cores, "load_start": load_start, "load_end": load_end,
                         "time": {"wall": wall, "user": user, "sys": sys_}},
            "manifest": manifest, "claims": claims}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="?", type=Path, help="a reproduce output folder to record")
    p.add_argument("--command", default="")
    p.add_argument("--commit", default="")
    p.add_argument("--wall", type=float, default=0.0)
    p.add_argument("--user", type=float, default=0.0)
    p.add_argument("--sys", type=float, default=0.0)
    p.add_argument("--load-start", default="")
    p.add_argument("--load-end", default="")
    p.add_argument("--docs", action="store_true", help="rewrite docs/reproduce.md's generated regions from the record")
    p.add_argument("--check", action="store_true", help="with --docs: only compare, exit 1 when they differ")
    a = p.parse_args(argv)
    if a.results is not None:
        record = make_record(a.results, command=a.command, commit=a.commit, wall=a.wall, user=a.user, sys_=a.sys,
                             load_start=a.load_start, load_end=a.load_end)
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if a.docs:
        text = DOC.read_text(encoding="utf-8")
        new = fill(text, render(json.loads(RECORD.read_text(encoding="utf-8"))))
        if new != text:
            if a.check:
                print(f"{DOC}: generated regions differ from {RECORD} (run python -m asymsense.paper.record --docs)", file=sys.stderr)
                return 1
            DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
