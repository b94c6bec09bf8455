"""The `asymsense demo` job: small initialization, overparameterization, implicit balancing.

Problem (embedded default): a planted 60×40 matrix of rank r = 3 with
condition number κ = 3 (σ = 1, 2/3, 1/3), observed through m = 5·r(n1+n2−r)
= 1455 dense Gaussian measurements (entries N(0, 1/m); 1455 < n1·n2 = 2400,
so the overparameterized model could fit y with a wrong matrix). Two models,
each run as ONE batched `fgd` call over the α grid (same operator, same
initialization directions G₁, G₂ for every α, auto step μ = 0.5/‖A*(y)‖₂):

- k = 60 ≥ max(n1, n2): heavily overparameterized;
- k = 3 = r: the exact model.

Stopping rule (the same for every trial): rel_residual ≤ tol (1e-12) or
max_iter (1000) iterations. The exact model converges to the tolerance; the
overparameterized model never does and stops at the budget, so its final test
error is the error at a fixed budget. The slope of log(final error) against
log α is fitted over the trials that ran the full budget (natural-log least
squares; measured, never assumed).

Seeds: `seed` (default 0) seeds the initialization; the truth and the
operator use SeedSequence([seed, 1]) and SeedSequence([seed, 2]) as in the
sweep engine. All are recorded in summary.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from asymsense.atomic import check_new_out_dir, output_dir, write_json
from asymsense.backend import quiet_overflow
from asymsense.history import concat_histories, write_table
from asymsense.paper.fitting import loglog_fit
from asymsense.paper.plotting import colors, figure, loglog_points, save, trial_lines
from asymsense.problems import planted_instance
from asymsense.solvers.fgd import fgd
from asymsense.spec import SEED_STREAMS, derived_seed
from asymsense.validation import check_int, check_positive, measurements_from_oversampling, resolve_seed

N1, N2, RANK, COND = 60, 40, 3, 3.0
OVERSAMPLING = 5
WIDTHS = (60, 3)
ALPHAS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
MAX_ITER = 1000
TOL = 1e-12
RECORD_EVERY = 2

FIGURES = {
    "test_error": "test_error.png",
    "imbalance": "imbalance.png",
    "singular_values": "singular_values.png",
    "error_vs_alpha": "error_vs_alpha.png",
}
HISTORY_FILE = "history.parquet"
SUMMARY_FILE = "summary.json"


@dataclass
class DemoOutcome:
    """What the demo produced: table rows, fits, the summary written, the files."""

    rows: list[dict]
    fits: dict
    summary: dict
    files: list[Path] = field(default_factory=list)


def demo_config(*, max_iter=MAX_ITER, seed=0, record_every=RECORD_EVERY, tol=TOL, threads=1) -> dict:
    """The demo's resolved parameters, seeds included."""
    seed = resolve_seed(seed)
    m = measurements_from_oversampling(N1, N2, RANK, OVERSAMPLING)
    return {
        "n1": N1, "n2": N2, "rank": RANK, "cond": COND, "spectrum": "linear", "operator": "gaussian", "m": m,
        "oversampling": OVERSAMPLING, "noise": 0.0, "dtype": "float64", "widths": list(WIDTHS), "alphas": list(ALPHAS),
        "step": "auto", "max_iter": check_int("max_iter", max_iter, minimum=1), "tol": check_positive("tol", tol),
        "record_every": check_int("record_every", record_every, minimum=1), "threads": check_int("threads", threads, minimum=1),
        "seed": seed, "problem_seed": derived_seed(seed, SEED_STREAMS["problem_seed"]),
        "operator_seed": derived_seed(seed, SEED_STREAMS["operator_seed"]),
        "stopping": f"rel_residual <= {tol:g} or {max_iter} iterations",
    }


