"""The bias model of completion: Ŷ = b + r_i + c_j with damped-mean biases.

Both the completion model (`asymsense.completion.model`, which fits the
factors to the residual y − b − r_i − c_j) and the baselines
(`asymsense.completion.baselines`) start from these biases, so they are
compared on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asymsense.errors import InputError

BIAS_CHOICES = ("both", "rows", "columns", "global", "none")
BIAS_DAMPING = (10.0, 25.0)
BIAS_SWEEPS = 10


@dataclass
class Biases:
    """b + r_i + c_j."""

    mean: float
    rows: np.ndarray
    cols: np.ndarray

    def __call__(self, rows, cols) -> np.ndarray:
        return self.mean + self.rows[rows] + self.cols[cols]


def fit_biases(rows, cols, y, shape, kind: str = "both", damping=BIAS_DAMPING, sweeps: int = BIAS_SWEEPS) -> Biases:
    """Damped-mean biases, alternating `sweeps` times:
    c_j = Σ_{i∈Ω_j}(y_ij − b − r_i)/(|Ω_j| + λ_c), r_i = Σ_{j∈Ω_i}(y_ij − b − c_j)/(|Ω_i| + λ_r),
    b the mean. Damping (λ_r, λ_c) = (10, 25) pulls rarely observed rows and
    columns toward the mean. `kind` picks which biases are fitted."""
    if kind not in BIAS_CHOICES:
        raise InputError(f"biases must be one of {', '.join(BIAS_CHOICES)}, got {kind!r}")
    n1, n2 = shape
    r, c = np.zeros(n1), np.zeros(n2)
    if kind == "none":
        return Biases(0.0, r, c)
    mean = float(np.mean(y))
    if kind == "global":
        return Biases(mean, r, c)
    cnt_r = np.bincount(rows, minlength=n1)
    cnt_c = np.bincount(cols, minlength=n2)
    fit_r, fit_c = kind in ("both", "rows"), kind in ("both", "columns")
    for _ in range(sweeps if fit_r and fit_c else 1):
        if fit_c:
            c = np.bincount(cols, y - mean - r[rows], minlength=n2) / (cnt_c + damping[1])
        if fit_r:
            r = np.bincount(rows, y - mean - c[cols], minlength=n1) / (cnt_r + damping[0])
    return Biases(mean, r, c)
