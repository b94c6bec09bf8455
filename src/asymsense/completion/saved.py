"""A fitted completion model as a folder, and the model loaded from it.

`asymsense complete DATA --out DIR` writes DIR/model/:

| file | content |
|---|---|
| `model.json` | format name and version, library version, the id/value column names, the clipping range, global mean, step size, init scale, chosen iterations, and the fit's full config |
| `rows.parquet`, `cols.parquet` | id (original type), bias, f_1 … f_k (factor dtype kept: the round trip is bit for bit) |
| `observed.parquet` | row, col: indices of the entries the model was fitted on (excluded from top-N) |

Parquet + JSON only, never pickle: the folder can be read by any tool and
loading it runs no code. `load_model(DIR)` (DIR or DIR/model) returns a
`SavedModel` with `predict(row_ids, col_ids)` by original ids, `top(n, rows)`
and `fold_in(row_ids, col_ids, values)` (new rows/columns from their entries,
existing factors untouched; see `completion.foldin`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from asymsense.atomic import write_json
from asymsense.errors import InputError
from asymsense.history import History, write_table
from asymsense.completion.biases import BIAS_DAMPING, Biases
from asymsense.completion.features import Features, feature_map
from asymsense.completion.foldin import DEFAULT_RIDGE, fold_in_side
from asymsense.completion.intervals import Calibration, fit_calibration
from asymsense.completion.io import IdMap, _as_id_array
from asymsense.completion.model import CompletionResult, predict_indices, top_n

MODEL_FORMAT = "asymsense-completion-model"
FORMAT_VERSION = 1
MODEL_FILES = ("model.json", "rows.parquet", "cols.parquet", "observed.parquet")


def _library_version() -> str:
    from asymsense import __version__

    return __version__


@dataclass
class SavedModel:
    """A fitted model addressed by original ids (see the module docstring).

    fit: the CompletionResult (factors, biases, clipping) in index space;
    row_map, col_map: ids ↔ indices; observed: (rows, cols) fitted on;
    names: (row id column, column id column, value column) of the input."""

    fit: CompletionResult
    row_map: IdMap
    col_map: IdMap
    observed: tuple[np.ndarray, np.ndarray]
    names: tuple[str, str, str] = ("row_id", "col_id", "value")
    meta: dict = field(default_factory=dict)
    calibration: Calibration | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.fit.shape

    @property
    def row_ids(self) -> np.ndarray:
        return self.row_map.ids

    @property
    def col_ids(self) -> np.ndarray:
        return self.col_map.ids

    def encode(self, row_ids, col_ids) -> tuple[np.ndarray, np.ndarray]:
        return self.row_map.encode(row_ids), self.col_map.encode(col_ids)

    def predict(self, row_ids, col_ids, unknown: str = "biases") -> np.ndarray:
        """Ŷ at (row id, column id) pairs; unknown ids get the biases-only
        fallback (unknown='biases') or an InputError naming the id ('error')."""
        row_ids, col_ids = _as_id_array(row_ids), _as_id_array(col_ids)
        if len(row_ids) != len(col_ids):
            raise InputError(f"row ids and column ids must have equal lengths, got {len(row_ids)} and {len(col_ids)}")
        rows, cols = self.encode(row_ids, col_ids)
        return predict_indices(self.fit, rows, cols, unknown, row_ids, col_ids)

    def activity(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """Fitted entries of each row and column index (0 for −1, an unknown id)."""
        cr = np.bincount(self.observed[0], minlength=self.shape[0])
        cc = np.bincount(self.observed[1], minlength=self.shape[1])
        return np.where(rows >= 0, cr[np.maximum(rows, 0)], 0), np.where(cols >= 0, cc[np.maximum(cols, 0)], 0)

    def predict_interval(self, row_ids, col_ids, level: float = 0.8, unknown: str = "biases"):
        """(prediction, lower, upper): Ŷ and the interval of nominal coverage
        `level` from the validation residuals by activity (`completion.intervals`)."""
        if self.calibration is None:
            raise InputError("interval: this model has no calibration (it was fitted without validation entries)", "interval")
        pred = self.predict(row_ids, col_ids, unknown)
        rows, cols = self.encode(_as_id_array(row_ids), _as_id_array(col_ids))
        lower, upper = self.calibration.interval(pred, *self.activity(rows, cols), level, self.fit.clip)
        return pred, lower, upper

    def interval_at(self, rows, cols, prediction, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around predictions at index pairs (−1: unknown id)."""
        if self.calibration is None:
            raise InputError("interval: this model has no calibration (it was fitted without validation entries)", "interval")
        return self.calibration.interval(prediction, *self.activity(np.asarray(rows), np.asarray(cols)), level, self.fit.clip)

    def coverage(self, level: float, **sets) -> dict:
        """Share of each named set's values (rows, cols, y) inside the intervals
        of nominal `level`, and the mean interval width; plus, under
        "validation", the same for the validation residuals of the selection
        run that the calibration was made from (≈ level by construction: a
        check, not a measurement; after the refit the validation entries are
        fitted, so only held-out test entries measure the coverage)."""
        out = {"level": level}
        vr = self.fit.validation_residuals
        if vr is not None and self.calibration is not None:
            zero = np.zeros(len(vr[2]))
            lower, upper = self.calibration.interval(zero, *self.activity(np.asarray(vr[0]), np.asarray(vr[1])), level)
            out["validation"] = {"coverage": float(np.mean((vr[2] >= lower) & (vr[2] <= upper))), "mean_width": float(np.mean(upper - lower)),
                                 "m": int(len(zero)), "note": "calibration set (selection run's residuals, before the refit)"}
        for name, entries in sets.items():
            if entries is None:
                continue
            rows, cols, y = (np.asarray(a) for a in entries)
            pred = predict_indices(self.fit, rows, cols, "biases")
            lower, upper = self.interval_at(rows, cols, pred, level)
            out[name] = {"coverage": float(np.mean((y >= lower) & (y <= upper))), "mean_width": float(np.mean(upper - lower)), "m": int(len(y))}
        return out

    def top(self, n: int, row_ids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(row ids, column ids, rank 1..n, prediction): the n best columns not
        observed in the fit for every row (or the given known rows)."""
        rows = None
        if row_ids is not None:
            row_ids = _as_id_array(row_ids)
            rows = self.row_map.encode(row_ids)
            if (rows < 0).any():
                bad = row_ids[int(np.argmax(rows < 0))]
                raise InputError(f"rows: unknown row id {bad!r} (not in the model; fold it in first)")
        r, c, k, p = top_n(self.fit, n, *self.observed, rows=rows)
        return self.row_map.decode(r), self.col_map.decode(c), k, p

    def fold_in(self, row_ids, col_ids, values, *, method: str = "ridge", ridge: float = DEFAULT_RIDGE) -> "SavedModel":
        """A new model with the rows and columns that are new in these entries
        folded in (biases and factors from their entries, the fitted side
        fixed); existing rows and columns keep their factors and biases bit for
        bit. New rows are folded first (from entries on known columns), then new
        columns (from entries on known rows, the new ones included). Entries
        between two known ids are not refitted; the returned model's
        `meta['fold_in']` counts each kind."""
        row_ids, col_ids = _as_id_array(row_ids), _as_id_array(col_ids)
        y = np.asarray(values, dtype=np.float64).reshape(-1)
        if not len(row_ids) == len(col_ids) == len(y):
            raise InputError(f"fold-in row ids, column ids and values must have equal lengths, got {len(row_ids)}, {len(col_ids)}, {len(y)}")
        if not np.all(np.isfinite(y)):
            raise InputError(f"fold-in values: non-finite value at entry {int(np.argmax(~np.isfinite(y)))}")
        fit, row_map, col_map = self.fit, self.row_map, self.col_map
        rows0, cols0 = self.encode(row_ids, col_ids)
        report = {"entries": int(len(y)), "method": method, "ridge": ridge if method == "ridge" else None,
                  "known_pairs_ignored": int(np.sum((rows0 >= 0) & (cols0 >= 0)))}
        opts = {"method": method, "ridge": ridge, "step": fit.step_size, "iterations": fit.best_iter or fit.n_iter,
                "init_scale": fit.init_scale, "seed": int(fit.config.get("seed") or 0)}
        obs_r, obs_c = self.observed
        b = fit.biases
        # rows: entries of new row ids on known columns
        sel = (rows0 < 0) & (cols0 >= 0)
        new_ids, inv = np.unique(row_ids[sel], return_inverse=True)
        report["new_rows"] = int(len(new_ids))
        U, r_bias = fit.U, b.rows
        if len(new_ids):
            nb, nU = fold_in_side(inv, cols0[sel], y[sel], fit.V, b.cols, b.mean, len(new_ids), damping=BIAS_DAMPING[0], **opts)
            row_map, U, r_bias, where = _extend(row_map, new_ids, U, nU, r_bias, nb)
            obs_r, obs_c = np.concatenate([where[obs_r], where[len(U) - len(new_ids) + inv]]), np.concatenate([obs_c, cols0[sel]])
        # columns: entries of new column ids on (now) known rows
        rows1 = row_map.encode(row_ids)
        sel = (cols0 < 0) & (rows1 >= 0)
        new_ids, inv = np.unique(col_ids[sel], return_inverse=True)
        report["new_cols"] = int(len(new_ids))
        V, c_bias = fit.V, b.cols
        if len(new_ids):
            nb, nV = fold_in_side(inv, rows1[sel], y[sel], U, r_bias, b.mean, len(new_ids), damping=BIAS_DAMPING[1], **opts)
            col_map, V, c_bias, where = _extend(col_map, new_ids, V, nV, c_bias, nb)
            obs_r, obs_c = np.concatenate([obs_r, rows1[sel]]), np.concatenate([where[obs_c], where[len(V) - len(new_ids) + inv]])
        report["skipped_both_new"] = int(np.sum((rows1 < 0) & (col_map.encode(col_ids) < 0)))
        new_fit = replace(fit, U=U, V=V, biases=Biases(b.mean, r_bias, c_bias))
        observed = (obs_r, obs_c)
        return SavedModel(new_fit, row_map, col_map, observed, self.names, {**self.meta, "fold_in": report}, self.calibration)

    def cold_start(self, row_features: Features | None = None, col_features: Features | None = None, ids=None) -> "SavedModel":
        """A new model with the ids of the features tables that the model does
        not know (all of them, or only those in `ids` = (row ids, col ids))
        added, their biases and factors predicted from their features by the
        ridge map fitted on the known ids (`completion.features`). Known ids
        keep their biases and factors; `meta['cold_start']` counts the added ids."""
        model, report = self, {}
        for side, feats in (("rows", row_features), ("cols", col_features)):
            if feats is None:
                continue
            idmap = model.row_map if side == "rows" else model.col_map
            F = model.fit.U if side == "rows" else model.fit.V
            bias = model.fit.biases.rows if side == "rows" else model.fit.biases.cols
            pos, found = feats.rows_for(idmap.ids)
            if found.sum() < 2:
                raise InputError(f"{side[:-1]}_features: {feats.source} has features for {int(found.sum())} of the model's ids; the map needs the known ids' features", f"{side[:-1]}_features")
            counts = np.bincount(model.observed[0 if side == "rows" else 1], minlength=len(idmap))
            W = feature_map(feats.X[pos[found]], np.column_stack([bias[found], np.asarray(F, np.float64)[found]]), counts[found])
            new = feats.ids[idmap.encode(feats.ids) < 0]
            if ids is not None:
                new = new[IdMap(ids[0] if side == "rows" else ids[1]).encode(new) >= 0]
            report[f"new_{side}"] = int(len(new))
            if not len(new):
                continue
            P = feats.X[feats.rows_for(new)[0]] @ W
            merged, F_all, b_all, where = _extend(idmap, new, F, P[:, 1:], bias, P[:, 0])
            b = model.fit.biases
            if side == "rows":
                fit = replace(model.fit, U=F_all, biases=Biases(b.mean, b_all, b.cols))
                observed = (where[model.observed[0]], model.observed[1])
                model = SavedModel(fit, merged, model.col_map, observed, model.names, model.meta, model.calibration)
            else:
                fit = replace(model.fit, V=F_all, biases=Biases(b.mean, b.rows, b_all))
                observed = (model.observed[0], where[model.observed[1]])
                model = SavedModel(fit, model.row_map, merged, observed, model.names, model.meta, model.calibration)
        return replace(model, meta={**model.meta, "cold_start": report})

    def save(self, folder) -> Path:
        """Write the model folder (see the module docstring); returns its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        fit = self.fit
        write_table(_side_table(self.row_ids, fit.biases.rows, fit.U), folder / "rows.parquet")
        write_table(_side_table(self.col_ids, fit.biases.cols, fit.V), folder / "cols.parquet")
        write_table(pa.table({"row": pa.array(self.observed[0].astype(np.int64)), "col": pa.array(self.observed[1].astype(np.int64))}),
                    folder / "observed.parquet")
        write_json(folder / "model.json", {
            "format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "library_version": _library_version(),
            "names": {"row": self.names[0], "col": self.names[1], "value": self.names[2]},
            "shape": list(self.shape), "width": int(fit.U.shape[1]), "dtype": str(fit.U.dtype),
            "global_mean": float(fit.biases.mean), "clip": list(fit.clip) if fit.clip is not None else None,
            "step_size": fit.step_size, "init_scale": fit.init_scale, "best_iter": fit.best_iter, "n_iter": fit.n_iter,
            "stop_reason": fit.stop_reason, "train_rmse": fit.train_rmse, "val_rmse": fit.val_rmse,
            "config": fit.config, "meta": self.meta,
            "calibration": self.calibration.to_json() if self.calibration is not None else None,
        })
        return folder


def from_result(result: CompletionResult, row_map: IdMap, col_map: IdMap, observed, names=None, meta=None) -> SavedModel:
    """A SavedModel of a fit (index space) with its id maps and fitted entries;
    the interval calibration comes from the fit's validation residuals."""
    names = tuple(str(n) for n in names) if names is not None else ("row_id", "col_id", "value")
    model = SavedModel(result, row_map, col_map, (np.asarray(observed[0], np.int64), np.asarray(observed[1], np.int64)), names, dict(meta or {}))
    if result.validation_residuals is not None:
        vr, vc, e = result.validation_residuals
        model.calibration = fit_calibration(e, *model.activity(np.asarray(vr, np.int64), np.asarray(vc, np.int64)))
    return model


def load_model(folder) -> SavedModel:
    """The model saved in `folder` (the model folder itself, or a `complete`
    output folder holding `model/`)."""
    folder = Path(folder)
    if not (folder / "model.json").exists() and (folder / "model" / "model.json").exists():
        folder = folder / "model"
    if not (folder / "model.json").is_file():
        raise InputError(f"{folder}: no saved model here (model/model.json is missing; `asymsense complete DATA --out DIR` writes one)")
    try:
        info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder / 'model.json'}: cannot read the model description ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise InputError(f"{folder / 'model.json'}: not an asymsense completion model")
    if info.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{folder / 'model.json'}: model format version {info.get('format_version')!r}; this asymsense reads version {FORMAT_VERSION}")
    tables = {}
    for name in MODEL_FILES[1:]:
        try:
            tables[name] = pq.read_table(folder / name)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{folder / name}: cannot read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    row_ids, r_bias, U = _read_side(tables["rows.parquet"], info["width"], folder / "rows.parquet")
    col_ids, c_bias, V = _read_side(tables["cols.parquet"], info["width"], folder / "cols.parquet")
    row_map, col_map = IdMap(row_ids), IdMap(col_ids)
    if len(row_map) != len(row_ids) or len(col_map) != len(col_ids) or not np.array_equal(row_map.ids, row_ids) or not np.array_equal(col_map.ids, col_ids):
        raise InputError(f"{folder}: ids in rows.parquet/cols.parquet are not distinct and sorted (the file was edited?)")
    clip = tuple(info["clip"]) if info.get("clip") is not None else None
    fit = CompletionResult(
        U=U, V=V, history=History(), stop_reason=info.get("stop_reason", "loaded"), n_iter=int(info.get("n_iter") or 0),
        best_iter=info.get("best_iter"), step_size=float(info["step_size"]), seconds=0.0, config=info.get("config", {}),
        biases=Biases(float(info["global_mean"]), r_bias, c_bias), clip=clip, init_scale=float(info["init_scale"]),
        train_rmse=info.get("train_rmse"), val_rmse=info.get("val_rmse"))
    obs = tables["observed.parquet"]
    observed = (obs.column("row").to_numpy().astype(np.int64), obs.column("col").to_numpy().astype(np.int64))
    names = info.get("names", {})
    calibration = Calibration.from_json(info["calibration"]) if info.get("calibration") else None
    return SavedModel(fit, row_map, col_map, observed, (names.get("row", "row_id"), names.get("col", "col_id"), names.get("value", "value")),
                      dict(info.get("meta") or {}), calibration)


