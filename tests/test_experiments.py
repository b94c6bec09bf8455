"""Experiments: fitting, phase detection, claims from stored results, report, CLI."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from asymsense.errors import InputError
from asymsense.paper import fitting
from asymsense.paper.claims import claim
from asymsense.paper.phases import PHASE_NAMES, detect_phases, phases_from_history


# --------------------------------------------------------------------------- fitting
def test_loglog_slope_recovers_known_exponent():
    x = np.logspace(-6, -1, 12)
    fit = fitting.loglog_fit(x, 3.0 * x**0.75)
    assert fit.slope == pytest.approx(0.75, abs=1e-12)
    assert fit.intercept == pytest.approx(math.log(3.0), abs=1e-10)
    assert fit.r2 == pytest.approx(1.0)


def test_linear_fit_r2_matches_definition():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 10, 50)
    y = 2.0 + 0.5 * x + rng.normal(0, 0.3, x.size)
    fit = fitting.linear_fit(x, y)
    resid = y - fit.predict(x)
    assert fit.r2 == pytest.approx(1 - resid @ resid / np.sum((y - y.mean()) ** 2))
    assert abs(fit.slope - 0.5) < 0.05
    with pytest.raises(InputError):
        fitting.linear_fit([1, 1, 1], [1, 2, 3])


def test_bootstrap_ci_covers_true_slope_and_shrinks_with_seeds():
    rng = np.random.default_rng(1)
    alphas = np.logspace(-5, -1, 6)

    def groups(n):
        return [(alphas, 0.1 * alphas**1.2 * np.exp(rng.normal(0, 0.3, alphas.size))) for _ in range(n)]

    few = fitting.loglog_slope_ci(groups(4), seed=0)
    many = fitting.loglog_slope_ci(groups(40), seed=0)
    assert many.low <= 1.2 <= many.high
    assert few.low <= few.value <= few.high
    assert (many.high - many.low) < (few.high - few.low)


def test_bootstrap_is_reproducible_from_its_seed_and_narrows_with_the_level():
    values = np.random.default_rng(5).lognormal(0.0, 1.0, 30)
    a, b = fitting.median_ci(values, seed=3), fitting.median_ci(values, seed=3)
    assert a == b and a.low < a.value < a.high
    assert fitting.median_ci(values, seed=4) != a
    half = fitting.median_ci(values, seed=3, level=0.5)
    assert a.low < half.low <= half.high < a.high and half.level == 0.5
    rng = np.random.default_rng(2)
    groups = [(np.arange(1.0, 6.0), np.arange(1.0, 6.0) * (2 + rng.normal(0, 0.1))) for _ in range(6)]
    slope = lambda gs: fitting.linear_fit(*fitting.pooled_points(gs)).slope  # noqa: E731
    assert fitting.bootstrap(groups, slope, seed=1) == fitting.bootstrap(groups, slope, seed=1)


def test_bootstrap_degenerate_samples_give_the_point_value_without_warnings():
    import warnings

    slope = lambda gs: fitting.linear_fit(*fitting.pooled_points(gs)).slope  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fitting.mean_ci([2.0] * 5) == fitting.Estimate(2.0, 2.0, 2.0, 0.95, 5, "range")
        assert fitting.median_ci([7.0, float("nan")]) == fitting.Estimate(7.0, 7.0, 7.0, 0.95, 1, "range")
        one = (np.arange(1.0, 4.0), np.array([1.0, 3.0, 5.0]))
        single = fitting.bootstrap([one], slope)
        assert single.low == single.value == single.high == pytest.approx(2.0) and single.n == 1
        same = fitting.bootstrap([one] * 4, slope)
        assert same.low == pytest.approx(2.0) and same.high == pytest.approx(2.0) and same.n == 4
        # single points: a draw repeating one point cannot be fitted; those replicates are left out
        points = [(np.array([x]), np.array([2.0 * x + e])) for x, e in zip([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.0, 0.3, -0.2, 0.1, -0.3, 0.2])]
        est = fitting.bootstrap(points, slope, n_boot=300)
        assert np.isfinite([est.low, est.high]).all() and est.low < est.value < est.high
        labels = ["a", "b", "c"]

        def only_the_sample(gs):
            if gs != labels:
                raise InputError("not computable on a resample")
            return 1.5

        assert fitting.bootstrap(labels, only_the_sample, n_boot=50) == fitting.Estimate(1.5, 1.5, 1.5, 0.95, 3, "range")
        five = labels + ["d", "e"]

        def only_five(gs):
            if gs != five:
                raise InputError("not computable on a resample")
            return 1.5

        assert fitting.bootstrap(five, only_five, n_boot=50) == fitting.Estimate(1.5, 1.5, 1.5, 0.95, 5, "percentile bootstrap")
    with pytest.raises(InputError):
        fitting.bootstrap([], slope)


def test_multi_loglog_fit_recovers_two_exponents():
    a, m = np.meshgrid(np.logspace(-5, -2, 4), np.array([0.05, 0.1, 0.2, 0.4]))
    coef, c0, r2 = fitting.multi_loglog_fit([a.ravel(), m.ravel()], 0.02 * a.ravel() ** 0.1 * m.ravel() ** 1.0)
    assert coef == pytest.approx([0.1, 1.0])
    assert math.exp(c0) == pytest.approx(0.02)
    assert r2 == pytest.approx(1.0)


# --------------------------------------------------------------------------- phases
def synthetic_trajectory(align=30, growth_end=90, stop=300, alpha=1e-8, rate=0.35):
    """σ_r: slow random-direction growth until `align`, geometric growth at
    `rate` per iteration afterwards, saturating (logistic) at 0.5."""
    t = np.arange(stop)
    log_s = np.where(t < align, np.log(alpha) + 0.05 * t, np.log(alpha) + 0.05 * align + rate * (t - align))
    s = 1.0 / (1.0 / np.exp(log_s) + 1.0 / 0.5)  # smooth saturation at 0.5
    return t, s


def test_phase_detection_on_synthetic_trajectory():
    t, s = synthetic_trajectory()
    ph = detect_phases(t, s)
    assert ph.complete
    assert ph.alignment_end in range(29, 33)
    # σ_r reaches 0.9·0.5 where exp(log_s) = 9·0.5 → solve for t
    expected_growth = 30 + (math.log(4.5) - math.log(1e-8) - 0.05 * 30) / 0.35
    assert abs(ph.growth_end - expected_growth) <= 2
    assert ph.stop == 300
    assert [name for name, _, _ in ph.intervals] == list(PHASE_NAMES)
    assert ph.label(10) == PHASE_NAMES[0] and ph.label(60) == PHASE_NAMES[1] and ph.label(200) == PHASE_NAMES[2]


def test_phase_detection_moves_with_the_trajectory_and_works_from_history():
    t, s = synthetic_trajectory(align=50, rate=0.2)
    ph = phases_from_history({"iteration": t[::2], "sv_3": s[::2]}, 3)
    assert abs(ph.alignment_end - 50) <= 3
    assert ph.growth_end > 100
    with pytest.raises(InputError):
        phases_from_history({"iteration": t, "sv_1": s}, 3)
    with pytest.raises(InputError):
        detect_phases(t[::-1], s)


def test_phase_detection_separation_rule():
    t, s = synthetic_trajectory(align=0, rate=0.3, alpha=1e-10)
    noise = 1e-10 * np.exp(0.2 * t)  # spurious direction growing more slowly
    ph = detect_phases(t, s, next_signal=noise)
    # σ_r/σ_(r+1) = e^{0.1 t} (before saturation) first reaches 10 at t = ln(10)/0.1
    assert abs(ph.alignment_end - math.log(10) / 0.1) <= 1.5
    assert ph.complete
    via_history = phases_from_history({"iteration": t, "sv_2": s, "sv_3": noise}, 2)
    assert via_history == ph


def test_phase_detection_large_alpha_has_no_alignment_phase():
    t = np.arange(100)
    s = 0.5 * (1 - np.exp(-t / 10.0))  # saturating from the start: already aligned
    s[0] = 1e-3
    ph = detect_phases(t, s)
    assert not ph.complete
    assert ph.alignment_end <= 1


# --------------------------------------------------------------------------- claims
def test_claim_uses_the_conservative_end_of_the_interval():
    est = fitting.Estimate(0.8, 0.45, 1.1)
    assert not claim("x", "e", "s", "q", est, ">=", 0.5).passed
    assert claim("x", "e", "s", "q", est, ">=", 0.4).passed
    assert not claim("x", "e", "s", "q", est, "<=", 1.0).passed
    missing = claim("x", "e", "s", "q", None, "<=", 1.0)
    assert not missing.passed and "not measured" in missing.verdict


# --------------------------------------------------------------------------- stored results → claims → report
TINY = {
    "e5": {"fixed": {"n1": 8, "n2": 6, "rank": 2, "oversampling": 5.0, "width": "n2", "max_iter": 300, "record_every": 1}, "grid": {"alpha": [1e-3, 1e-5, 1e-7, 1e-9]}, "seeds": 2},
    "e8": {"fixed": {"n1": 8, "n2": 6, "rank": 2, "oversampling": 5.0, "width": "n2", "alpha": 1e-6, "max_iter": 60, "record_every": 1}, "seeds": 1},
}


def write_tiny_store(out: Path) -> None:
    """Run E5 and E8 on tiny problems through the real runner (sweep engine + store)."""
    from asymsense.paper import registry, runner

    original = registry.experiment_config

    def tiny_config(name, mode):
        cfg = original(name, mode)
        for sweep in cfg["sweeps"]:
            sweep["fixed"] = dict(TINY[name]["fixed"])
            sweep["grid"] = dict(TINY[name].get("grid", {}))
            sweep["seeds"] = TINY[name]["seeds"]
        if "min_seeds" in cfg["analysis"]:
            cfg["analysis"]["min_seeds"] = TINY[name]["seeds"]  # a tiny store: the seed count is not what these tests check
        return cfg

    registry.experiment_config, runner.experiment_config = tiny_config, tiny_config
    try:
        runner.reproduce(out, "quick", experiments=["e5", "e8"], n_jobs=1, progress=False)
    finally:
        registry.experiment_config, runner.experiment_config = original, original


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    write_tiny_store(out)
    return out


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.slow
def test_report_builder_writes_markdown_html_and_claims(tiny_store, tmp_path):
    from asymsense.paper.report import build_report

    out = copy_store(tiny_store, tmp_path / "r")
    claims, sections = build_report(out)
    assert [s.name for s in sections] == ["e5", "e8"]
    assert all(s.error is None for s in sections)
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for c in claims:
        assert c.id in md and c.id in html
    assert "data:image/png;base64," in html and "<img" in html
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)|url\(|@import""", html), "report.html must be self-contained"
    assert html.count("<summary>configuration</summary>") == md.count("<summary>configuration</summary>") == len(sections)
    assert "Generated " in html and "rebuilds this page without recomputing" in html
    assert html.count("<table>") == len(re.findall(r"^\|---", md, re.M)) and "|---" not in html  # every Markdown table rendered
    assert "<code>asymsense report DIR</code>" in html and "<em>Implicit balancing" in html
    assert '<tr class="fail">' not in html or any(not c.passed for c in claims)
    assert "figures/e5_iterations.png" in md and (out / "figures" / "e5_iterations.png").stat().st_size > 1000
    stored = json.loads((out / "claims.json").read_text())
    assert [r["id"] for r in stored] == [c.id for c in claims]
    e8a = next(c for c in claims if c.id == "E8.a")
    assert e8a.measured and e8a.value <= 0.01 and e8a.passed
    # every claim carries its experiment's regime, in the report and in claims.json
    assert all(r["regime"] and "m/dof" in r["regime"][0]["text"] for r in stored)
    assert md.count("**Regime:**") == len(sections) and "σ_(r+1)/σ_r" in md


