"""Segments that load on a component: which groups of rows (customers) — or of
columns (products) — score far from the average on it.

A segment is one level of a feature (`completion.features`: a category value,
a token of a token list, a quartile band of a numeric attribute) or, without
features, one tag of the labels file (MovieLens built in: age band, men/women,
occupation). For a component with scores a (the unit singular vector over the
N ids that have features), a segment S of n_S ids has mean score ā_S. If its
n_S ids were drawn at random from the N, ā_S − ā would have standard error
s·√(1/n_S − 1/N) (sampling without replacement; s the sd of a), so

    z_S = (ā_S − ā) / (s·√(1/n_S − 1/N)).

A segment is named when |z_S| ≥ SEGMENT_Z = 3 (about 3 in 1000 by chance for
one segment; a table has tens, so a few spurious names among hundreds of
components and tables are possible, none is likely on one) and it has at
least MIN_SEGMENT ids (and leaves MIN_SEGMENT outside it), the
N_SEGMENTS strongest on each side.
"""

from __future__ import annotations

import numpy as np

from asymsense.errors import InputError

SEGMENT_Z = 3.0
MIN_SEGMENT = 10
N_SEGMENTS = 2
N_BANDS = 4


def _display(name: str) -> str:
    """A feature column's name for people: recbole's 'age:token' → 'age'."""
    return name.split(":")[0].replace("_", " ")


def _number(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.3g}"


def matching_rows(features, ids, parameter: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """`features.rows_for(ids)`, refused when the table shares no id with the data."""
    pos, known = features.rows_for(ids)
    if not known.any():
        raise InputError(f"{parameter} {features.source}: has features for none of the {len(ids):,} ids of the data "
                         f"(its first column must hold the same ids)", parameter)
    return pos, known


def feature_levels(features, ids, parameter: str = "features") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The segments of a `completion.features.Features` table for the model's
    `ids`: name → boolean mask over `ids`, and the mask of ids that have
    features. Numeric attributes are cut at their quartiles (bands named by
    their observed range, e.g. 'age 25–32'); the 'other' level of a category
    is not a segment. Refuses a table that shares no id with the model."""
    pos, known = matching_rows(features, ids, parameter)
    X = features.X[pos]
    levels: dict[str, np.ndarray] = {}
    at = 1  # column 0 of X is the intercept
    for c in features.encoding.columns:
        name = _display(c["name"])
        if c["kind"] == "numeric":
            raw = X[:, at] * c["sd"] + c["mean"]
            edges = np.unique(np.quantile(raw[known], np.linspace(0, 1, N_BANDS + 1)))
            band = np.clip(np.searchsorted(edges, raw, side="right") - 1, 0, len(edges) - 2)
            for b in range(len(edges) - 1):
                inside = known & (band == b)
                if inside.any():
                    levels[f"{name} {_number(raw[inside].min())}–{_number(raw[inside].max())}"] = inside
            at += 1
            continue
        for j, level in enumerate(c["levels"]):
            levels[f"{name} {level}"] = known & (X[:, at + j] > 0.5)
        at += len(c["levels"]) + (c["kind"] == "category")
    return levels, known


def tag_levels(tags: list[list[str]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The segments of label tags (one list per id): tag → mask; every id with a tag is 'known'."""
    known = np.array([bool(t) for t in tags])
    levels: dict[str, np.ndarray] = {}
    for i, id_tags in enumerate(tags):
        for t in set(id_tags):
            levels.setdefault(t, np.zeros(len(tags), bool))[i] = True
    return levels, known


def loading_segments(scores, levels: dict[str, np.ndarray], known) -> dict:
    """The segments whose mean score is ≥ SEGMENT_Z standard errors from the
    average (module docstring): {"positive": [...], "negative": [...]} with
    name, size, mean score and z for each, strongest first, and a one-line
    description (None when no segment stands out)."""
    a = np.asarray(scores, np.float64)
    known = np.asarray(known, bool)
    n = int(known.sum())
    mean, sd = (float(a[known].mean()), float(a[known].std())) if n else (0.0, 0.0)
    found = []
    for name, mask in levels.items():
        k = int(mask.sum())
        if k < MIN_SEGMENT or n - k < MIN_SEGMENT or sd <= 0:
            continue
        z = (float(a[mask].mean()) - mean) / (sd * np.sqrt(1.0 / k - 1.0 / n))
        if abs(z) >= SEGMENT_Z:
            found.append({"segment": name, "size": k, "mean_score": float(a[mask].mean()), "z": float(z)})
    positive = sorted((s for s in found if s["z"] > 0), key=lambda s: -s["z"])[:N_SEGMENTS]
    negative = sorted((s for s in found if s["z"] < 0), key=lambda s: s["z"])[:N_SEGMENTS]
    description = None
    if positive or negative:
        names = lambda side: ", ".join(s["segment"] for s in side) or "no segment"  # noqa: E731
        description = f"{names(positive)} (positive side) against {names(negative)} (negative side)"
    return {"positive": positive, "negative": negative, "description": description, "ids_with_features": n}
