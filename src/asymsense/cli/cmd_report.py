"""`asymsense report`: rebuild figures and report from stored results, without recomputing."""

from __future__ import annotations

from pathlib import Path

import typer

from asymsense.cli.app import app, console, handle_errors
from asymsense.paper.claims import claims_json
from asymsense.paper.report import build_report


@app.command("report")
@handle_errors
def report(
    out: Path = typer.Argument(..., metavar="OUT", help="A folder written by `asymsense reproduce`."),
    json_out: bool = typer.Option(False, "--json", help="Print the claims table as JSON on stdout."),
):
    """Rebuild figures, report.md, report.html and claims.json from the stored results in OUT."""
    claims, _ = build_report(out, console=None if json_out else console)
    if json_out:
        print(claims_json(claims))
    else:
        passed = sum(c.passed for c in claims)
        console.print(f"{passed} of {len(claims)} claims pass; report: {out / 'report.md'}, {out / 'report.html'}")
