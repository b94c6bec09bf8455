"""Fill the generated regions of README.md and docs/*.md from actual runs.

    python docs/build.py            # run the commands, rewrite the regions
    python docs/build.py --check    # exit 1 and list the regions that differ

A region is `<!-- generated:NAME -->…<!-- /generated -->` (inline or over
several lines); everything between the markers is replaced by RENDER[NAME].
The values come from deterministic runs with the documented seeds
(`asymsense demo`, `asymsense solve` with the commands shown), so a change
of the code that alters a documented number makes the committed docs
differ, and tests/test_docs_generated.py fails until this script is rerun.

Timings are never generated into a transcript: a transcript shows `…` in
place of seconds (each document states its timings in one place, with the
command, the date and the machine's load).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REGION = re.compile(r"(<!-- generated:(?P<name>[\w.-]+) -->)(?P<body>.*?)(<!-- /generated -->)", re.S)
TIMING = [
    (re.compile(r"(in )\d+(?:\.\d+)? s(:)"), r"\1… s\2"),                         # "wrote 6 files to X/ in 35.9 s:"
    (re.compile(r"(│ seconds +│ +)\d\.\d{3}e[+-]\d\d( │)"), lambda m: m.group(1) + " " * 8 + "…" + m.group(2)),  # same width
    (re.compile(r'("seconds": )[0-9.e+-]+'), r"\1…"),
]
SOLVE_TABLE = ["solve", "--config", "run.toml", "--max-iter", "500", "--out", "solve-run"]
SOLVE_JSON = ["solve", "--n1", "50", "--n2", "20", "--rank", "2", "--alpha", "1e-5", "--max-iter", "400", "--json"]
RUN_TOML = "n1 = 50\nn2 = 20\nrank = 2\ncond = 4.0\nwidth = 50\nalpha = 1e-5\nmax_iter = 400\nseed = 1\n"


def _cli(args, cwd) -> str:
    env = dict(os.environ, COLUMNS="100", MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, "-m", "asymsense", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"asymsense {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def untimed(text: str) -> str:
    for pattern, replacement in TIMING:
        text = pattern.sub(replacement, text)
    return text


def transcript(args, output: str) -> str:
    return "\n```text\n$ asymsense " + " ".join(args) + "\n" + untimed(output).rstrip() + "\n```\n"


def abridged_json(output: str) -> str:
    """The solve --json record with its numbers to 6 significant digits, `config` on a few lines and `solver` cut short, as the docs show it."""
    record = json.loads(output)
    head = {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in record.items() if k not in ("config", "solver")}
    lines = ["{"] + [f'  "{k}": {json.dumps(v)},' for k, v in head.items()]
    items = [f'"{k}": {json.dumps(v)}' for k, v in record["config"].items()]
    chunks, line = [], ""
    for item in items:
        if line and len(line) + len(item) > 90:
            chunks.append(line.rstrip())
            line = ""
        line += item + ", "
    chunks.append(line.rstrip(", "))
    lines.append('  "config": {')
    lines += ["    " + c for c in chunks[:-1]] + ["    " + chunks[-1]]
    lines.append("  },")
    solver = record["solver"]
    lines.append(f'  "solver": {{ "step_rule": {json.dumps(solver.get("step_rule"))}, ... }}')
    lines.append("}")
    return untimed("\n".join(lines))


def measure() -> dict:
    """Run the documented commands once (in a temporary folder) and collect what the regions show."""
    with tempfile.TemporaryDirectory(prefix="asymsense-build-") as tmp:
        demo_out = _cli(["demo"], tmp)
        summary = json.loads((Path(tmp) / "asymsense-demo" / "summary.json").read_text())
        (Path(tmp) / "run.toml").write_text(RUN_TOML)
        solve_table = _cli(SOLVE_TABLE, tmp)
        solve_json = _cli(SOLVE_JSON, tmp)
    return {"demo_out": demo_out, "demo": summary, "solve_table": solve_table, "solve_json": solve_json, "guide_alpha": guide_alpha()}


def guide_alpha() -> str:
    """The README guide's α table and fitted slope, from benchmarks/guide_measurements.py (its first table: one batched fgd call)."""
    import importlib.util

    from threadpoolctl import threadpool_limits

    spec = importlib.util.spec_from_file_location("guide_measurements", ROOT / "benchmarks" / "guide_measurements.py")
    guide = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(guide)
    with threadpool_limits(1):
        return guide.alpha_table(*guide.setup())


def power_of_ten(x: float) -> str:
    """3.3e-03 as 3.3·10⁻³."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}·10" + str(int(exponent)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def render(values: dict) -> dict[str, str]:
    demo = values["demo"]
    wide = [t for t in demo["trials"] if t["width"] == max(demo["config"]["widths"])]
    small = [t["max_rel_imbalance"] for t in wide if t["init_scale"] <= 1e-2]
    plateau = sorted(small)[len(small) // 2]
    alpha_table, slope_line = values["guide_alpha"].split("\n\nFitted slope of log error vs log α: ")
    return {
        "guide-alpha-table": "\n\n" + alpha_table.replace("| None |", "| never |") + "\n\n",
        "guide-alpha-slope": slope_line.strip(),
        **guide_alpha_facts(alpha_table),
        "demo-slope": f"{demo['fitted_slope']:.2f}",
        "demo-imbalance": power_of_ten(plateau),
        "demo-transcript": transcript(["demo"], values["demo_out"]),
        "solve-table": transcript(SOLVE_TABLE, values["solve_table"]),
        "solve-json": "\n```text\n$ asymsense " + " ".join(SOLVE_JSON) + "\n" + abridged_json(values["solve_json"]) + "\n```\n",
    }


def guide_alpha_facts(table: str) -> dict[str, str]:
    """Numbers the guide's prose reads off the α table: iterations per decade of 1/α
    to reach 1e-2 (from α = 1e-3 to the smallest α that got there) and the range
    of the imbalance plateau (α ≤ 1e-3)."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()[2:]]
    small = [(float(a), int(it), float(imb)) for a, _, it, imb in rows if float(a) <= 1e-3 and it not in ("None", "never")]
    (a0, i0, _), (a1, i1, _) = small[0], small[-1]
    per_decade = (i1 - i0) / np.log10(a0 / a1)
    plateau = [imb for _, _, imb in small]
    return {"guide-alpha-per-decade": f"{per_decade:.0f}", "guide-alpha-plateau": f"{power_of_ten(min(plateau))}–{power_of_ten(max(plateau))}"}


DOCUMENTS = ["README.md", "docs/cli.md"]


def fill(text: str, rendered: dict[str, str]) -> str:
    def replace(m):
        name = m.group("name")
        if name not in rendered:
            raise SystemExit(f"unknown generated region {name!r}")
        return m.group(1) + rendered[name] + m.group(4)

    return REGION.sub(replace, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a region differs")
    args = parser.parse_args(argv)
    rendered = render(measure())
    stale = []
    for name in DOCUMENTS:
        path = ROOT / name
        text = path.read_text()
        new = fill(text, rendered)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print("generated regions differ from what the code prints now: " + ", ".join(stale) + " (run python docs/build.py)", file=sys.stderr)
        return 1
    print(("up to date: " if not stale else "rewrote: ") + ", ".join(stale or DOCUMENTS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
