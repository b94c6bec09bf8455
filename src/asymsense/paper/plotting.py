"""The one home of the figure helpers (matplotlib, Agg backend, PNG): the
experiments' panels (`new`, `finish`, `colors`, `mark_phases`, `success_map`),
the demo's (`figure`, `trial_lines`, `loglog_points`) and the publication
rules every saved figure follows (`save` → `tidy`, checked by `lint`):

* text is typeset: a subscript or superscript (``_F``, ``_2``, ``^T``) appears
  only inside mathtext ``$…$`` — a literal "‖X‖_F" in a label is a defect;
* a log axis is labelled at decades (10⁻⁶, 10⁻⁴, …); one that spans less than
  a decade gets plain numbers instead of "2×10⁰";
* a legend does not cover data: if matplotlib's placement leaves data points
  under it, it moves to the best free spot, else below the axes.

matplotlib is imported on the first figure (`pyplot()`), not with this module:
the command line lists and checks its commands without loading it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np

from asymsense.atomic import atomic_path

PHASE_COLORS = ("#dbe9f6", "#fde6cf", "#ddf2dd")

LITERAL_SCRIPT = re.compile(r"[_^](?:\{[^}]*\}|[A-Za-z0-9*])")
"""A sub/superscript written as TeX (``_F``, ``^T``, ``_{r+1}``), which matplotlib shows literally outside ``$…$``."""


@cache
def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, which="major", alpha=0.3, linewidth=0.6)
    ax.tick_params(labelsize=9)


def new(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6, *, sharey: bool = False):
    """A figure of ncols × nrows panels (flat array of axes); `sharey` where the panels compare one quantity."""
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, sharey=sharey)
    return fig, axes.ravel()


def figure(ncols: int = 1, nrows: int = 1, *, width: float = 5.2, height: float = 3.8, sharey: bool = False):
    """A figure (light grid, no top/right spines) and a flat array of its axes."""
    fig, axes = new(ncols, nrows, width, height, sharey=sharey)
    for ax in axes:
        _style(ax)
    return fig, axes


def save(fig, path) -> Path:
    """Apply the publication rules (`tidy`), write the PNG atomically
    (temporary file + rename) and close the figure."""
    try:
        fig.tight_layout()
        tidy(fig)
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return Path(path)


# --------------------------------------------------------------------------- the rules
def _texts(fig):
    """(where, text) of every title, axis label, legend entry and suptitle of `fig`."""
    out = []
    for i, ax in enumerate(fig.axes):
        for where, text in (("title", ax.get_title()), ("xlabel", ax.get_xlabel()), ("ylabel", ax.get_ylabel())):
            out.append((f"axes {i} {where}", text))
        legend = ax.get_legend()
        if legend is not None:
            out += [(f"axes {i} legend", t.get_text()) for t in legend.get_texts()]
            out.append((f"axes {i} legend title", legend.get_title().get_text()))
    if getattr(fig, "_suptitle", None) is not None:
        out.append(("suptitle", fig._suptitle.get_text()))
    return out


def literal_scripts(text: str) -> list[str]:
    """The TeX sub/superscripts of `text` that lie outside ``$…$`` (shown literally by matplotlib)."""
    outside = re.sub(r"\$[^$]*\$", "", text)
    return LITERAL_SCRIPT.findall(outside)


def _data_points(ax) -> np.ndarray:
    """Display coordinates of the data drawn on `ax` (lines and scatter points)."""
    pts = []
    for line in ax.get_lines():
        xy = np.column_stack([np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)])
        if len(xy) and line.get_label() != "_nolegend_" and not (len(xy) == 2 and (np.ptp(xy[:, 0]) == 0 or np.ptp(xy[:, 1]) == 0)):
            pts.append(xy)
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if offsets.ndim == 2 and len(offsets) and offsets.shape[1] == 2:
            pts.append(offsets)
    if not pts:
        return np.empty((0, 2))
    xy = np.concatenate(pts)
    if ax.get_xscale() == "log":
        xy = xy[xy[:, 0] > 0]
    if ax.get_yscale() == "log":
        xy = xy[xy[:, 1] > 0]
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    return ax.transData.transform(xy) if len(xy) else np.empty((0, 2))


def covered_points(ax) -> int:
    """How many data points of `ax` lie under its legend (0 without a legend or inside another axes)."""
    legend = ax.get_legend()
    if legend is None:
        return 0
    box = legend.get_window_extent()
    if not box.overlaps(ax.bbox):
        return 0
    pts = _data_points(ax)
    return int(np.sum((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)))


def _short_log_axis(axis, lim) -> bool:
    lo, hi = sorted(lim)
    return lo > 0 and np.floor(np.log10(hi)) - np.ceil(np.log10(lo)) < 1


def tidy(fig) -> None:
    """Apply the rules `lint` checks where they can be applied: plain tick labels on a log axis spanning
    less than a decade, and a legend moved off the data (best spot, else below the axes)."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, LogLocator, NullFormatter

    canvas = fig.canvas
    canvas.draw()
    for ax in fig.axes:
        for axis, lim, scale in ((ax.xaxis, ax.get_xlim(), ax.get_xscale()), (ax.yaxis, ax.get_ylim(), ax.get_yscale())):
            if scale != "log" or isinstance(axis.get_major_locator(), FixedLocator):
                continue  # linear, or ticks the panel chose itself
            if _short_log_axis(axis, lim):
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(FormatStrFormatter("%g"))
                axis.set_minor_formatter(NullFormatter())
            else:
                axis.set_major_locator(LogLocator(base=10, numticks=12))
                axis.set_minor_formatter(NullFormatter())
        if covered_points(ax):
            legend = ax.get_legend()
            props = dict(fontsize=legend._fontsize, title=legend.get_title().get_text() or None, frameon=legend.get_frame_on())
            handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
            ax.legend(handles, labels, loc="best", **props)
            canvas.draw()
            if covered_points(ax):
                ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(3, len(labels)), **props)
    canvas.draw()


