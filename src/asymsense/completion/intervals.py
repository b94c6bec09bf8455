"""Prediction intervals from held-out residuals, by row and column activity.

Early stopping already holds out validation entries; the residuals
e = y − ŷ of the selection run on them are out of sample (the run never fitted
them). Their spread depends on how much is known about the row and the column,
so they are grouped by activity: the number of fitted entries of the row and of
the column, each cut at the terciles of the validation entries (3 × 3 bins;
one bin when there are fewer than 900 validation entries). For each bin the
empirical quantiles of e are stored on a grid of levels; the interval of
nominal level p for a pair in that bin is

    [ŷ + q_{(1−p)/2},  ŷ + q_{(1+p)/2}]    (clipped to the observed range),

a split-conformal interval per activity bin: under exchangeability of
validation and new entries its coverage is p up to the quantile estimation
error. benchmarks/bench_completion_intervals.py measures the coverage on
MovieLens-100k test entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asymsense.errors import InputError

LEVELS = np.round(np.linspace(0.005, 0.995, 199), 3)
MIN_PER_BIN = 100
SIDE_BINS = 3


@dataclass
class Calibration:
    """Residual quantiles per activity bin (see the module docstring)."""

    row_edges: np.ndarray  # inner edges on the row count (len SIDE_BINS − 1, or empty)
    col_edges: np.ndarray
    quantiles: np.ndarray  # (bins, len(LEVELS))
    sizes: np.ndarray  # validation entries per bin

    def bins(self, row_counts, col_counts) -> np.ndarray:
        r = np.searchsorted(self.row_edges, row_counts, side="right")
        c = np.searchsorted(self.col_edges, col_counts, side="right")
        return r * (len(self.col_edges) + 1) + c

    def interval(self, prediction, row_counts, col_counts, level: float, clip=None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of nominal `level` around `prediction`."""
        level = check_level(level)
        lo_q = np.array([np.interp((1 - level) / 2, LEVELS, q) for q in self.quantiles])
        hi_q = np.array([np.interp((1 + level) / 2, LEVELS, q) for q in self.quantiles])
        b = self.bins(row_counts, col_counts)
        lower, upper = prediction + lo_q[b], prediction + hi_q[b]
        if clip is not None:
            lower, upper = np.clip(lower, *clip), np.clip(upper, *clip)
        return lower, upper

    def to_json(self) -> dict:
        return {"method": "validation residual quantiles by row × column activity", "levels": LEVELS.tolist(),
                "row_edges": self.row_edges.tolist(), "col_edges": self.col_edges.tolist(),
                "quantiles": self.quantiles.tolist(), "sizes": self.sizes.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "Calibration":
        return cls(np.asarray(d["row_edges"], float), np.asarray(d["col_edges"], float), np.asarray(d["quantiles"], float),
                   np.asarray(d["sizes"], np.int64))


def check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < float(level) < 0.99:
        raise InputError(f"interval must be a nominal coverage in (0, 0.99), got {level!r}", "interval")
    return float(level)


def fit_calibration(residuals, row_counts, col_counts) -> Calibration:
    """Quantiles of `residuals` (y − ŷ on held-out entries) per activity bin."""
    e = np.asarray(residuals, np.float64)
    row_counts, col_counts = np.asarray(row_counts, float), np.asarray(col_counts, float)
    side = SIDE_BINS if len(e) >= MIN_PER_BIN * SIDE_BINS * SIDE_BINS else 1
    cuts = np.arange(1, side) / side
    row_edges = np.unique(np.quantile(row_counts, cuts)) if side > 1 else np.array([])
    col_edges = np.unique(np.quantile(col_counts, cuts)) if side > 1 else np.array([])
    cal = Calibration(row_edges, col_edges, np.zeros(((len(row_edges) + 1) * (len(col_edges) + 1), len(LEVELS))), np.zeros(0, np.int64))
    b = cal.bins(row_counts, col_counts)
    sizes = np.bincount(b, minlength=len(cal.quantiles))
    overall = np.quantile(e, LEVELS)
    for i in range(len(cal.quantiles)):
        cal.quantiles[i] = np.quantile(e[b == i], LEVELS) if sizes[i] >= MIN_PER_BIN // 2 else overall
    cal.sizes = sizes
    return cal
