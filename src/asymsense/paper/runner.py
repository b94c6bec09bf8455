"""Run the experiments E1–E8 through the sweep engine into one output folder.

Layout of OUT::

    reproduce.json            mode, experiments, seconds per experiment
    data/<exp>/experiment.json  the resolved experiment config and its trial keys
    data/<exp>/<sweep>/        one sweep store (Parquet, see `store`)
    figures/*.png  report.md  report.html  claims.json

Rerunning resumes: the sweep engine skips trials already stored. Analyses use
only the trials whose keys the current config expands to, so a folder that
also holds another mode's trials is read correctly.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

from asymsense import __version__
from asymsense.errors import InputError
from asymsense.validation import check_int
from asymsense.atomic import prepare_out_dir, write_json
from asymsense.paper.context import EXPERIMENT_FILE
from asymsense.paper.registry import EXPERIMENTS, TRIAL_METHODS, experiment_config
from asymsense.sweep.run import expand, load_sweep_config, run_sweep

MANIFEST = "reproduce.json"


def sweep_configs(cfg: dict) -> list[tuple[str, dict]]:
    """(label, sweep-engine config dict) for each sweep of an experiment config."""
    return [(s["label"], {k: v for k, v in s.items() if k != "label"}) for s in cfg["sweeps"]]


def prepare_experiment(name: str, out_dir, mode: str) -> tuple[dict, Path]:
    """Resolve the config, expand its trial keys and write experiment.json."""
    cfg = experiment_config(name, mode)
    root = Path(out_dir) / "data" / name
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output directory {out_dir} cannot be written: {exc.strerror or exc}") from None
    cfg["keys"] = {label: [t.key for t in expand(load_sweep_config(sc), TRIAL_METHODS)] for label, sc in sweep_configs(cfg)}
    write_json(root / EXPERIMENT_FILE, cfg, sort_keys=True)
    return cfg, root


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its children: the reaped
    ones (getrusage) plus the live ones (the reused joblib workers; psutil when
    installed). A difference of two readings is the CPU an experiment cost,
    whatever the machine's load — the number to compare across runs on a
    shared machine, where wall time depends on the other jobs."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    try:
        import psutil

        for child in psutil.Process(os.getpid()).children(recursive=True):
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    except ImportError:
        pass
    return total


def run_experiment(name: str, out_dir, mode: str, *, n_jobs=None, progress: bool = True) -> tuple[float, float]:
    """Run (or resume) every sweep of experiment `name`; returns (wall seconds, CPU seconds)."""
    started, cpu = time.perf_counter(), cpu_seconds()
    cfg, root = prepare_experiment(name, out_dir, mode)
    for label, sc in sweep_configs(cfg):
        run_sweep(sc, root / label, methods=TRIAL_METHODS, n_jobs=n_jobs, progress=progress)
    return time.perf_counter() - started, max(0.0, cpu_seconds() - cpu)


def reproduce(out_dir, mode: str = "quick", *, experiments=None, n_jobs=None, progress: bool = True, console=None) -> dict:
    """Run the chosen experiments (default all) and record their timings in
    reproduce.json: per experiment, the wall seconds (`seconds`) and CPU
    seconds (`cpu_seconds`) of every run in this mode added up, so a resumed
    or repeated run does not replace the time the stored results took by the
    seconds of skipping them; `load` is the 1-minute load average at the start
    and end of each experiment's last run (the wall time means little without it)."""
    names = list(EXPERIMENTS) if not experiments else list(experiments)
    for n in names:
        if n not in EXPERIMENTS:
            raise InputError(f"unknown experiment {n!r}; known: {', '.join(EXPERIMENTS)}")
    if n_jobs is not None:
        n_jobs = check_int("n_jobs", n_jobs, minimum=1)
    out = prepare_out_dir(out_dir)
    manifest_path = out / MANIFEST
    manifest = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            manifest = {}
    same_mode = manifest.get("mode") == mode
    manifest.update({"mode": mode, "experiments": sorted(set(manifest.get("experiments", [])) | set(names)) if same_mode else names})
    seconds = manifest.get("seconds", {}) if same_mode else {}
    cpu = manifest.get("cpu_seconds", {}) if same_mode else {}
    load = manifest.get("load", {}) if same_mode else {}
    for name in names:
        if console is not None:
            console.print(f"[bold]{name}[/bold] — {experiment_config(name, mode)['title']}")
        load_before = os.getloadavg()[0]
        wall, used = run_experiment(name, out, mode, n_jobs=n_jobs, progress=progress)
        seconds[name] = round(seconds.get(name, 0.0) + wall, 2)
        cpu[name] = round(cpu.get(name, 0.0) + used, 2)
        load[name] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        manifest.update({"seconds": seconds, "cpu_seconds": cpu, "load": load})
        write_json(manifest_path, manifest, sort_keys=True)
    manifest["asymsense_version"] = __version__
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(manifest_path, manifest, sort_keys=True)
    return manifest