def _side_table(ids, bias, F) -> pa.Table:
    cols = {"id": pa.array(ids), "bias": pa.array(np.asarray(bias, np.float64))}
    for l in range(F.shape[1]):
        cols[f"f_{l + 1}"] = pa.array(np.ascontiguousarray(F[:, l]))
    return pa.table(cols)


def _read_side(table: pa.Table, width: int, path):
    names = ["id", "bias"] + [f"f_{l + 1}" for l in range(width)]
    if table.column_names != names:
        raise InputError(f"{path}: expected columns id, bias, f_1 … f_{width}, got {', '.join(table.column_names[:5])}…")
    ids = _as_id_array(table.column("id").to_numpy(zero_copy_only=False))
    bias = table.column("bias").to_numpy().astype(np.float64)
    F = np.column_stack([table.column(n).to_numpy() for n in names[2:]]) if width else np.zeros((len(ids), 0))
    return ids, bias, np.ascontiguousarray(F)


def _extend(idmap: IdMap, new_ids, F, F_new, bias, bias_new):
    """The id map with new ids added (sorted again), factors/biases placed at
    the new indices (old rows copied unchanged), and where[i]: the new index
    of old index i (i < n_old) or of new id i − n_old."""
    ids = _as_id_array(np.concatenate([idmap.ids, new_ids]))
    order = np.argsort(ids, kind="stable")
    where = np.empty(len(ids), dtype=np.int64)
    where[order] = np.arange(len(ids))
    F_all = np.concatenate([F, np.asarray(F_new, F.dtype)])[order]
    b_all = np.concatenate([bias, bias_new])[order]
    return IdMap(ids), F_all, b_all, where
