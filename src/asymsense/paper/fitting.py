"""Fits used by the experiments: log–log slopes, bootstrap intervals, linear fits.

Exponents are always measured, never assumed: a power law err ≈ c·α^s is a
straight line log err = log c + s·log α, fitted by least squares; its
uncertainty comes from resampling the independent units (seeds) with
replacement and refitting (the percentile bootstrap of `scipy.stats.bootstrap`),
so correlation between points of one seed is respected.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from asymsense.errors import InputError

# SciPy >= 1.15 takes the generator as `rng`, older versions as `random_state`.
_RNG_ARG = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


@dataclass(frozen=True)
class LinearFit:
    """y ≈ intercept + slope·x, with the coefficient of determination
    R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²."""

    slope: float
    intercept: float
    r2: float
    n: int

    def predict(self, x):
        return self.intercept + self.slope * np.asarray(x, dtype=float)


@dataclass(frozen=True)
class Estimate:
    """A measured number with a confidence interval [low, high] at `level`."""

    value: float
    low: float
    high: float
    level: float = 0.95
    n: int = 0

    def format(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


def _clean(x, y):
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise InputError(f"x and y must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def linear_fit(x, y) -> LinearFit:
    """Least-squares line through the finite points (x, y); needs two distinct x."""
    x, y = _clean(x, y)
    if x.size < 2 or np.ptp(x) == 0:
        raise InputError(f"a linear fit needs at least two distinct x values, got {x.size} point(s)")
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / total if total > 0 else 1.0
    return LinearFit(float(slope), float(intercept), r2, int(x.size))


def loglog_fit(x, y) -> LinearFit:
    """Fit log y = intercept + slope·log x over the positive points (base e)."""
    x, y = _clean(x, y)
    keep = (x > 0) & (y > 0)
    return linear_fit(np.log(x[keep]), np.log(y[keep]))


def bootstrap(groups, statistic, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Estimate:
    """Percentile bootstrap (`scipy.stats.bootstrap`) of `statistic(list_of_groups)`
    resampling whole groups.

    `groups` is a list of independent units (e.g. one (x, y) pair of arrays per
    seed); each of the `n_boot` replicates draws len(groups) of them with
    replacement (from `numpy.random.default_rng(seed)`, so the interval is
    reproducible). Replicates where the statistic cannot be computed (an
    InputError, e.g. a degenerate fit when the drawn groups coincide) or is not
    finite are left out of the percentiles. Degenerate samples give the point
    value as the interval, without a warning: a single group (no resampling
    information), and no computable replicate. Identical groups give a zero-width
    interval.
    """
    groups = list(groups)
    if not groups:
        raise InputError("bootstrap needs at least one group")
    value = float(statistic(groups))
    if len(groups) < 2:
        return Estimate(value, value, value, level, len(groups))

    def on_draw(indices):
        try:
            return float(statistic([groups[int(i)] for i in indices]))
        except InputError:
            return math.nan

    with warnings.catch_warnings():  # non-finite replicates are dropped below, not warned about
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap((np.arange(len(groups)),), on_draw, n_resamples=n_boot, vectorized=False,
                              confidence_level=level, method="percentile", **{_RNG_ARG: np.random.default_rng(seed)})
    return _estimate(value, res, level, len(groups))


def _estimate(value: float, res, level: float, n: int) -> Estimate:
    """The Estimate of a percentile bootstrap result, over its finite replicates."""
    reps = np.asarray(res.bootstrap_distribution, dtype=float)
    finite = np.isfinite(reps)
    if not finite.any():
        return Estimate(value, value, value, level, n)
    if finite.all():
        low, high = res.confidence_interval
    else:
        low, high = np.quantile(reps[finite], [(1 - level) / 2, (1 + level) / 2])
    return Estimate(value, float(low), float(high), level, n)


def pooled_points(groups):
    """Concatenate a list of (x, y) pairs into one (x, y)."""
    return np.concatenate([np.ravel(g[0]) for g in groups]), np.concatenate([np.ravel(g[1]) for g in groups])


def loglog_slope_ci(groups, **kwargs) -> Estimate:
    """Slope of log y on log x over all points, with a bootstrap CI over groups (seeds)."""
    return bootstrap(groups, lambda gs: loglog_fit(*pooled_points(gs)).slope, **kwargs)


def multi_loglog_fit(columns, y):
    """Least squares log y = c + Σ_j s_j log x_j; returns (coefficients s, c, R²)."""
    X = np.column_stack([np.log(np.asarray(c, dtype=float)) for c in columns])
    ly = np.log(np.asarray(y, dtype=float))
    keep = np.all(np.isfinite(X), axis=1) & np.isfinite(ly)
    X, ly = X[keep], ly[keep]
    if X.shape[0] <= X.shape[1]:
        raise InputError(f"a fit of {X.shape[1]} exponents needs more than {X.shape[1]} points, got {X.shape[0]}")
    A = np.column_stack([X, np.ones(len(X))])
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - A @ coef
    total = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1 - float(resid @ resid) / total if total > 0 else 1.0
    return coef[:-1], float(coef[-1]), r2


def _stat_ci(values, stat, *, level: float, n_boot: int, seed: int) -> Estimate:
    """`stat` of the finite values with a percentile bootstrap interval
    (`scipy.stats.bootstrap`, each value resampled on its own); no finite value
    gives NaN, one value (or all equal) the point value."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(math.nan, math.nan, math.nan, level, 0)
    value = float(stat(v))
    if v.size < 2 or np.ptp(v) == 0:
        return Estimate(value, value, value, level, int(v.size))
    res = stats.bootstrap((v,), stat, n_resamples=n_boot, vectorized=True, confidence_level=level,
                          method="percentile", **{_RNG_ARG: np.random.default_rng(seed)})
    return _estimate(value, res, level, int(v.size))


def mean_ci(values, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Mean of the finite values with a percentile bootstrap interval."""
    return _stat_ci(values, np.mean, level=level, n_boot=n_boot, seed=seed)


def median_ci(values, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Median of the finite values with a percentile bootstrap interval."""
    return _stat_ci(values, np.median, level=level, n_boot=n_boot, seed=seed)
