"""`asymsense pilot DATA --out DIR`: is low-rank completion worth it on our data?
(inspect, a short K-fold CV of the baselines and the model at three settings, one page)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from asymsense.cli.app import app, handle_errors
from asymsense.cli.cmd_complete import warning_in_cli_terms
from asymsense.atomic import check_new_out_dir
from asymsense.jobs.pilot import run_pilot, verdict_words


@app.command("pilot")
@handle_errors
def pilot_command(
    data: str = typer.Argument(..., help="CSV/TSV/Parquet file of (row id, column id, value) triples, or 'movielens-100k'."),
    out: Path = typer.Option(..., "--out", help="Output directory: pilot.html (one page) and pilot.json."),
    folds: int = typer.Option(3, "--folds", help="Folds of the cross-validation (2-10)."),
    sample: float = typer.Option(1.0, "--sample", help="Share of the rows to run the pilot on (seeded); time and memory are projected to the whole table."),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds, the row sample and the initializations."),
    max_iter: int = typer.Option(2000, "--max-iter", help="Iteration budget of each fit (early stopping normally ends it first)."),
    row_col: Optional[str] = typer.Option(None, "--row-col", help="Name of the row-id column (default: the first)."),
    col_col: Optional[str] = typer.Option(None, "--col-col", help="Name of the column-id column (default: the second)."),
    value_col: Optional[str] = typer.Option(None, "--value-col", help="Name of the value column (default: the third)."),
    duplicates: str = typer.Option("error", "--duplicates", help="Repeated (row, column) pairs: mean, last or error."),
    json_out: bool = typer.Option(False, "--json", help="Print pilot.json on stdout."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the outputs of another run in --out (otherwise a non-empty --out is refused)."),
):
    """Is it worth it on our data? Improvement over the biases, time and memory per fit (and projected), recommended settings, risks."""
    check_new_out_dir(out, overwrite=overwrite)
    pilot = run_pilot(data, out, overwrite=overwrite, folds=folds, seed=seed, sample=sample, max_iter=max_iter, row=row_col, col=col_col, value=value_col,
                      duplicates=duplicates, command=shlex.join(["asymsense", *sys.argv[1:]]), warning_terms=warning_in_cli_terms)
    if json_out:
        print(json.dumps(pilot, indent=2, default=str))
        return
    for line in verdict_words(pilot):
        print(line)
    for risk in pilot["risks"]:
        print(f"risk ({risk['setting']}): {risk['message']}", file=sys.stderr)
    print(f"page: {out / 'pilot.html'}")
