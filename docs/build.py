"""Fill the generated regions of README.md and docs/*.md from actual runs.

    python docs/build.py            # run the commands, rewrite the regions
    python docs/build.py --check    # exit 1 and list the regions that differ

A region is `<!-- generated:NAME -->…<!-- /generated -->` (inline or over
several lines); everything between the markers is replaced by RENDER[NAME].

Two kinds of source:
- deterministic numbers come from runs made here, with the documented seeds:
  `asymsense demo`, the `asymsense solve` examples, the README guide
  (benchmarks/guide_measurements.py) and `asymsense compare` (docs/baselines.md).
  A change of the code that alters one of them makes the committed docs
  differ, and tests/test_docs_generated.py fails until this script is rerun;
- timings come from committed records of recorded runs, each with its
  command, date and load (docs/data/*.json, benchmarks/results/*.md): they
  are not rerun (a timing is not reproducible), but the docs must equal the
  record. A transcript shows `…` in place of seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from asymsense.paper.record import fill  # the one filler of generated regions (docs/reproduce.md uses it too)

ROOT = Path(__file__).resolve().parents[1]
TIMING = [
    (re.compile(r"(in )\d+(?:\.\d+)? s(:)"), r"\1… s\2"),                         # "wrote 6 files to X/ in 35.9 s:"
    (re.compile(r"(│ seconds +│ +)\d\.\d{3}e[+-]\d\d( │)"), lambda m: m.group(1) + " " * 8 + "…" + m.group(2)),  # same width
    (re.compile(r'("seconds": )[0-9.e+-]+'), r"\1…"),
]
SOLVE_TABLE = ["solve", "--config", "run.toml", "--max-iter", "500", "--out", "solve-run"]
SOLVE_JSON = ["solve", "--n1", "50", "--n2", "20", "--rank", "2", "--alpha", "1e-5", "--max-iter", "400", "--json"]
RUN_TOML = "n1 = 50\nn2 = 20\nrank = 2\ncond = 4.0\nwidth = 50\nalpha = 1e-5\nmax_iter = 400\nseed = 1\n"


def untimed(text: str) -> str:
    for pattern, replacement in TIMING:
        text = pattern.sub(replacement, text)
    return text


def transcript(args, output: str) -> str:
    return "\n```text\n$ asymsense " + " ".join(args) + "\n" + untimed(output).rstrip() + "\n```\n"


def abridged_json(output: str) -> str:
    """The solve --json record with its numbers to 6 significant digits, `config` on a few lines and `solver` cut short, as the docs show it."""
    record = json.loads(output)
    head = {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in record.items() if k not in ("config", "solver")}
    lines = ["{"] + [f'  "{k}": {json.dumps(v)},' for k, v in head.items()]
    items = [f'"{k}": {json.dumps(v)}' for k, v in record["config"].items()]
    chunks, line = [], ""
    for item in items:
        if line and len(line) + len(item) > 90:
            chunks.append(line.rstrip())
            line = ""
        line += item + ", "
    chunks.append(line.rstrip(", "))
    lines.append('  "config": {')
    lines += ["    " + c for c in chunks[:-1]] + ["    " + chunks[-1]]
    lines.append("  },")
    solver = record["solver"]
    lines.append(f'  "solver": {{ "step_rule": {json.dumps(solver.get("step_rule"))}, ... }}')
    lines.append("}")
    return untimed("\n".join(lines))


def _start_cli(args, cwd) -> subprocess.Popen:
    env = dict(os.environ, COLUMNS="100", MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, "-m", "asymsense", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish_cli(args, process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate(timeout=900)
    if process.returncode != 0:
        raise SystemExit(f"asymsense {' '.join(args)} exited {process.returncode}: {stderr.strip()}")
    return stdout


def measure() -> dict:
    """Run the documented commands once (in a temporary folder) and collect what the regions show.

    The three CLI runs (demo, two solves) start as subprocesses first and run
    while the in-process measurements (the guide, compare) are made: on two
    cores that halves the wall time of a check."""
    with tempfile.TemporaryDirectory(prefix="asymsense-build-") as tmp:
        (Path(tmp) / "run.toml").write_text(RUN_TOML)
        commands = {"demo_out": ["demo"], "solve_table": SOLVE_TABLE, "solve_json": SOLVE_JSON}
        running = {name: _start_cli(args, tmp) for name, args in commands.items()}
        values = {"guide": guide(), "compare": compare(), "compare_noise": compare(noise=COMPARE_NOISE)}
        values.update({name: _finish_cli(commands[name], process) for name, process in running.items()})
        values["demo"] = json.loads((Path(tmp) / "asymsense-demo" / "summary.json").read_text())
    return values


def _guide_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("guide_measurements", ROOT / "benchmarks" / "guide_measurements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def guide() -> dict:
    """The README guide's four tables (benchmarks/guide_measurements.py: deterministic, one BLAS thread)."""
    return _guide_module().measurements()


