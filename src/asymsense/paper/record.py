"""The record of an actual `reproduce` run, and the parts of docs/reproduce.md
generated from it.

    python -m asymsense.paper.record RESULTS_DIR --command "..." --wall 612 --user 540 --sys 12 --load-start "9.1 8.7 8.2" ...
        # writes docs/data/reproduce_quick.json from RESULTS_DIR/claims.json and reproduce.json
    python -m asymsense.paper.record --full parts.json
        # writes docs/data/reproduce_full.json from the --full runs parts.json lists, each with its own
        # results folder and measured totals (make_full_record)
    python -m asymsense.paper.record --docs            # rewrites the generated regions of docs/reproduce.md
    python -m asymsense.paper.record --docs --check    # exit 1 when they differ from the records

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
from asymsense.paper.registry import EXPERIMENTS, TRIAL_METHODS, experiment_config
from asymsense.paper.runner import sweep_configs
from asymsense.sweep.run import expand, load_sweep_config

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "reproduce.md"
RECORD = ROOT / "docs" / "data" / "reproduce_quick.json"
RECORD_FULL = ROOT / "docs" / "data" / "reproduce_full.json"
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


def _experiment_rows(manifest: dict, estimate: dict | None = None) -> list[str]:
    """The per-experiment timing table (wall, CPU, load; with `estimate` {name: CPU s} a column of estimates)."""
    names = manifest["experiments"]
    extra = estimate is not None
    rows = ["| experiment | wall s | CPU s | load (1 min) at start, end |" + (" CPU s estimated from the quick run |" if extra else ""),
            "|---|---|---|---|" + ("---|" if extra else "")]
    for name in names:
        load = manifest.get("load", {}).get(name, [])
        rows.append(f"| {name} | {manifest['seconds'][name]:.0f} | {manifest.get('cpu_seconds', {}).get(name, float('nan')):.0f} | "
                    + ", ".join(f"{x:.1f}" for x in load) + " |" + (f" {estimate.get(name, float('nan')):.0f} |" if extra else ""))
    wall, cpu = sum(manifest["seconds"][n] for n in names), sum(manifest.get("cpu_seconds", {}).get(n, 0.0) for n in names)
    rows.append(f"| all experiments | {wall:.0f} | {cpu:.0f} | |" + (f" {sum(estimate.get(n, 0.0) for n in names):.0f} |" if extra else ""))
    return rows


PER_EXPERIMENT = ("Per experiment, CPU seconds are this process's and its workers' (`reproduce.json`, key `cpu_seconds`); the wall "
                  "seconds depend on the machine's load, the CPU seconds do not.\n")


def _whole(t: dict, what: str) -> str:
    return (f"**{what}:** wall {_minutes(t['wall'])}, CPU {_minutes(t['user'] + t['sys'])} "
            f"(user {t['user']:.0f} s + system {t['sys']:.0f} s, `/usr/bin/time`, this process and the workers it waited for)")


def _summary(claims: list[Claim]) -> str:
    failed = [c.id for c in claims if not c.passed]
    return f"{sum(c.passed for c in claims)} of {len(claims)} claims pass" + (f"; failing: {', '.join(failed)}" if failed else "")


def render(record: dict, full: dict | None = None) -> dict[str, str]:
    """The generated regions of docs/reproduce.md from a quick run's record (and, with `full`, a full run's:
    `render_full`)."""
    claims = claims_of(record)
    rec, manifest = record["recorded"], record["manifest"]
    timing = (f"\n`{rec['command']}` on commit {rec['commit']}, {rec['date']}, {rec['cores']} cores shared with other jobs; "
              f"load average (1, 5, 15 min) at the start {rec['load_start']}, at the end {rec['load_end']}.\n\n"
              + _whole(rec["time"], "Whole command (experiments and report)") + ".\n\n"
              + "\n".join(_experiment_rows(manifest)) + "\n\n" + PER_EXPERIMENT)
    est_rows, est_total = full_estimate(manifest)
    estimate = ("\n| experiment | quick CPU s (measured) | work full / quick | full CPU s (estimate) |\n|---|---|---|---|\n"
                + "\n".join(f"| {n} | {c:.0f} | {r:.1f} | {e:.0f} |" for n, c, r, e in est_rows)
                + f"\n| all | {sum(r[1] for r in est_rows):.0f} | | {est_total:.0f} (≈ {est_total / 3600:.1f} h of CPU) |\n")
    out = {"reproduce-claims": "\n" + claims_markdown(claims) + "\n", "reproduce-timing": timing, "reproduce-summary": _summary(claims),
           "reproduce-full-estimate": estimate}
    if full is not None:
        out.update(render_full(full, record))
    return out


def render_full(record: dict, quick: dict) -> dict[str, str]:
    """The generated regions of the full runs (`make_full_record`): the claims table of every part, a summary
    that names the experiments without a full run, the timing (each command, and per experiment next to the
    estimate from the quick run) and the claims whose verdict differs from the quick run's."""
    claims, quick_claims = claims_of(record), {c.id: c for c in claims_of(quick)}
    parts = record["parts"]
    estimate = {n: e for n, _, _, e in full_estimate(quick["manifest"])[0]}
    runs, rows, done = [], [], []
    for i, p in enumerate(parts, 1):
        t = p["time"]
        how = "`/usr/bin/time`" if p["timed"] else "no `/usr/bin/time` total: the sum of the recorded experiments' `reproduce.json` seconds"
        runs.append(f"{i}. `{p['command']}` on commit {p['commit']}, {p['start']} – {p['end']}, load average (1, 5, 15 min) "
                    f"{p['load_start']} → {p['load_end']}: wall {_minutes(t['wall'])}, CPU {_minutes(t['user'] + t['sys'])} ({how}); "
                    f"experiments {', '.join(p['experiments'])}" + (f" — {p['note']}" if p.get("note") else ""))
        rows += zip(p["experiments"], _experiment_rows({**p["manifest"], "experiments": p["experiments"]}, estimate)[2:-1])
        done += p["experiments"]
    missing = [n for n in estimate if n not in done]
    rows += [(n, f"| {n} | not run in --full | | | {estimate[n]:.0f} |") for n in missing]
    order = {n: i for i, n in enumerate(_experiment_names())}
    rows = [row for _, row in sorted(rows, key=lambda nr: order.get(nr[0], len(order)))]
    wall = sum(p["time"]["wall"] for p in parts)
    cpu = sum(p["time"]["user"] + p["time"]["sys"] for p in parts)
    head = ["| experiment | wall s | CPU s | load (1 min) at start, end | CPU s estimated from the quick run |", "|---|---|---|---|---|"]
    timing = (f"\n{record['recorded']['cores']} cores shared with other jobs; {len(parts)} command(s), each into its own results folder:\n\n"
              + "\n".join(runs) + f"\n\n**All commands together:** wall {_minutes(wall)} (the sum of the commands' wall times; commands "
              f"that overlapped in time count twice), CPU {_minutes(cpu)}.\n\n"
              + "\n".join(head + rows) + "\n\n" + PER_EXPERIMENT
              + "The estimate is the quick run's CPU seconds times the ratio of the work Σ iterations·m·n1·n2 of the full and quick "
              "configs (`full_estimate`).\n")
    diff = []
    for c in claims:
        q = quick_claims.get(c.id)
        if q is None or q.verdict != c.verdict:
            diff.append(f"| {c.id} | {q.verdict if q else 'not in the quick run'} ({q.measured_text() if q else '—'}) | "
                        f"{c.verdict} ({c.measured_text()}) | {c.threshold_text()} |")
    diff_text = ("\n| claim | quick | full | threshold |\n|---|---|---|---|\n" + "\n".join(diff) + "\n") if diff else \
        "\nEvery claim measured in --full has the same verdict as in the quick run.\n"
    summary = _summary(claims) + (f" (experiments without a full run: {', '.join(missing)})" if missing else "")
    return {"reproduce-full-claims": "\n" + claims_markdown(claims) + "\n", "reproduce-full-summary": summary,
            "reproduce-full-timing": timing, "reproduce-full-diff": diff_text}


