"""Atomic file output: every file asymsense writes appears whole or not at all;
output folders proved writable before any work is done."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from asymsense.errors import InputError
from asymsense.serialize import dumps


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path in the folder of `path`; when the block succeeds
    the file gets the usual permissions (0666 less the umask, not mkstemp's
    0600) and is renamed over `path`, so a reader never sees half a file; when
    it fails the temporary file is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path, value, *, sort_keys: bool = False) -> Path:
    """Write `value` as strict JSON (NaN/inf as null) atomically (see `write_text`)."""
    return write_text(path, dumps(value, sort_keys=sort_keys) + "\n")


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


def single_component(name, what: str = "name") -> str:
    """`name` when it is one plain path component (a file or folder name that
    stays inside the folder it is joined to); an InputError naming `what`
    otherwise. Names read from stored files (an experiment's "name") pass
    through here before they become part of a path."""
    if (not isinstance(name, str) or not name or name in (".", "..") or len(name) > 200
            or any(c in name for c in "/\\\0:") or Path(name).is_absolute() or Path(name).name != name):
        raise InputError(f"{what} must be a single plain file name, got {name!r}")
    return name
