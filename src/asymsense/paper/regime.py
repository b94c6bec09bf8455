"""The regime an experiment ran in: how far its measurements are from the
restricted-isometry regime the theorem assumes.

For each distinct stored problem (rebuilt from the trial's stored seeds, so no
number comes from the memory of a run):

* `oversampling` m / dof with dof = r(n1 + n2 − r), and `fill` m / (n1·n2)
  (m ≥ n1·n2 makes A injective: every method then recovers X*);
* `kappa` = σ₁(X*)/σ_r(X*), `mu_norm` = μ·‖X*‖₂ (the step in units of the
  signal; the theorem needs it small);
* two measured RIP proxies of the spectral start A*(y) ≈ X*:
  `gap` = σ_(r+1)/σ_r of A*(y) (→ 0 under a small RIP constant; near 1 the
  power-method phase cannot separate the top-r space), and `sine` = sine of the
  largest principal angle between A*(y)'s top-r singular spaces and X*'s (left
  and right, the larger; the spectral-initialization error).

`regime(trials)` returns a `Regime` (per-problem arrays, `text()` for the
report's regime line, `as_dict()` for claims.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asymsense.problems import planted_instance

MAX_PROBLEMS = 10
"""At most this many distinct problems per group are rebuilt (the regime is a
property of the problem family; its spread is visible from 10 draws)."""

PROBLEM_COLUMNS = ("n1", "n2", "rank", "cond", "spectrum", "operator", "m", "noise", "dtype", "problem_seed", "operator_seed", "noise_seed")


def _sine(A: np.ndarray, B: np.ndarray) -> float:
    """Sine of the largest principal angle between span(A) and span(B) (orthonormal columns)."""
    return float(np.linalg.norm(A - B @ (B.T @ A), 2))


def problem_regime(params: dict, step_size: float = float("nan")) -> dict:
    """The regime numbers of one problem (see the module docstring)."""
    n1, n2, r, m = int(params["n1"]), int(params["n2"]), int(params["rank"]), int(params["m"])
    seed = lambda name: None if params.get(name) is None else int(params[name])  # noqa: E731
    truth, op, y = planted_instance(n1, n2, r, cond=float(params["cond"]), spectrum=params.get("spectrum") or "linear",
                                    operator=params.get("operator") or "gaussian", m=m, noise=float(params.get("noise") or 0.0),
                                    dtype="float64", problem_seed=seed("problem_seed"), operator_seed=seed("operator_seed"),
                                    noise_seed=seed("noise_seed"))
    Z = np.asarray(op.adjoint(np.asarray(y)), dtype=float)
    L, s, Rt = np.linalg.svd(Z, full_matrices=False)
    sv = np.asarray(truth.singular_values, dtype=float)
    return {
        "oversampling": m / (r * (n1 + n2 - r)),
        "fill": m / (n1 * n2),
        "kappa": float(sv[0] / sv[r - 1]),
        "mu_norm": float(step_size) * float(sv[0]),
        "sigma1": float(sv[0]),
        "gap": float(s[r] / s[r - 1]) if s.size > r else 0.0,
        "sine": max(_sine(L[:, :r], np.asarray(truth.left)), _sine(Rt[:r].T, np.asarray(truth.right))),
        "n1": n1, "n2": n2, "rank": r, "m": m, "noise": float(params.get("noise") or 0.0),
    }


@dataclass
class Regime:
    """Per-problem regime numbers of one group of trials."""

    label: str
    rows: list[dict] = field(default_factory=list)
    mu_norm: np.ndarray | None = None  # μ‖X*‖₂ of every trial (a grid may run several μ on one problem)

    def values(self, name: str) -> np.ndarray:
        if name == "mu_norm" and self.mu_norm is not None:
            return np.asarray(self.mu_norm, dtype=float)
        return np.array([row[name] for row in self.rows], dtype=float)

    def span(self, name: str) -> tuple[float, float]:
        v = self.values(name)
        v = v[np.isfinite(v)]
        return (float(v.min()), float(v.max())) if v.size else (float("nan"), float("nan"))

    def _fmt(self, name: str, digits: int = 2) -> str:
        lo, hi = self.span(name)
        if not np.isfinite(lo):
            return "—"
        return f"{lo:.{digits}g}" if f"{lo:.{digits}g}" == f"{hi:.{digits}g}" else f"{lo:.{digits}g}–{hi:.{digits}g}"

    def text(self) -> str:
        if not self.rows:
            return f"{self.label}: no stored problem"
        first = self.rows[0]
        sizes = sorted({(row["n1"], row["n2"], row["rank"]) for row in self.rows})
        size = ", ".join(f"{a}×{b}, r = {c}" for a, b, c in sizes)
        noise = self._fmt("noise")
        return (f"{self.label + ': ' if self.label else ''}{size}; m = {self._fmt('m', 4)}, m/dof = {self._fmt('oversampling')}, "
                f"m/(n1·n2) = {self._fmt('fill')}, κ = {self._fmt('kappa')}, μ‖X*‖₂ = {self._fmt('mu_norm')}"
                + (f", noise σ = {noise}" if first["noise"] or noise != "0" else "")
                + f"; RIP proxies of A*(y): σ_(r+1)/σ_r = {self._fmt('gap')}, sin∠(top-r of A*(y), X*) = {self._fmt('sine')} "
                f"({len(self.rows)} problems)")

    def as_dict(self) -> dict:
        out = {"label": self.label, "problems": len(self.rows)}
        for name in ("oversampling", "fill", "kappa", "mu_norm", "gap", "sine"):
            lo, hi = self.span(name)
            out[name] = [lo, hi]
        return out


def regime(trials, *, label: str = "", limit: int = MAX_PROBLEMS) -> Regime:
    """The regime of the distinct problems among `trials` (Columns of stored
    trials; at most `limit` problems, in stored order)."""
    out = Regime(label)
    if not len(trials):
        return out
    seen = set()
    steps = trials.num("step_size") if "step_size" in trials else np.full(len(trials), np.nan)
    cols = {name: trials[name] for name in PROBLEM_COLUMNS if name in trials}
    for i in range(len(trials)):
        params = {name: (col[i].item() if hasattr(col[i], "item") else col[i]) for name, col in cols.items()}
        key = tuple(params.get(name) for name in PROBLEM_COLUMNS)
        if key in seen:
            continue
        seen.add(key)
        out.rows.append(problem_regime(params, float(steps[i])))
        if len(out.rows) >= limit:
            break
    # every trial's μ counts (a grid may run several μ on one problem); ‖X*‖₂ is fixed by the planted family
    out.mu_norm = steps * float(np.median([row["sigma1"] for row in out.rows]))
    return out