COMPARE_ITER = 300
COMPARE_NOISE = 1e-3


def compare(**parameters) -> list[dict]:
    """`asymsense compare --max-iter 300` (and with `--noise`): the records its --json prints."""
    from asymsense.jobs.compare import run_compare

    return run_compare(max_iter=COMPARE_ITER, **parameters)


def power_of_ten(x: float) -> str:
    """3.3e-03 as 3.3·10⁻³."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}·10" + str(int(exponent)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def table(header, rows, indent="") -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n\n" + "\n".join(indent + line for line in lines) + "\n\n" + indent


def _never(iterations) -> str:
    return "never" if iterations is None else str(iterations)


def render(values: dict) -> dict[str, str]:
    demo = values["demo"]
    wide = [t for t in demo["trials"] if t["width"] == max(demo["config"]["widths"])]
    small = [t["max_rel_imbalance"] for t in wide if t["init_scale"] <= 1e-2]
    plateau = sorted(small)[len(small) // 2]
    return {
        **render_guide(values["guide"]),
        **render_compare(values["compare"], values["compare_noise"]),
        **render_recorded(),
        "demo-slope": f"{demo['fitted_slope']:.2f}",
        "demo-imbalance": power_of_ten(plateau),
        "demo-transcript": transcript(["demo"], values["demo_out"]),
        "solve-table": transcript(SOLVE_TABLE, values["solve_table"]),
        "solve-json": "\n```text\n$ asymsense " + " ".join(SOLVE_JSON) + "\n" + abridged_json(values["solve_json"]) + "\n```\n",
    }


def render_guide(g: dict) -> dict[str, str]:
    """The README guide's tables and the numbers its prose reads off them."""
    alpha, width, step, stop = g["alpha"], g["width"], g["step"], g["stopping"]
    problem = g["problem"]
    n1 = problem["n1"]
    # iterations per decade of 1/α to reach the level: from α = 1e-3 to the smallest α that got there
    reached = [r for r in alpha["rows"] if r["alpha"] <= 1e-3 and r["iterations_to_level"] is not None]
    first, last = reached[0], reached[-1]
    per_decade = (last["iterations_to_level"] - first["iterations_to_level"]) / np.log10(first["alpha"] / last["alpha"])
    plateau = [r["max_rel_imbalance"] for r in reached]
    by_width = {r["width"]: r for r in width["rows"]}
    by_c = {r["c"]: r for r in step["rows"]}
    wide = max(stop["rows"], key=lambda r: r["width"])

    def k_label(k):
        return f"{k} (= r)" if k == problem["rank"] else f"{k} (> n1)" if k > n1 else str(k)

    diverged = [r for r in step["rows"] if r["diverged_at"] is not None]
    return {
        "guide-problem": f"{n1}×{problem['n2']}, rank {problem['rank']}, κ = {problem['cond']:g}, m = {problem['m']} dense Gaussian measurements, seed {problem['seed']}",
        "guide-alpha-table": table(["α", f"test error after {alpha['budget']} it.", "iterations to 1e-2", "max rel. imbalance"],
                                   [(f"{r['alpha']:.0e}", f"{r['final_error']:.2e}", _never(r["iterations_to_level"]), f"{r['max_rel_imbalance']:.1e}") for r in alpha["rows"]]),
        "guide-alpha-slope": f"{alpha['slope']:.2f}",
        "guide-alpha-per-decade": f"{per_decade:.0f}",
        "guide-alpha-plateau": f"{power_of_ten(min(plateau))}–{power_of_ten(max(plateau))}",
        "guide-alpha-first": f"{alpha['rows'][0]['final_error']:.2f}",
        "guide-alpha-first-imbalance": f"{alpha['rows'][0]['max_rel_imbalance']:.2f}",
        "guide-width-table": table(["width k", f"test error ({width['budget']} it.)", "iterations to 1e-2", "eff. rank"],
                                   [(k_label(r["width"]), f"{r['final_error']:.1e}", _never(r["iterations_to_level"]), f"{r['eff_rank']:.2f}") for r in width["rows"]], indent="   "),
        "guide-width-eff-rank": f"{by_width[n1]['eff_rank']:.2f}",
        "guide-step-table": table(["c", "μ", "iterations to test error 1e-2", f"test error after {step['budget']} it."],
                                  [(f"{r['c']:g}" + (" (auto)" if r["c"] == 0.5 else ""), f"{r['step_size']:.3f}", _never(r["iterations_to_level"]), f"{r['final_error']:.1e}")
                                   for r in step["rows"] if r["diverged_at"] is None]
                                  + [(", ".join(f"{r['c']:g}" for r in diverged), "—", "diverged (iteration " + ", ".join(str(r["diverged_at"]) for r in diverged) + ")", "—")],
                                  indent="   "),
        "guide-step-c1-error": f"{by_c[1.0]['final_error']:.2f}",
        "guide-stopping-table": table(["width k", f"fixed budget {stop['budget']}", "oracle best iterate", f"validation {stop['validation']:.0%} + patience {stop['patience']}"],
                                      [(r["width"], f"{r['fixed']:.3f}", f"{r['oracle']:.3f} (it. {r['oracle_iter']})", f"{r['early']:.3f} (best it. {r['best_iter']}, stopped at {r['stopped']})")
                                       for r in stop["rows"]], indent="   "),
        "guide-stopping-noise": f"{stop['noise']:g}",
        "guide-stopping-sooner": f"{stop['budget'] / wide['stopped']:.0f}",
    }


