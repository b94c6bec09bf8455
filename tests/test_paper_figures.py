"""The publication rules of the report's figures (asymsense.paper.plotting):
typeset sub/superscripts, decades on log axes, legends off the data — each
rule checked by `lint`, applied by `save` (via `tidy`) where it can be."""

from __future__ import annotations

import numpy as np
import pytest

from asymsense.paper import plotting


@pytest.fixture
def fig_ax():
    fig, axes = plotting.new(ncols=1)
    yield fig, axes[0]
    plotting.pyplot().close(fig)


@pytest.mark.parametrize("text, bad", [
    ("‖UVᵀ − X*‖_F / ‖X*‖_F", ["_F", "_F"]),
    ("sin θ_max", ["_m"]),
    ("error ∝ α^s", ["^s"]),
    ("σ_{r+1}(UVᵀ)", ["_{r+1}"]),
    (r"$\|UV^T - X^*\|_F / \|X^*\|_F$", []),
    (r"rel. error $\sigma_i$ and m/dof = 3", []),
    ("m/(n1·n2) ≤ 0.7, κ = 2", []),
])
def test_literal_subscripts_outside_mathtext_are_found(text, bad):
    assert plotting.literal_scripts(text) == bad


def test_lint_names_a_literal_subscript_in_a_label_and_a_legend(fig_ax):
    fig, ax = fig_ax
    ax.plot([1, 2], [1, 2], label="tail_u")
    ax.set_ylabel("‖X‖_F")
    ax.set_title(r"$\|X\|_F$ ok")
    ax.legend()
    problems = plotting.lint(fig)
    assert any("ylabel" in p and "_F" in p for p in problems) and any("legend" in p and "_u" in p for p in problems)
    assert not any("title" in p for p in problems)


def test_tidy_gives_a_short_log_axis_plain_labels_and_lint_checks_it(fig_ax):
    fig, ax = fig_ax
    ax.loglog([1, 4], [0.3, 0.9], "o")
    assert any("within one decade" in p for p in plotting.lint(fig))
    plotting.tidy(fig)
    assert plotting.lint(fig) == []
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.yaxis.get_ticklabels() if t.get_text()]
    assert labels and all("times" not in s and "10^" not in s for s in labels)


def test_a_long_log_axis_is_labelled_at_decades(fig_ax):
    fig, ax = fig_ax
    ax.semilogy(np.arange(10), np.logspace(-8, 0, 10))
    plotting.tidy(fig)
    ticks = [t for t in ax.yaxis.get_majorticklocs() if 1e-8 <= t <= 1]
    assert ticks and all(abs(np.log10(t) - round(np.log10(t))) < 1e-9 for t in ticks)
    assert plotting.lint(fig) == []


def test_a_legend_over_data_is_found_and_moved_off_it(fig_ax):
    fig, ax = fig_ax
    x = np.linspace(0, 1, 200)
    ax.plot(x, np.ones_like(x) * 0.95, label="a line under the legend")
    ax.plot(x, x, label="another")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper right")
    fig.canvas.draw()
    assert plotting.covered_points(ax) > 0
    assert any("legend covers" in p for p in plotting.lint(fig))
    plotting.tidy(fig)
    assert plotting.covered_points(ax) == 0


def test_save_applies_the_rules(tmp_path):
    fig, axes = plotting.new(ncols=2, sharey=True)
    x = np.linspace(0, 1, 50)
    for ax in axes:
        ax.plot(x, 0.9 + 0.0 * x, label="flat")
        ax.legend(loc="upper left")
    axes[1].set_xscale("log")
    axes[1].set_xlim(1, 3)
    seen = []
    fig.canvas.draw()
    original = plotting.pyplot().close
    try:
        plotting.pyplot().close = lambda f: seen.append(plotting.lint(f))
        plotting.save(fig, tmp_path / "f.png")
    finally:
        plotting.pyplot().close = original
        original(fig)
    assert (tmp_path / "f.png").stat().st_size > 1000 and seen == [[]]
