"""Issue 13: `asymsense pilot DATA --out DIR` answers "is it worth it on our data" on one page."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from asymsense.errors import InputError
from asymsense.jobs.pilot import render_pilot, run_pilot, verdict_words


def write_table(path, n1=60, n2=40, rank=2, density=0.5, noise=0.2, seed=3, signal=1.0):
    rng = np.random.default_rng(seed)
    truth = signal * rng.standard_normal((n1, rank)) @ rng.standard_normal((rank, n2)) + 3.0
    rows, cols = np.nonzero(rng.random((n1, n2)) < density)
    values = truth[rows, cols] + noise * rng.standard_normal(len(rows))
    path.write_text("shop,item,sales\n" + "".join(f"s{i},i{j},{v:.4f}\n" for i, j, v in zip(rows, cols, values)))
    return path


@pytest.mark.slow
def test_pilot_on_a_low_rank_table_says_worth_it_and_measures_everything(tmp_path):
    p = run_pilot(write_table(tmp_path / "t.csv"), tmp_path / "o", folds=3, seed=0)
    names = [m["method"] for m in p["methods"]]
    assert names[:2] == ["global mean", "bias-only"] and "default" in names and len(names) >= 4
    best = next(m for m in p["methods"] if m["method"] == p["recommended"]["name"])
    assert best["rmse_mean"] == min(m["rmse_mean"] for m in p["methods"]) and p["improvement"] == best["improvement_vs_biases"]
    assert p["verdict"] == "worth it" and p["improvement"] > 10
    assert p["projection"]["ratio"] == pytest.approx(1.5) and p["projection"]["seconds_per_fit"] == pytest.approx(1.5 * p["seconds_per_fit"])
    html = (tmp_path / "o" / "pilot.html").read_text()
    assert "Answer: worth it" in html and "Projected, not measured" in html and "Recommended settings" in html and "data:image/png" in html
    assert json.loads((tmp_path / "o" / "pilot.json").read_text())["verdict"] == "worth it"


def test_pilot_verdict_follows_the_numbers():
    p = {"methods": [{"method": "global mean", "rmse_mean": 1.0, "rmse_sd": 0.0, "mae_mean": 0.8, "seconds_mean": 0.0, "improvement_vs_biases": -5.0},
                     {"method": "bias-only", "rmse_mean": 0.95, "rmse_sd": 0.0, "mae_mean": 0.7, "seconds_mean": 0.0, "improvement_vs_biases": 0.0},
                     {"method": "default", "rmse_mean": 0.949, "rmse_sd": 0.01, "mae_mean": 0.7, "seconds_mean": 2.0, "improvement_vs_biases": 0.1}],
         "source": "t.csv", "recommended": {"name": "default", "note": "width 10"}, "settings": [{"name": "default", "note": "width 10"}], "verdict": "not worth it",
         "folds": 3, "sample": 1.0, "m_pilot": 900, "m": 900, "shape": [30, 30], "memory_peak_bytes": 2**27, "memory_loaded_bytes": 2**26,
         "projection": {"seconds_per_fit": 3.0, "memory_bytes": 2**27, "assumption": "stated"}, "risks": [], "seconds_total": 1.0,
         "inspect": {"density": 1.0, "per_row": {"median": 30}, "per_column": {"median": 30}, "rows_with_few": {"count": 0}, "columns_with_few": {"count": 0}, "supported_rank": 3}}
    assert verdict_words(p)[0].startswith("Answer: not worth it") and "0.1% lower" in verdict_words(p)[0]
    assert "Answer: not worth it" in render_pilot(p)


@pytest.mark.slow
def test_pilot_cli_exit_codes_and_risks_in_flags(tmp_path):
    data = write_table(tmp_path / "t.csv", n1=30, n2=20, density=0.25)  # about 5 entries per row: most rows sparse in every fold
    proc = subprocess.run([sys.executable, "-m", "asymsense", "pilot", str(data), "--out", str(tmp_path / "o"), "--folds", "2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Answer:" in proc.stdout and str(tmp_path / "o" / "pilot.html") in proc.stdout
    page = (tmp_path / "o" / "pilot.html").read_text()
    assert "risk (" in proc.stderr and "--validation-kind rows" in page and "validation_kind=" not in page  # the page speaks the CLI's terms
    proc = subprocess.run([sys.executable, "-m", "asymsense", "pilot", str(data), "--out", str(tmp_path / "x"), "--folds", "1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--folds" in proc.stderr and "Traceback" not in proc.stderr and not (tmp_path / "x").exists()
    with pytest.raises(InputError):
        run_pilot(data, tmp_path / "y", sample=0.0)
