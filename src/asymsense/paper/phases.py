"""Automatic detection of the three phases of a small-initialization trajectory.

The analysis of factorized gradient descent from U₀ = αG₁, V₀ = αG₂ has three
phases (DESIGN.md §1):

1. **spectral alignment** — while UVᵀ is tiny, M ≈ −A*A(X*) and W = [U; V]
   follows a power method on the dilation of X*: the top-r singular spaces of
   UVᵀ turn towards those of X*, the magnitudes still of the order of α;
2. **signal growth** — the aligned components grow geometrically, roughly like
   (1 + μσ_i)^t, until σ_r(UVᵀ) reaches σ_r(X*);
3. **local refinement** — the error decreases from O(1) towards its floor.

The detector reads only recorded singular values of UVᵀ, with documented
thresholds:

* alignment ends at the first recorded iteration where σ_r(UVᵀ) ≥
  `separation` (10) · σ_(r+1)(UVᵀ): the top-r components have separated from
  the rest, i.e. the power method has found the top-r eigenspace of the
  dilation of A*(y). Without σ_(r+1): where the growth rate d log σ_r / dt
  first reaches `rate_fraction` (0.8) of its peak. (The angle to X*'s singular
  spaces is not used: with finitely many measurements the power method
  converges to A*(y)'s top space, which differs from X*'s by the
  spectral-initialization error; the angle to X* closes only during growth
  and refinement.)
* growth ends at the first iteration where σ_r(UVᵀ) ≥ `growth_fraction` (0.9)
  times its final plateau (the median of the last `tail_fraction` of the record);
* refinement is everything after.

Alignment is clipped to end no later than growth (for large α they overlap and
the alignment phase has length zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asymsense.errors import InputError

PHASE_NAMES = ("spectral alignment", "signal growth", "local refinement")
GROWTH_FRACTION = 0.9
RATE_FRACTION = 0.8
SEPARATION = 10.0
TAIL_FRACTION = 0.1


@dataclass(frozen=True)
class Phases:
    """Phase boundaries as iteration numbers: phase i covers [starts[i], ends[i])."""

    start: int
    alignment_end: int
    growth_end: int
    stop: int
    method: str

    @property
    def intervals(self) -> list[tuple[str, int, int]]:
        return [
            (PHASE_NAMES[0], self.start, self.alignment_end),
            (PHASE_NAMES[1], self.alignment_end, self.growth_end),
            (PHASE_NAMES[2], self.growth_end, self.stop),
        ]

    @property
    def complete(self) -> bool:
        """All three phases have positive length and appear in order."""
        return self.start < self.alignment_end < self.growth_end < self.stop

    def label(self, t: int) -> str:
        for name, a, b in self.intervals:
            if a <= t < b:
                return name
        return PHASE_NAMES[2]


def _first(mask: np.ndarray, iterations: np.ndarray, default: int) -> int:
    idx = np.flatnonzero(mask)
    return int(iterations[idx[0]]) if idx.size else int(default)


def detect_phases(
    iteration,
    signal,
    *,
    next_signal=None,
    separation: float = SEPARATION,
    growth_fraction: float = GROWTH_FRACTION,
    rate_fraction: float = RATE_FRACTION,
    tail_fraction: float = TAIL_FRACTION,
) -> Phases:
    """Detect the phases of one trajectory.

    iteration : recorded iteration numbers (increasing).
    signal : σ_r(UVᵀ) at those iterations (the r-th singular value, r = rank of X*).
    next_signal : optional σ_(r+1)(UVᵀ), for the separation rule.
    """
    t = np.asarray(iteration, dtype=float)
    s = np.asarray(signal, dtype=float)
    if t.ndim != 1 or t.shape != s.shape or t.size < 3:
        raise InputError(f"phase detection needs matching 1-d iteration and signal arrays of length >= 3, got {t.shape} and {s.shape}")
    if not np.all(np.diff(t) > 0):
        raise InputError("phase detection needs strictly increasing iterations")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise InputError("phase detection needs a finite, non-negative signal (σ_r)")
    n_tail = max(1, int(round(tail_fraction * t.size)))
    plateau = float(np.median(s[-n_tail:]))
    stop = int(t[-1]) + 1
    growth_end = _first(s >= growth_fraction * plateau, t, stop - 1) if plateau > 0 else stop - 1
    if next_signal is not None:
        s_next = np.asarray(next_signal, dtype=float)
        if s_next.shape != s.shape:
            raise InputError(f"next_signal has shape {s_next.shape}, signal {s.shape}")
        alignment_end = _first(s >= separation * s_next, t, growth_end)
        method = f"alignment: σ_r ≥ {separation:g}·σ_(r+1); growth: σ_r ≥ {growth_fraction:g} of its plateau"
    else:
        logs = np.log(np.maximum(s, np.finfo(float).tiny))
        rate = np.diff(logs) / np.diff(t)
        before = t[1:] <= growth_end
        peak = float(np.max(rate[before])) if np.any(before) else 0.0
        alignment_end = _first(before & (rate >= rate_fraction * peak), t[:-1], growth_end) if peak > 0 else int(t[0])
        method = f"alignment: growth rate of log σ_r ≥ {rate_fraction:g} of its peak; growth: σ_r ≥ {growth_fraction:g} of its plateau"
    alignment_end = min(alignment_end, growth_end)
    return Phases(int(t[0]), int(alignment_end), int(growth_end), stop, method)


def phases_from_history(columns: dict, rank: int, **kwargs) -> Phases:
    """Detect phases from history columns: iteration, sv_<rank> = σ_r(UVᵀ) and,
    when recorded, sv_<rank+1> (separation rule)."""
    name = f"sv_{rank}"
    if name not in columns:
        raise InputError(f"the history has no column {name!r} (σ_r of UVᵀ); record more singular values")
    nxt = columns.get(f"sv_{rank + 1}") if hasattr(columns, "get") else None
    return detect_phases(columns["iteration"], columns[name], next_signal=nxt, **kwargs)
