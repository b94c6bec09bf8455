"""`asymsense predict DIR --pairs PAIRS.csv --out PRED.csv` (or `--top N [--rows IDS.csv]`):
predict from the model that `asymsense complete DATA --out DIR` saved in DIR/model/,
optionally folding in new rows/columns first (`--fold-in NEW.csv`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from asymsense.cli.options import COMPLETION
from asymsense.cli.app import command
from asymsense.jobs.predict import run_predict


@command("predict", table=COMPLETION)
def predict_command(
    model_dir: Path = typer.Argument(..., help="Output folder of `asymsense complete` (holding model/) or the model folder itself."),
    *,
    out, pairs, top, rows, fold_in, fold_in_method, ridge, precision, row_features, col_features, interval, save_model, row_col,
    col_col, value_col, json_out,
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