def make_full_record(parts: list[dict], cores: int = 2) -> dict:
    """A record of `--full` runs: each part is one command with its own results folder (`results`), the
    experiments of it to record (`experiments`, default all it finished: those with seconds in its
    reproduce.json) and its measured totals (`wall`, `user`, `sys` from `/usr/bin/time`; absent for a command
    that was still running: then the sum of its finished experiments' seconds and CPU seconds), `command`,
    `commit`, `start`, `end`, `load_start`, `load_end` and an optional `note`. Each experiment may come from
    one part only."""
    out, seen, claims = [], set(), []
    for spec in parts:
        results = Path(spec["results"])
        manifest = json.loads((results / "reproduce.json").read_text(encoding="utf-8"))
        names = list(spec.get("experiments") or [n for n in manifest["experiments"] if n in manifest.get("seconds", {})])
        if seen & set(names):
            raise ValueError(f"experiments {sorted(seen & set(names))} recorded by two parts")
        seen |= set(names)
        rows = [c for c in json.loads((results / "claims.json").read_text(encoding="utf-8")) if c["experiment"] in names]
        if {c["experiment"] for c in rows} != set(names):
            raise ValueError(f"{results}/claims.json lacks the claims of {sorted(set(names) - {c['experiment'] for c in rows})}")
        timed = all(k in spec for k in ("wall", "user", "sys"))
        time_ = ({k: float(spec[k]) for k in ("wall", "user", "sys")} if timed else
                 {"wall": sum(manifest["seconds"][n] for n in names), "user": sum(manifest["cpu_seconds"][n] for n in names), "sys": 0.0})
        out.append({"command": spec["command"], "commit": spec["commit"], "start": spec["start"], "end": spec["end"],
                    "load_start": spec["load_start"], "load_end": spec["load_end"], "note": spec.get("note", ""), "timed": timed,
                    "time": time_, "experiments": names, "manifest": manifest})
        claims += rows
    order = {n: i for i, n in enumerate(_experiment_names())}
    claims.sort(key=lambda c: order.get(c["experiment"], len(order)))
    recorded = {"command": " ; ".join(p["command"] for p in out), "date": max(p["end"] for p in out), "cores": cores,
                "load_start": out[0]["load_start"], "load_end": out[-1]["load_end"]}  # the summary every docs/data record carries
    return {"recorded": recorded, "parts": out, "claims": claims}


