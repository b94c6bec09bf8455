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


def check_out_path(path, name: str = "out") -> Path:
    """`path` as a Path, unless it is empty or the current directory: None,
    "", blanks and "." are refused (InputError naming `name`), because typer
    reads `--out ''` as Path('.') and a command would scatter its outputs in
    the current directory. Every command's --out passes here first."""
    if path is None or str(path).strip() in ("", ".") or Path(str(path).strip()) == Path("."):
        raise InputError(f"{name} must name a folder or file, not the current directory or an empty path (got {str(path)!r})", name.lstrip("-").replace("-", "_"))
    return Path(path)


def prepare_out_dir(path, name: str = "out") -> Path:
    """Create `path` (with parents) and prove it writable with a probe file of
    a unique name (two processes probing one folder never remove each other's
    probe), before any work is done; InputError naming the folder otherwise."""
    out = check_out_path(path, name)
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


def check_new_out_dir(path, *, overwrite: bool = False, flag: str = "--out") -> Path:
    """Prove that `path` can receive a command's outputs, creating nothing: an
    empty path is refused; an existing `path` must be a writable folder that is
    empty (another run's outputs are never mixed with new ones) unless
    `overwrite`; a missing one needs a writable existing parent folder."""
    out = check_out_path(path, flag)
    if out.exists():
        if not out.is_dir():
            raise InputError(f"output directory {out} cannot be written: Not a directory")
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"output directory {out} cannot be written: Permission denied")
        if not overwrite and any(not p.name.startswith(".") for p in out.iterdir()):
            replace = "--overwrite" if flag.startswith("--") else "overwrite=True"
            raise InputError(f"output directory {out} holds another run's outputs; choose another {flag} or give {replace} to replace them")
        return out
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output directory {out} cannot be written: {'Not a directory' if parent is not None and not parent.is_dir() else 'Permission denied'}")
    return out


def _swap_in(new: Path, target: Path) -> None:
    """Put `new` (a file or folder) at `target`: an existing `target` is moved
    aside first and removed after, so `target` is always the old or the new
    one, never a mix."""
    import shutil

    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / target.name)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def output_dir(path):
    """Yield a fresh temporary folder beside `path` to write a command's
    outputs into; when the block succeeds the folder replaces `path` (an
    existing `path` is moved aside first and removed after, so a reader sees
    the old complete outputs or the new ones, never a mix); when it fails or is
    interrupted the temporary folder is removed and `path` is left as it was."""
    import shutil

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def output_entries(folder, names):
    """`output_dir` for outputs that share a folder with other data (the
    report's figures/, report.md, ... beside the stored results): yield a
    temporary folder inside `folder`; when the block succeeds each of `names`
    written there replaces its namesake in `folder` (a folder swapped whole);
    when it fails or is interrupted nothing in `folder` has changed."""
    import shutil

    folder = Path(folder)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".outputs.tmp-"))
    try:
        yield tmp
        for name in names:
            if (tmp / name).exists():
                if (tmp / name).is_dir():
                    os.chmod(tmp / name, 0o777 & ~_umask())
                _swap_in(tmp / name, folder / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
