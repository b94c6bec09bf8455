"""`asymsense pilot DATA --out DIR`: is low-rank completion worth it on our data?
(inspect, a short K-fold CV of the baselines and the model at three settings, one page)."""

from __future__ import annotations

import json
import shlex
import sys

import typer

from asymsense.cli.options import COMPLETION
from asymsense.cli.app import command
from asymsense.cli.cmd_complete import warning_in_cli_terms
from asymsense.atomic import check_new_out_dir
from asymsense.jobs.pilot import run_pilot, verdict_words


@command("pilot", table=COMPLETION)
def pilot_command(
    data: str = typer.Argument(..., help="CSV/TSV/Parquet file of (row id, column id, value) triples, or 'movielens-100k'."),
    *,
    out, folds, sample, seed, max_iter, row_col, col_col, value_col, duplicates, json_out, overwrite,
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
