"""Build report.md, report.html (self-contained: figures base64-embedded) and
claims.json from the stored results of an output folder — nothing is
recomputed, every number is read from the Parquet stores."""

from __future__ import annotations

import base64
import html
import json
import time
import traceback
from functools import cache
from pathlib import Path

from asymsense.errors import InputError
from asymsense.paper.claims import Claim, claim, claims_json, claims_markdown
from asymsense.paper.context import EXPERIMENT_FILE, Context, Section
from asymsense.atomic import output_entries, write_text
from asymsense.paper.registry import EXPERIMENTS
from asymsense.paper.runner import MANIFEST

THRESHOLD_RULE = (
    "A claim passes when its whole stated range clears the threshold: for “≥” the lower end of the interval "
    "(or the point value), for “≤” the upper end, for “in [a, b]” the whole interval. Intervals are 95% bootstrap "
    "intervals over seeds (BCa where defined, else percentile; at least 5 seeds); with fewer seeds the row gives "
    "the range over seeds and says so; “worst …” rows use the worst case as the value. Every threshold is "
    "justified in the experiment's config (theory or a stated tolerance). A claim that could not be measured "
    "(missing or failed trials) is a FAIL, never dropped. Each section states the regime it ran in: m/dof, "
    "m/(n1·n2), κ, μ‖X*‖₂ and two measured RIP proxies of A*(y) (σ_(r+1)/σ_r and the sine between its top-r "
    "singular spaces and X*'s; both → 0 in the theorem's restricted-isometry regime)."
)


def stored_experiments(out_dir) -> list[str]:
    """Experiments with stored results in OUT/data, in E1…E8 order."""
    root = Path(out_dir) / "data"
    return [name for name in EXPERIMENTS if (root / name / EXPERIMENT_FILE).is_file()]


def analyze_all(out_dir, *, console=None, figures=None) -> list[Section]:
    """Run every stored experiment's analysis (figures into `figures`, default
    out_dir/figures); a failing analysis becomes a section with its error (its
    claims then appear as not measured)."""
    sections = []
    for name in stored_experiments(out_dir):
        ctx = Context.load(out_dir, name, figures)
        try:
            sec = EXPERIMENTS[name].analyze(ctx)
        except Exception as exc:  # report honestly instead of crashing the report
            sec = Section(name, ctx.config.get("title", name), ctx.config.get("summary", ""))
            sec.error = f"{type(exc).__name__}: {exc}"
            sec.claims.append(claim(f"{name.upper()}.*", name, f"the analysis of {name} ran on the stored results (its claims could not be computed: {sec.error[:200]})",
                                    "—", None, ">=", 1.0))
            sec.notes.append("```\n" + traceback.format_exc(limit=4) + "```")
        _note_failures(ctx, sec)
        regime = [{**r.as_dict(), "text": r.text()} for r in sec.regimes]
        for c in sec.claims:
            if c.regime is None:
                c.regime = regime
        sections.append(sec)
        if console is not None:
            passed = sum(c.passed for c in sec.claims)
            console.print(f"{name}: {passed}/{len(sec.claims)} claims pass" + (f" — analysis error: {sec.error}" if sec.error else ""))
    return sections


def _note_failures(ctx: Context, sec: Section) -> None:
    for label in ctx.config.get("keys", {}):
        try:
            ok = len(ctx.trials(label))
            fails = ctx.failures(label)
        except InputError:
            sec.notes.append(f"Sweep `{label}`: no stored results.")
            continue
        expected = ctx.expected(label)
        line = f"Sweep `{label}`: {ok} of {expected} trials stored ok"
        keys = set(ctx.config["keys"][label])
        bad = [(k, e) for k, e in zip(fails.get("key", []), fails.get("error", [])) if k in keys] if len(fails) else []
        if bad:
            line += f", {len(bad)} failed (first error: {str(bad[0][1])[:300]})"
        sec.notes.append(line + ".")


def _mode_line(out_dir) -> tuple[str, dict]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return "mode unknown (no reproduce.json)", {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} line {exc.lineno}: malformed JSON ({exc.msg}, column {exc.colno}); rerun `asymsense reproduce` to rewrite it") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("seconds", {}), dict):
        raise InputError(f"{path}: not a reproduce.json manifest (expected an object with 'mode' and 'seconds')")
    secs = manifest.get("seconds", {})
    total = sum(secs.values())
    return f"mode **{manifest.get('mode', '?')}**, run time of the sweeps {total:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in secs.items()) + ")", manifest


def _config_block(ctx_config: dict) -> str:
    parts = []
    for s in ctx_config.get("sweeps", []):
        parts.append(f"- `{s['label']}`: method `{s.get('method', 'fgd')}`, seeds {s.get('seeds', 1)}, fixed {json.dumps(s.get('fixed', {}))}, grid {json.dumps(s.get('grid', {}))}")
    if ctx_config.get("analysis"):
        parts.append(f"- analysis: {json.dumps(ctx_config['analysis'])}")
    return "\n".join(parts)


def _head(out_dir, sections: list[Section]) -> tuple[str, str, list]:
    """(introduction, claims heading, all claims): the top of both renderings."""
    mode, _ = _mode_line(out_dir)
    claims = [c for s in sections for c in s.claims]
    passed = sum(c.passed for c in claims)
    intro = ("Soltanolkotabi, Stöger, Xie (COLT 2023): *Implicit balancing and regularization: generalization and convergence "
             "guarantees for overparameterized asymmetric matrix sensing*. Every number below is computed from the stored "
             f"results in this folder ({mode}); `asymsense report DIR` rebuilds this page without recomputing.")
    return intro, f"Claims ({passed} of {len(claims)} pass)", claims


