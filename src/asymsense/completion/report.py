"""A self-contained HTML report of a completion fit (figures embedded as base64 PNG).

Sections: the summary; train and validation RMSE vs iteration (best iterate
marked); singular values of UVᵀ vs iteration (the rank the model learns);
relative imbalance ‖UᵀU − VᵀV‖_F/‖UVᵀ‖₂ vs iteration; the final spectrum;
and, for each leading component σ_l a_l b_lᵀ of UVᵀ, the rows and columns that
load on it most and its share σ_l²/Σσ² of ‖UVᵀ‖²_F (the fitted interaction).
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from asymsense.metrics import product_svd
from asymsense.serialize import dumps, plain

N_COMPONENTS = 5
N_LOADINGS = 8


def components(result, row_ids, col_ids, n_components: int = N_COMPONENTS, n_loadings: int = N_LOADINGS) -> list[dict]:
    """Leading components of UVᵀ: σ, share of ‖UVᵀ‖²_F, top rows/columns by |loading|."""
    left, s, right = product_svd(np.asarray(result.U, np.float64), np.asarray(result.V, np.float64))
    total = float(np.sum(s**2)) or 1.0
    out = []
    for l in range(min(n_components, len(s))):
        if s[l] <= 1e-12 * max(s[0], 1e-300):
            break
        a, b = left[:, l], right[:, l]
        if a[np.argmax(np.abs(a))] < 0:
            a, b = -a, -b
        top_a = np.argsort(-np.abs(a))[:n_loadings]
        top_b = np.argsort(-np.abs(b))[:n_loadings]
        out.append({
            "component": l + 1,
            "sigma": float(s[l]),
            "share": float(s[l] ** 2 / total),
            "rows": [(plain(row_ids[i], nonfinite="keep"), float(a[i])) for i in top_a],
            "columns": [(plain(col_ids[j], nonfinite="keep"), float(b[j])) for j in top_b],
        })
    return out


def _figure_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def figures(result) -> dict[str, str]:
    """The report's figures as base64 PNG strings."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    h = result.history
    it = h["iteration"]
    figs = {}
    fig, ax = plt.subplots(figsize=(6, 3.6))
    tr = np.isfinite(h["train_rmse"])
    ax.plot(it[tr], h["train_rmse"][tr], label="train")
    if "val_rmse" in h:
        ax.plot(it, h["val_rmse"], label="validation")
        ax.axvline(result.best_iter, color="gray", ls="--", lw=1, label=f"best iterate ({result.best_iter})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("RMSE")
    ax.legend()
    ax.set_title("RMSE vs iteration")
    figs["rmse"] = _figure_png(fig)

    sv_cols = sorted((c for c in h.names if c.startswith("sv_")), key=lambda c: int(c[3:]))
    if sv_cols:
        mask = np.isfinite(h[sv_cols[0]])
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for c in sv_cols:
            ax.semilogy(it[mask], np.maximum(h[c][mask], 1e-300), lw=1.2, label=c.replace("sv_", "σ"))
        ax.axvline(result.best_iter, color="gray", ls="--", lw=1)
        ax.set_xlabel("iteration")
        ax.set_ylabel("singular value of UVᵀ")
        ax.set_title("Singular values vs iteration (the rank the model learns)")
        ax.legend(ncol=5, fontsize=7)
        figs["singular_values"] = _figure_png(fig)

        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.semilogy(it[mask], np.maximum(h["rel_imbalance"][mask], 1e-300))
        ax.axvline(result.best_iter, color="gray", ls="--", lw=1)
        ax.set_xlabel("iteration")
        ax.set_ylabel("‖UᵀU − VᵀV‖_F / ‖UVᵀ‖₂")
        ax.set_title("Relative imbalance vs iteration")
        figs["imbalance"] = _figure_png(fig)

    s = result.singular_values()
    fig, ax = plt.subplots(figsize=(6, 3.0))
    ax.bar(np.arange(1, len(s) + 1), s)
    ax.set_yscale("log")
    ax.set_xlabel("index")
    ax.set_ylabel("σ of the returned UVᵀ")
    ax.set_title(f"Final spectrum (effective rank {result.effective_rank:.1f})")
    figs["spectrum"] = _figure_png(fig)
    return figs


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else v


def render(result, summary: dict, row_ids, col_ids, *, title: str = "asymsense complete", compare: list[dict] | None = None) -> str:
    """The report as one HTML string."""
    figs = figures(result)
    comps = components(result, row_ids, col_ids)
    keys = ["source", "shape", "m_train", "train_rmse", "val_rmse", "test_rmse", "iterations", "best_iter", "stop_reason", "eff_rank", "numerical_rank", "step_size", "init_scale", "seconds"]
    summary_rows = [(k, _fmt(summary.get(k, summary.get("config", {}).get(k)))) for k in keys if k in summary or k in summary.get("config", {})]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        "th{background:#f3f3f3}img{max-width:100%}.comp{display:inline-block;vertical-align:top;margin-right:1.5em}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Model: Ŷ = b + r<sub>i</sub> + c<sub>j</sub> + (UVᵀ)<sub>ij</sub>, fitted by factorized gradient descent from small random "
        "initialization on the observed entries, with the validation-best iterate restored.</p>",
        "<h2>Summary</h2>",
        _table(["quantity", "value"], summary_rows),
    ]
    if compare:
        parts += ["<h2>Comparison on the same split</h2>", _table(["method", "test RMSE", "val RMSE", "seconds", "parameters"],
                  [(c["method"], _fmt(c.get("test_rmse")), _fmt(c.get("val_rmse")), _fmt(c.get("seconds")), dumps(c.get("params", {}), nonfinite="keep", other="str", indent=None)) for c in compare])]
    captions = {
        "rmse": "Train and validation RMSE vs iteration; the dashed line marks the returned (best-validation) iterate.",
        "singular_values": "Singular values of UVᵀ vs iteration: components enter one after another, in order of strength; the number that has grown by the dashed line is the rank the model learned.",
        "imbalance": "Relative imbalance ‖UᵀU − VᵀV‖_F/‖UVᵀ‖₂: it starts at the scale of the initialization and stays small without any balancing term (implicit balancing).",
        "spectrum": "Singular values of the returned UVᵀ.",
    }
    parts.append("<h2>What the learning did</h2>")
    for key in ("rmse", "singular_values", "imbalance", "spectrum"):
        if key in figs:
            parts.append(f"<figure><img alt='{key}' src='data:image/png;base64,{figs[key]}'><figcaption>{html.escape(captions[key])}</figcaption></figure>")
    parts.append("<h2>Leading components</h2><p>UVᵀ = Σ σ<sub>l</sub> a<sub>l</sub> b<sub>l</sub>ᵀ; share = σ<sub>l</sub>²/Σσ² of ‖UVᵀ‖²<sub>F</sub>. "
                 "Loadings are entries of the unit singular vectors a<sub>l</sub> (rows) and b<sub>l</sub> (columns); the sign is fixed so the largest row loading is positive.</p>")
    for c in comps:
        parts.append(f"<h3>Component {c['component']}: σ = {c['sigma']:.4g}, share {100 * c['share']:.1f}%</h3>")
        parts.append("<div class='comp'>" + _table(["row id", "loading"], [(i, f"{v:+.3f}") for i, v in c["rows"]]) + "</div>")
        parts.append("<div class='comp'>" + _table(["column id", "loading"], [(i, f"{v:+.3f}") for i, v in c["columns"]]) + "</div>")
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(dumps(summary.get('config', {}), nonfinite='keep', other='str'))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


