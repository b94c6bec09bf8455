"""`asymsense complete DATA --scheduler tcp://HOST:PORT` / `--dask-local N`:
the fit of `completion.sharded` with the outputs a later `asymsense predict`
needs.

DATA is a directory or glob of Parquet files (read by the workers, block by
block: `completion.outofcore`; validation entries chosen by a hash of each
entry) or anything `complete` reads (read here, split exactly as
`completion.workflow.run_complete` splits it, then spread over the workers).

Outputs in DIR (each written atomically, only after the fit succeeded):
model/ (`completion.saved`: factors, biases, id maps, fitted entries, config),
history.parquet and summary.json. Not written: predictions, the HTML report
and the comparison, which read the whole table in one process; run
`asymsense predict DIR --top N` (or --pairs) on the result instead.
"""

from __future__ import annotations

import time

import numpy as np

from asymsense.atomic import write_text
from asymsense.history import write_table
from asymsense.serialize import dumps
from asymsense.validation import check_validation_share, resolve_seed
from asymsense.completion.io import parquet_files
from asymsense.completion.saved import from_result
from asymsense.completion.sharded import fit_shards, shard_arrays, shard_parquet
from asymsense.completion.workflow import check_out_dir, load_data
from asymsense.solvers.stopping import split_entries

OUTPUT_FILES = ("model", "history.parquet", "summary.json")


def run_complete_sharded(data, out, *, scheduler: str | None = None, dask_local: int | None = None, row=None, col=None, value=None,
                         duplicates: str = "error", fit_options: dict | None = None, progress=None, encoding: str = "utf-8") -> dict:
    """Fit on the cluster and write DIR (see the module docstring); returns the summary dict."""
    from asymsense.cluster import dask_client

    started = time.perf_counter()
    fit_options = dict(fit_options or {})
    out = check_out_dir(out)
    seed = resolve_seed(fit_options.pop("seed", None))
    validation = check_validation_share(fit_options.pop("validation", 0.1))
    validation_kind = fit_options.pop("validation_kind", "entries")
    files = parquet_files(data)
    table = None
    if files is None:
        table, fixed = load_data(data, row=row, col=col, value=value, duplicates=duplicates, encoding=encoding)
        if fixed is not None:
            train_idx, val_idx = fixed[0], fixed[1]
        else:
            train_idx, val_idx = split_entries(table.rows, table.shape[0], validation, validation_kind, seed)
    with dask_client(scheduler=scheduler, dask_local=dask_local) as client:
        if files is not None:
            shards = shard_parquet(client, files, source=str(data), row=row, col=col, value=value, duplicates=duplicates,
                                   validation=validation, validation_kind=validation_kind, seed=seed)
            source, m, n_dup = str(data), shards.info["m"], shards.info["duplicates_merged"]
        else:
            val = (table.rows[val_idx], table.cols[val_idx], table.values[val_idx])
            shards = shard_arrays(client, table.rows[train_idx], table.cols[train_idx], table.values[train_idx], table.shape, val)
            shards.validation = {"kind": validation_kind if fixed is None else "fixed", "validation": validation, "seed": seed, "m": int(len(val_idx))}
            shards.row_map, shards.col_map, shards.names = table.row_map, table.col_map, table.names
            source, m, n_dup = table.source, table.m, table.n_duplicates
        result = fit_shards(shards, seed=seed, progress=progress, **fit_options)
        observed = shards.call("observed", what="collecting the fitted entries")
    observed = (np.concatenate([o[0] for o in observed]), np.concatenate([o[1] for o in observed]))
    summary = {"source": source, "shape": list(shards.shape), "m": m, "duplicates_merged": n_dup}
    summary.update(result.summary())
    summary["m_train"] = result.config["m_train"]
    summary["global_mean"] = result.biases.mean
    summary["seconds_total"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    from_result(result, shards.row_map, shards.col_map, observed, shards.names, {"source": source}).save(out / "model")
    write_table(result.history.to_arrow(), out / "history.parquet")
    write_text(out / "summary.json", dumps(summary, nonfinite="keep", other="str"))
    return summary
