"""`asymsense report`: rebuild figures and report from stored results, without recomputing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from asymsense.cli.app import command, console, fail
from asymsense.paper.claims import claims_json
from asymsense.paper.report import build_report


@command("report")
def report(
    folder: Optional[Path] = typer.Argument(None, metavar="[OUT]", help="A folder written by `asymsense reproduce` (or give it as --out)."),
    out_option: Optional[Path] = typer.Option(None, "--out", help="The same folder, as every other command names its output folder."),
    json_out: bool = typer.Option(False, "--json", help="Print the claims table as JSON on stdout."),
):
    """Rebuild figures, report.md, report.html and claims.json from the stored results in OUT (`report OUT` or `report --out OUT`)."""
    if folder is not None and out_option is not None and folder != out_option:
        fail(f"give the folder once: OUT {folder} and --out {out_option} differ")
    out = folder if folder is not None else out_option
    if out is None:
        fail("give the folder written by `asymsense reproduce`: asymsense report --out DIR")
    claims, sections = build_report(out, console=None if json_out else console)
    if json_out:
        print(claims_json(claims))
    else:
        passed = sum(c.passed for c in claims)
        console.print(f"{passed} of {len(claims)} claims pass; report: {out / 'report.md'}, {out / 'report.html'}")
    broken = [sec for sec in sections if sec.error]
    if broken:  # stored results that cannot be analyzed are bad input, even though the report shows them as FAIL
        first = broken[0]
        fail(f"the stored results of {', '.join(s.name for s in broken)} could not be analyzed ({first.error[:200]}); "
             f"the report marks their claims as FAIL; `asymsense reproduce -e {first.name} --out {out}` recomputes them")
