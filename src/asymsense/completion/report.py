"""The HTML report of a completion fit, written for the person who has to decide
whether to use it (self-contained: figures embedded as base64 PNG).

Two steps, so every sentence about the run comes from stored numbers:

1. `report_data(...)` computes everything the report states — the summary in
   words, accuracy of the model against the bias-only model and the global
   mean (RMSE, MAE, % improvement) on the test set (or the validation set),
   rows/columns too sparse to trust, time and peak memory, the leading
   components with their top and bottom rows/columns by label and a one-line
   description, calibration and error-by-activity tables, the facts the
   captions state (imbalance start/maximum, grown singular values vs
   effective rank), the parameters by name, the guardrail warnings, the
   command and the output files. It is plain JSON (DIR/report.json).
2. `render(data, history)` turns it into HTML; figures are drawn from the
   history and from `data`; every caption is a format of `data["facts"]`, so
   changing a stored number changes the caption (tests/test_completion_report.py).

Components: UVᵀ = Σ σ_l a_l b_lᵀ (thin-QR SVD of the factors); a column's
position on the 2-D map is (√σ₁·b_1j, √σ₂·b_2j) (rows likewise with a); the
share of a component is σ_l²/Σσ² of ‖UVᵀ‖²_F. Segments (`completion.segments`):
the levels of the features tables (`row_features`/`col_features`) or, without
them, the labels' tags (MovieLens: genres; age band, men/women, occupation)
whose mean score on the component is at least 3 standard errors from the
average. A component's one-line description names its column segments on each
side ("separates Action/Adventure from Drama/Film-Noir"); when none stands out
(or there are no tags), its two most extreme columns on each side.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import resource
import sys
from pathlib import Path

import numpy as np

from asymsense.completion.biases import fit_biases
from asymsense.completion.diagnostics import FEW_OBSERVATIONS, supported_rank
from asymsense.completion.features import read_features
from asymsense.completion.segments import SEGMENT_Z, feature_levels, loading_segments, tag_levels
from asymsense.errors import InputError
from asymsense.metrics import product_svd
from asymsense.serialize import plain

N_COMPONENTS = 4
N_LOADINGS = 6
GROWN_RELATIVE = 1e-2
"""A singular value of UVᵀ has 'grown' when it is above GROWN_RELATIVE·σ₁ at the returned iterate (the numerical rank's rule)."""
ACTIVITY_EDGES = (1, 5, 10, 20, 50, 100, 200)

PARAMETER_NAMES = {
    "width": "width k (columns of U and V)", "init_scale": "initial scale α", "step_size": "step size μ", "step_constant": "step constant c (μ = c/‖A*(z)‖₂)",
    "max_iter": "iteration budget", "patience": "patience (iterations without improvement)", "biases": "biases", "clip": "predictions clipped to",
    "l2": "L2 weight (0 = the paper's algorithm)", "dtype": "number type", "seed": "random seed", "record_every": "monitor every … iterations",
}


def peak_memory_bytes() -> int:
    """Peak resident memory of this process so far (getrusage; Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# --------------------------------------------------------------------------- labels
def read_labels(path, name: str = "labels") -> dict[str, dict]:
    """Display labels from a CSV/TSV file: first column the id, second the label,
    an optional third column of tags (genres, categories) separated by '|', ';'
    or spaces. Returns str(id) → {"label", "tags"}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{name} {path}: cannot read ({exc.strerror or exc})", name) from None
    lines = text.splitlines()
    if len(lines) < 2:
        raise InputError(f"{name} {path}: needs a header line and at least one (id, label) line", name)
    delimiter = "\t" if "\t" in lines[0] else ("," if "," in lines[0] else ";")
    out = {}
    for lineno, row in enumerate(csv.reader(lines[1:], delimiter=delimiter), start=2):
        if not row or not row[0].strip():
            continue
        if len(row) < 2:
            raise InputError(f"{name} {path}: line {lineno}: needs an id and a label", name)
        tags = row[2].replace("|", " ").replace(";", " ").split() if len(row) > 2 else []
        out[row[0].strip()] = {"label": row[1].strip(), "tags": tags}
    return out


def _labels_for(ids, labels: dict | None) -> tuple[list[str], list[list[str]]]:
    keys = [str(plain(i, nonfinite="keep")) for i in ids]
    if not labels:
        return keys, [[] for _ in keys]
    got = [labels.get(k) for k in keys]
    return [g["label"] if g else k for g, k in zip(got, keys)], [g["tags"] if g else [] for g in got]


def _noun(name: str, plural: bool = True) -> str:
    base = name.replace("_id", "").replace(" id", "").replace("_", " ").strip() or name
    return base + ("s" if plural and not base.endswith("s") else "")


# --------------------------------------------------------------------------- components
def _describe(segments: dict | None, names_pos, names_neg) -> str:
    """One line for a component: its column segments (`completion.segments`)
    when one stands out, otherwise its two most extreme columns on each side."""
    if segments and segments["description"]:
        side = lambda key: "/".join(x["segment"] for x in segments[key]) or "no segment in particular"  # noqa: E731
        return f"separates {side('positive')} (positive side) from {side('negative')} (negative side)"
    return f"separates {', '.join(names_pos[:2])} (positive side) from {', '.join(names_neg[:2])} (negative side)"


def components(result, row_ids, col_ids, n_components: int = N_COMPONENTS, n_loadings: int = N_LOADINGS,
               row_labels: dict | None = None, col_labels: dict | None = None, row_features=None, col_features=None) -> list[dict]:
    """Leading components of UVᵀ: σ, share of ‖UVᵀ‖²_F, the rows and columns with the
    most positive and most negative loadings (with their labels), a one-line
    description, the segments of rows (and of columns) that load on it
    (`completion.segments`: from `row_features`/`col_features` when given,
    otherwise rows from their label tags), and the 2-D map coordinates of the first two."""
    left, s, right = product_svd(np.asarray(result.U, np.float64), np.asarray(result.V, np.float64))
    total = float(np.sum(s**2)) or 1.0
    row_names, row_tags = _labels_for(row_ids, row_labels)
    col_names, col_tags = _labels_for(col_ids, col_labels)
    row_levels = feature_levels(row_features, row_ids, "row_features") if row_features is not None else (
        tag_levels(row_tags) if any(row_tags) else None)
    col_levels = feature_levels(col_features, col_ids, "col_features") if col_features is not None else (
        tag_levels(col_tags) if any(col_tags) else None)
    out = []
    for l in range(min(n_components, len(s))):
        if s[l] <= 1e-12 * max(s[0], 1e-300):
            break
        a, b = left[:, l], right[:, l]
        if b[np.argmax(np.abs(b))] < 0:
            a, b = -a, -b
        order_b, order_a = np.argsort(-b), np.argsort(-a)
        top_b, bottom_b = order_b[:n_loadings], order_b[::-1][:n_loadings]
        col_segments = loading_segments(b, *col_levels) if col_levels is not None else None
        out.append({
            "component": l + 1,
            "sigma": float(s[l]),
            "share": float(s[l] ** 2 / total),
            "description": _describe(col_segments, [col_names[j] for j in top_b], [col_names[j] for j in bottom_b]),
            "top_columns": [(col_names[j], float(b[j])) for j in top_b],
            "bottom_columns": [(col_names[j], float(b[j])) for j in bottom_b],
            "row_segments": loading_segments(a, *row_levels) if row_levels is not None else None,
            "col_segments": col_segments,
            "top_rows": [(row_names[i], float(a[i])) for i in order_a[:n_loadings]],
            "bottom_rows": [(row_names[i], float(a[i])) for i in order_a[::-1][:n_loadings]],
        })
    return out


def _map_coordinates(result) -> tuple[np.ndarray, np.ndarray] | None:
    left, s, right = product_svd(np.asarray(result.U, np.float64), np.asarray(result.V, np.float64))
    if len(s) < 2 or s[1] <= 1e-12 * max(s[0], 1e-300):
        return None
    a, b = left[:, :2] * np.sqrt(s[:2]), right[:, :2] * np.sqrt(s[:2])
    for l in range(2):
        if right[np.argmax(np.abs(right[:, l])), l] < 0:
            a[:, l], b[:, l] = -a[:, l], -b[:, l]
    return a, b


# --------------------------------------------------------------------------- accuracy
def _errors(pred, y) -> dict:
    e = np.asarray(pred, np.float64) - np.asarray(y, np.float64)
    return {"rmse": float(np.sqrt(np.mean(e**2))), "mae": float(np.mean(np.abs(e)))}


def _improvement(model: float, baseline: float) -> float:
    return 100.0 * (baseline - model) / baseline if baseline > 0 else 0.0


def _activity_table(counts, idx, err_model, err_bias) -> list[dict]:
    bins = []
    edges = list(ACTIVITY_EDGES) + [np.inf]
    c = counts[idx]
    for lo, hi in zip([0] + edges[:-1], edges):
        sel = (c >= lo) & (c < hi)
        if sel.sum() == 0:
            continue
        label = (f"{lo}–{int(hi) - 1}" if hi - 1 > lo else str(lo)) if np.isfinite(hi) else f"{lo}+"
        bins.append({"activity": label, "entries": int(sel.sum()), "rmse": float(np.sqrt(np.mean(err_model[sel] ** 2))),
                     "rmse_biases": float(np.sqrt(np.mean(err_bias[sel] ** 2)))})
    return bins


def _calibration(pred, y, n_bins: int = 10) -> list[dict]:
    distinct = np.unique(y)
    out = []
    if len(distinct) <= 12:
        for v in distinct:
            sel = y == v
            out.append({"observed": float(v), "mean_prediction": float(pred[sel].mean()), "entries": int(sel.sum())})
        return out
    edges = np.unique(np.quantile(pred, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, pred, side="right") - 1, 0, len(edges) - 2)
    for k in range(len(edges) - 1):
        sel = which == k
        if sel.any():
            out.append({"observed": float(y[sel].mean()), "mean_prediction": float(pred[sel].mean()), "entries": int(sel.sum())})
    return out


# --------------------------------------------------------------------------- the data
def _facts(result, summary) -> dict:
    h = result.history
    facts = {"best_iter": int(result.best_iter), "iterations": int(result.n_iter), "stop_reason": result.stop_reason,
             "eff_rank": float(summary["eff_rank"]), "numerical_rank": int(summary["numerical_rank"])}
    if "rel_imbalance" in h:
        imb = np.asarray(h["rel_imbalance"], np.float64)
        it = np.asarray(h["iteration"])
        ok = np.isfinite(imb)
        if ok.any():
            i_max = int(np.argmax(np.where(ok, imb, -np.inf)))
            facts.update({"imbalance_start": float(imb[ok][0]), "imbalance_max": float(imb[i_max]), "imbalance_max_iter": int(it[i_max]),
                          "imbalance_final": float(imb[ok][-1])})
    sv_cols = sorted((c for c in h.names if c.startswith("sv_")), key=lambda c: int(c[3:]))
    if sv_cols:
        mask = np.isfinite(np.asarray(h[sv_cols[0]], np.float64))
        it = np.asarray(h["iteration"])[mask]
        at = int(np.searchsorted(it, result.best_iter, side="right") - 1) if len(it) else 0
        last = np.array([np.asarray(h[c], np.float64)[mask][max(at, 0)] for c in sv_cols])
        facts.update({"sv_plotted": len(sv_cols), "sv_grown": int(np.sum(last > GROWN_RELATIVE * last.max())) if last.max() > 0 else 0})
    return facts


def report_data(result, summary: dict, table, train, val, test=None, *, warnings=(), predictions=None, compare=None,
                row_labels=None, col_labels=None, command: str | None = None, peak_memory: int | None = None,
                row_features=None, col_features=None) -> dict:
    """Everything the report states, as plain JSON (see the module docstring).

    `train`, `val`: (rows, cols, values) index triples; `test`: the same with −1
    for unknown ids, or None (then accuracy is measured on the validation
    entries and, when the model was refit on them, said to be optimistic).
    `row_labels`/`col_labels`: paths of label files, or dicts str(id) →
    {"label", "tags"}; for MovieLens-100k the item titles come from the
    recbole wheel. `row_features`/`col_features`: `completion.features.Features`
    tables (or their paths) whose levels name the segments of each component."""
    if isinstance(row_features, (str, Path)):
        row_features = read_features(row_features, name=str(row_features))
    if isinstance(col_features, (str, Path)):
        col_features = read_features(col_features, name=str(col_features))
    if isinstance(row_labels, (str, Path)):
        row_labels = read_labels(row_labels, "row_labels")
    if isinstance(col_labels, (str, Path)):
        col_labels = read_labels(col_labels, "col_labels")
    if table.source == "movielens-100k":
        from asymsense.datasets import movielens_100k_items, movielens_100k_users

        col_labels = col_labels or {str(k): v for k, v in movielens_100k_items().items()}
        row_labels = row_labels or {str(k): v for k, v in movielens_100k_users().items()}
    n1, n2 = table.shape
    refit = isinstance(result.config.get("refit"), dict)
    known = (np.asarray(test[0]) >= 0) & (np.asarray(test[1]) >= 0) if test is not None else None
    if known is not None and known.any():  # no test pair with known ids: measured on the validation entries, as without test
        e_rows, e_cols, e_y = test[0][known], test[1][known], np.asarray(test[2], np.float64)[known]
        eval_on = "test"
    else:
        e_rows, e_cols, e_y = val
        e_y = np.asarray(e_y, np.float64)
        eval_on = "validation"
    biases = fit_biases(*train, table.shape, "both")
    clip = result.clip
    pred = result.predict(e_rows, e_cols)
    bias_pred = biases(e_rows, e_cols)
    bias_pred = np.clip(bias_pred, *clip) if clip is not None else bias_pred
    mean_pred = np.full(len(e_y), float(np.mean(train[2])))
    accuracy = {"model": _errors(pred, e_y), "biases": _errors(bias_pred, e_y), "global_mean": _errors(mean_pred, e_y)}
    for base in ("biases", "global_mean"):
        for metric in ("rmse", "mae"):
            accuracy[f"improvement_{metric}_vs_{base}"] = _improvement(accuracy["model"][metric], accuracy[base][metric])
    cnt_r = np.bincount(train[0], minlength=n1)
    cnt_c = np.bincount(train[1], minlength=n2)
    err_m, err_b = pred - e_y, bias_pred - e_y
    row_name, col_name, value_name = table.names
    config = summary.get("config", {})
    parameters = [(PARAMETER_NAMES.get(k, k), config[k]) for k in PARAMETER_NAMES if k in config]
    split = config.get("validation") or {}
    mp = _map_coordinates(result)
    col_display, _ = _labels_for(table.col_map.ids, col_labels)
    map_labels = None
    if mp is not None:
        radius = np.hypot(mp[1][:, 0], mp[1][:, 1])
        map_labels = [(col_display[j], float(mp[1][j, 0]), float(mp[1][j, 1])) for j in np.argsort(-radius)[:12]]
    return {
        "title": f"asymsense complete — {table.source}",
        "source": table.source,
        "names": {"rows": row_name, "columns": col_name, "value": value_name},
        "shape": [n1, n2], "m": int(table.m), "m_train": int(len(train[2])), "m_validation": int(len(val[2])),
        "m_eval": int(len(e_y)), "eval_on": eval_on, "eval_optimistic": eval_on == "validation" and refit,
        "refit": refit, "split": plain(split, nonfinite="keep"),
        "accuracy": accuracy,
        "sparse": {"threshold": FEW_OBSERVATIONS, "rows": int(np.sum(cnt_r < FEW_OBSERVATIONS)), "columns": int(np.sum(cnt_c < FEW_OBSERVATIONS))},
        "supported_rank": supported_rank(int(len(train[2])), n1, n2),
        "seconds_fit": float(summary.get("seconds", result.seconds)), "seconds_total": float(summary.get("seconds_total", result.seconds)),
        "peak_memory_bytes": peak_memory,
        "facts": _facts(result, summary),
        "train_rmse": summary.get("train_rmse"), "val_rmse": summary.get("val_rmse"), "test_rmse": summary.get("test_rmse"),
        "parameters": [(name, plain(v, nonfinite="keep")) for name, v in parameters],
        "components": components(result, table.row_map.ids, table.col_map.ids, row_labels=row_labels, col_labels=col_labels,
                                 row_features=row_features, col_features=col_features),
        "segments_from": {"rows": f"features ({Path(row_features.source).name})" if row_features is not None else ("label tags" if row_labels else None),
                          "columns": f"features ({Path(col_features.source).name})" if col_features is not None else ("label tags" if col_labels else None)},
        "map_labels": map_labels,
        "has_labels": {"rows": bool(row_labels), "columns": bool(col_labels)},
        "calibration": _calibration(pred, e_y),
        "activity_rows": _activity_table(cnt_r, e_rows, err_m, err_b),
        "activity_columns": _activity_table(cnt_c, e_cols, err_m, err_b),
        "warnings": [w.as_dict() if hasattr(w, "as_dict") else dict(w) for w in warnings],
        "predictions": predictions,
        "interval": plain(summary.get("interval"), nonfinite="keep"),
        "compare": plain(compare, nonfinite="keep") if compare else None,
        "command": command,
    }


# --------------------------------------------------------------------------- words
def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if x is not None else "—"


def _memory(nbytes) -> str:
    if not nbytes:
        return "not measured"
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def summary_words(d: dict) -> list[str]:
    """The summary in words: one paragraph per sentence group, all from `d`."""
    rows, cols, value = _noun(d["names"]["rows"]), _noun(d["names"]["columns"]), d["names"]["value"]
    acc = d["accuracy"]
    n1, n2 = d["shape"]
    f = d["facts"]
    out = [
        f"We fitted a low-rank model (biases plus a learned interaction) to {d['m']:,} observed {value} values of {n1:,} {rows} × {n2:,} {cols} "
        f"({d['m'] / (n1 * n2):.2%} of the table): {d['m_train']:,} entries to learn from and {d['m_validation']:,} to decide when to stop.",
        f"On {d['m_eval']:,} held-out {d['eval_on']} entries it predicts with an RMSE of {_num(acc['model']['rmse'])} and an MAE of {_num(acc['model']['mae'])}: "
        f"{acc['improvement_rmse_vs_biases']:.1f}% lower RMSE ({acc['improvement_mae_vs_biases']:.1f}% lower MAE) than the bias-only model "
        f"(each {_noun(d['names']['rows'], False)}'s and {_noun(d['names']['columns'], False)}'s average: RMSE {_num(acc['biases']['rmse'])}), and "
        f"{acc['improvement_rmse_vs_global_mean']:.1f}% lower RMSE than predicting the overall mean (RMSE {_num(acc['global_mean']['rmse'])}).",
    ]
    if d.get("eval_optimistic"):
        out.append("These entries were used to choose the stopping point and then, in the refit, for training: the numbers are optimistic; pass a test set for an unbiased estimate.")
    out.append(f"The fit took {d['seconds_fit']:.1f} s ({d['seconds_total']:.1f} s for the whole run) and the process used at most {_memory(d['peak_memory_bytes'])} of memory. "
               f"It stopped at iteration {f['best_iter']} (the best on validation) and uses about {f['eff_rank']:.1f} effective components "
               f"(the data supports about {d['supported_rank']} with 3 entries per degree of freedom).")
    sp = d["sparse"]
    out.append(f"{sp['rows']:,} {rows} and {sp['columns']:,} {cols} have fewer than {sp['threshold']} training entries: their predictions come mostly from their averages and should not be trusted individually."
               if sp["rows"] or sp["columns"] else f"Every {_noun(d['names']['rows'], False)} and {_noun(d['names']['columns'], False)} has at least {sp['threshold']} training entries.")
    return out


def captions(d: dict) -> dict[str, str]:
    """Figure captions, each a format of the run's stored numbers (`d["facts"]`, `d["accuracy"]`)."""
    f = d["facts"]
    c = {
        "rmse": f"Train and validation RMSE per iteration. The run stopped at iteration {f['iterations']} ({f['stop_reason']}); the dashed line marks "
                f"iteration {f['best_iter']}, the best on validation, which is the model returned.",
        "spectrum": f"Singular values of the returned interaction UVᵀ: effective rank {f['eff_rank']:.1f} (entropy of the normalized singular values), "
                    f"numerical rank {f['numerical_rank']} (values above 1% of the largest).",
        "calibration": f"Mean prediction for each observed value on the {d['m_eval']:,} {d['eval_on']} entries; on the diagonal the predictions are calibrated.",
        "activity": f"RMSE on the {d['eval_on']} entries by how many training entries their {_noun(d['names']['rows'], False)} (left) and "
                    f"{_noun(d['names']['columns'], False)} (right) has, for the model and the bias-only model.",
        "map": "Each point is one " + _noun(d["names"]["columns"], False) + " at its coordinates on the first two components (√σ·loading); "
               "the labelled ones are the farthest from the centre. Right: the " + _noun(d["names"]["rows"]) + ".",
    }
    if "imbalance_start" in f:
        c["imbalance"] = (f"Relative imbalance ‖UᵀU − VᵀV‖_F/‖UVᵀ‖₂ per monitored iteration: {f['imbalance_start']:.3g} at the first record, at most "
                          f"{f['imbalance_max']:.3g} (iteration {f['imbalance_max_iter']}), {f['imbalance_final']:.3g} at the last record. "
                          "Relative to ‖UVᵀ‖₂ it is large while UVᵀ is still tiny and falls once the components have grown.")
    if "sv_grown" in f:
        c["singular_values"] = (f"The {f['sv_plotted']} largest singular values of UVᵀ per iteration: components grow one after another, strongest first. "
                                f"At the returned iterate (dashed line) {f['sv_grown']} of the {f['sv_plotted']} plotted are above 1% of the largest; "
                                f"the effective rank is {f['eff_rank']:.1f} and the numerical rank {f['numerical_rank']}, so "
                                + ("more components than plotted carry weight." if f["numerical_rank"] > f["sv_plotted"] else "the plot shows every component that carries weight."))
    return c


def interval_words(interval: dict) -> str:
    """The coverage of the prediction intervals (complete's interval option) as one HTML paragraph with a table."""
    level = interval["level"]
    rows = [(name, f"{v['coverage']:.1%}", f"{v['mean_width']:.3f}", f"{v['m']:,}") for name, v in interval.items() if isinstance(v, dict) and "coverage" in v]
    text = (f"<p>Prediction intervals at a nominal {level:.0%}: the share of held-out values that fell inside them should be close to {level:.0%}.</p>")
    return text + _table(["entries", "inside the interval", "mean width", "entries counted"], rows)


# --------------------------------------------------------------------------- figures
FIGURE_MARGINS = {"left": 0.14, "right": 0.97, "bottom": 0.16, "top": 0.9}
"""Fractions of the figure left around the axes (room for tick labels, axis labels and the title)."""


def _subplots(plt, *args, bottom: float | None = None, left: float | None = None, **kwargs):
    """plt.subplots with the report's fixed margins (FIGURE_MARGINS; `bottom`/`left` for rotated or long labels)."""
    fig, axes = plt.subplots(*args, **kwargs)
    fig.subplots_adjust(**{**FIGURE_MARGINS, **({"bottom": bottom} if bottom else {}), **({"left": left} if left else {})})
    return fig, axes


def _figure_png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)  # fixed margins (FIGURE_MARGINS): a tight bounding box would draw every figure twice
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def figures(data: dict, history, result=None) -> dict[str, str]:
    """The report's figures as base64 PNG strings (learning curves from the
    history; calibration, activity and the map from `data` / the factors)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    h = history
    it = np.asarray(h["iteration"])
    best = data["facts"]["best_iter"]
    figs = {}
    fig, ax = _subplots(plt, figsize=(6, 3.4))
    tr = np.isfinite(np.asarray(h["train_rmse"], np.float64))
    ax.plot(it[tr], np.asarray(h["train_rmse"])[tr], label="train")
    if "val_rmse" in h:
        ax.plot(it, h["val_rmse"], label="validation")
    ax.axvline(best, color="gray", ls="--", lw=1, label=f"returned iterate ({best})")
    ax.set_xlabel("iteration"), ax.set_ylabel("RMSE"), ax.legend(), ax.set_title("Learning curves")
    figs["rmse"] = _figure_png(fig)

    sv_cols = sorted((c for c in h.names if c.startswith("sv_")), key=lambda c: int(c[3:]))
    if sv_cols:
        mask = np.isfinite(np.asarray(h[sv_cols[0]], np.float64))
        fig, ax = _subplots(plt, figsize=(6, 3.4))
        for c in sv_cols:
            ax.semilogy(it[mask], np.maximum(np.asarray(h[c])[mask], 1e-300), lw=1.2, label=c.replace("sv_", "σ"))
        ax.axvline(best, color="gray", ls="--", lw=1)
        ax.set_xlabel("iteration"), ax.set_ylabel("singular value of UVᵀ"), ax.set_title("Singular values per iteration")
        ax.legend(ncol=5, fontsize=7)
        figs["singular_values"] = _figure_png(fig)
        if "rel_imbalance" in h:
            fig, ax = _subplots(plt, figsize=(6, 3.4), left=0.16)
            ax.semilogy(it[mask], np.maximum(np.asarray(h["rel_imbalance"])[mask], 1e-300))
            ax.axvline(best, color="gray", ls="--", lw=1)
            ax.set_xlabel("iteration"), ax.set_ylabel("‖UᵀU − VᵀV‖_F / ‖UVᵀ‖₂"), ax.set_title("Relative imbalance")
            figs["imbalance"] = _figure_png(fig)

    cal = data["calibration"]
    fig, ax = _subplots(plt, figsize=(4.2, 3.6), left=0.18, bottom=0.14)
    obs = [c["observed"] for c in cal]
    ax.plot(obs, [c["mean_prediction"] for c in cal], "o-", label="model")
    lo, hi = min(obs), max(obs)
    ax.plot([lo, hi], [lo, hi], color="gray", ls=":", label="calibrated")
    ax.set_xlabel(f"observed {data['names']['value']}"), ax.set_ylabel("mean prediction"), ax.legend(), ax.set_title("Predicted vs observed")
    figs["calibration"] = _figure_png(fig)

    fig, axes = _subplots(plt, 1, 2, figsize=(8, 3.2), sharey=True, bottom=0.3, left=0.09)
    for ax, key, who in ((axes[0], "activity_rows", "rows"), (axes[1], "activity_columns", "columns")):
        tab = data[key]
        x = np.arange(len(tab))
        ax.bar(x - 0.2, [t["rmse"] for t in tab], 0.4, label="model")
        ax.bar(x + 0.2, [t["rmse_biases"] for t in tab], 0.4, label="bias-only")
        ax.set_xticks(x, [t["activity"] for t in tab], rotation=30, fontsize=8)
        ax.set_xlabel(f"training entries per {_noun(data['names'][who], False)}")
    axes[0].set_ylabel("RMSE"), axes[0].legend()
    figs["activity"] = _figure_png(fig)

    mp = _map_coordinates(result) if result is not None else None
    if mp is not None:
        fig, axes = _subplots(plt, 1, 2, figsize=(9, 4.2), gridspec_kw={"wspace": 0.3}, left=0.09)
        axes[0].scatter(mp[1][:, 0], mp[1][:, 1], s=4, alpha=0.4)
        for label, x, y in data.get("map_labels") or []:
            axes[0].annotate(label[:28], (x, y), fontsize=7, ha="right" if x > 0 else "left")
        axes[0].set_title(_noun(data["names"]["columns"])), axes[0].set_xlabel("component 1"), axes[0].set_ylabel("component 2")
        axes[1].scatter(mp[0][:, 0], mp[0][:, 1], s=4, alpha=0.4, color="tab:orange")
        axes[1].set_title(_noun(data["names"]["rows"])), axes[1].set_xlabel("component 1")
        figs["map"] = _figure_png(fig)

    s = result.singular_values() if result is not None else None
    if s is not None and len(s):
        fig, ax = _subplots(plt, figsize=(6, 2.8), bottom=0.18)
        ax.bar(np.arange(1, len(s) + 1), s)
        ax.set_yscale("log"), ax.set_xlabel("index"), ax.set_ylabel("σ of the returned UVᵀ"), ax.set_title("Final spectrum")
        figs["spectrum"] = _figure_png(fig)
    return figs


# --------------------------------------------------------------------------- HTML
def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v):
    if isinstance(v, bool) or v is None:
        return "—" if v is None else ("yes" if v else "no")
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return " to ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return v


def _figure(figs, caps, key) -> str:
    if key not in figs:
        return ""
    return (f"<figure><img alt='{key}' src='data:image/png;base64,{figs[key]}'>"
            f"<figcaption>{html.escape(caps.get(key, ''))}</figcaption></figure>")


def _segments_html(seg: dict | None, noun: str, source: str | None, one: str = "") -> str:
    """The segments of one side of a component (`completion.segments`) as a sentence and a small table
    (`noun`: the ids in plural, `one`: in singular)."""
    if not seg:
        return ""
    if not seg["description"]:
        return (f"<p>{html.escape(noun.capitalize())} by segment (from {html.escape(source or 'their attributes')}): no segment's mean score is "
                f"{SEGMENT_Z:g} standard errors from the average.</p>")
    text = (f"<p>{html.escape((one or noun).capitalize())} segments that load on it (from {html.escape(source or 'their attributes')}; "
            f"mean score {SEGMENT_Z:g}+ standard errors from the average): {html.escape(seg['description'])}.</p>")
    rows = [(x["segment"], side, f"{x['size']:,}", f"{x['mean_score']:+.4f}", f"{x['z']:+.1f}")
            for side in ("positive", "negative") for x in seg[side]]
    return text + _table(["segment", "side", noun, "mean score", "z"], rows)


def render(data: dict, history, result=None) -> str:
    """The report as one HTML string, from `report_data`'s dict and the fit's history
    (and the fitted result for the map and the spectrum)."""
    figs = figures(data, history, result)
    caps = captions(data)
    rows_n, cols_n = data["names"]["rows"], data["names"]["columns"]
    acc = data["accuracy"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(data['title'])}</title>",
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}"
        "table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
        "th{background:#f3f3f3}img{max-width:100%}.comp{display:inline-block;vertical-align:top;margin-right:1.2em}"
        ".warn{background:#fff4e0;border-left:4px solid #e69500;padding:.5em 1em;margin:.5em 0}.ok{background:#eef8ee;padding:.5em 1em}"
        "figcaption{font-size:13px;color:#444}code{background:#f3f3f3;padding:1px 4px}</style></head><body>",
        f"<h1>{html.escape(data['title'])}</h1>",
    ]
    if data["warnings"]:
        parts.append("<h2>Warnings</h2>")
        for w in data["warnings"]:
            parts.append(f"<div class='warn'><b>{html.escape(w['message'])}</b><br>What to do: {html.escape(w['advice'])}</div>")
    else:
        parts.append("<p class='ok'>No warnings: none of the checks on rank, overfitting, sparse rows, the validation share or the test set fired.</p>")
    parts.append("<h2>Summary</h2>")
    parts += [f"<p>{html.escape(p)}</p>" for p in summary_words(data)]
    if data.get("predictions"):
        p = data["predictions"]
        what = (f"the top {p['n']} unobserved {_noun(cols_n)} for every {_noun(rows_n, False)}" if p["kind"] == "top" else "the requested pairs")
        parts.append(f"<p>Predictions ({p['rows']:,} lines: {what}) are in <a href='predictions.csv'>predictions.csv</a>.</p>")
    parts.append("<h3>Accuracy on the " + html.escape(data["eval_on"]) + " entries</h3>")
    parts.append(_table(["model", "RMSE", "MAE", "RMSE improvement of ours"], [
        ("this model", _num(acc["model"]["rmse"]), _num(acc["model"]["mae"]), "—"),
        ("bias-only (averages)", _num(acc["biases"]["rmse"]), _num(acc["biases"]["mae"]), f"{acc['improvement_rmse_vs_biases']:.1f}%"),
        ("global mean", _num(acc["global_mean"]["rmse"]), _num(acc["global_mean"]["mae"]), f"{acc['improvement_rmse_vs_global_mean']:.1f}%"),
    ]))
    if data.get("compare"):
        parts += ["<h3>Other methods on the same split</h3>", _table(["method", "test RMSE", "validation RMSE", "seconds", "settings"],
                  [(c["method"], _num(c.get("test_rmse")), _num(c.get("val_rmse")) if c.get("val_rmse") is not None else "—", f"{c.get('seconds', 0):.2f}",
                    ", ".join(f"{k} = {_fmt(v)}" for k, v in (c.get("params") or {}).items())) for c in data["compare"]])]

    parts.append("<h2>Leading components: what the model found</h2>")
    parts.append(f"<p>The interaction UVᵀ is a sum of components σ·a·bᵀ; each gives every {html.escape(_noun(rows_n, False))} a score a and every "
                 f"{html.escape(_noun(cols_n, False))} a score b, and adds σ·a·b to the prediction. The share is the component's part of the interaction's size "
                 "(σ²/Σσ²). Positive and negative sides are a direction, not good and bad.</p>")
    parts.append(_figure(figs, caps, "map"))
    for c in data["components"]:
        parts.append(f"<h3>Component {c['component']} ({100 * c['share']:.0f}% of the interaction): {html.escape(c['description'])}</h3>")
        for key, names, side in (("row_segments", rows_n, "rows"), ("col_segments", cols_n, "columns")):
            parts.append(_segments_html(c.get(key), _noun(names), data.get("segments_from", {}).get(side), _noun(names, False)))
        parts.append("<div class='comp'>" + _table([f"{_noun(cols_n)}, positive side", "score"], [(n, f"{v:+.3f}") for n, v in c["top_columns"]]) + "</div>")
        parts.append("<div class='comp'>" + _table([f"{_noun(cols_n)}, negative side", "score"], [(n, f"{v:+.3f}") for n, v in c["bottom_columns"]]) + "</div>")
        parts.append("<div class='comp'>" + _table([f"{_noun(rows_n)}, positive side", "score"], [(n, f"{v:+.3f}") for n, v in c["top_rows"]]) + "</div>")

    parts.append("<h2>How reliable the predictions are</h2>")
    parts.append(_figure(figs, caps, "calibration"))
    parts.append(_figure(figs, caps, "activity"))
    parts.append(_table([f"training entries per {_noun(rows_n, False)}", "entries", "RMSE (model)", "RMSE (bias-only)"],
                        [(t["activity"], f"{t['entries']:,}", _num(t["rmse"]), _num(t["rmse_biases"])) for t in data["activity_rows"]]))

    if data.get("interval"):
        parts.append(interval_words(data["interval"]))
    parts.append("<h2>How the training went</h2>")
    for key in ("rmse", "singular_values", "imbalance", "spectrum"):
        parts.append(_figure(figs, caps, key))

    parts.append("<h2>Settings</h2>")
    parts.append(_table(["setting", "value"], [(name, _fmt(v)) for name, v in data["parameters"]]))
    split = data.get("split") or {}
    if split:
        parts.append(f"<p>Split: {html.escape(_fmt({k: v for k, v in split.items() if v is not None}))}.</p>")
    if data.get("command"):
        parts.append(f"<p>To reproduce this run: <code>{html.escape(data['command'])}</code></p>")
    parts.append("<h2>Output files</h2><ul>")
    for name, what in (("predictions.csv", "predictions"), ("summary.json", "the run's numbers"), ("warnings.json", "the warnings above"),
                       ("report.json", "the numbers this page states"), ("row_factors.parquet", f"{_noun(rows_n, False)} biases and factors"),
                       ("col_factors.parquet", f"{_noun(cols_n, False)} biases and factors"), ("history.parquet", "per-iteration history"), ("model/", "the saved model")):
        if name != "predictions.csv" or data.get("predictions"):
            parts.append(f"<li><a href='{name}'>{name}</a>: {html.escape(what)}</li>")
    parts.append("</ul></body></html>")
    return "\n".join(p for p in parts if p)
