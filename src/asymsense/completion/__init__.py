"""Completion of partially observed asymmetric tables (customers × products).

- `read_table` / `IdMap`: (row id, column id, value) tables from CSV, Parquet,
  DataFrames; ids mapped to indices and back; duplicate policies.
- `complete`: factorized gradient descent from small random initialization on
  the observed entries, with biases, clipping, validation and early stopping.
- `LowRankCompleter`: the same as a scikit-learn regressor (`partial_fit`
  folds in new rows/columns; `save`/`load` use the model folder).
- `load_model` / `SavedModel` (`completion.saved`): the model folder that
  `asymsense complete` writes (Parquet + JSON), predictions by original ids,
  top-N, and fold-in of new rows/columns (`completion.foldin`).
- `fit_biases` / `Biases` (`completion.biases`): the damped-mean biases
  b + r_i + c_j the model and the baselines (`completion.baselines`:
  `bias_only`, `soft_impute`, `als_wr`) start from.
"""

from asymsense.completion.io import IdMap, Table, read_pairs, read_table, table_from_ids
from asymsense.completion.biases import Biases, fit_biases
from asymsense.completion.model import CompletionResult, complete
from asymsense.completion.saved import SavedModel, load_model

__all__ = ["LowRankCompleter", "complete", "load_model", "SavedModel", "CompletionResult", "Biases", "fit_biases", "read_table", "read_pairs", "table_from_ids", "IdMap", "Table"]


def __getattr__(name):
    """LowRankCompleter is imported on first use: it loads scikit-learn's base
    classes (about a second), which the CLI and the plain model never need."""
    if name == "LowRankCompleter":
        from asymsense.completion.estimator import LowRankCompleter

        return LowRankCompleter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
