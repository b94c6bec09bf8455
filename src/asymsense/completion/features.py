"""Side features and cold start: biases and factors of ids with no entries,
predicted from their attributes.

A features table has one row per id: the id (first column) and attributes.
Each attribute column is encoded once (`FeatureEncoding`, plain JSON):
- numeric → standardized (mean 0, sd 1 over the table);
- text whose values contain spaces or '|' (genres "Action Comedy", titles) →
  multi-hot over its most frequent tokens (at most MAX_LEVELS, each seen at
  least MIN_COUNT times);
- other text (gender, occupation, region) → one-hot over its most frequent
  values (at most MAX_LEVELS); rarer values share an "other" level;
plus an intercept. The encoded row is x ∈ R^d.

Cold start (feature-based side, chosen over a hybrid x_iᵀ W y_j term because it
needs no change to the fit and reuses its factors): on the ids the model
knows, a ridge regression maps x to what the fit learned for the id — its bias
and its factor row, T = [c_j, v_j] — with each id weighted by n_j/(n_j + 25)
(its entries n_j: biases and factors of rarely observed ids are mostly noise):
W = (XᵀDX + λI)⁻¹ XᵀDT, λ = 1. A new id with features but no entries gets
(ĉ, v̂) = xW, so its predictions are b + r_i + ĉ + u_iᵀv̂ instead of the
biases-only fallback b + r_i. Existing ids keep their biases and factors.
benchmarks/bench_completion_coldstart.py measures the gain on MovieLens-100k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from asymsense.completion.io import _as_id_array, read_arrow
from asymsense.errors import InputError

MAX_LEVELS = 50
MIN_COUNT = 5
FEATURE_RIDGE = 1.0
WEIGHT_DAMPING = 25.0


@dataclass
class FeatureEncoding:
    """How each attribute column becomes columns of x (JSON-serializable)."""

    columns: list  # [{"name", "kind": "numeric"|"tokens"|"category", "mean", "sd" | "levels"}]

    @property
    def width(self) -> int:
        return 1 + sum(1 if c["kind"] == "numeric" else len(c["levels"]) + (c["kind"] == "category") for c in self.columns)

    def encode(self, table: pa.Table) -> np.ndarray:
        """x for every row of `table` (the attribute columns by name)."""
        parts = [np.ones((table.num_rows, 1))]
        for c in self.columns:
            values = table.column(c["name"]).to_pylist()
            if c["kind"] == "numeric":
                v = np.array([np.nan if x is None else float(x) for x in values])
                parts.append(np.nan_to_num((v - c["mean"]) / c["sd"])[:, None])
                continue
            index = {level: i for i, level in enumerate(c["levels"])}
            width = len(c["levels"]) + (c["kind"] == "category")
            block = np.zeros((len(values), width))
            for r, x in enumerate(values):
                if c["kind"] == "tokens":
                    for tok in _tokens(x):
                        if tok in index:
                            block[r, index[tok]] = 1.0
                else:
                    block[r, index.get("" if x is None else str(x), width - 1)] = 1.0
            parts.append(block)
        return np.hstack(parts)

    def to_json(self) -> dict:
        return {"columns": self.columns}


def _tokens(x) -> list[str]:
    return [] if x is None else str(x).replace("|", " ").split()


def _is_numeric(column: pa.ChunkedArray) -> bool:
    return pa.types.is_integer(column.type) or pa.types.is_floating(column.type)


@dataclass
class Features:
    """Encoded features of a table of ids: ids[i] ↔ X[i]."""

    ids: np.ndarray
    X: np.ndarray
    encoding: FeatureEncoding
    source: str = "<features>"

    def rows_for(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(positions in this table, mask of the ids that have features)."""
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        ids = _as_id_array(ids)
        if ids.dtype.kind != sorted_ids.dtype.kind:
            ids, sorted_ids = ids.astype(str), sorted_ids.astype(str)
            order = np.argsort(sorted_ids, kind="stable")
            sorted_ids = sorted_ids[order]
        pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        found = sorted_ids[pos] == ids
        return order[pos], found


def read_features(source, *, name: str | None = None, columns=None) -> Features:
    """Read a features table: the first column is the id, the others (or
    `columns`) are attributes, encoded as the module docstring says."""
    table, display, _ = read_arrow(source, name=name)
    if table.num_columns < 2:
        raise InputError(f"{display}: a features table needs an id column and at least one attribute column", "features")
    id_name = table.column_names[0]
    ids_col = table.column(id_name)
    if ids_col.null_count:
        raise InputError(f"{display}: missing id in column {id_name!r}", "features")
    ids = _as_id_array(ids_col.to_numpy(zero_copy_only=False))
    if len(np.unique(ids)) != len(ids):
        raise InputError(f"{display}: repeated id in column {id_name!r} (one row per id)", "features")
    names = [n for n in table.column_names[1:] if columns is None or n in columns]
    spec = []
    for n in names:
        col = table.column(n)
        if _is_numeric(col):
            v = np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)
            finite = v[np.isfinite(v)]
            sd = float(finite.std()) if len(finite) else 1.0
            spec.append({"name": n, "kind": "numeric", "mean": float(finite.mean()) if len(finite) else 0.0, "sd": sd if sd > 0 else 1.0})
            continue
        values = ["" if x is None else str(x) for x in col.to_pylist()]
        multi = any((" " in x) or ("|" in x) for x in values)
        items = [t for x in values for t in _tokens(x)] if multi else values
        levels, counts = np.unique(np.array(items, dtype=str), return_counts=True) if items else (np.array([]), np.array([]))
        keep = np.argsort(-counts, kind="stable")[:MAX_LEVELS]
        keep = keep[counts[keep] >= (MIN_COUNT if multi else 1)]
        spec.append({"name": n, "kind": "tokens" if multi else "category", "levels": sorted(levels[keep].tolist())})
    encoding = FeatureEncoding(spec)
    return Features(ids, encoding.encode(table), encoding, display)


def feature_map(X, targets, counts, ridge: float = FEATURE_RIDGE) -> np.ndarray:
    """W = (XᵀDX + λI)⁻¹ XᵀDT with D = diag(n/(n + 25)) (the module docstring)."""
    w = np.asarray(counts, float) / (np.asarray(counts, float) + WEIGHT_DAMPING)
    Xw = X * w[:, None]
    with threadpool_limits(limits=1, user_api="blas"):  # small products; a busy machine made threaded BLAS far slower
        A = X.T @ Xw + ridge * np.eye(X.shape[1])
        return np.linalg.solve(A, Xw.T @ np.asarray(targets, float))
