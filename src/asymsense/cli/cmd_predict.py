"""`asymsense predict DIR --pairs PAIRS.csv --out PRED.csv` (or `--top N [--rows IDS.csv]`):
predict from the model that `asymsense complete DATA --out DIR` saved in DIR/model/,
optionally folding in new rows/columns first (`--fold-in NEW.csv`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from asymsense.cli.app import app, handle_errors
from asymsense.jobs.predict import run_predict


@app.command("predict")
@handle_errors
def predict_command(
    model_dir: Path = typer.Argument(..., help="Output folder of `asymsense complete` (holding model/) or the model folder itself."),
    out: Path = typer.Option(..., "--out", help="CSV file to write (the id columns keep the input's names, plus prediction)."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="File of (row id, column id) pairs to predict."),
    top: Optional[int] = typer.Option(None, "--top", help="The N best columns not yet observed for every row (or the rows of --rows)."),
    rows: Optional[Path] = typer.Option(None, "--rows", help="With --top: file whose first column lists the row ids to rank for."),
    fold_in: Optional[Path] = typer.Option(None, "--fold-in", help="(row id, column id, value) entries of new rows/columns to fold in first, without refitting."),
    fold_in_method: str = typer.Option("ridge", "--fold-in-method", help="ridge (damped least squares, default) or descent (the fit's descent with the other side fixed)."),
    ridge: float = typer.Option(5.0, "--ridge", help="Damping λ of the ridge fold-in."),
    precision: int = typer.Option(4, "--precision", help="Decimals of the predictions."),
    row_features: Optional[Path] = typer.Option(None, "--row-features", help="Table of row id + attributes: rows with no entries get biases and factors predicted from their attributes (cold start)."),
    col_features: Optional[Path] = typer.Option(None, "--col-features", help="Table of column id + attributes: columns with no entries get biases and factors predicted from their attributes (cold start)."),
    interval: Optional[float] = typer.Option(None, "--interval", help="Add lower and upper bounds of this nominal coverage (e.g. 0.8), from validation residuals by row/column activity."),
    save_model: Optional[Path] = typer.Option(None, "--save-model", help="Write the model with the folded-in rows/columns to this folder."),
    row_col: Optional[str] = typer.Option(None, "--row-col", help="Name of the row-id column in the input files (default: the first)."),
    col_col: Optional[str] = typer.Option(None, "--col-col", help="Name of the column-id column (default: the second)."),
    value_col: Optional[str] = typer.Option(None, "--value-col", help="Name of the value column of --fold-in (default: the third)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
):
    """Predict with a saved completion model: pairs or top-N, with optional fold-in of new rows/columns."""
    summary = run_predict(model_dir, out, pairs=pairs, top=top, rows=rows, fold_in=fold_in, fold_in_method=fold_in_method, ridge=ridge,
                          precision=precision, interval=interval, row_features=row_features, col_features=col_features, save_model=save_model, row=row_col, col=col_col, value=value_col)
    if json_out:
        print(json.dumps(summary, indent=2, default=str))
        return
    folded = summary.get("fold_in")
    fold_part = f"; folded in {folded['new_rows']} rows and {folded['new_cols']} columns in {folded['seconds']:.3f} s" if folded else ""
    unknown = summary["predictions"].get("unknown_ids_biases_only")
    unknown_part = f" ({unknown} pairs with an id the model does not know: biases alone)" if unknown else ""
    print(f"{summary['predictions']['n']} {'pairs' if summary['predictions']['kind'] == 'pairs' else 'per row'} predicted{unknown_part}{fold_part} → {out}")
