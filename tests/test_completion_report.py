"""Issue 13: guardrails that warn, default predictions, and a report an analyst can read.

One MovieLens-100k run with the defaults (module fixture, ~10-20 s) is shared by
the tests that need real data: no guardrail fires, the report shows titles,
explained components, a map, calibration and activity figures, and words.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asymsense.completion import guardrails as g
from asymsense.completion.report import captions, interval_words, read_labels, summary_words
from asymsense.completion.workflow import run_complete
from asymsense.errors import InputError
from asymsense.validation import check_validation_share


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "asymsense", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def write_table(path: Path, n1=50, n2=30, rank=1, density=0.2, noise=0.5, seed=1, per_row=None):
    """A customers × products CSV with string ids; `per_row` fixes the entries per row instead of a density."""
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal((n1, rank)) @ rng.standard_normal((rank, n2)) + 3.0
    if per_row is None:
        rows, cols = np.nonzero(rng.random((n1, n2)) < density)
    else:
        rows = np.repeat(np.arange(n1), per_row)
        cols = np.concatenate([rng.choice(n2, k, replace=False) for k in np.broadcast_to(per_row, n1)])
    values = truth[rows, cols] + noise * rng.standard_normal(len(rows))
    path.write_text("customer,product,spend\n" + "".join(f"cust{i},prod{j},{v:.4f}\n" for i, j, v in zip(rows, cols, values)))
    return path


# --------------------------------------------------------------------------- guardrails, one at a time
def test_each_guardrail_fires_on_its_numbers_and_not_below_its_threshold():
    assert g.check_overfitting(0.096, 0.53).values["ratio"] == pytest.approx(0.53 / 0.096)
    assert "0.096" in g.check_overfitting(0.096, 0.53).message and "5.5×" in g.check_overfitting(0.096, 0.53).message
    assert g.check_overfitting(0.78, 0.92) is None and g.check_overfitting(0.8, None) is None
    fired = g.check_rank(5.8, 300, (50, 30))
    assert fired.values["supported_rank"] == 1 and fired.values["entries_per_dof"] < 1 and "width=1" in fired.advice
    assert g.check_rank(16.3, 80_000, (943, 1682)) is None  # MovieLens: 1.9 entries per degree of freedom
    assert g.check_sparse_rows(np.repeat(np.arange(10), [2] * 6 + [9] * 4), 10).values["rows_with_few"] == 6
    assert g.check_sparse_rows(np.repeat(np.arange(10), [2] * 5 + [9] * 5), 10) is None  # half is not "most"
    assert g.check_validation_share(0.6).code == "validation_share" and g.check_validation_share(0.01) is not None
    assert g.check_validation_share(0.1) is None and g.check_validation_share(0.5) is None
    hit = g.check_test(np.array([0, 1, -1]), np.array([0, 2, 1]), np.array([0, 1]), np.array([0, 1]), (3, 3))
    assert hit.values == {"overlap": 1, "unknown_ids": 1, "test_m": 3}
    assert g.check_test(np.array([1]), np.array([2]), np.array([0]), np.array([0]), (3, 3)) is None
    assert all(w.advice for w in [fired, hit])


def test_validation_share_is_refused_beyond_the_allowed_range():
    assert check_validation_share(0.8) == 0.8 and check_validation_share(None) is None
    for bad in (0.9, 0.001, True, "0.1"):
        with pytest.raises(InputError) as err:
            check_validation_share(bad)
        assert err.value.parameter == "validation" and "0.02 to 0.5" in str(err.value)


@pytest.mark.slow
def test_cli_warns_on_a_table_built_to_overfit_and_refuses_validation_09(tmp_path):
    data = write_table(tmp_path / "t.csv")
    proc = cli("complete", data, "--out", tmp_path / "o", "--seed", "1", "--alpha", "0.5", "--validation", "0.6")
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("warning: ")]
    codes = {w["code"] for w in json.loads((tmp_path / "o" / "warnings.json").read_text())}
    assert {"rank_above_supported", "overfitting", "validation_share", "sparse_rows"} <= codes and len(lines) == len(codes)
    assert "--validation between 0.02 and 0.5" in proc.stderr and "--width 1" in proc.stderr  # flags, not parameter names, in the CLI
    report = (tmp_path / "o" / "report.html").read_text()
    assert report.index("class='warn'") < report.index("<h2>Summary</h2>")  # warnings at the top
    stored = (tmp_path / "o" / "warnings.json").read_text()
    for shown in (stored, report):  # the same words as printed: flags, in warnings.json and in the report
        assert "--validation between 0.02 and 0.5" in shown and "--width 1" in shown and "width=1" not in shown
    proc = cli("complete", data, "--out", tmp_path / "refused", "--validation", "0.9")
    assert proc.returncode == 2 and "--validation" in proc.stderr and not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_warnings_from_python_name_parameters_not_flags(tmp_path):
    data = write_table(tmp_path / "t.csv")
    s = run_complete(data, tmp_path / "o", fit_options={"seed": 1, "init_scale": 0.5, "validation": 0.6}, top=0)
    assert {"validation_share", "rank_above_supported"} <= {w.code for w in s.warnings}
    for shown in ((tmp_path / "o" / "warnings.json").read_text(), (tmp_path / "o" / "report.html").read_text()):
        assert "validation between 0.02 and 0.5" in shown and "width=1" in shown
        assert "--validation" not in shown and "--width" not in shown


@pytest.mark.slow
def test_test_set_overlap_and_unknown_ids_warn(tmp_path):
    data = write_table(tmp_path / "t.csv", density=0.6, rank=2, noise=0.1)
    first = data.read_text().splitlines()[1:4]
    (tmp_path / "test.csv").write_text("customer,product,spend\n" + "\n".join(first) + "\nnobody,prod1,3.0\n")
    s = run_complete(data, tmp_path / "o", test=tmp_path / "test.csv", fit_options={"seed": 0}, top=0)
    hit = [w for w in s.warnings if w.code == "test_set"]
    assert hit and hit[0].values["overlap"] == 3 and hit[0].values["unknown_ids"] == 1
    assert s.predictions is None and not (tmp_path / "o" / "predictions.csv").exists()  # top=0: none


def test_compare_reports_each_baseline_to_its_progress_callback():
    from asymsense.completion.model import complete
    from asymsense.completion.workflow import compare_methods

    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(rng.random((30, 20)) < 0.6)
    y = 3 + rng.standard_normal(len(rows))
    part = np.arange(len(rows)) % 5
    split = [(rows[part == k], cols[part == k], y[part == k]) for k in (0, 1)]
    train = (rows[part >= 2], cols[part >= 2], y[part >= 2])
    result = complete(*train, (30, 20), validation=split[0], max_iter=20, seed=0)
    table = type("T", (), {"shape": (30, 20)})()
    calls = []
    rows_out = compare_methods(train, split[0], split[1], table, result, {"test_rmse": 1.0}, progress=lambda *a: calls.append(a))
    assert calls == [("bias_only", 0, 3), ("soft_impute", 1, 3), ("als_wr", 2, 3), ("done", 3, 3)] and len(rows_out) == 4


def test_cli_compare_bar_names_the_baselines_on_a_terminal(tmp_path, monkeypatch):
    """The command's bar (stderr forced to be a terminal, written to a buffer) follows the fit, then the baselines."""
    import io
    import time

    from typer.testing import CliRunner

    import asymsense.cli.cmd_complete as cmd
    from asymsense.cli.app import app, console

    def fake_run_complete(data, out, **kw):
        kw["progress"](5, 0.9)
        for k, name in enumerate(("bias_only", "soft_impute", "als_wr")):
            kw["compare_progress"](name, k, 3)
        for _ in range(100):  # the bar redraws from its own thread (10 per second)
            if "als_wr" in buf.getvalue():
                break
            time.sleep(0.05)
        raise InputError("stopped here by the test")

    buf = io.StringIO()
    monkeypatch.setattr(cmd, "run_complete", fake_run_complete)
    monkeypatch.setattr(console, "file", buf)
    monkeypatch.setattr(console, "_force_terminal", True)
    monkeypatch.setattr(console, "is_interactive", True)
    got = CliRunner().invoke(app, ["complete", str(write_table(tmp_path / "t.csv")), "--out", str(tmp_path / "o"), "--compare"])
    assert got.exit_code == 2 and "fitting" in buf.getvalue() and "baselines" in buf.getvalue() and "als_wr" in buf.getvalue()