def lint(fig) -> list[str]:
    """The publication rules `fig` breaks, one line each (empty: none): literal sub/superscripts, a log axis
    labelled off the decades, a legend over data."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter

    problems = []
    for where, text in _texts(fig):
        bad = literal_scripts(text)
        if bad:
            problems.append(f"{where}: literal {', '.join(bad)} outside $…$ in {text!r}")
    fig.canvas.draw()
    for i, ax in enumerate(fig.axes):
        for name, axis, lim, scale in (("x", ax.xaxis, ax.get_xlim(), ax.get_xscale()), ("y", ax.yaxis, ax.get_ylim(), ax.get_yscale())):
            if scale != "log" or isinstance(axis.get_major_locator(), FixedLocator):
                continue
            if not _short_log_axis(axis, lim):
                ticks = [t for t in axis.get_majorticklocs() if min(lim) <= t <= max(lim)]
                off = [t for t in ticks if t > 0 and abs(np.log10(t) - round(np.log10(t))) > 1e-9]
                if off:
                    problems.append(f"axes {i} {name}: log ticks off the decades {off[:3]}")
            elif not isinstance(axis.get_major_formatter(), FormatStrFormatter):
                problems.append(f"axes {i} {name}: log axis within one decade without plain tick labels")
        n = covered_points(ax)
        if n:
            problems.append(f"axes {i}: the legend covers {n} data points")
    return problems


# --------------------------------------------------------------------------- panels
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


def success_map(ax, P, xticks, yticks, *, notes=None, contour=None):
    """A success-fraction heat map: P[i, j] over yticks[i] × xticks[j] (NaN: untested), each cell printed
    (with `notes[i][j]` under the number when given), with the `contour` level drawn as a labelled line
    (for a legend); returns the image for a colorbar."""
    im = ax.imshow(P, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="magma")
    if contour is not None and min(P.shape) > 1 and np.nanmax(P) >= contour > np.nanmin(P):
        ax.contour(np.arange(P.shape[1]), np.arange(P.shape[0]), np.nan_to_num(P, nan=0.0), levels=[contour], colors="C0", linewidths=1.5)
        ax.plot([], [], color="C0", lw=1.5, label=f"success = {contour:g} contour")
    ax.set_xticks(range(len(xticks)), [f"{x:g}" if isinstance(x, float) else str(x) for x in xticks])
    ax.set_yticks(range(len(yticks)), [f"{y:g}" if isinstance(y, float) else str(y) for y in yticks])
    ax.grid(False)
    for i in range(P.shape[0]):
        for j in range(P.shape[1]):
            if np.isfinite(P[i, j]):
                text = f"{P[i, j]:.1f}" + (f"\n{notes[i][j]}" if notes is not None and notes[i][j] else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if P[i, j] < 0.5 else "k")
    return im


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