def _corrupt(store_dir: Path, column: str, value: float) -> None:
    for path in sorted((store_dir / "trials").glob("*.parquet")):
        table = pq.read_table(path)
        idx = table.column_names.index(column)
        col = np.array(table.column(column).to_numpy(zero_copy_only=False), dtype=float)
        col[0] = value
        import pyarrow as pa

        pq.write_table(table.set_column(idx, column, pa.array(col)), path)
        return
    raise AssertionError("no stored trials")


def before_step(out: Path) -> float:
    from asymsense.paper import data

    return float(data.trials(out / "data" / "e8" / "lifted").num("step_size")[0])


@pytest.mark.slow
def test_claims_are_computed_from_stored_results(tiny_store, tmp_path):
    """Corrupting one stored number flips the claim that depends on it."""
    from asymsense.paper.report import build_report

    out = copy_store(tiny_store, tmp_path / "c")
    before = {c.id: c for c in build_report(out)[0]}
    assert before["E8.a"].passed
    _corrupt(out / "data" / "e8" / "lifted", "step_size", 1.5 * before_step(out))  # the stored μ no longer matches the measured rates
    after = {c.id: c for c in build_report(out)[0]}
    assert after["E8.a"].value > 0.1
    assert not after["E8.a"].passed
    assert "FAIL" in (out / "report.md").read_text()
    failing_row = re.search(r'<tr class="fail">(.*?)</tr>', (out / "report.html").read_text(), re.S)
    assert failing_row and "E8.a" in failing_row.group(1)
    assert after["E5.a"].value == before["E5.a"].value  # the other claims read their own numbers