def test_progress_bars_show_only_on_a_terminal():
    """Here stderr is pytest's capture, not a terminal: the one home of the bars disables them unless asked."""
    from asymsense.cli.progress import progress_bar

    assert progress_bar().disable and not progress_bar(enabled=True).disable


# --------------------------------------------------------------------------- default predictions
@pytest.mark.slow
def test_complete_writes_top_10_by_default_and_says_where(tmp_path):
    data = write_table(tmp_path / "t.csv", density=0.5, rank=2, noise=0.1)
    proc = cli("complete", data, "--out", tmp_path / "o", "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    pred = (tmp_path / "o" / "predictions.csv").read_text().splitlines()
    seen = np.bincount([int(l.split(",")[0][4:]) for l in data.read_text().splitlines()[1:]], minlength=50)
    assert pred[0].replace('"', "").endswith("rank,prediction") and len(pred) - 1 == np.minimum(10, 30 - seen).sum()
    assert str(tmp_path / "o" / "predictions.csv") in proc.stdout and "--top 0" in proc.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert "predictions" not in summary  # summary.json keeps its keys (tests/test_pins.py)
    proc = cli("complete", data, "--out", tmp_path / "none", "--seed", "0", "--top", "0")
    assert proc.returncode == 0 and not (tmp_path / "none" / "predictions.csv").exists() and "predictions (" not in proc.stdout


# --------------------------------------------------------------------------- report, from its numbers
@pytest.mark.slow
def test_labels_file_and_captions_follow_the_stored_numbers(tmp_path):
    data = write_table(tmp_path / "t.csv", density=0.5, rank=2, noise=0.1)
    (tmp_path / "labels.csv").write_text("product,name,tags\n" + "".join(f"prod{j},Product {j} name,{'Red' if j % 2 else 'Blue'}|Big\n" for j in range(30)))
    run_complete(data, tmp_path / "o", col_labels=tmp_path / "labels.csv", fit_options={"seed": 0}, command="asymsense complete t.csv --out o")
    d = json.loads((tmp_path / "o" / "report.json").read_text())
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Product 3 name" in html and "customers" in html and "products" in html  # the input's own names and labels
    assert "asymsense complete t.csv --out o" in html and "href='predictions.csv'" in html
    settings = html[html.index("<h2>Settings</h2>"):]
    assert "{'" not in html and "init_scale" not in settings and "initial scale α" in settings  # named parameters, no raw dicts
    words = " ".join(summary_words(d))
    assert f"{d['accuracy']['model']['rmse']:.3f}" in words and f"{d['accuracy']['improvement_rmse_vs_biases']:.1f}%" in words
    before = captions(d)
    d["facts"]["imbalance_max"], d["facts"]["sv_grown"], d["facts"]["eff_rank"] = 123.0, 7, 4.25
    after = captions(d)
    assert "123" in after["imbalance"] and "123" not in before["imbalance"]
    assert "7 of the" in after["singular_values"] and "4.2" in after["singular_values"] and after["singular_values"] != before["singular_values"]
    d["accuracy"]["model"]["rmse"] = 0.4321
    assert "0.432" in " ".join(summary_words(d))
    with pytest.raises(InputError):
        read_labels(tmp_path / "missing.csv")
    shown = interval_words({"level": 0.8, "test": {"coverage": 0.713, "mean_width": 1.25, "m": 900}})
    assert "80%" in shown and "71.3%" in shown and "1.250" in shown


def test_the_two_false_captions_of_the_issue_are_gone(tmp_path):
    data = write_table(tmp_path / "t.csv", density=0.5, rank=2, noise=0.1)
    run_complete(data, tmp_path / "o", fit_options={"seed": 0}, top=0)
    html = (tmp_path / "o" / "report.html").read_text()
    assert "stays small without any balancing term" not in html and "the number that has grown by the dashed line is the rank" not in html
    d = json.loads((tmp_path / "o" / "report.json").read_text())
    assert f"{d['facts']['imbalance_max']:.3g}" in html and f"{d['facts']['sv_grown']} of the {d['facts']['sv_plotted']}" in html


# --------------------------------------------------------------------------- segments by features
def write_segmented_table(folder: Path, seed: int = 3) -> tuple[Path, Path]:
    """80 customers × 40 products whose one interaction component is carried by
    the customers of region 'north' (score 1.5 + noise, the others 0 + noise),
    and a features file (region, an unrelated age)."""
    rng = np.random.default_rng(seed)
    n1, n2 = 80, 40
    region = np.array(["north", "south", "east", "west"])[np.arange(n1) % 4]
    u = np.where(region == "north", 1.5, 0.0) + 0.2 * rng.standard_normal(n1)
    truth = 3.0 + np.outer(u, rng.standard_normal(n2))
    rows, cols = np.nonzero(rng.random((n1, n2)) < 0.5)
    y = truth[rows, cols] + 0.1 * rng.standard_normal(len(rows))
    (folder / "t.csv").write_text("customer,product,spend\n" + "".join(f"c{i},p{j},{x:.4f}\n" for i, j, x in zip(rows, cols, y)))
    (folder / "f.csv").write_text("customer,region,age\n" + "".join(f"c{i},{region[i]},{rng.integers(18, 70)}\n" for i in range(n1)))
    return folder / "t.csv", folder / "f.csv"


@pytest.mark.slow
def test_row_features_name_the_segment_that_loads_on_component_1(tmp_path):
    data, feats = write_segmented_table(tmp_path)
    run_complete(data, tmp_path / "o", row_features=feats, fit_options={"seed": 0}, top=0)
    d = json.loads((tmp_path / "o" / "report.json").read_text())
    first = d["components"][0]
    assert first["share"] > 0.9 and d["segments_from"]["rows"] == "features (f.csv)"
    named = first["row_segments"]["positive"] + first["row_segments"]["negative"]
    assert named[0]["segment"] == "region north" and abs(named[0]["z"]) > 5 and named[0]["size"] == 20  # the strongest, by far
    assert not any(s["segment"].startswith("age") for s in named)  # age does not load
    html = (tmp_path / "o" / "report.html").read_text()
    part = html[html.index("<h3>Component 1"):html.index("<h3>Component 2")]
    assert "region north" in part and "customer segments that load on it (from features (f.csv)" in part.lower()


@pytest.mark.slow
def test_features_files_are_checked_before_fitting(tmp_path):
    data, _ = write_segmented_table(tmp_path)
    (tmp_path / "other.csv").write_text("customer,region\nx1,north\nx2,south\n")
    proc = cli("complete", data, "--out", tmp_path / "o", "--row-features", tmp_path / "other.csv")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: --row-features ") and "none of the 80" in proc.stderr
    for kwargs, says in ((dict(col_features=tmp_path / "none.csv"), "col_features"), (dict(features=True), "features applies to the built-in movielens-100k")):
        with pytest.raises(InputError) as err:
            run_complete(data, tmp_path / "o", **kwargs)
        assert str(err.value).startswith(says)
    assert not (tmp_path / "o").exists()


def test_segments_z_statistic_and_size_limits():
    from asymsense.completion.segments import MIN_SEGMENT, SEGMENT_Z, loading_segments

    rng = np.random.default_rng(0)
    a = rng.standard_normal(200)
    big = np.arange(200) < 40
    a[big] += 1.0
    tiny = np.arange(200) >= 200 - (MIN_SEGMENT - 1)
    a[tiny] -= 10.0  # far off, but too small a group to be named
    seg = loading_segments(a, {"big": big, "tiny": tiny, "all but few": ~tiny}, np.ones(200, bool))
    z = (a[big].mean() - a.mean()) / (a.std() * np.sqrt(1 / 40 - 1 / 200))
    assert [s["segment"] for s in seg["positive"]] == ["big"] and seg["positive"][0]["z"] == pytest.approx(z) and z > SEGMENT_Z
    assert seg["negative"] == [] and seg["description"] == "big (positive side) against no segment (negative side)"
    assert loading_segments(rng.standard_normal(200), {"random": big}, np.ones(200, bool))["description"] is None  # |z| < 3 here


# --------------------------------------------------------------------------- MovieLens-100k
@pytest.fixture(scope="module")
def movielens(tmp_path_factory):
    pytest.importorskip("recbole", reason="MovieLens-100k comes from the recbole wheel (pip install --no-deps recbole==1.2.1)")
    out = tmp_path_factory.mktemp("ml")
    summary = run_complete("movielens-100k", out, fit_options={"seed": 0}, features=True, command="asymsense complete movielens-100k --out ml --seed 0 --features")
    return out, summary


@pytest.mark.slow
def test_movielens_defaults_trigger_no_warning(movielens):
    out, summary = movielens
    assert summary.warnings == [] and json.loads((out / "warnings.json").read_text()) == []


@pytest.mark.slow
def test_movielens_report_has_titles_components_map_and_diagnostics(movielens):
    out, _ = movielens
    html = (out / "report.html").read_text()
    d = json.loads((out / "report.json").read_text())
    assert "Star Wars (1977)" in html or "Toy Story (1995)" in html
    assert all(c["description"].startswith("separates ") for c in d["components"]) and len(d["components"]) >= 2
    assert d["segments_from"] == {"rows": "features (ml-100k.user)", "columns": "features (ml-100k.item)"} and "user " in html
    first = d["components"][0]  # docs/completion.md: women against men among the users, Action/Adventure against Drama/Film-Noir
    assert {s["segment"] for s in first["row_segments"]["positive"] + first["row_segments"]["negative"]} >= {"gender F", "gender M"}
    assert first["description"] == "separates class Action/class Adventure (positive side) from class Drama/class Film-Noir (negative side)"
    assert any(g in d["components"][0]["description"] for g in ("Action", "Drama", "Romance", "Comedy", "Thriller", "Sci-Fi", "Horror"))
    for key in ("map", "calibration", "activity", "rmse", "singular_values", "imbalance"):
        assert f"alt='{key}'" in html
    assert d["eval_on"] == "test" and d["accuracy"]["improvement_rmse_vs_biases"] > 2
    assert "users" in html and "items" in html and "No warnings" in html


# --------------------------------------------------------------------------- a real browser
CHROMIUM = Path("/usr/bin/chromium")


def open_in_chromium(page_path: Path, screenshot: Path | None = None) -> dict:
    """Load a page in headless Chromium (Debian's, through Playwright): console
    errors, page errors, and every <img>'s natural size once loaded."""
    from playwright.sync_api import sync_playwright

    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth, e.naturalHeight])")
        title = page.title()
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=False)
        browser.close()
    return {"errors": errors, "images": images, "title": title}


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium; .ci/run installs it)")
def test_movielens_report_renders_in_headless_chromium(movielens, tmp_path):
    pytest.importorskip("playwright", reason="needs the playwright package (pip install playwright)")
    out, _ = movielens
    seen = open_in_chromium(out / "report.html", tmp_path / "shot.png")
    assert seen["errors"] == [] and "movielens-100k" in seen["title"]
    assert len(seen["images"]) >= 6 and all(ok and w > 50 and h > 50 for _, ok, w, h in seen["images"]), seen["images"]
    assert (tmp_path / "shot.png").stat().st_size > 10_000
