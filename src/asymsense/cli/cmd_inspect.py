"""`asymsense inspect DATA`: describe a table before completing it."""

from __future__ import annotations

from typing import Optional

import typer

from asymsense.cli.app import command
from asymsense.completion.diagnostics import format_report, inspect_table
from asymsense.completion.workflow import load_data
from asymsense.serialize import dumps


@command("inspect")
def inspect_command(
    data: str = typer.Argument(..., help="CSV/TSV/Parquet file of (row id, column id, value) triples, or 'movielens-100k'."),
    duplicates: str = typer.Option("error", "--duplicates", help="Repeated (row, column) pairs: mean, last or error."),
    row_col: Optional[str] = typer.Option(None, "--row-col", help="Name of the row-id column (default: the first)."),
    col_col: Optional[str] = typer.Option(None, "--col-col", help="Name of the column-id column (default: the second)."),
    value_col: Optional[str] = typer.Option(None, "--value-col", help="Name of the value column (default: the third)."),
    json_out: bool = typer.Option(False, "--json", help="Print the findings as strict JSON on stdout (a number that is undefined for this table, NaN or infinite, is written as null)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of a CSV/TSV DATA file, e.g. latin-1."),
):
    """Shape, density, observations per row and column, sparse rows/columns, whether |Ω| supports a low-rank fit, and the settings `complete` would use."""
    table, _ = load_data(data, row=row_col, col=col_col, value=value_col, duplicates=duplicates, encoding=encoding)
    info = inspect_table(table)
    print(dumps(info, nonfinite="null", other="str") if json_out else format_report(info))
