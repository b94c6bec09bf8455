"""`LowRankCompleter`: the completion model as a scikit-learn regressor.

X is an array of (row id, column id) pairs (shape (n, 2), ids of any kind, or a
two-column DataFrame); y holds the observed values. `predict(X)` returns
Ŷ at the pairs; `score` is R² (scikit-learn's regressor convention, so
GridSearchCV and cross_val_score work unchanged); `rmse(X, y)` is also given.

Unknown ids at prediction time (rows or columns never seen in `fit`):
`unknown="biases"` (default) predicts from what is known — the global mean
plus the bias of the known side, no interaction term — which is the natural
cold-start fallback and lets cross-validation folds contain unseen ids;
`unknown="error"` raises an InputError naming the first unknown id.

The class derives from scikit-learn's BaseEstimator and RegressorMixin:
the constructor stores its arguments unchanged and scikit-learn provides
get_params/set_params, clone, the repr and tags. scikit-learn is needed only
here; `asymsense.completion.LowRankCompleter` imports this module on first use.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from asymsense.errors import InputError
from asymsense.metrics import rmse
from asymsense.completion.io import table_from_ids
from asymsense.completion.model import complete
from asymsense.completion.saved import SavedModel, from_result, load_model

try:
    from sklearn.base import BaseEstimator, RegressorMixin
except ImportError as exc:  # pragma: no cover - scikit-learn is installed with the test extras
    raise ImportError("LowRankCompleter needs scikit-learn: pip install scikit-learn") from exc


UNKNOWN_POLICIES = ("biases", "error")


def _pairs(X, name: str = "X"):
    """Split X into row-id and column-id arrays."""
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        if X.shape[1] != 2:
            raise InputError(f"{name} must have exactly 2 columns (row id, column id), got {X.shape[1]}")
        return X.iloc[:, 0].to_numpy(), X.iloc[:, 1].to_numpy()
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"{name} must be an array of (row id, column id) pairs with shape (n, 2), got shape {arr.shape}")
    if len(arr) == 0:
        raise InputError(f"{name} has no pairs")
    return arr[:, 0], arr[:, 1]


class LowRankCompleter(RegressorMixin, BaseEstimator):
    """Low-rank completion by factorized gradient descent from small random
    initialization with biases and early stopping (see `asymsense.completion.model`).

    Parameters mirror `asymsense.completion.complete`; `random_state` is its
    seed, `duplicates` the policy for repeated pairs in `fit`, `unknown` the
    policy for unseen ids in `predict`; `scheduler` (tcp://HOST:PORT) or
    `dask_local` (N local worker processes) fit with the rows spread over a
    Dask cluster (`completion.sharded`: the same model up to rounding). Fitted attributes: `result_`
    (CompletionResult), `row_ids_`, `col_ids_`, `n_iter_`, `effective_rank_`,
    `seed_`.
    """

    def __init__(
        self,
        width=None,
        init_scale="auto",
        step_size="auto",
        step_constant=0.5,
        max_iter=2000,
        patience=50,
        validation=0.1,
        validation_kind="entries",
        biases="both",
        clip=True,
        l2=0.0,
        ensemble=1,
        implicit=False,
        refit=True,
        duplicates="mean",
        unknown="biases",
        dtype="float32",
        random_state=None,
        scheduler=None,
        dask_local=None,
    ):
        self.width = width
        self.init_scale = init_scale
        self.step_size = step_size
        self.step_constant = step_constant
        self.max_iter = max_iter
        self.patience = patience
        self.validation = validation
        self.validation_kind = validation_kind
        self.biases = biases
        self.clip = clip
        self.l2 = l2
        self.ensemble = ensemble
        self.implicit = implicit
        self.refit = refit
        self.duplicates = duplicates
        self.unknown = unknown
        self.dtype = dtype
        self.random_state = random_state
        self.scheduler = scheduler
        self.dask_local = dask_local

    # -- fitting -----------------------------------------------------------
    def fit(self, X, y, progress=None):
        """Fit on observed (row id, column id) pairs X with values y."""
        if self.unknown not in UNKNOWN_POLICIES:
            raise InputError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, got {self.unknown!r}")
        row_ids, col_ids = _pairs(X)
        y = np.asarray(y, dtype=float).reshape(-1) if np.asarray(y).dtype.kind in "biuf" else _numeric_y(y)
        if len(y) != len(row_ids):
            raise InputError(f"X has {len(row_ids)} pairs but y has {len(y)} values")
        table = table_from_ids(row_ids, col_ids, y, duplicates=self.duplicates, source="X")
        validation = self.validation
        options = dict(width=self.width, init_scale=self.init_scale, step_size=self.step_size,
                       step_constant=self.step_constant, max_iter=self.max_iter, patience=self.patience,
                       validation=validation, validation_kind=self.validation_kind, biases=self.biases,
                       clip=self.clip, l2=self.l2, refit=self.refit, seed=self.random_state, dtype=self.dtype, progress=progress)
        if self.scheduler is not None or self.dask_local is not None:  # the rows spread over a Dask cluster (completion.sharded)
            from asymsense.completion.sharded import complete_sharded

            if self.ensemble != 1:
                raise InputError(f"ensemble={self.ensemble!r} is not available with scheduler/dask_local (a sharded fit is one model)")
            if self.implicit:
                raise InputError("implicit=True is not available with scheduler/dask_local", "implicit")
            result = complete_sharded(table.rows, table.cols, table.values, table.shape, scheduler=self.scheduler,
                                      dask_local=self.dask_local, **options)
        else:
            result = complete(table.rows, table.cols, table.values, table.shape, ensemble=self.ensemble, implicit=self.implicit, **options)
        self._set_model(from_result(result, table.row_map, table.col_map, (table.rows, table.cols), ("row_id", "col_id", "value")))
        self.n_iter_ = result.n_iter
        self.best_iter_ = result.best_iter
        self.effective_rank_ = result.effective_rank
        self.seed_ = result.config["seed"]
        self.n_features_in_ = 2
        return self

    def _set_model(self, model: SavedModel) -> None:
        self.model_, self.result_ = model, model.fit
        self.row_map_, self.col_map_ = model.row_map, model.col_map
        self.row_ids_, self.col_ids_ = model.row_ids, model.col_ids

    def partial_fit(self, X, y):
        """Fold in the rows and columns of X that are new (biases and factors
        from their entries with the fitted side fixed; `completion.foldin`),
        without refitting: the factors and biases of known ids stay as they
        are, pairs of two known ids are not refitted. An unfitted estimator is
        fitted on X, y."""
        if not hasattr(self, "model_"):
            return self.fit(X, y)
        row_ids, col_ids = _pairs(X)
        y = np.asarray(y, dtype=float).reshape(-1) if np.asarray(y).dtype.kind in "biuf" else _numeric_y(y)
        if len(y) != len(row_ids):
            raise InputError(f"X has {len(row_ids)} pairs but y has {len(y)} values")
        self._set_model(self.model_.fold_in(row_ids, col_ids, y))
        return self

    def save(self, folder):
        """Write the fitted model folder (`completion.saved`: Parquet + JSON,
        the constructor parameters included); `LowRankCompleter.load(folder)`
        reads it back."""
        self._check_fitted()
        return replace(self.model_, meta={**self.model_.meta, "estimator_params": self.get_params()}).save(folder)

    @classmethod
    def load(cls, folder) -> "LowRankCompleter":
        """An estimator from a saved model folder (written by `save` or by
        `asymsense complete`); predicts exactly as the saved one."""
        model = load_model(folder)
        params = {k: v for k, v in (model.meta.get("estimator_params") or {}).items() if k in cls._get_param_names()}
        est = cls(**params)
        est._set_model(model)
        est.n_iter_, est.best_iter_ = model.fit.n_iter, model.fit.best_iter
        est.effective_rank_ = model.fit.effective_rank
        est.seed_ = model.fit.config.get("seed")
        est.n_features_in_ = 2
        return est

    def _check_fitted(self):
        if not hasattr(self, "result_"):
            raise InputError("this LowRankCompleter is not fitted yet; call fit(X, y) first")

    def encode(self, X):
        """Index arrays (−1 where unknown) for the pairs in X."""
        self._check_fitted()
        row_ids, col_ids = _pairs(X)
        return self.row_map_.encode(row_ids), self.col_map_.encode(col_ids)

    def predict(self, X):
        """Ŷ at the (row id, column id) pairs of X (unknown ids: see `unknown`)."""
        self._check_fitted()
        row_ids, col_ids = _pairs(X)
        return self.model_.predict(row_ids, col_ids, self.unknown)

    def rmse(self, X, y) -> float:
        """Root-mean-square error of predict(X) against y."""
        return rmse(self.predict(X), y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = True
        return tags


def _numeric_y(y):
    try:
        return np.asarray(y, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError("y must be numeric") from None
