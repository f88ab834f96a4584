"""The fenced code blocks of README.md and docs/*.md, and what each needs to run.

A block's info string is its language, then optionally one marker naming what it needs beyond
the .venv of `make test` (numpy, pytest, torch when a wheel was given):

    ```python          runs in make test (make test-readme)
    ```python tl       needs torch, transformer_lens, sae_lens: runs in make test-ecosystem
                       (python_tests/test_eco_readme.py), and in make test-readme when they import
    ```python tdb      needs a transformer-debugger checkout (NODEWRITE_TDB_SRC): runs in
                       make test-tdb (python_tests/test_docs.py), and in make test-readme when set
    ```python ray      needs Ray: runs in make test-readme when ray imports in the venv
    ```c               compiled and run twice: against the build tree and an installed copy
    ```sh              commands: checked (the make targets and variables they name exist, the
                       repository paths they name exist), not executed: they are `make test`
                       itself, or install into $HOME
    ```text            output shown to the reader, not code

Any other language or marker is an error (test_docs.py), so nothing is skipped by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)[ \t]*([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)

LANGUAGES = ("python", "c", "sh", "text")
#: marker -> (modules that must import, where the block runs)
MARKERS = {
    "tl": (("torch", "transformer_lens", "sae_lens"), "make test-ecosystem"),
    "tdb": (("neuron_explainer",), "make test-tdb NODEWRITE_TDB_SRC=..."),
    "ray": (("ray",), "a venv with Ray (make test-readme runs it when ray imports)"),
}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    marker: str  # "" when none
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and docs/*.md, in a fixed order."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        out.append(Block(path, line, m.group(1), m.group(2).strip(), m.group(3)))
    return out


def all_blocks(root: Path = ROOT) -> list[Block]:
    return [b for p in doc_files(root) for b in blocks(p)]


def problems(b: Block) -> list[str]:
    """Why a block cannot be classified (an empty list when it can)."""
    if b.lang not in LANGUAGES:
        return [f"{b.where}: fence language {b.lang!r}: expected one of {', '.join(LANGUAGES)}"]
    if b.marker and (b.lang != "python" or b.marker not in MARKERS):
        return [f"{b.where}: marker {b.marker!r} on a {b.lang} block: python blocks may carry one of "
                f"{', '.join(MARKERS)}"]
    return []