def run_demo(out_dir, *, max_iter=MAX_ITER, seed=0, record_every=RECORD_EVERY, tol=TOL, threads=1,
             progress: Callable[[int, int], Callable[[int], None]] | None = None, overwrite: bool = False) -> DemoOutcome:
    """Run the demo and write its figures, history.parquet and summary.json
    into `out_dir`: a new or empty folder (another run's outputs are replaced
    only with `overwrite`), written whole at the end (`atomic.output_dir`).
    `progress(width, max_iter)` may return a per-iteration callback for the
    run of that width."""
    config = demo_config(max_iter=max_iter, seed=seed, record_every=record_every, tol=tol, threads=threads)
    out = check_new_out_dir(out_dir, overwrite=overwrite, flag="out")
    started = time.perf_counter()
    results = {}
    with threadpool_limits(config["threads"]), quiet_overflow():
        truth, op, y = planted_instance(N1, N2, RANK, cond=COND, spectrum="linear", operator="gaussian", m=config["m"],
                                        problem_seed=config["problem_seed"], operator_seed=config["operator_seed"])
        for width in WIDTHS:
            callback = progress(width, config["max_iter"]) if progress is not None else None
            results[width] = fgd(op, y, width=width, init_scale=list(ALPHAS), max_iter=config["max_iter"], seed=config["seed"],
                                 truth=truth, record_every=config["record_every"], tol=config["tol"], progress=callback)
            if callback is not None:
                callback(config["max_iter"])  # the batch is done (all trials converged, or the budget was reached)
    run_seconds = time.perf_counter() - started
    config["step_size"] = results[WIDTHS[0]][0].step_size

    rows, trials, histories = [], [], []
    for width in WIDTHS:
        for result in results[width]:
            trial = len(trials)
            summary = {k: v for k, v in result.summary().items() if k != "config"}
            # one batched call ran every α of this width: its wall time divided by its trials, named for what it is
            summary["batch_seconds_per_trial"] = summary.pop("seconds")
            trials.append({"trial": trial, "width": width, "init_scale": result.config["init_scale"], "seed": result.config["seed"], **summary})
            rows.append({"alpha": result.config["init_scale"], "width": width, "rel_error": summary["rel_error"], "iterations": summary["iterations"],
                         "stop_reason": summary["stop_reason"], "max_rel_imbalance": summary["max_rel_imbalance"]})
            histories.append(result.history)
    fits = fit_slopes(rows)

    with output_dir(out) as tmp:  # the folder appears whole at the end of the block, or not at all
        files = [tmp / HISTORY_FILE]
        write_table(concat_histories(histories, width=[t["width"] for t in trials], trial=[t["trial"] for t in trials],
                                     init_scale=[t["init_scale"] for t in trials], seed=[t["seed"] for t in trials]), files[0])
        files += draw_figures(tmp, results, truth, rows, fits, config)
        main_fit = fits.get(str(WIDTHS[0]))
        summary = {
            "config": config,
            "trials": trials,
            "fits": fits,
            "fitted_slope": None if main_fit is None else main_fit["slope"],
            "run_seconds": run_seconds,
            "seconds": time.perf_counter() - started,
            "files": [p.name for p in files] + [SUMMARY_FILE],
        }
        files.append(write_json(tmp / SUMMARY_FILE, summary))
    return DemoOutcome(rows, fits, summary, [out / p.name for p in files])


def fit_slopes(rows: list[dict]) -> dict:
    """Per width: least-squares fit of log(final error) = c + s·log α over the
    trials that ran the full budget (stop_reason max_iter) — None when fewer
    than two did (e.g. every trial converged to the tolerance)."""
    fits = {}
    for width in WIDTHS:
        pts = [(r["alpha"], r["rel_error"]) for r in rows if r["width"] == width and r["stop_reason"] == "max_iter"]
        if len({a for a, _ in pts}) < 2:
            fits[str(width)] = None
            continue
        fit = loglog_fit([a for a, _ in pts], [e for _, e in pts])
        fits[str(width)] = {"slope": fit.slope, "intercept": fit.intercept, "r2": fit.r2, "n": fit.n,
                            "alphas": [a for a, _ in pts], "model": "log(rel_error) = intercept + slope·log(alpha)"}
    return fits