def render_compare(records: list[dict], noisy: list[dict]) -> dict[str, str]:
    """docs/baselines.md: the compare run's table (deterministic columns) and the noisy run's errors."""
    def name(r):
        width = r["solver"].get("width")
        return f"{r['method']} (k = {width})" if width else r["method"]

    by = {r["method"]: r for r in noisy}
    return {
        "compare-table": table(["method", "test error", "rel. residual", "iterations", "stop"],
                               [(name(r), f"{r['rel_error']:.1e}", f"{r['rel_residual']:.1e}", r["iterations"], r["stop_reason"]) for r in records]),
        "compare-nuclear-error": power_of_ten(next(r["rel_error"] for r in records if r["method"] == "nuclear")),
        "compare-balanced-digits": _digits_in_common(*(next(r["rel_error"] for r in records if r["method"] == m) for m in ("fgd", "balanced"))),
        "compare-noise": (f"the exact-rank methods reach {by['spectral']['rel_error']:.1e} (spectral) and {by['als']['rel_error']:.1e} (ALS), "
                          f"fgd {by['fgd']['rel_error']:.1e}, balanced {by['balanced']['rel_error']:.1e}, "
                          f"the nuclear norm {by['nuclear']['rel_error']:.1e} (its shrinkage bias at λ = 2‖A*(ε̃)‖₂), "
                          f"ScaledGD {by['scaled-gd']['rel_error']:.1e} (it fits the noise: relative residual "
                          f"{by['scaled-gd']['rel_residual']:.1e} against {by['fgd']['rel_residual']:.1e} for fgd)"),
    }


def _digits_in_common(a: float, b: float) -> str:
    """Significant digits two numbers share: ⌊−log₁₀(|a − b|/|a|)⌋ (written out for 1–6)."""
    digits = int(np.floor(-np.log10(abs(a - b) / abs(a)))) if a != b else 16
    return ["no", "one", "two", "three", "four", "five", "six"][digits] if digits <= 6 else str(digits)


DATA = ROOT / "docs" / "data"
ITERATION_REPORT = ROOT / "benchmarks" / "results" / "iteration_cpu_2threads.md"


def _load_line(recorded: dict) -> str:
    load = ", ".join(f"{x:g}" for x in recorded["load_average"])
    note = f" ({recorded['note']})" if recorded.get("note") else ""
    return f"`{recorded['command']}`, {recorded['date']}, load average {load} (1, 5, 15 min) on {recorded['cores']} cores{note}"


