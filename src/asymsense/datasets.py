"""Real data sets, read from files installed by other packages (nothing is downloaded).

MovieLens-100k (943 users × 1682 items, 100,000 ratings 1–5; Harper & Konstan
2015) ships inside the `recbole` wheel as `dataset_example/ml-100k/ml-100k.inter`.
Install it with `pip install --no-deps recbole==1.2.1` (its own dependencies
are heavy and not needed: recbole is never imported, the file is located with
`importlib.util.find_spec`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np

from asymsense.errors import InputError

MOVIELENS_100K_HINT = "install it with: pip install --no-deps recbole==1.2.1"
MOVIELENS_NAMES = ("movielens-100k", "ml-100k")


class Triples(NamedTuple):
    """(row id, column id, value) triples as parallel arrays."""

    row_ids: np.ndarray
    col_ids: np.ndarray
    values: np.ndarray


def movielens_100k_path() -> Path:
    """The ml-100k.inter file inside the installed recbole package."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"MovieLens-100k is not available: the recbole package is not installed; {MOVIELENS_100K_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "dataset_example" / "ml-100k" / "ml-100k.inter"
        if path.is_file():
            return path
    raise InputError(f"MovieLens-100k is not available: recbole is installed but has no dataset_example/ml-100k/ml-100k.inter; {MOVIELENS_100K_HINT}")


def movielens_100k() -> Triples:
    """MovieLens-100k ratings: user ids, item ids (ints) and ratings (floats 1–5)."""
    path = movielens_100k_path()
    try:
        data = np.loadtxt(path, skiprows=1, usecols=(0, 1, 2), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read MovieLens-100k ({exc})") from None
    return Triples(data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2])


def split_indices(m: int, fractions=(0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A fixed seeded random split of m entries into parts with the given fractions
    (the benchmark's MovieLens split is split_indices(100_000, (0.8, 0.1, 0.1), seed=0))."""
    if abs(sum(fractions) - 1) > 1e-9 or any(f <= 0 for f in fractions):
        raise InputError(f"fractions must be positive and sum to 1, got {fractions}")
    perm = np.random.default_rng(seed).permutation(m)
    bounds = np.round(np.cumsum(fractions)[:-1] * m).astype(int)
    return tuple(np.sort(part) for part in np.split(perm, bounds))


def _movielens_side_file(suffix: str, what: str, parse) -> dict[int, dict]:
    """id → {"label", "tags"} from the recbole wheel's ml-100k.<suffix> (tab-separated,
    one header line); `parse(parts)` gives (id, record) or None for a line to skip."""
    path = movielens_100k_path().with_suffix(suffix)
    records = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            next(fh)
            for line in fh:
                parsed = parse(line.rstrip("\n").split("\t"))
                if parsed is not None:
                    records[parsed[0]] = parsed[1]
    except OSError as exc:
        raise InputError(f"{path}: cannot read MovieLens-100k {what} ({exc})") from None
    return records


def _item_record(parts):
    if len(parts) < 2 or not parts[0].strip().isdigit():
        return None
    title, year = parts[1].strip(), parts[2].strip() if len(parts) > 2 else ""
    return int(parts[0]), {"label": f"{title} ({year})" if year else title,
                           "tags": parts[3].split() if len(parts) > 3 and parts[3].strip() else []}


def _user_record(parts):
    if len(parts) < 4 or not parts[0].strip().isdigit() or not parts[1].strip().isdigit():
        return None
    age = int(parts[1])
    band = "under 25" if age < 25 else ("25-34" if age < 35 else ("35-49" if age < 50 else "50+"))
    return int(parts[0]), {"label": f"user {parts[0]} ({age}, {parts[2]}, {parts[3]})",
                           "tags": [f"age {band}", {"M": "men", "F": "women"}.get(parts[2], parts[2]), parts[3]]}


def movielens_100k_items() -> dict[int, dict]:
    """MovieLens-100k item labels from the recbole wheel's ml-100k.item:
    item id → {"label": "Title (year)", "tags": [genres]} (for reports; ratings
    do not need it)."""
    return _movielens_side_file(".item", "item titles", _item_record)


def movielens_100k_users() -> dict[int, dict]:
    """MovieLens-100k user labels from the recbole wheel's ml-100k.user:
    user id → {"label": "user 1 (24, M, technician)", "tags": [age band, men/women, occupation]}."""
    return _movielens_side_file(".user", "user attributes", _user_record)
