"""Small matplotlib helpers for the experiment figures (Agg backend, PNG).

matplotlib is imported on the first figure (`pyplot()`), not with this module:
the command line lists and checks its commands without loading it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from asymsense.atomic import atomic_path

PHASE_COLORS = ("#dbe9f6", "#fde6cf", "#ddf2dd")


@cache
def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes.ravel()


def save(fig, path) -> Path:
    """Write the PNG atomically (temporary file + rename) and close the figure."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.tight_layout()
            fig.savefig(tmp, dpi=110)
    finally:
        pyplot().close(fig)
    return Path(path)


def mark_phases(ax, phases, *, legend: bool = False) -> None:
    """Shade the detected phase intervals; with `legend`, name them in a legend
    (names never overlap however narrow a phase is)."""
    from matplotlib.patches import Patch

    handles = []
    for (name, a, b), color in zip(phases.intervals, PHASE_COLORS):
        if b > a:
            ax.axvspan(a, b, color=color, alpha=0.8, lw=0, zorder=0)
        handles.append(Patch(color=color, label=f"{name} [{a}, {b})"))
    if legend:
        ax.legend(handles=handles, fontsize=6.5, loc="center right", title="detected phases", title_fontsize=7)


def colors(n: int):
    cmap = pyplot().get_cmap("viridis")
    return [cmap(i / max(1, n - 1) * 0.9) for i in range(n)]


def finish(ax, *, xlabel: str, ylabel: str, title: str, legend: str | None = None, fontsize: float = 7) -> None:
    """Label an axis (and place its legend at `legend`, a matplotlib location)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=fontsize, loc=legend)