def render_recorded() -> dict[str, str]:
    """Timings from committed records of runs (they are not rerun by the check; the docs must equal the records)."""
    guide_run = json.loads((DATA / "guide.json").read_text())
    ms = [f"k = {r['width']}: {r['ms_per_iteration']:.2f}" for r in guide_run["width"]["rows"]]
    movielens = json.loads((DATA / "completion_benchmark.json").read_text())
    report = ITERATION_REPORT.read_text()
    first_table = re.search(r"^\| operator .*?(?=\n\n)", report, re.S | re.M).group(0)
    batched = re.search(r"^\| B \| BLAS threads .*?(?=\n\n)", report, re.S | re.M).group(0)
    header = re.search(r"^Machine: .*$", report, re.M).group(0)
    load_line = re.search(r"Load average at the end: [^(]*", report).group(0).strip()
    return {
        "timings-guide": f"{_load_line(guide_run['recorded'])}; milliseconds per iteration of the width table ({guide_run['width']['budget']} iterations each): " + ", ".join(ms),
        "timings-iteration": "\n\n" + header + " " + load_line + ".\n\n" + first_table + "\n\n" + batched + "\n\n",
        "timings-movielens": _movielens(movielens),
        "timings-ratios": _ratios(json.loads(RATIOS.read_text())),
        "completion-accuracy": _completion_accuracy(json.loads((DATA / "completion_accuracy.json").read_text())),
        **render_end_to_end(json.loads(END_TO_END.read_text())),
    }


END_TO_END = DATA / "end_to_end.json"  # python benchmarks/bench_end_to_end.py --threads 1 --out docs/data/end_to_end.json


def end_to_end_errors(record: dict) -> str:
    """docs/performance.md's end-to-end error table: the deterministic part of the record (problem, μ, final test
    errors and iterations of both paths), which the slow test recomputes (bench_end_to_end.measurements)."""
    p = record["problem"]
    return (f"\n{p['n1']}×{p['n2']}, rank {p['rank']}, κ = {p['cond']:g}, m = {p['m']} dense Gaussian measurements (`--seed {p['seed']}`), "
            f"width k = {p['width']}, at most {p['max_iter']} iterations (stop at a relative residual of {p['tol']:g}), "
            f"monitors every {p['record_every']}, step size μ = {record['step_size']:.6g} (the auto rule, shared by both paths):"
            + table(["α", "rel. test error, naive", "rel. test error, asymsense", "iterations (naive / asymsense)"],
                    [(f"{r['alpha']:.0e}", f"{r['naive_error']:.4e}", f"{r['fgd_error']:.4e}", f"{r['naive_iterations']} / {r['fgd_iterations']}")
                     for r in record["rows"]]))


def render_end_to_end(record: dict) -> dict[str, str]:
    """The errors (deterministic) and, in the section's timings, the seconds and the rounding-level differences
    between the two paths (they depend on the BLAS kernels, like the seconds) of the recorded run."""
    timings = record["timings"]
    best_naive, best_fgd = min(t["naive_seconds"] for t in timings), min(t["fgd_seconds"] for t in timings)
    worst_error = max(r["error_difference"] for r in record["rows"])
    worst_product = max(r["product_difference"] for r in record["rows"])
    return {
        "end-to-end-errors": end_to_end_errors(record),
        "end-to-end-timings": (f"\n{_load_line(record['recorded'])}:"
                               + table(["BLAS threads", "naive NumPy, one trial at a time (s)", "asymsense.solvers.fgd, batched (s)", "ratio"],
                                       [(t["threads"], f"{t['naive_seconds']:.2f}", f"{t['fgd_seconds']:.2f}", f"{t['naive_seconds'] / t['fgd_seconds']:.1f}×")
                                        for t in timings])
                               + f"Best against best {best_naive / best_fgd:.1f}×. In this run the final test errors of the two paths differed by at most "
                               f"{power_of_ten(worst_error)} (relative) and their products UVᵀ by {power_of_ten(worst_product)}.\n"),
    }


RATIOS = ROOT / "benchmarks" / "results" / "bench_ratios.json"
RATIO_LABELS = {
    "dense_64_step_over_two_gemvs_1t": "dense f64 step / two bare GEMVs, 1 BLAS thread",
    "dense_64_step_over_two_gemvs_2t": "dense f64 step / two bare GEMVs, 2 BLAS threads",
    "dense_32_step_over_two_gemvs_1t": "dense f32 step / two bare GEMVs, 1 BLAS thread",
    "dense_32_step_over_two_gemvs_2t": "dense f32 step / two bare GEMVs, 2 BLAS threads",
    "batched_f32_b64_per_trial_over_gemm_bound_1t": "batched f32 B = 64, per trial / GEMM bound, 1 thread",
    "batched_f32_b64_per_trial_over_gemm_bound_2t": "batched f32 B = 64, per trial / GEMM bound, 2 threads",
    "demo_sweep_plain_over_fgd_1t": "demo α-sweep, plain loop / batched fgd, 1 thread",
    "demo_sweep_plain_over_fgd_jax_1t": "demo α-sweep, plain loop / batched fgd with the XLA kernel, 1 thread",
    "demo_sweep_loaded_plain_over_fgd_default": "demo α-sweep under two busy processes, defaults",
    "stream_f64_step_over_dense_1t": "matrix-free f64 step / dense f64 step, 1 thread",
    "stream_f64_step_over_dense_2t": "matrix-free f64 step / dense f64 step, 2 threads",
}


