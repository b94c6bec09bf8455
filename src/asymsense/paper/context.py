"""What an experiment's analysis receives and returns."""

from __future__ import annotations

import json

import numpy as np
from dataclasses import dataclass, field
from pathlib import Path

from asymsense.atomic import single_component
from asymsense.errors import InputError
from asymsense.paper import data
from asymsense.paper.claims import Claim

EXPERIMENT_FILE = "experiment.json"


@dataclass
class Context:
    """The stored state of one experiment: its folder (data/<name>/ with one
    sweep store per sweep and experiment.json, the resolved config it ran
    with) and the folder for figures."""

    root: Path
    figures: Path
    config: dict

    @classmethod
    def load(cls, out_dir, name: str, figures=None) -> "Context":
        """The stored experiment `name` of `out_dir`; its figures go to
        `figures` (default out_dir/figures; `report` passes a staging folder
        that replaces it when the whole report is written)."""
        root = Path(out_dir) / "data" / name
        path = root / EXPERIMENT_FILE
        if not path.is_file():
            raise InputError(f"{path} not found: experiment {name} has no stored results (run `asymsense reproduce` first)")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"{path}: cannot read the stored experiment config ({exc})") from None
        if not isinstance(config, dict) or config.get("name") != name or not isinstance(config.get("keys", {}), dict) \
                or not isinstance(config.get("sweeps", []), list) or not isinstance(config.get("analysis", {}), dict):
            stored = config.get("name") if isinstance(config, dict) else None
            raise InputError(f"{path}: not the stored config of experiment {name} (expected an object with \"name\": {name!r}, "
                             f"got {type(config).__name__}{f' named {stored!r}' if stored is not None else ''}); "
                             f"rerun `asymsense reproduce -e {name} --out {out_dir}`")
        single_component(name, f"{path}: name")
        figures = Path(figures) if figures is not None else Path(out_dir) / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        return cls(root, figures, config)

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def analysis(self) -> dict:
        return self.config.get("analysis", {})

    def sweep_dir(self, label: str) -> Path:
        return self.root / single_component(label, f"{self.root / 'experiment.json'}: sweep label")

    def section(self) -> "Section":
        """An empty report section titled and summarized from the experiment's config."""
        return Section(self.name, self.config["title"], self.config["summary"])

    def trials(self, label: str) -> data.Columns:
        """The stored ok trials of sweep `label` that belong to this config
        (keys recorded in experiment.json)."""
        cols = data.trials(self.sweep_dir(label))
        keys = self.config.get("keys", {}).get(label)
        if keys is not None and len(cols):
            cols = cols.where(np.isin(cols.col("key"), np.asarray(keys, dtype=object)))
        if not len(cols):
            raise InputError(f"no stored ok trial of sweep {label!r} of {self.name} in {self.sweep_dir(label)} ({self.expected(label)} expected; "
                             f"asymsense reproduce -e {self.name} --out {self.root.parent.parent} computes the missing ones)")
        return cols

    def expected(self, label: str) -> int:
        return len(self.config.get("keys", {}).get(label, []))

    def failures(self, label: str) -> data.Columns:
        cols = data.failures(self.sweep_dir(label))
        keys = self.config.get("keys", {}).get(label)
        if keys is not None and len(cols):
            cols = cols.where(np.isin(cols.col("key"), np.asarray(keys, dtype=object)))
        return cols

    def histories(self, label: str, keys=None) -> dict:
        return data.histories(self.sweep_dir(label), keys)

    def figure_path(self, stem: str) -> Path:
        return self.figures / single_component(f"{self.name}_{stem}.png", "figure name")


@dataclass
class Section:
    """An experiment's part of the report."""

    name: str
    title: str
    summary: str
    figures: list[tuple[Path, str]] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    regimes: list = field(default_factory=list)  # asymsense.paper.regime.Regime, one per group of trials