def _section_config(out_dir, sec: Section) -> str:
    """The Markdown list of a section's stored sweep configs and analysis thresholds."""
    return _config_block(json.loads((Path(out_dir) / "data" / sec.name / EXPERIMENT_FILE).read_text(encoding="utf-8")))


def _regime_lines(sec: Section) -> str:
    return "\n".join(f"- {r.text()}" for r in sec.regimes)


def render_markdown(out_dir, sections: list[Section]) -> str:
    intro, heading, claims = _head(out_dir, sections)
    lines = ["# asymsense — reproduction report", "", intro, "", f"## {heading}", "", THRESHOLD_RULE, "", claims_markdown(claims), ""]
    for sec in sections:
        lines += [f"## {sec.title}", "", sec.summary, ""]
        if sec.regimes:
            lines += ["**Regime:**", "", _regime_lines(sec), ""]
        if sec.error:
            lines += [f"**Analysis failed:** `{sec.error}`", ""]
        for path, caption in sec.figures:
            lines += [f"![{caption}](figures/{Path(path).name})", "", f"*{caption}*", ""]
        if sec.claims:
            lines += [claims_markdown(sec.claims), ""]
        for note in sec.notes:
            lines += [note, ""]
        lines += ["<details><summary>configuration</summary>", "", _section_config(out_dir, sec), "", "</details>", ""]
    lines.append(f"_Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}._")
    return "\n".join(lines) + "\n"


@cache
def _markdown():
    """CommonMark with GitHub tables (markdown-it-py, built on first use so the
    command line does not pay for it); raw HTML off, so text such as
    "<class 'X'>" in an error message is shown, never interpreted."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _md_block_to_html(block: str) -> str:
    """Markdown → HTML (markdown-it-py); table rows that contain FAIL get class "fail"."""
    md = _markdown()
    tokens = md.parse(block)
    row = None
    for token in tokens:
        if token.type == "tr_open":
            row = token
        elif token.type == "tr_close":
            row = None
        elif row is not None and token.type == "inline" and "FAIL" in token.content:
            row.attrSet("class", "fail")
    return md.renderer.render(tokens, md.options, {})


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"><figcaption>{_markdown().renderInline(caption)}</figcaption></figure>'


CSS = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.88em}td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top}
th{background:#f3f3f3}tr.fail td{background:#fde8e8}img{max-width:100%}figure{margin:1em 0}figcaption{font-style:italic;font-size:.9em}
pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:.8em}code{background:#f3f3f3;padding:0 .2em}"""


def render_html(out_dir, sections: list[Section]) -> str:
    intro, heading, claims = _head(out_dir, sections)
    body = [
        "<h1>asymsense — reproduction report</h1>",
        _md_block_to_html(intro),
        f"<h2>{html.escape(heading)}</h2>",
        _md_block_to_html(THRESHOLD_RULE),
        _md_block_to_html(claims_markdown(claims)),
    ]
    for sec in sections:
        body.append(f"<h2>{html.escape(sec.title)}</h2>")
        body.append(_md_block_to_html(sec.summary))
        if sec.regimes:
            body.append(_md_block_to_html("**Regime:**\n\n" + _regime_lines(sec)))
        if sec.error:
            body.append(f"<p><b>Analysis failed:</b> <code>{html.escape(sec.error)}</code></p>")
        for path, caption in sec.figures:
            body.append(_img(path, caption))
        if sec.claims:
            body.append(_md_block_to_html(claims_markdown(sec.claims)))
        for note in sec.notes:
            body.append(_md_block_to_html(note))
        body.append(f"<details><summary>configuration</summary>{_md_block_to_html(_section_config(out_dir, sec))}</details>")
    body.append(f"<p><i>Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.</i></p>")
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>asymsense reproduction report</title><style>{CSS}</style></head><body>\n' + "\n".join(body) + "\n</body></html>\n"


REPORT_OUTPUTS = ("figures", "report.md", "report.html", "claims.json")
"""What `build_report` writes into the results folder (each replaced whole)."""


def build_report(out_dir, *, console=None) -> tuple[list[Claim], list[Section]]:
    """Analyze every stored experiment and write figures/, report.md,
    report.html and claims.json: staged in a temporary folder inside
    `out_dir` and swapped in when all are written (`atomic.output_entries`),
    so a failed or interrupted report leaves the previous one whole."""
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"{out} is not a folder with stored results")
    if not stored_experiments(out):
        raise InputError(f"{out} holds no stored experiment results (expected {out}/data/<experiment>/{EXPERIMENT_FILE}; run `asymsense reproduce --out {out}`)")
    _mode_line(out)  # a malformed reproduce.json is bad input before any analysis
    with output_entries(out, REPORT_OUTPUTS) as stage:
        sections = analyze_all(out, console=console, figures=stage / "figures")
        claims = [c for s in sections for c in s.claims]
        write_text(stage / "report.md", render_markdown(out, sections))
        write_text(stage / "report.html", render_html(out, sections))
        write_text(stage / "claims.json", claims_json(claims))
    return claims, sections