def _ratios(record: dict) -> str:
    """README's table of benchmarks/bench_ratios.py's figures (a committed JSON of one run): median
    ratio, each round's ratio and the 1-minute load average of each round; seconds where a figure is a time."""
    meta = record["meta"]
    rows = []
    for key, f in record["figures"].items():
        loads = "; ".join(f"{round[0]:g}" for round in f["load"])
        if "ratio" in f:
            rows.append((RATIO_LABELS.get(key, key), f"{f['ratio']:.2f}×", ", ".join(f"{r:g}" for r in f["ratios"]), loads))
        else:
            rows.append((RATIO_LABELS.get(key, key.replace("_", " ")), f"{f['seconds']:.2f} s", "—", loads))
    end = ", ".join(f"{x:g}" for x in meta["load_at_end"])
    jax = "PYTHONPATH=<a folder with jax> " if any("jax" in key for key in record["figures"]) else ""
    return (f"\n`{jax}python benchmarks/bench_ratios.py --rounds {meta['rounds']} --out {RATIOS.relative_to(ROOT)}`, started "
            f"{meta['started_utc'].replace('T', ' ').replace('Z', ' UTC')}, {meta['machine']}, numpy {meta['numpy']}, "
            f"BLAS {meta['blas'][0]}; load average at the end {end} (1, 5, 15 min):"
            + table(["figure", "median", "per round", "1-min load per round"], rows))


def _movielens(record: dict) -> str:
    rows = [(r["method"], f"{r['test_rmse']:.4f}", f"{r['val_rmse']:.4f}", f"{r['seconds']:.2f}", f"{r['tuning_seconds']:.2f}") for r in record["rows"]]
    return (f"\n{_load_line(record['recorded'])}:" + table(["method", "test RMSE", "validation RMSE", "fit seconds", "seconds with tuning"], rows).rstrip("\n")
            + table(["target", "measured", "met"], [(t["target"], t["measured"], "yes" if t["met"] else "no") for t in record["targets"]]))


def _completion_accuracy(record: dict) -> str:
    """docs/completion.md's table of the accuracy levers (benchmarks/bench_completion_accuracy.py and
    bench_completion_surprise.py runs: fixed-split and 5-fold CV test RMSE, seconds, and each run's command, date and load)."""
    rows = []
    for i, run in enumerate(record["runs"], 1):
        for name, c in run["configs"].items():
            cv = c.get("cv")
            rows.append((name, json.dumps(c["options"]) if c["options"] else "—", f"{c['fixed']['test_rmse']:.4f}",
                         f"{cv['test_rmse_mean']:.4f} ± {cv['test_rmse_sd']:.4f}" if cv else "—", f"{c['fixed']['seconds']:.1f}",
                         f"{cv['seconds_mean']:.1f}" if cv else "—", str(i)))
    surprise = record["surprise"]
    for name, folds in surprise["runs"].items():
        s = np.array([f["test_rmse"] for f in folds])
        rows.append((f"Surprise {name} (defaults, run here)", "—", "—", f"{s.mean():.4f} ± {s.std(ddof=1):.4f}", "—",
                     f"{np.mean([f['seconds'] for f in folds]):.1f}", "S"))
    def line(name, r):
        load = r["load_average"]
        return f"- run {name}: `{r['command']}`, {r['date']}, 1-minute load average {load[0]:.1f} → {load[-1]:.1f} on {r['cores']} cores ({r['note']})\n"

    return (table(["configuration", "options", "fixed split: test RMSE", "5-fold CV: test RMSE (mean ± sd)", "fixed split: fit s",
                   "CV: s per fold", "run"], rows) + "".join(line(i, run["recorded"]) for i, run in enumerate(record["runs"], 1))
            + line("S", surprise["recorded"]))


DOCUMENTS = ["README.md", "docs/cli.md", "docs/baselines.md", "docs/completion.md", "docs/performance.md"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a region differs")
    args = parser.parse_args(argv)
    rendered = render(measure())
    stale = []
    for name in DOCUMENTS:
        path = ROOT / name
        text = path.read_text()
        new = fill(text, rendered)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print("generated regions differ from what the code prints now: " + ", ".join(stale) + " (run python docs/build.py)", file=sys.stderr)
        return 1
    print(("up to date: " if not stale else "rewrote: ") + ", ".join(stale or DOCUMENTS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
