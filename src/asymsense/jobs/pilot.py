"""`asymsense pilot DATA --out DIR`: is low-rank completion worth it on our data?

The small first project before adopting the model: `inspect` the table, then
a short K-fold cross-validation (K = 3 by default; the folds of
`completion.cv.kfold_indices`, the protocol of `complete --cv`: a seeded
permutation of the entries cut into K parts, ids unseen in a fold's data
predicted from the biases) of

- the global mean and the bias-only model (b + r_i + c_j, damped means: the
  "current simple method"), and
- the model at three settings: the defaults; a narrow width (twice the rank
  the entries support, at least 5); and an initial scale 30× the automatic
  one (less implicit regularization),

then writes DIR/pilot.html (one page) and DIR/pilot.json: the improvement
over the biases (CV RMSE mean ± sd and MAE), seconds and memory per fit, the
same projected for a fit on the whole table, the recommended setting and the
risks (sparse rows, overfitting, rank, from the guardrails of each fit).

Measured: every RMSE, MAE and time (wall clock per fit, this machine), the
process's peak resident memory (getrusage) before and after the fits.
Projected (and said so on the page): a fit on all entries is assumed to cost
the measured seconds per fit × m / m_fold (the cost per iteration is
O(|Ω|·k) and the number of iterations is assumed the same), and its memory
the measured increase in peak memory over the data loaded × the same ratio.
With `sample` < 1 the pilot runs on that share of the rows (seeded) and the
projection is to the whole table.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from pathlib import Path

import numpy as np

from asymsense.atomic import output_dir, write_text
from asymsense.completion.biases import fit_biases
from asymsense.completion.cv import kfold_indices
from asymsense.completion.diagnostics import inspect_table
from asymsense.completion.guardrails import fit_guardrails
from asymsense.completion.model import complete, predict_indices
from asymsense.completion.report import peak_memory_bytes
from asymsense.completion.workflow import check_out_dir, load_data
from asymsense.serialize import dumps
from asymsense.validation import check_int, check_real, resolve_seed

INIT_FACTOR = 30.0
WORTH_IT = 2.0
"""% RMSE improvement over the biases from which the page says "worth it" (below 0.5%: "not worth it"; between: "marginal")."""
MARGINAL = 0.5


def _settings(info: dict) -> list[dict]:
    n1, n2 = info["shape"]
    width = info["settings"]["width"]["value"]
    alpha = info["settings"]["init_scale"]["value"]
    narrow = min(width, max(5, 2 * info["supported_rank"]))
    out = [{"name": "default", "width": width, "init_scale": "auto", "note": f"width {width}, automatic initial scale"}]
    if narrow < width:
        out.append({"name": "narrow", "width": narrow, "init_scale": "auto", "note": f"width {narrow} (2 × the supported rank {info['supported_rank']}, at least 5)"})
    if alpha:
        out.append({"name": "larger init", "width": width, "init_scale": INIT_FACTOR * alpha,
                    "note": f"width {width}, initial scale {INIT_FACTOR:g}× the automatic one ({INIT_FACTOR * alpha:.3g})"})
    return out


def _errors(pred, y) -> tuple[float, float]:
    e = pred - y
    return float(np.sqrt(np.mean(e**2))), float(np.mean(np.abs(e)))


def _sample_rows(table, share: float, seed: int):
    keep = np.random.default_rng(seed).random(table.shape[0]) < share
    sel = keep[table.rows]
    return table.rows[sel], table.cols[sel], table.values[sel]


def run_pilot(data, out, *, folds: int = 3, seed=0, sample: float = 1.0, max_iter: int = 2000, row=None, col=None, value=None,
              duplicates="error", encoding="utf-8", progress=None, command: str | None = None, overwrite: bool = False,
              warning_terms=None) -> dict:
    """Run the pilot; returns the pilot dict (also DIR/pilot.json) with DIR/pilot.html written.
    `warning_terms`: Guardrail → Guardrail, the risks restated in the caller's
    terms (the command line's flags), as `completion.workflow.run_complete` takes it."""
    started = time.perf_counter()
    folds = check_int("folds", folds, minimum=2, maximum=10)
    sample = check_real("sample", sample, minimum=0.0, open_minimum=True, maximum=1.0)
    seed = resolve_seed(seed)
    out = check_out_dir(out, overwrite)
    table, _ = load_data(data, row=row, col=col, value=value, duplicates=duplicates, encoding=encoding)
    info = inspect_table(table)
    rows, cols, values = (table.rows, table.cols, table.values) if sample >= 1 else _sample_rows(table, sample, seed)
    shape = table.shape
    memory_loaded = peak_memory_bytes()
    settings = _settings(info)
    methods = {"global mean": [], "bias-only": [], **{s["name"]: [] for s in settings}}
    fits = {s["name"]: [] for s in settings}
    risks = {}
    test_parts = kfold_indices(len(values), folds, seed)
    for f, test in enumerate(test_parts):
        train = np.ones(len(values), dtype=bool)
        train[test] = False
        tr, tc, ty = rows[train], cols[train], values[train]
        seen_r = np.bincount(tr, minlength=shape[0]) > 0
        seen_c = np.bincount(tc, minlength=shape[1]) > 0
        er, ec, ey = np.where(seen_r[rows[test]], rows[test], -1), np.where(seen_c[cols[test]], cols[test], -1), values[test]
        t0 = time.perf_counter()
        methods["global mean"].append((*_errors(np.full(len(ey), ty.mean()), ey), time.perf_counter() - t0))
        t0 = time.perf_counter()
        b = fit_biases(tr, tc, ty, shape, "both")
        pred = b.mean + np.where(er >= 0, b.rows[np.maximum(er, 0)], 0.0) + np.where(ec >= 0, b.cols[np.maximum(ec, 0)], 0.0)
        methods["bias-only"].append((*_errors(np.clip(pred, ty.min(), ty.max()), ey), time.perf_counter() - t0))
        for s in settings:
            t0 = time.perf_counter()
            result = complete(tr, tc, ty, shape, width=s["width"], init_scale=s["init_scale"], max_iter=max_iter, seed=seed)
            seconds = time.perf_counter() - t0
            methods[s["name"]].append((*_errors(predict_indices(result, er, ec, "biases"), ey), seconds))
            fits[s["name"]].append({"fold": f, "best_iter": result.best_iter, "eff_rank": result.effective_rank,
                                    "train_rmse": result.train_rmse, "val_rmse": result.val_rmse, "seconds": seconds})
            for w in fit_guardrails(shape=shape, train_rows=tr, eff_rank=result.effective_rank, train_rmse=result.train_rmse, val_rmse=result.val_rmse):
                risks.setdefault((s["name"], w.code), warning_terms(w) if warning_terms is not None else w)
            if progress is not None:
                progress(f, s["name"])
    memory_peak = peak_memory_bytes()

    table_rows = []
    for name, per_fold in methods.items():
        arr = np.array(per_fold)
        table_rows.append({"method": name, "rmse_mean": float(arr[:, 0].mean()), "rmse_sd": float(arr[:, 0].std(ddof=1)),
                           "mae_mean": float(arr[:, 1].mean()), "seconds_mean": float(arr[:, 2].mean())})
    by = {r["method"]: r for r in table_rows}
    bias = by["bias-only"]
    for r in table_rows:
        r["improvement_vs_biases"] = 100.0 * (bias["rmse_mean"] - r["rmse_mean"]) / bias["rmse_mean"]
    best = min(settings, key=lambda s: by[s["name"]]["rmse_mean"])
    gain = by[best["name"]]["improvement_vs_biases"]
    verdict = "worth it" if gain >= WORTH_IT else ("marginal" if gain >= MARGINAL else "not worth it")
    m_fold = len(values) * (folds - 1) / folds
    ratio = table.m / m_fold
    per_fit = by[best["name"]]["seconds_mean"]
    memory_fit = max(memory_peak - memory_loaded, 0)
    pilot = {
        "source": table.source, "shape": list(shape), "m": int(table.m), "m_pilot": int(len(values)), "sample": sample,
        "folds": folds, "seed": seed, "inspect": {k: info[k] for k in ("density", "per_row", "per_column", "rows_with_few", "columns_with_few", "supported_rank")},
        "settings": settings, "methods": table_rows, "fits": fits, "recommended": best, "verdict": verdict, "improvement": gain,
        "seconds_per_fit": per_fit, "memory_loaded_bytes": memory_loaded, "memory_peak_bytes": memory_peak,
        "projection": {"ratio": ratio, "seconds_per_fit": per_fit * ratio, "memory_bytes": memory_loaded + memory_fit * ratio,
                       "assumption": f"a fit on all {table.m:,} entries costs the measured seconds and the measured increase of peak memory of a fit on "
                                     f"{m_fold:,.0f} entries × {ratio:.2f} (cost per iteration O(|Ω|·k), the same number of iterations)"},
        "risks": [{**w.as_dict(), "setting": name} for (name, _), w in risks.items()],
        "seconds_total": time.perf_counter() - started, "command": command,
    }
    with output_dir(out) as tmp:  # both files appear at once, or neither
        write_text(tmp / "pilot.json", dumps(pilot, nonfinite="keep", other="str"))
        write_text(tmp / "pilot.html", render_pilot(pilot))
    return pilot


def _memory(nbytes) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def verdict_words(p: dict) -> list[str]:
    """The page's answer in words, from the pilot's numbers."""
    by = {r["method"]: r for r in p["methods"]}
    best, bias, mean = by[p["recommended"]["name"]], by["bias-only"], by["global mean"]
    n1, n2 = p["shape"]
    pj = p["projection"]
    sample = f" on {p['sample']:.0%} of the rows ({p['m_pilot']:,} entries)" if p["sample"] < 1 else ""
    return [
        f"Answer: {p['verdict']}. In {p['folds']}-fold cross-validation{sample} the model predicts with RMSE {best['rmse_mean']:.3f} ± {best['rmse_sd']:.3f}, "
        f"{best['improvement_vs_biases']:.1f}% lower than the bias-only model, the simple method of averages per row and column "
        f"(RMSE {bias['rmse_mean']:.3f}; the overall mean alone: {mean['rmse_mean']:.3f}); MAE {best['mae_mean']:.3f} against {bias['mae_mean']:.3f}.",
        f"Cost: {_seconds(best['seconds_mean'])} per fit on {p['m'] * (p['folds'] - 1) / p['folds']:,.0f} entries of this {n1:,} × {n2:,} table, measured here; "
        f"peak memory {_memory(p['memory_peak_bytes'])} for the whole pilot (of which {_memory(p['memory_loaded_bytes'])} with the data loaded). "
        f"Projected, not measured: {_seconds(pj['seconds_per_fit'])} and about {_memory(pj['memory_bytes'])} for one fit on all {p['m']:,} entries "
        f"(assumption: {pj['assumption']}).",
        f"Recommended settings: {p['recommended']['note']} (the lowest CV RMSE of the {len(p['settings'])} tried).",
    ]


def _figure(p: dict) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = p["methods"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    names = [r["method"] for r in rows]
    axes[0].barh(names, [r["rmse_mean"] for r in rows], xerr=[r["rmse_sd"] for r in rows], color=["#999", "#e69500"] + ["#1f77b4"] * (len(rows) - 2))
    lo = min(r["rmse_mean"] for r in rows)
    axes[0].set_xlim(lo * 0.9, max(r["rmse_mean"] for r in rows) * 1.03)
    axes[0].set_xlabel(f"RMSE, {p['folds']}-fold CV (lower is better)")
    axes[1].barh(names, [max(r["seconds_mean"], 1e-3) for r in rows], color="#777")
    axes[1].set_xscale("log"), axes[1].set_xlabel("seconds per fit"), axes[1].set_yticks([])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_pilot(p: dict) -> str:
    """The pilot's one page."""
    esc = html.escape
    ins = p["inspect"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>asymsense pilot — {esc(p['source'])}</title>",
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}"
        "table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
        "th{background:#f3f3f3}img{max-width:100%}.answer{font-size:1.15em;background:#eef4fb;padding:.6em 1em}"
        ".warn{background:#fff4e0;border-left:4px solid #e69500;padding:.4em 1em;margin:.4em 0}code{background:#f3f3f3;padding:1px 4px}</style></head><body>",
        f"<h1>Is low-rank completion worth it on {esc(p['source'])}?</h1>",
    ]
    words = verdict_words(p)
    parts.append(f"<p class='answer'>{esc(words[0])}</p>")
    parts += [f"<p>{esc(w)}</p>" for w in words[1:]]
    parts.append(f"<figure><img alt='pilot' src='data:image/png;base64,{_figure(p)}'><figcaption>Mean RMSE over the {p['folds']} folds "
                 "(bars: ± one standard deviation) and seconds per fit of each method, measured on this machine.</figcaption></figure>")
    parts.append("<h2>Every method on the same folds</h2><table><thead><tr><th>method</th><th>RMSE (mean ± sd)</th><th>MAE</th><th>vs bias-only</th><th>seconds per fit</th></tr></thead><tbody>")
    notes = {s["name"]: s["note"] for s in p["settings"]}
    for r in p["methods"]:
        label = f"{r['method']} ({notes[r['method']]})" if r["method"] in notes else r["method"]
        parts.append(f"<tr><td>{esc(label)}</td><td>{r['rmse_mean']:.4f} ± {r['rmse_sd']:.4f}</td><td>{r['mae_mean']:.4f}</td>"
                     f"<td>{r['improvement_vs_biases']:+.1f}%</td><td>{r['seconds_mean']:.2f}</td></tr>")
    parts.append("</tbody></table>")
    parts.append("<h2>Risks</h2>")
    n1, n2 = p["shape"]
    few_r, few_c = ins["rows_with_few"]["count"], ins["columns_with_few"]["count"]
    parts.append(f"<p>The data: {p['m']:,} entries, {ins['density']:.2%} of the table; a median of {ins['per_row']['median']:.0f} entries per row and "
                 f"{ins['per_column']['median']:.0f} per column; {few_r:,} of {n1:,} rows and {few_c:,} of {n2:,} columns have fewer than 5 "
                 f"(predicted from their averages); the entries support a rank of about {ins['supported_rank']}.</p>")
    if p["risks"]:
        by = {r["method"]: r for r in p["methods"]}
        for w in p["risks"]:
            measured = by[w["setting"]]["rmse_mean"]
            context = (f"its CV RMSE {measured:.4f} is the lowest measured, so the cross-validation did not see this hurt"
                       if w["setting"] == p["recommended"]["name"] else f"its CV RMSE {measured:.4f}")
            parts.append(f"<div class='warn'><b>{esc(w['setting'])}</b> ({esc(context)}): {esc(w['message'])} What to do: {esc(w['advice'])}</div>")
    else:
        parts.append("<p>No guardrail fired in any fold (rank, overfitting, sparse rows).</p>")
    if p.get("command"):
        parts.append(f"<p>Reproduce: <code>{esc(p['command'])}</code>; then fit the recommended setting with <code>asymsense complete</code>. "
                     f"Pilot run time {p['seconds_total']:.0f} s; numbers in <a href='pilot.json'>pilot.json</a>.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
