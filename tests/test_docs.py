"""Every shell command and Python block of README.md and docs/*.md runs here
(Sybil parses the Markdown; issue 9: documentation that cannot drift).

- ```python blocks run in one namespace per document, in order;
- ```bash blocks run line by line (`\\` continues a line, `#` starts a
  comment) with bash; each command must exit 0;
- ```console blocks are transcripts: each `$ command` runs, and what it
  prints (stdout and stderr) must equal the lines below it, and an
  `echo $?` line checks the exit code;
- `<!-- skip: next "reason" -->` skips the next block (installing packages,
  a GPU, a remote Dask cluster); `<!-- skip: next if(not CUDA, reason=...) -->`
  skips it only where there is no CUDA device.

Each document runs in its own temporary folder (with a copy of `examples/`),
so following the docs never writes into the clone. With
ASYMSENSE_DOCS_QUICK=1 (the default here; 0 runs everything as written) the
long commands run reduced, by the flags in QUICK appended to the command
(docs/cli.md says so where it matters).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

import pytest

sybil = pytest.importorskip("sybil")
from sybil import Sybil  # noqa: E402
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
QUICK_ENV = os.environ.get("ASYMSENSE_DOCS_QUICK", "1") not in ("0", "", "false", "no")
QUICK = [
    # (pattern, replacement) applied to a command under ASYMSENSE_DOCS_QUICK=1: the same code paths at smaller budgets
    (r"^(asymsense demo\b.*)$", r"\1 --max-iter 60"),
    (r"^(asymsense reproduce\b.*--quick\b.*?)(\s+-e\s+\w+)*$", r"\1 -e e8"),
    # without --compare: the baselines' tuning grids take minutes; k = 10 factors make the report's figures cheap
    (r"^(asymsense complete movielens-100k\b.*)$", lambda m: re.sub(r"\s+--compare\b", "", m.group(1)) + " --max-iter 50 --width 10"),
]


PENDING: dict[str, str] = {}
"""Documents not run yet, with the reason (none: docs/completion.md writes its own example files in its first block)."""


@functools.lru_cache(maxsize=None)
def _has_cuda() -> bool:
    """Whether a CUDA device is there, asked once per session. Without an
    NVIDIA driver (no /proc/driver/nvidia, no nvidia-smi) there is none, and
    torch, which takes seconds of CPU to import, is not imported."""
    if not Path("/proc/driver/nvidia").exists() and shutil.which("nvidia-smi") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _commands(source: str) -> list[str]:
    """The command lines of a bash block: continuation lines joined, blank and comment-only lines dropped (bash drops the rest of a comment)."""
    joined = re.sub(r"\\\n\s*", " ", source)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def _quick(command: str) -> str:
    if not QUICK_ENV:
        return command
    body, comment = re.match(r"^(.*?)(\s+#.*)?$", command).groups()
    for pattern, replacement in QUICK:
        if re.search(pattern, body):
            return re.sub(pattern, replacement, body) + (comment or "")
    return command


def _env() -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", COLUMNS="100", ASYMSENSE_DOCS_QUICK="1" if QUICK_ENV else "0")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _run(command: str, cwd: Path, merged: bool = False) -> subprocess.CompletedProcess:
    """bash -c command in cwd; with `merged`, stderr goes into stdout in the order printed."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT if merged else subprocess.PIPE, text=True, timeout=600)


def evaluate_bash(example) -> str | None:
    cwd = example.namespace["DOCS_CWD"]
    for command in _commands(example.parsed):
        result = _run(_quick(command), cwd)
        if result.returncode != 0:
            return f"`{command}` exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return None


def _normalize(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def evaluate_console(example) -> str | None:
    """`$ command` lines run; their output must be the lines that follow."""
    cwd = example.namespace["DOCS_CWD"]
    blocks: list[tuple[str, list[str]]] = []
    for line in example.parsed.splitlines():
        if line.startswith("$ "):
            blocks.append((line[2:], []))
        elif blocks:
            blocks[-1][1].append(line)
    for command, expected in blocks:
        command = command.split("  #")[0].strip()
        result = _run(command, cwd, merged=True)
        got = _normalize(result.stdout)
        if got != _normalize("\n".join(expected)):
            return f"`{command}` printed:\n" + "\n".join(got) + "\nthe document shows:\n" + "\n".join(expected)
    return None


def setup(namespace):
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="asymsense-docs-"))
    shutil.copytree(ROOT / "examples", folder / "examples")
    namespace["DOCS_CWD"] = folder
    namespace["CUDA"] = _has_cuda()
    namespace["_old_cwd"] = os.getcwd()
    os.chdir(folder)


