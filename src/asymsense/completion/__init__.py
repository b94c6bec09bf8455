"""Completion of partially observed asymmetric tables (customers × products).

- `read_table` / `IdMap`: (row id, column id, value) tables from CSV, Parquet,
  DataFrames; ids mapped to indices and back; duplicate policies.
- `complete`: factorized gradient descent from small random initialization on
  the observed entries, with biases, clipping, validation and early stopping.
- `LowRankCompleter`: the same as a scikit-learn regressor.
"""

from .estimator import LowRankCompleter
from .io import IdMap, Table, read_pairs, read_table, table_from_ids
from .model import CompletionResult, complete, fit_biases

__all__ = ["LowRankCompleter", "complete", "CompletionResult", "fit_biases", "read_table", "read_pairs", "table_from_ids", "IdMap", "Table"]
