"""Runs whose numbers are pinned bit for bit across refactorings.

`python tests/pins.py` writes tests/data/pins.json from the current code;
tests/test_pins.py re-runs the same commands and compares every number
exactly (floats by their repr). The file was generated before the
architecture restructure (issue 8), so the test proves the restructure kept
every number of these runs: summary.json of the README's solve commands,
a compare run, a stored sweep and a completion fit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PIN_FILE = Path(__file__).parent / "data" / "pins.json"
VOLATILE = {"seconds", "finished_at", "started_at", "version", "path", "out", "source"}

SOLVE_COMMANDS = {
    "solve-readme": ["solve", "--n1", "80", "--n2", "30", "--rank", "4", "--cond", "3", "--width", "80", "--alpha", "1e-5", "--max-iter", "400", "--json"],
    "solve-structured-validation": ["solve", "--operator", "structured", "--m", "1000", "--noise", "1e-3", "--validation", "0.1", "--patience", "50",
                                    "--max-iter", "600", "--json"],
    "solve-rank-one-float32": ["solve", "--operator", "rank-one", "--n1", "20", "--n2", "15", "--rank", "2", "--dtype", "float32", "--max-iter", "300", "--json"],
}

SWEEP_CONFIG = """
name = "pin"
method = "fgd"
seeds = 2
[fixed]
n1 = 20
n2 = 15
rank = 2
max_iter = 200
record_every = 50
[grid]
alpha = [1e-2, 1e-4]
width = ["rank", "n2"]
"""

SWEEP_BASELINES = """
name = "pin-baselines"
method = "scaled-gd"
seeds = 1
[fixed]
n1 = 20
n2 = 15
rank = 2
max_iter = 150
record_every = 50
"""


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asymsense", *args], capture_output=True, text=True, cwd=cwd, check=True)


def stable(value):
    """The run's numbers without the times (floats as repr strings, so equality is bitwise)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in sorted(value.items()) if k not in VOLATILE and "seconds" not in k}
    if isinstance(value, (list, tuple)):
        return [stable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def table_rows(path: Path) -> list[dict]:
    import duckdb

    columns = [c for c in duckdb.sql(f"select * from read_parquet('{path}/**/*.parquet', union_by_name=true) limit 0").columns
               if c not in VOLATILE and "seconds" not in c and c not in ("finished_at", "chunk", "error")]
    rows = duckdb.sql(f"select {', '.join(columns)} from read_parquet('{path}/**/*.parquet', union_by_name=true) order by key").fetchall()
    return [stable(dict(zip(columns, row))) for row in rows]


def completion_table(path: Path) -> None:
    rng = np.random.default_rng(7)
    n1, n2 = 60, 40
    truth = rng.standard_normal((n1, 3)) @ rng.standard_normal((3, n2)) + 3.0
    mask = rng.random((n1, n2)) < 0.3
    rows, cols = np.nonzero(mask)
    values = truth[rows, cols] + 0.1 * rng.standard_normal(len(rows))
    lines = ["customer,product,rating"] + [f"c{i},p{j},{v:.6f}" for i, j, v in zip(rows, cols, values)]
    path.write_text("\n".join(lines) + "\n")


def collect() -> dict:
    pins = {}
    for name, args in SOLVE_COMMANDS.items():
        pins[name] = stable(json.loads(cli(*args).stdout))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pins["compare"] = stable(json.loads(cli("compare", "--n1", "20", "--n2", "15", "--rank", "2", "--max-iter", "200", "--json").stdout))
        for name, text in {"sweep-fgd": SWEEP_CONFIG, "sweep-scaled-gd": SWEEP_BASELINES}.items():
            (tmp / f"{name}.toml").write_text(text)
            cli("sweep", str(tmp / f"{name}.toml"), "--out", str(tmp / name))
            pins[name] = table_rows(tmp / name / "trials")
        completion_table(tmp / "table.csv")
        pins["complete"] = stable(json.loads(cli("complete", str(tmp / "table.csv"), "--out", str(tmp / "c"), "--seed", "3", "--json").stdout))
    return pins


if __name__ == "__main__":
    PIN_FILE.parent.mkdir(exist_ok=True)
    PIN_FILE.write_text(json.dumps(collect(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PIN_FILE}")
