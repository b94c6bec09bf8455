"""Guardrails of a completion fit: warnings an analyst needs, returned as data.

Each check looks at numbers the fit already has and returns a `Guardrail`
(code, message, advice, the numbers it used) or None. The library never
prints them: `asymsense complete` prints them on stderr, writes them to
DIR/warnings.json, and the report shows them at the top. Messages name
parameters (`validation`, `width`), never command-line flags.

Thresholds (module constants, so a test or a caller can see them):

- rank: the learned effective rank r_eff of UVᵀ needs r_eff(n1 + n2 − r_eff)
  degrees of freedom; `inspect` calls a rank supported when the training
  entries are at least 3 per degree of freedom (`diagnostics.SAMPLING_FACTOR`).
  We warn when they are fewer than RANK_ENTRIES_PER_DOF = 1.5 — half that
  margin — because early stopping keeps a moderately larger effective rank
  harmless (MovieLens-100k: r_eff 16.3 against a supported 12, 1.9 entries
  per degree of freedom, test RMSE 0.910 against 0.955 for the biases alone),
  while the issue's 50 × 30 example (supported 1, r_eff 5.8, 0.7 per degree
  of freedom) overfits.
- overfitting: validation RMSE above OVERFIT_RATIO = 1.5 × the train RMSE
  (MovieLens-100k: 1.17).
- sparse rows: more than SPARSE_ROW_SHARE = 50% of the rows with fewer than
  `diagnostics.FEW_OBSERVATIONS` = 5 training entries.
- validation share outside `validation.VALIDATION_SHARE_ADVISED` = [0.02, 0.5]
  (beyond `VALIDATION_SHARE_ALLOWED` the fit refuses it).
- test entries that are also in the fitted data (any), or more than
  UNKNOWN_SHARE = 5% of them with ids the fit never saw (always counted:
  summary test_unknown_ids; the test RMSE is of the known pairs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from asymsense.completion.diagnostics import FEW_OBSERVATIONS, SAMPLING_FACTOR, supported_rank
from asymsense.validation import VALIDATION_SHARE_ADVISED

RANK_ENTRIES_PER_DOF = 1.5
OVERFIT_RATIO = 1.5
SPARSE_ROW_SHARE = 0.5
UNKNOWN_SHARE = 0.05


@dataclass(frozen=True)
class Guardrail:
    """One warning: a stable `code`, what was found (`message`), what to do
    (`advice`), and the numbers behind it (`values`)."""

    code: str
    message: str
    advice: str
    values: dict = field(default_factory=dict)
    parameters: tuple = ()
    """The parameters the advice names (so a command line can show its flags)."""

    def __str__(self) -> str:
        return f"{self.message} {self.advice}"

    def as_dict(self) -> dict:
        return asdict(self)


def check_rank(eff_rank: float, m_train: int, shape) -> Guardrail | None:
    """The learned effective rank against what m_train entries support."""
    n1, n2 = shape
    dof = eff_rank * (n1 + n2 - eff_rank)
    per_dof = m_train / dof if dof > 0 else float("inf")
    if per_dof >= RANK_ENTRIES_PER_DOF:
        return None
    supported = supported_rank(m_train, n1, n2)
    return Guardrail(
        "rank_above_supported",
        f"The model learned an effective rank of {eff_rank:.1f}, above the rank {supported} that the {m_train:,} training entries support "
        f"(inspect: at least {SAMPLING_FACTOR:g} entries per degree of freedom); at rank {eff_rank:.1f} there are only {per_dof:.2f} "
        f"entries per degree of freedom (warning below {RANK_ENTRIES_PER_DOF:g}).",
        (f"Treat the components beyond the first {supported} as noise" if supported else "Treat every component as uncertain")
        + f": use a smaller width (e.g. width={max(supported, 1)}), stop earlier (a smaller patience), or add data; "
        "check the improvement over the baselines (compare) before relying on the fit.",
        {"eff_rank": float(eff_rank), "supported_rank": int(supported), "entries_per_dof": float(per_dof), "m_train": int(m_train)},
        ("width", "patience", "compare"),
    )


def check_overfitting(train_rmse: float | None, val_rmse: float | None) -> Guardrail | None:
    """Train RMSE far below validation RMSE."""
    if train_rmse is None or val_rmse is None or not np.isfinite(train_rmse) or not np.isfinite(val_rmse):
        return None
    ratio = val_rmse / train_rmse if train_rmse > 0 else float("inf")
    if ratio <= OVERFIT_RATIO:
        return None
    return Guardrail(
        "overfitting",
        f"Train RMSE {train_rmse:.3f} is far below validation RMSE {val_rmse:.3f} (validation {ratio:.1f}× train, "
        f"{val_rmse - train_rmse:.3f} higher; warning above {OVERFIT_RATIO:g}×): the model fits the entries it saw much better than new ones.",
        "Expect errors near the validation RMSE on new entries; try a smaller width, a smaller init_scale, or the optional l2 (e.g. l2=0.05), "
        "and check the improvement over the biases alone (compare).",
        {"train_rmse": float(train_rmse), "val_rmse": float(val_rmse), "ratio": float(ratio)},
        ("width", "init_scale", "l2", "compare"),
    )


def check_sparse_rows(train_rows, n_rows: int, few: int = FEW_OBSERVATIONS) -> Guardrail | None:
    """Most rows with fewer than `few` training entries."""
    counts = np.bincount(np.asarray(train_rows, np.int64), minlength=n_rows)
    n_few = int(np.sum(counts < few))
    share = n_few / max(n_rows, 1)
    if share <= SPARSE_ROW_SHARE:
        return None
    return Guardrail(
        "sparse_rows",
        f"{n_few:,} of {n_rows:,} rows ({share:.0%}) have fewer than {few} training entries: their predictions come mostly from the biases.",
        "Do not read personal recommendations for these rows; collect more observations per row, or use validation_kind='rows' "
        "so every row keeps training entries.",
        {"rows_with_few": n_few, "rows": int(n_rows), "share": float(share), "threshold": int(few)},
        ("validation_kind",),
    )


def check_validation_share(validation) -> Guardrail | None:
    """A validation share outside the advised range (VALIDATION_SHARE_ADVISED)."""
    if validation is None or isinstance(validation, (tuple, list)):
        return None
    low, high = VALIDATION_SHARE_ADVISED
    if low <= validation <= high:
        return None
    why = "too few held-out entries to pick the stopping iteration reliably" if validation < low else "the fit learns from less than half of the data"
    return Guardrail(
        "validation_share",
        f"The validation share {validation:g} is outside the advised range [{low:g}, {high:g}]: {why}.",
        f"Use validation between {low:g} and {high:g} (0.1 is the default).",
        {"validation": float(validation), "advised": [low, high]},
        ("validation",),
    )


def check_test(test_rows, test_cols, fitted_rows, fitted_cols, shape) -> Guardrail | None:
    """Test entries that are also fitted entries (any), or more than
    UNKNOWN_SHARE of them with ids the fit never saw (index −1; the test RMSE
    leaves those out and reports them apart, from the biases alone)."""
    test_rows, test_cols = np.asarray(test_rows, np.int64), np.asarray(test_cols, np.int64)
    unknown = (test_rows < 0) | (test_cols < 0)
    n2 = shape[1]
    fitted = np.unique(np.asarray(fitted_rows, np.int64) * n2 + np.asarray(fitted_cols, np.int64))
    keys = test_rows[~unknown] * n2 + test_cols[~unknown]
    overlap = int(np.isin(keys, fitted).sum())
    n_unknown = int(unknown.sum())
    if not overlap and n_unknown <= UNKNOWN_SHARE * len(test_rows):
        return None
    parts = []
    if overlap:
        parts.append(f"{overlap:,} of {len(test_rows):,} test entries are also in the data the model was fitted on, so the test RMSE is optimistic")
    if n_unknown:
        parts.append(f"{n_unknown:,} of {len(test_rows):,} test entries have a row or column id the fit never saw" +
                     (": no test entry is scored by the model, so there is no test RMSE" if n_unknown == len(test_rows) else
                      "; the test RMSE is of the others, theirs (biases alone) is given apart"))
    return Guardrail(
        "test_set",
        "; ".join(parts) + ".",
        "Give as test entries that are not in the data, with ids that are.",
        {"overlap": overlap, "unknown_ids": n_unknown, "test_m": int(len(test_rows))},
        ("test",),
    )


def fit_guardrails(*, shape, train_rows, eff_rank: float, train_rmse=None, val_rmse=None, validation=None, test=None) -> list[Guardrail]:
    """Every guardrail of one fit, in the order an analyst should read them.

    `train_rows`: row indices of the training entries; `validation`: the share
    held out (None when none was); `test`: None or (test_rows, test_cols,
    fitted_rows, fitted_cols) with −1 for unknown ids."""
    found = [
        check_validation_share(validation),
        check_test(*test, shape) if test is not None else None,
        check_overfitting(train_rmse, val_rmse),
        check_rank(eff_rank, len(train_rows), shape),
        check_sparse_rows(train_rows, shape[0]),
    ]
    return [g for g in found if g is not None]
