"""The experiment list E1–E14 and their shipped configs.

Each experiment has one TOML file in `asymsense/configs/` (package data)::

    title = "..."            # heading in the report
    summary = "..."          # one paragraph: what is run and why
    [analysis]               # parameters of the analysis (tolerances, budgets)
    [analysis.quick] / [analysis.full]      # overrides per mode
    [[sweep]]                # one or more sweeps (sweep-engine configs)
    name = "fgd"  method = "fgd"  seeds = 3
    [sweep.fixed] / [sweep.grid]
    [sweep.quick] / [sweep.full]            # overrides: seeds, fixed.*, grid.*

`experiment_config(name, mode)` merges the mode's overrides (tables merge key
by key, anything else replaces) and drops the other mode's tables.

A sweep's `method` is a plain name: "fgd", a baseline, or one of the paper's
own trial methods in `TRIAL_METHODS`, which the runner hands to the sweep
engine (a config never names code to import).
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import Callable

from asymsense.errors import InputError
from asymsense.paper import (e1_convergence, e2_alpha, e3_balancing, e4_phases, e5_iterations, e6_samples, e7_noise,
                             e8_lifted, e9_exponent, e10_noise_scaling, e11_kappa, e12_rank_scaling, e13_step_rule,
                             e14_train_test)

MODES = ("quick", "full")


@dataclass(frozen=True)
class Experiment:
    name: str
    config_file: str
    module: ModuleType

    def analyze(self, ctx):
        """Figures and claims from stored results (module.analyze(ctx))."""
        return self.module.analyze(ctx)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment("e1", "e1_convergence.toml", e1_convergence),
        Experiment("e2", "e2_alpha.toml", e2_alpha),
        Experiment("e3", "e3_balancing.toml", e3_balancing),
        Experiment("e4", "e4_phases.toml", e4_phases),
        Experiment("e5", "e5_iterations.toml", e5_iterations),
        Experiment("e6", "e6_samples.toml", e6_samples),
        Experiment("e7", "e7_noise.toml", e7_noise),
        Experiment("e8", "e8_lifted.toml", e8_lifted),
        Experiment("e9", "e9_exponent.toml", e9_exponent),
        Experiment("e10", "e10_noise_scaling.toml", e10_noise_scaling),
        Experiment("e11", "e11_kappa.toml", e11_kappa),
        Experiment("e12", "e12_rank_scaling.toml", e12_rank_scaling),
        Experiment("e13", "e13_step_rule.toml", e13_step_rule),
        Experiment("e14", "e14_train_test.toml", e14_train_test),
    ]
}

TRIAL_METHODS: dict[str, Callable] = {
    "e3-compare": e3_balancing.compare_trial,
    "e7-noise": e7_noise.noise_trial,
    "e8-lifted": e8_lifted.lifted_trial,
    "e10-noise": e10_noise_scaling.noise_scaling_trial,
    "e13-invariance": e13_step_rule.invariance_trial,
    "e13-stability": e13_step_rule.stability_trial,
    "e14-noise": e14_train_test.noise_fit_trial,
}
"""The paper's own trial methods by the names its sweep configs use; passed to
the sweep engine as `methods=` (module-level functions, so the workers get
them by reference)."""


def merge(base: dict, override: dict) -> dict:
    """Deep merge: tables merge key by key, other values replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _apply_mode(table: dict, mode: str) -> dict:
    base = {k: v for k, v in table.items() if k not in MODES}
    return merge(base, table.get(mode, {}))


def read_config_text(name: str) -> tuple[str, str]:
    """(file name, TOML text) of experiment `name`'s shipped config."""
    if name not in EXPERIMENTS:
        raise InputError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    fname = EXPERIMENTS[name].config_file
    return fname, resources.files("asymsense").joinpath("configs", fname).read_text(encoding="utf-8")


def experiment_config(name: str, mode: str) -> dict:
    """The resolved config of experiment `name` in `mode`: title, summary,
    analysis (dict) and sweeps (list of sweep-engine config dicts, each
    named "<experiment>-<sweep>" with a `label` for its store folder)."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    fname, text = read_config_text(name)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config {fname}: {exc}") from None
    sweeps = []
    for i, sweep in enumerate(raw.get("sweep", [])):
        sweep = _apply_mode(sweep, mode)
        label = sweep.pop("name", f"sweep{i}")
        sweep["name"] = f"{name}-{label}"
        sweep["label"] = label
        sweeps.append(sweep)
    return {
        "name": name,
        "mode": mode,
        "title": raw.get("title", name),
        "summary": raw.get("summary", ""),
        "analysis": _apply_mode(raw.get("analysis", {}), mode),
        "sweeps": sweeps,
    }
