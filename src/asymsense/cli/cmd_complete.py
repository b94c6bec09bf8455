"""`asymsense complete DATA --out DIR`: complete a (row id, column id, value) table."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, TextColumn
from rich.table import Table

from asymsense.atomic import check_new_out_dir
from asymsense.cli.options import COMPLETION
from asymsense.cli.app import command, in_cli_terms
from asymsense.cli.progress import progress_bar
from asymsense.completion.cv import SPLITS, run_cv, run_time_split
from asymsense.errors import InputError
from asymsense.completion.workflow import run_complete


def warning_in_cli_terms(warning):
    """A guardrail restated for the command line: its advice names the flags
    of the parameters it names (`in_cli_terms`); printed, in warnings.json and
    in the report alike."""
    return dataclasses.replace(warning, message=in_cli_terms(warning.message), advice=in_cli_terms(warning.advice, names=warning.parameters))


def sharded_command(data, out, scheduler, dask_local, options, json_out, row_col, col_col, value_col, duplicates, encoding, unsupported):
    """`complete --scheduler/--dask-local`: the sharded fit (completion.sharded_workflow)."""
    from asymsense.completion.sharded_workflow import run_complete_sharded

    given = [flag for flag, value in unsupported.items() if value is not None]
    if given:
        raise InputError(f"{given[0]} is not available with --scheduler/--dask-local (the sharded fit writes the model; "
                         f"run `asymsense predict {out} --top N` or `--pairs FILE` on it)")
    if scheduler is not None and dask_local is not None:
        raise InputError("give either --scheduler or --dask-local, not both")
    if dask_local is not None and dask_local < 1:
        raise InputError(f"--dask-local must be >= 1, got {dask_local}")
    summary = run_complete_sharded(data, out, scheduler=scheduler, dask_local=dask_local, row=row_col, col=col_col, value=value_col,
                                   duplicates=duplicates, fit_options=options, encoding=encoding)
    if json_out:
        print(json.dumps(summary, indent=2, default=str))
        return
    workers = summary["config"]["sharded"]["workers"]
    print(f"{summary['source']}: {summary['shape'][0]}×{summary['shape'][1]}, {summary['m']} entries on {workers} worker(s): "
          f"train RMSE {summary['train_rmse']:.4f}, validation RMSE {summary['val_rmse']:.4f}; {summary['iterations']} iterations "
          f"({summary['stop_reason']}, best {summary['best_iter']}), {summary['seconds']:.2f} s → {out / 'model'} "
          f"(predictions: asymsense predict {out} --top N)")


@command("complete", table=COMPLETION)
def complete_command(
    data: str = typer.Argument(..., help="CSV/TSV/Parquet file of (row id, column id, value) triples, or 'movielens-100k' (fixed seeded 80/10/10 split)."),
    *,
    out, pairs, top, row_labels, col_labels, row_features, col_features, features, test, compare, json_out, interval, split,
    time_col, cv, width, alpha, step, max_iter, patience, validation, validation_kind, biases, clip, l2, refit, ensemble,
    implicit, duplicates, test_fraction, row_col, col_col, value_col, seed, dtype, scheduler, dask_local, encoding, overwrite,
):
    """Complete a partially observed table: predictions, factors, summary.json and an HTML report."""
    options = {
        "width": width, "max_iter": max_iter, "patience": patience, "validation": validation, "validation_kind": validation_kind,
        "biases": biases, "clip": clip, "l2": l2, "refit": refit, "seed": seed, "dtype": dtype,
        "init_scale": alpha if alpha is not None else "auto", "step_size": step if step is not None else "auto",
    }
    if scheduler is not None or dask_local is not None:
        sharded_command(data, out, scheduler, dask_local, options, json_out, row_col, col_col, value_col, duplicates, encoding,
                        {"--pairs": pairs, "--top": top, "--test": test, "--compare": compare or None, "--interval": interval, "--cv": cv,
                         "--split": None if split == "random" else split, "--row-labels": row_labels, "--col-labels": col_labels,
                         "--ensemble": ensemble if ensemble != 1 else None, "--implicit": implicit or None})
        return
    options["ensemble"], options["implicit"] = ensemble, implicit
    check_new_out_dir(out, overwrite=overwrite)  # written whole at the end (atomic.output_dir), never mixed with another run's
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}", "split")
    if split == "time":
        summary = run_time_split(data, out, overwrite=overwrite, test_fraction=test_fraction, time_col=time_col, row=row_col, col=col_col, value=value_col,
                                 duplicates=duplicates, fit_options=options)
        if json_out:
            print(json.dumps(summary, indent=2, default=str))
            return
        print(f"{summary['source']}: time split (latest {test_fraction:.0%} of each row's entries, {summary['split']['m_test']} entries): "
              f"test RMSE {summary['test_rmse']:.4f} (biases only {summary['test_rmse_biases']:.4f}), {summary['seconds']:.2f} s → {out}")
        return
    if cv is not None:
        options.pop("refit"), options.pop("validation_kind")
        summary = run_cv(data, out, cv, overwrite=overwrite, row=row_col, col=col_col, value=value_col, duplicates=duplicates,
                         fit_options={**options, "refit": refit, "validation_kind": validation_kind})
        if json_out:
            print(json.dumps(summary, indent=2, default=str))
            return
        res = summary["cv"]
        for fold in res["folds"]:
            print(f"fold {fold['fold'] + 1}/{res['k']}: test RMSE {fold['test_rmse']:.4f} ({fold['m_test']} entries), "
                  f"validation RMSE {fold['val_rmse']:.4f}, best iteration {fold['best_iter']}, {fold['seconds']:.2f} s")
        print(f"{summary['source']}: {res['k']}-fold CV (seed {res['seed']}): test RMSE {res['test_rmse_mean']:.4f} ± {res['test_rmse_sd']:.4f}, "
              f"{res['seconds_mean']:.2f} s per fold → {out}")
        return
    with progress_bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}")) as bar:
        task = bar.add_task("fitting", total=max_iter, done=f"iter 0/{max_iter} · val RMSE —")
        baselines = None

        def progress(t, val_rmse):
            bar.update(task, completed=t, done=f"iter {t}/{max_iter} · val RMSE " + (f"{val_rmse:.4f}" if val_rmse is not None else "—"))

        def compare_progress(method, done, total):
            nonlocal baselines
            if baselines is None:
                bar.update(task, visible=False)
                baselines = bar.add_task("baselines", total=total, done="")
            bar.update(baselines, completed=done, done=f"{done}/{total}" + (f" · fitting {method}" if done < total else ""))

        summary = run_complete(
            data, out, overwrite=overwrite, pairs=pairs, top=top, test=test, compare=compare, test_fraction=test_fraction,
            row=row_col, col=col_col, value=value_col, duplicates=duplicates, fit_options=options, progress=progress, encoding=encoding,
            row_labels=row_labels, col_labels=col_labels, command=shlex.join(["asymsense", *sys.argv[1:]]), interval=interval,
            row_features=row_features, col_features=col_features, features=features, warning_terms=warning_in_cli_terms,
            compare_progress=compare_progress if compare else None,
        )
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if json_out:
        print(json.dumps(summary, indent=2, default=str))
        return
    if compare:
        table = Table(title="test RMSE on the same split")
        for name in ("method", "test RMSE", "val RMSE", "seconds (chosen fit)", "seconds (with tuning)"):
            table.add_column(name)
        for row in summary["compare"]:
            table.add_row(row["method"], f"{row['test_rmse']:.4f}", f"{row['val_rmse']:.4f}" if row["val_rmse"] is not None else "—",
                          f"{row['seconds']:.2f}", f"{row['tuning_seconds']:.2f}")
        Console(file=sys.stdout).print(table)
    test_part = f", test RMSE {summary['test_rmse']:.4f}" if summary.get("test_rmse") is not None else ""
    if summary.get("test_unknown_ids"):  # counted and shown apart: the RMSE above is of the pairs the model knows
        unknown, m_test = summary["test_unknown_ids"], summary["test_m"]
        test_part = (f"{test_part} on {m_test - unknown} of {m_test} test entries" if test_part else ", no test RMSE") + \
            f" ({unknown} with ids not in the data: RMSE {summary['test_rmse_unknown_ids']:.4f} from the biases alone)"
    print(f"{summary['source']}: {summary['shape'][0]}×{summary['shape'][1]}, train RMSE {summary['train_rmse']:.4f}, "
          f"validation RMSE {summary['val_rmse']:.4f}{test_part}; {summary['iterations']} iterations ({summary['stop_reason']}, best {summary['best_iter']}), "
          f"effective rank {summary['eff_rank']:.1f}, {summary['seconds']:.2f} s → {out}")
    if summary.predictions:
        p = summary.predictions
        what = f"top {p['n']} unobserved columns per row" if p["kind"] == "top" else "the requested pairs"
        unknown = summary.get("predictions", {}).get("unknown_ids_biases_only") if p["kind"] == "pairs" else 0
        print(f"predictions ({what}, {p['rows']} lines): {p['path']}" + (" (--top 0 to skip)" if p.get("default") else "")
              + (f"; {unknown} pairs with an id not in the data are predicted from the biases alone" if unknown else ""))
    print(f"report: {out / 'report.html'}" + (f"; {len(summary.warnings)} warning(s) in {out / 'warnings.json'}" if summary.warnings else ""))