def draw_figures(out: Path, results: dict, truth, rows: list[dict], fits: dict, config: dict) -> list[Path]:
    """The four PNGs of the demo (see FIGURES)."""
    labels = [f"α = {a:.0e}" for a in ALPHAS]
    floor = 1e-16
    header = f"{N1}×{N2}, rank {RANK}, κ = {COND:g}, Gaussian m = {config['m']}"
    paths = []

    def curves(width, column):
        return [(r.history["iteration"], r.history[column]) for r in results[width]]

    fig, axes = figure(len(WIDTHS), sharey=True)
    for ax, width in zip(axes, WIDTHS):
        trial_lines(ax, curves(width, "rel_error"), labels=labels, floor=floor, title=f"k = {width}" + (" (exact)" if width == RANK else ""),
                    ylabel=r"test error $\|UV^\top - X^\ast\|_F\,/\,\|X^\ast\|_F$" if ax is axes[0] else None)
    fig.suptitle(f"Test error vs iteration — {header}", fontsize=11)
    paths.append(save(fig, out / FIGURES["test_error"]))

    fig, axes = figure(len(WIDTHS), sharey=True)
    for ax, width in zip(axes, WIDTHS):
        trial_lines(ax, curves(width, "rel_imbalance"), labels=labels, title=f"k = {width}",
                    ylabel=r"$\|U^\top U - V^\top V\|_F\,/\,\|X^\ast\|_2$" if ax is axes[0] else None)
    fig.suptitle("Relative imbalance vs iteration (implicit balancing)", fontsize=11)
    paths.append(save(fig, out / FIGURES["imbalance"]))

    width = WIDTHS[0]
    fig, axes = figure(3, 2, width=4.2, height=3.2, sharey=True)
    for ax, result, alpha in zip(axes, results[width], ALPHAS):
        h = result.history
        names = sorted((c for c in h.names if c.startswith("sv_")), key=lambda c: int(c[3:]))
        for i, name in enumerate(names):
            top = i < RANK
            ax.plot(h["iteration"], np.maximum(h[name], floor), color=colors(RANK)[i] if top else "0.6", linewidth=1.6 if top else 0.9,
                    label=f"σ{i + 1}(UVᵀ)" if top else ("σ4…σ10" if i == RANK else None))
        for j, s in enumerate(truth.singular_values):  # drawn above the curves (zorder), so the targets stay visible
            ax.axhline(s, color="k", linestyle=":", linewidth=1.0, zorder=5, label="σ(X*)" if j == 0 else None)
        ax.set_yscale("log")
        ax.set_title(f"α = {alpha:.0e}")
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    axes[0].set_ylabel("singular value")
    axes[3].set_ylabel("singular value")
    fig.suptitle(f"Singular values of UVᵀ, k = {width} (dotted: σ of X*) — the tail σ4…σ10 stays small and shrinks with α", fontsize=11)
    paths.append(save(fig, out / FIGURES["singular_values"]))

    fig, (ax,) = figure(width=6.0, height=4.4)
    for (w, color, marker) in zip(WIDTHS, ("#2a6fb0", "#d95f02"), ("o", "s")):
        pts = [r for r in rows if r["width"] == w]
        fit = fits.get(str(w))
        label = f"k = {w}" + ("" if fit is not None else " (converged to tol; no fit)")
        loglog_points(ax, [r["alpha"] for r in pts], [max(r["rel_error"], floor) for r in pts], label=label, color=color, marker=marker,
                      fit=None if fit is None else SimpleNamespace(**fit), fit_label="fitted slope")
    ax.set_xlabel("initialization scale α")
    ax.set_ylabel("final test error")
    ax.set_title(f"Final test error vs α (stop: {config['stopping'].replace('<=', '≤')})", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    paths.append(save(fig, out / FIGURES["error_vs_alpha"]))
    return paths
