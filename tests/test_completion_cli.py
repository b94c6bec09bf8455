"""`asymsense complete` and `asymsense inspect` through a subprocess: outputs,
exit codes, one-line errors and nothing written on bad input."""

import json
import subprocess
import sys

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from asymsense.completion import load_model


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "asymsense", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={"OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg", **__import__("os").environ})


def one_line_error(proc, code=2):
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    n1, n2 = 40, 25
    X = rng.standard_normal((n1, 2)) @ rng.standard_normal((2, n2)) + 3
    r, c = np.nonzero(rng.random((n1, n2)) < 0.5)
    test = rng.random(len(r)) < 0.1
    lines = ["customer,product,spend"] + [f"c{i},p{j},{X[i, j]:.4f}" for i, j in zip(r[~test], c[~test])]
    (d / "train.csv").write_text("\n".join(lines) + "\n")
    (d / "test.csv").write_text("\n".join(["customer,product,spend"] + [f"c{i},p{j},{X[i, j]:.4f}" for i, j in zip(r[test], c[test])]) + "\n")
    (d / "pairs.csv").write_text("customer,product\nc0,p1\nc3,p2\nnewcomer,p1\n")
    return d


@pytest.mark.slow
def test_complete_with_pairs_test_and_compare(table, tmp_path):
    out = tmp_path / "out"
    proc = run("complete", table / "train.csv", "--out", out, "--pairs", table / "pairs.csv", "--test", table / "test.csv", "--compare", "--json", "--seed", "1", "--width", "10")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    for key in ("train_rmse", "val_rmse", "test_rmse", "iterations", "stop_reason", "eff_rank", "seconds"):
        assert key in summary
    assert summary["config"]["seed"] == 1 and summary["test_rmse"] < 0.5
    assert [row["method"] for row in summary["compare"]] == ["biases", "softimpute", "als", "asymsense (fgd)"]
    preds = (out / "predictions.csv").read_text().splitlines()
    assert preds[0] == '"row_id","col_id","prediction"' and len(preds) == 4
    assert summary["predictions"]["unknown_ids_biases_only"] == 1
    rows = pq.read_table(out / "row_factors.parquet")
    model = load_model(out)  # the saved model predicts exactly what `complete` wrote
    assert np.array_equal(model.fit.U[:, 0].astype(np.float64), rows.column("f_1").to_numpy()) and model.names[:2] == ("customer", "product")
    written = pcsv.read_csv(out / "predictions.csv")
    assert np.array_equal(model.predict(written.column("row_id").to_numpy(zero_copy_only=False), written.column("col_id").to_numpy(zero_copy_only=False)),
                          written.column("prediction").to_numpy())
    assert rows.column_names[:3] == ["id", "bias", "f_1"] and rows.num_rows == 40 and rows.num_columns == 12
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 4 and "Leading components" in report
    assert json.loads((out / "summary.json").read_text())["test_rmse"] == summary["test_rmse"]


@pytest.mark.slow
def test_complete_top_n_prints_a_line(table, tmp_path):
    out = tmp_path / "top"
    proc = run("complete", table / "train.csv", "--out", out, "--top", "3", "--seed", "0", "--max-iter", "50")
    assert proc.returncode == 0, proc.stderr
    assert "validation RMSE" in proc.stdout
    lines = (out / "predictions.csv").read_text().splitlines()
    assert lines[0] == '"row_id","col_id","rank","prediction"' and len(lines) == 1 + 40 * 3
    train = {tuple(line.split(",")[:2]) for line in (table / "train.csv").read_text().splitlines()[1:]}
    top = {tuple(x.strip('"') for x in line.split(",")[:2]) for line in lines[1:]}
    assert not (top & train)


@pytest.mark.slow
def test_bad_data_exits_2_with_the_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("r,c,v\na,x,1\nb,y,oops\n")
    out = tmp_path / "never"
    line = one_line_error(run("complete", bad, "--out", out))
    assert "bad.csv" in line and "line 3" in line and "oops" in line
    assert not out.exists()
    line = one_line_error(run("complete", bad, "--out", out, "--top", "-1"))  # --top 0 means "no predictions" (issue 13)
    assert "--top" in line


@pytest.mark.slow
def test_inspect(table, tmp_path):
    proc = run("inspect", table / "train.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["shape"] == [40, 25] and 0 < info["density"] < 1
    assert {"width", "init_scale", "step_size", "validation", "patience"} <= set(info["settings"])
    assert all("reason" in s for s in info["settings"].values())
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in one_line_error(run("inspect", empty))
