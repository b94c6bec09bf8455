"""Small matplotlib helpers (Agg backend) shared by experiment figures:
one log-scale curve per trial, and a log–log scatter with its fitted power law.

Figures are saved by `asymsense.paper.figures.save` (atomic PNG write).
"""

from __future__ import annotations

import numpy as np

from asymsense.paper.figures import colors, pyplot, save  # noqa: F401 (save re-exported for the demo)


def figure(ncols: int = 1, nrows: int = 1, *, width: float = 5.2, height: float = 3.8, sharey: bool = False):
    """A figure (light grid, no top/right spines) and a flat array of its axes."""
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, sharey=sharey)
    for ax in axes.ravel():
        _style(ax)
    return fig, axes.ravel()


def _style(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, which="major", alpha=0.3, linewidth=0.6)
    ax.tick_params(labelsize=9)


def trial_lines(ax, curves, *, labels=None, title=None, xlabel="iteration", ylabel=None, logy=True, legend_title=None, floor=None):
    """One line per trial: `curves` is a list of (x, y) pairs, coloured along
    viridis in order (so a sweep over α reads as a gradient). Non-positive
    values are dropped on a log axis; `floor` clips y from below (e.g. at
    machine precision) so a curve that reaches 0 stays visible."""
    palette = colors(len(curves))
    for i, (x, y) in enumerate(curves):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if floor is not None:
            y = np.maximum(y, floor)
        if logy:
            keep = np.isfinite(y) & (y > 0)
            x, y = x[keep], y[keep]
        ax.plot(x, y, color=palette[i], linewidth=1.6, label=None if labels is None else labels[i])
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if labels is not None:
        ax.legend(title=legend_title, title_fontsize=8, fontsize=8, frameon=False)
    return ax


def loglog_points(ax, x, y, *, label, color, marker="o", fit=None, fit_label="slope"):
    """Scatter (x, y) on log–log axes; with `fit` (an object with slope and
    intercept of log y = intercept + slope·log x, natural logs) draw the fitted
    line over the x range and put the slope in the legend."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    text = label if fit is None else f"{label}: {fit_label} {fit.slope:.2f}"
    ax.plot(x, y, linestyle="none", marker=marker, markersize=6, color=color, label=text)
    if fit is not None:
        grid = np.geomspace(x.min(), x.max(), 50)
        ax.plot(grid, np.exp(fit.intercept + fit.slope * np.log(grid)), color=color, linewidth=1.2, linestyle="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return ax
