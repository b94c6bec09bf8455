"""Output folders and atomic JSON files for the command-line jobs (demo, solve)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from asymsense.atomic import write_text
from asymsense.errors import InputError


def prepare_out_dir(path) -> Path:
    """Create `path` (with parents) and prove it writable with a probe file,
    before any work is done; InputError naming the folder otherwise."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"output directory {out} cannot be written: {exc.strerror or exc}") from None
    return out


def quiet_overflow():
    """numpy.errstate silencing overflow/invalid/divide warnings: a diverging
    run is reported once, as a DivergenceError (exit 3, or a failed sweep
    trial), not as a burst of RuntimeWarnings on stderr."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def plain(value):
    """A strict-JSON value: numpy scalars and arrays unwrapped, NaN/inf → None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value, *, sort_keys: bool = False) -> str:
    return json.dumps(plain(value), indent=2, allow_nan=False, sort_keys=sort_keys)


def write_json(path, value, *, sort_keys: bool = False) -> Path:
    """Write `value` as strict JSON atomically (see `write_text`)."""
    return write_text(path, dumps(value, sort_keys=sort_keys) + "\n")


