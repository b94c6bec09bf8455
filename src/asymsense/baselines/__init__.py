"""Baselines for matrix sensing, with fgd's interface and metrics.

Every function has the signature
`name(operator, y, *, max_iter, truth=None, record_every=1, seed=None, tol=None, **method_specific)`
and returns an `asymsense.solvers.fgd.FGDResult` whose history has fgd's columns.

BASELINES maps the CLI/config name to the function:
- "nuclear": nuclear-norm minimization, FISTA + SVT + continuation
- "spectral": exact-rank GD from spectral initialization
- "balanced": GD with the balancing term (λ/4)‖UᵀU − VᵀV‖²_F (Tu et al. 2016)
- "scaled-gd": ScaledGD(λ) from small random initialization (Xu et al. 2023)
- "als": alternating least squares through the operator (CG on the normal equations)
"""

from asymsense.baselines.als import als
from asymsense.baselines.balanced import balanced_gd
from asymsense.baselines.nuclear import nuclear_norm
from asymsense.baselines.scaled_gd import scaled_gd
from asymsense.baselines.spectral import spectral_gd

BASELINES = {
    "nuclear": nuclear_norm,
    "spectral": spectral_gd,
    "balanced": balanced_gd,
    "scaled-gd": scaled_gd,
    "als": als,
}

EXACT_RANK = frozenset({"spectral", "als"})
"""The baselines that fit the exact model k = r: `asymsense compare` runs them
with width = rank, and so does a sweep that does not set `width`."""

__all__ = ["BASELINES", "EXACT_RANK", "nuclear_norm", "spectral_gd", "balanced_gd", "scaled_gd", "als"]