def teardown(namespace):
    os.chdir(namespace["_old_cwd"])
    shutil.rmtree(namespace["DOCS_CWD"], ignore_errors=True)


DOCS = Sybil(
    parsers=[PythonCodeBlockParser(), CodeBlockParser("bash", evaluate_bash), CodeBlockParser("console", evaluate_console), SkipParser()],
    setup=setup,
    teardown=teardown,
)


@pytest.mark.slow
@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_blocks_run(name):
    """Every block of one document, in order, in one namespace (a later block
    may use what an earlier one defined, as a reader would)."""
    from sybil.example import NotEvaluated

    if name in PENDING:
        pytest.skip(PENDING[name])
    document = DOCS.parse(ROOT / name)
    DOCS.setup(document.namespace)
    failures, skipped, set_up = [], [], set()
    cwd = document.namespace["DOCS_CWD"]
    try:
        for example in document:
            before = set(cwd.iterdir())
            try:
                if document.text.startswith("<!-- invisible-code-block", example.start):
                    example.evaluate()  # the test's own inputs (a reader writes these files by hand)
                    set_up |= set(cwd.iterdir()) - before
                    continue
                example.evaluate()
            except NotEvaluated:
                pass
            except unittest.SkipTest as exc:
                skipped.append(f"line {example.line}: {exc}")
            except Exception as exc:  # SybilFailure and errors raised by a Python block
                failures.append(f"{name} line {example.line}: {exc}")
        left = sorted(p for p in set(cwd.iterdir()) - set_up if p.name != "examples")
        failures += [f"{name}: following it leaves {p.name}{'/' if p.is_dir() else ''} in the clone, which git would track "
                     "(write under runs/, results/ or asymsense-demo/)" for p in tracked_by_git(left)]
    finally:
        DOCS.teardown(document.namespace)
    assert not failures, "\n\n".join(failures)


def tracked_by_git(paths: list[Path]) -> list[Path]:
    """The paths (top-level entries of a document's folder, as they would lie in
    the clone's root) that the clone's .gitignore does not ignore."""
    if not paths:
        return []
    names = [p.name + ("/" if p.is_dir() else "") for p in paths]
    result = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT, input="\n".join(names) + "\n",
                            capture_output=True, text=True)
    if result.returncode not in (0, 1):
        pytest.skip(f"git check-ignore unavailable: {result.stderr.strip()}")
    ignored = set(result.stdout.split())
    return [p for p, n in zip(paths, names) if n not in ignored]


def test_following_the_docs_check_would_catch_a_tracked_file(tmp_path):
    """The clean-clone check can fail: a file outside the ignored folders is reported, one under runs/ is not."""
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "runs").mkdir()
    (tmp_path / "asymsense-demo").mkdir()
    assert [p.name for p in tracked_by_git(sorted(tmp_path.iterdir()))] == ["notes.txt"]


def test_every_shell_and_python_block_is_run_or_skipped_with_a_reason():
    """No block escapes the suite unnoticed: each fenced block is python,
    bash or console (run), or a kind that is data, not a command."""
    data_kinds = {"toml", "sql", "text", ""}
    for name in DOCUMENTS:
        text = re.sub(r"<!-- generated:[\w.-]+ -->.*?<!-- /generated -->", "", (ROOT / name).read_text(), flags=re.S)  # checked by docs/build.py
        for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
            kind, body = match.group(1), match.group(2)
            line = text[: match.start()].count("\n") + 1
            assert kind in {"python", "bash", "console"} | data_kinds, f"{name} line {line}: block of kind {kind!r}"
            if kind in ("", "text"):
                assert not re.search(r"^\$ |^asymsense |^python3? ", body, re.M), f"{name} line {line}: a command in an untested block; mark it bash or console"
