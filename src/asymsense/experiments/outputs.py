"""Output folders and atomic JSON files for the command-line jobs (demo, solve)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def write_text(path, text: str) -> Path:
    """Write `text` (UTF-8) atomically: a temporary file in the same folder,
    then a rename, so a reader never sees half a file; the temporary file is
    removed if anything fails."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