def _cli(*args):
    exe = shutil.which("asymsense")
    cmd = [exe, *args] if exe else [sys.executable, "-c", "from asymsense.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_report_rebuilds_from_stored_results(tiny_store, tmp_path):
    out = copy_store(tiny_store, tmp_path / "cli")
    (out / "report.md").unlink(missing_ok=True)
    proc = _cli("report", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["id"] for r in rows} >= {"E5.a", "E8.a"}
    assert (out / "report.md").is_file() and (out / "report.html").is_file()


@pytest.mark.slow
def test_cli_report_bad_folder_exits_2(tmp_path):
    for target in (tmp_path / "missing", tmp_path):
        proc = _cli("report", str(target))
        assert proc.returncode == 2
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_reproduce_refuses_both_modes(tmp_path):
    proc = _cli("reproduce", "--quick", "--full", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_shipped_configs_expand_in_both_modes():
    from asymsense.paper.registry import EXPERIMENTS, TRIAL_METHODS, experiment_config
    from asymsense.paper.runner import sweep_configs
    from asymsense.sweep.run import expand, load_sweep_config

    for name in EXPERIMENTS:
        quick, full = experiment_config(name, "quick"), experiment_config(name, "full")
        nq = sum(len(expand(load_sweep_config(sc), TRIAL_METHODS)) for _, sc in sweep_configs(quick))
        nf = sum(len(expand(load_sweep_config(sc), TRIAL_METHODS)) for _, sc in sweep_configs(full))
        assert 0 < nq <= nf, name
    e6 = experiment_config("e6", "quick")
    assert all(s["seeds"] >= 5 for s in e6["sweeps"])


@pytest.mark.slow
def test_cli_reproduce_bad_jobs_is_one_line_before_any_output(tmp_path):
    proc = _cli("reproduce", "--out", str(tmp_path / "x"), "-e", "e1", "--jobs", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert lines == ["error: --jobs must be >= 1, got 0"], proc.stderr
    assert not (tmp_path / "x").exists()


def test_e8_note_blames_the_spectral_gap_only_when_it_separates_the_seeds():
    from asymsense.paper.e8_lifted import _misalignment_notes

    inf = float("inf")
    assert _misalignment_notes([0.01, 0.02], [0.05, 0.04], [0.7, 0.8], 0.1, 0.1) == []
    close = _misalignment_notes([0.003, inf, 0.007], [0.05, 0.16, 0.04], [0.788, 0.793, 0.719], 0.1, 0.1)[0]
    assert "1 of 3 seeds" in close and "0.16" in close and "does not explain" in close and "saturates" not in close
    apart = _misalignment_notes([0.003, inf], [0.05, 0.3], [0.70, 0.91], 0.1, 0.1)[0]
    assert "above every aligned seed's (0.700 at most)" in apart and "saturates" in apart


@pytest.mark.slow
def test_every_report_figure_has_labelled_axes_and_titles(tiny_store, tmp_path, monkeypatch):
    """A reader must never meet an unlabelled axis: every panel has a title and
    an x label, and a y label unless it shares the y axis of a labelled panel."""
    from asymsense.paper import plotting as figures
    from asymsense.paper.report import build_report

    seen = []
    save = figures.save

    def inspect(fig, path):
        seen.append((path.name, [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.has_data()]))
        return save(fig, path)

    monkeypatch.setattr(figures, "save", inspect)
    build_report(copy_store(tiny_store, tmp_path / "r"), console=None)
    assert {name for name, _ in seen} >= {"e5_iterations.png", "e8_lifted.png"}
    for name, panels in seen:
        assert panels, name
        for title, xlabel, ylabel in panels:
            assert title and xlabel and ylabel, (name, title, xlabel, ylabel)


@pytest.mark.slow
def test_cli_report_malformed_manifest_is_one_line_naming_file_and_line(tiny_store, tmp_path):
    out = copy_store(tiny_store, tmp_path / "bad-manifest")
    (out / "reproduce.json").write_text('{"mode": "quick",\n "seconds": }\n')
    before = (out / "report.md").read_bytes() if (out / "report.md").exists() else None
    proc = _cli("report", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "reproduce.json line 2: malformed JSON" in lines[0], proc.stderr
    assert ((out / "report.md").read_bytes() if (out / "report.md").exists() else None) == before


@pytest.mark.parametrize("name, stat", [("mean_ci", np.mean), ("median_ci", np.median)])
def test_mean_and_median_ci_drop_non_finite_values_and_bracket_the_statistic(name, stat):
    values = [1.0, 2.0, float("nan"), 3.0, 10.0, float("inf")]
    est = getattr(fitting, name)(values, n_boot=200)
    assert est.value == pytest.approx(stat([1.0, 2.0, 3.0, 10.0])) and est.n == 4
    assert 1.0 <= est.low <= est.value <= est.high <= 10.0
    assert math.isnan(getattr(fitting, name)([float("nan")]).value)


def test_write_text_is_atomic_and_leaves_no_temporary_file_on_failure(tmp_path):
    from asymsense.atomic import write_json, write_text

    target = tmp_path / "report.md"
    write_text(target, "old\n")
    with pytest.raises(UnicodeEncodeError):
        write_text(target, "half \ud800 written")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    write_json(tmp_path / "m.json", {"b": 1, "a": float("nan")}, sort_keys=True)
    assert (tmp_path / "m.json").read_text() == '{\n  "a": null,\n  "b": 1\n}\n'


def test_reproduce_adds_up_the_seconds_of_resumed_runs(tmp_path, monkeypatch):
    from asymsense.paper import runner

    times = iter([(5.0, 4.0), (0.25, 0.5), (2.0, 1.0)])  # (wall, CPU) seconds per run
    monkeypatch.setattr(runner, "run_experiment", lambda *args, **kwargs: next(times))
    runner.reproduce(tmp_path, "quick", experiments=["e4"], progress=False)
    manifest = runner.reproduce(tmp_path, "quick", experiments=["e4"], progress=False)
    assert manifest["seconds"] == {"e4": 5.25} and manifest["cpu_seconds"] == {"e4": 4.5}
    assert len(manifest["load"]["e4"]) == 2
    full = runner.reproduce(tmp_path, "full", experiments=["e4"], progress=False)
    assert full["seconds"] == {"e4": 2.0} and full["cpu_seconds"] == {"e4": 1.0}


@pytest.mark.slow
def test_missing_trials_fail_their_claims_with_a_message_that_says_so(tiny_store, tmp_path):
    from asymsense.paper.report import build_report

    out = copy_store(tiny_store, tmp_path / "missing")
    for path in (out / "data" / "e5").glob("*/trials"):
        shutil.rmtree(path)
    claims, sections = build_report(out)
    e5 = next(s for s in sections if s.name == "e5")
    assert "no stored ok trial of sweep" in e5.error and "asymsense reproduce -e e5" in e5.error
    failed = [c for c in claims if c.id.startswith("E5")]
    assert failed and not any(c.passed for c in failed)
    assert any(c.id.startswith("E8") and c.passed for c in claims)


# --------------------------------------------------------------------------- E1: error vs budget T
def _e1_history(errors, every=10):
    from asymsense.paper.data import Columns

    return Columns({"iteration": np.arange(len(errors), dtype=float) * every, "rel_error": np.asarray(errors, dtype=float)})


def test_e1_best_error_within_a_budget_is_the_running_minimum_up_to_it():
    from asymsense.paper.e1_convergence import best_by_budget

    h = _e1_history([1.0, 0.5, 0.7, 0.1, 0.3])
    got = best_by_budget(h, [0, 5, 10, 25, 30, 1000])
    assert np.array_equal(got, [1.0, 1.0, 0.5, 0.5, 0.1, 0.1])
    assert np.isnan(best_by_budget(h, [-1])[0])   # before the first record


@pytest.mark.slow
def test_e1_budget_figure_follows_the_publication_rules(tmp_path):
    """The error-vs-budget figure: two log–log panels (per width, per α), labelled, decades, legend off the data."""
    from asymsense.paper import plotting
    from asymsense.paper.data import Columns
    from asymsense.paper.e1_convergence import budget_figure

    widths, alphas, rows, hist = [3, 4, 6, 30], [1e-6, 1e-3], [], {}
    for k in widths:
        for a in alphas:
            for s in range(3):
                key = f"k{k}a{a}s{s}"
                rows.append((key, k, a, s))
                floor = 1e-15 if k == 3 else a**0.5 * (1 + 0.1 * s)
                hist[key] = _e1_history(np.maximum(np.exp(-np.arange(150) / 15.0), floor))
    t = Columns({"key": np.array([r[0] for r in rows], dtype=object), "width": np.array([r[1] for r in rows]),
                 "alpha": np.array([r[2] for r in rows]), "seed": np.array([r[3] for r in rows]),
                 "n2": np.full(len(rows), 30), "max_iter": np.full(len(rows), 1500)})

    class Ctx:
        def figure_path(self, stem):
            return tmp_path / f"e1_{stem}.png"

    seen = []
    close = plotting.pyplot().close

    def inspect(fig):
        seen.append((plotting.lint(fig), [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale(), ax.get_yscale(),
                                           len(ax.get_lines())) for ax in fig.axes]))
        close(fig)

    plotting.pyplot().close = inspect
    try:
        path = budget_figure(Ctx(), t, hist, widths, alphas, 3)
    finally:
        plotting.pyplot().close = close
    assert path.stat().st_size > 1000
    (problems, panels), = seen
    assert problems == []
    assert [p[-1] for p in panels] == [len(widths), len(alphas)]          # one median line per width, per α
    assert all(p[0] and p[1] == "iteration budget T" and "$" in p[2] and p[3] == p[4] == "log" for p in panels)