def _experiment_names() -> list[str]:
    return list(EXPERIMENTS)


def trial_cost(name: str, mode: str) -> float:
    """Σ over the experiment's trials of max_iter·m·n1·n2: the work of the dense operator's two passes per
    iteration, which dominates every trial here (the factors' products are k/m times smaller)."""
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
    p.add_argument("--full", type=Path, metavar="PARTS.json", help="write docs/data/reproduce_full.json from the --full runs listed "
                   "in PARTS.json (see make_full_record)")
    p.add_argument("--docs", action="store_true", help="rewrite docs/reproduce.md's generated regions from the record")
    p.add_argument("--check", action="store_true", help="with --docs: only compare, exit 1 when they differ")
    a = p.parse_args(argv)
    if a.results is not None:
        record = make_record(a.results, command=a.command, commit=a.commit, wall=a.wall, user=a.user, sys_=a.sys,
                             load_start=a.load_start, load_end=a.load_end)
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if a.full is not None:
        record = make_full_record(json.loads(a.full.read_text(encoding="utf-8")))
        RECORD_FULL.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if a.docs:
        text = DOC.read_text(encoding="utf-8")
        full = json.loads(RECORD_FULL.read_text(encoding="utf-8")) if RECORD_FULL.is_file() else None
        new = fill(text, render(json.loads(RECORD.read_text(encoding="utf-8")), full))
        if new != text:
            if a.check:
                print(f"{DOC}: generated regions differ from {RECORD} (run python -m asymsense.paper.record --docs)", file=sys.stderr)
                return 1
            DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
