"""Fits used by the experiments: log–log slopes, bootstrap intervals, linear fits.

Exponents are always measured, never assumed: a power law err ≈ c·α^s is a
straight line log err = log c + s·log α, fitted by least squares; its
uncertainty comes from resampling the independent units (seeds) with
replacement and refitting (`scipy.stats.bootstrap`, BCa where it applies,
else percentile), so correlation between points of one seed is respected.

With fewer than `MIN_SEEDS_FOR_CI` (5) units a bootstrap interval has far
below its nominal coverage (over 3 seeds the percentile interval of a median
is the [min, max]), so no interval is printed then: the estimate carries the
range of the per-unit statistics and says so (`Estimate.method = "range"`).

scipy.stats is imported on first use (`_stats()`): it is a heavy library and
the command line must not pay for it on `--help`.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np

from asymsense.errors import InputError

MIN_SEEDS_FOR_CI = 5
"""Fewest independent units (seeds) for which a bootstrap interval is printed;
below it the range of the per-unit values is reported, labelled as a range."""


@cache
def _stats():
    """scipy.stats (imported on first use) and the name of its bootstrap's
    generator argument (SciPy >= 1.15: `rng`, older: `random_state`)."""
    from scipy import stats

    return stats, ("rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state")


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
    method: str = "BCa bootstrap"
    """"BCa bootstrap", "percentile bootstrap", "range" (fewer than
    MIN_SEEDS_FOR_CI units: [low, high] is the range of per-unit values) or
    "worst case" / "point" for numbers without an interval."""

    def format(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"

    @property
    def label(self) -> str:
        """How the interval was obtained, with the number of units."""
        if self.method == "range":
            return f"range over {self.n} seeds (fewer than {MIN_SEEDS_FOR_CI}: no CI)"
        if self.method.endswith("bootstrap"):
            return f"{int(round(self.level * 100))}% {self.method} CI over {self.n} seeds"
        return f"{self.method} over {self.n}"


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
    """Bootstrap interval (`scipy.stats.bootstrap`, BCa, falling back to the
    percentile interval where BCa is undefined) of `statistic(list_of_groups)`
    resampling whole groups.

    `groups` is a list of independent units (e.g. one (x, y) pair of arrays per
    seed); each of the `n_boot` replicates draws len(groups) of them with
    replacement (from `numpy.random.default_rng(seed)`, so the interval is
    reproducible). Replicates where the statistic cannot be computed (an
    InputError, e.g. a degenerate fit when the drawn groups coincide) or is not
    finite are left out (percentile interval over the rest). With fewer than
    MIN_SEEDS_FOR_CI groups no interval is computed: [low, high] is the range of
    the statistic over single groups (method "range"; where it cannot be computed
    on one group, the point value). A single group, identical groups and no
    computable replicate give the point value.
    """
    groups = list(groups)
    if not groups:
        raise InputError("bootstrap needs at least one group")
    value = float(statistic(groups))
    if len(groups) < 2:
        return Estimate(value, value, value, level, len(groups), "range")
    if len(groups) < MIN_SEEDS_FOR_CI:
        per = []
        for g in groups:
            try:
                per.append(float(statistic([g])))
            except InputError:
                pass
        per = [v for v in per if math.isfinite(v)]
        if len(per) < len(groups):  # not computable on one group: the range of leave-one-out values
            per = []
            for i in range(len(groups)):
                try:
                    per.append(float(statistic(groups[:i] + groups[i + 1:])))
                except InputError:
                    pass
            per = [v for v in per if math.isfinite(v)]
        low, high = (min(per + [value]), max(per + [value])) if per else (value, value)
        return Estimate(value, low, high, level, len(groups), "range")

    def on_draw(indices):
        try:
            return float(statistic([groups[int(i)] for i in indices]))
        except InputError:
            return math.nan

    return _run_bootstrap(value, (np.arange(len(groups)),), on_draw, vectorized=False, n_boot=n_boot, level=level, seed=seed, n=len(groups))


def _run_bootstrap(value, data, stat, *, vectorized, n_boot, level, seed, n) -> Estimate:
    """BCa where its jackknife and the replicates are finite, else the
    percentile interval over the finite replicates."""
    stats, rng_arg = _stats()
    with warnings.catch_warnings():  # degenerate or non-finite replicates are handled below, not warned about
        warnings.simplefilter("ignore")
        res = None
        try:
            res = stats.bootstrap(data, stat, n_resamples=n_boot, vectorized=vectorized, confidence_level=level,
                                  method="BCa", **{rng_arg: np.random.default_rng(seed)})
        except (ValueError, IndexError, ZeroDivisionError):
            res = None
    if res is not None:
        reps = np.asarray(res.bootstrap_distribution, dtype=float)
        low, high = (float(x) for x in res.confidence_interval)
        if np.isfinite(reps).all() and math.isfinite(low) and math.isfinite(high) and np.ptp(reps) > 0:
            return Estimate(value, low, high, level, n, "BCa bootstrap")
        if np.isfinite(reps).any():
            reps = reps[np.isfinite(reps)]
            if np.ptp(reps) == 0:
                return Estimate(value, value, value, level, n, "percentile bootstrap")
            low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
            return Estimate(value, float(low), float(high), level, n, "percentile bootstrap")
    return Estimate(value, value, value, level, n, "percentile bootstrap")


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
    """`stat` of the finite values with a bootstrap interval (`scipy.stats.bootstrap`,
    BCa where defined, each value resampled on its own); no finite value gives NaN,
    one value or all equal the point value, fewer than MIN_SEEDS_FOR_CI values
    their range (method "range")."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(math.nan, math.nan, math.nan, level, 0, "range")
    value = float(stat(v))
    if v.size < MIN_SEEDS_FOR_CI or np.ptp(v) == 0:
        return Estimate(value, float(v.min()), float(v.max()), level, int(v.size), "range")
    return _run_bootstrap(value, (v,), stat, vectorized=True, n_boot=n_boot, level=level, seed=seed, n=int(v.size))


def mean_ci(values, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Mean of the finite values with a bootstrap interval (see `_stat_ci`)."""
    return _stat_ci(values, np.mean, level=level, n_boot=n_boot, seed=seed)


def median_ci(values, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Median of the finite values with a bootstrap interval (see `_stat_ci`)."""
    return _stat_ci(values, np.median, level=level, n_boot=n_boot, seed=seed)


def worst(values, op: str = "<=") -> Estimate | None:
    """The worst case of the finite values for a claim with `op` (max for "<=",
    min for ">="), as a point estimate; None when there is no value."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        return None
    if not np.isfinite(v).all():
        return Estimate(math.nan, math.nan, math.nan, 1.0, int(v.size), "worst case")
    w = float(v.max() if op == "<=" else v.min())
    return Estimate(w, w, w, 1.0, int(v.size), "worst case")


def fraction(flags) -> Estimate | None:
    """The fraction of true flags, as a point estimate (method "count")."""
    f = np.asarray(flags, dtype=bool).ravel()
    if f.size == 0:
        return None
    v = float(f.mean())
    return Estimate(v, v, v, 1.0, int(f.size), "count")
