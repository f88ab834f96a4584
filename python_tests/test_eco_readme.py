"""The ```python tl and ```python ray blocks of README.md and docs/*.md (TransformerLens, SAELens,
Ray; .venv-eco has all three), each in a fresh
interpreter (the one running the tests: .venv-eco's under `make test-ecosystem`). make
test-readme runs them too where transformer_lens and sae_lens import, and otherwise names this
suite (python_tests/doc_blocks.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import doc_blocks as D
import eco_support as E

if E.torch is None or E.sae_lens is None:  # pragma: no cover
    pytest.skip("transformer_lens / sae_lens not importable (run `make test-ecosystem`)", allow_module_level=True)

BLOCKS = [b for b in D.all_blocks() if b.lang == "python" and b.marker in ("tl", "ray")]


def test_there_are_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_doc_block(block):
    p = subprocess.run([sys.executable, "-c", block.code], capture_output=True, text=True, timeout=300,
                       cwd=D.ROOT)
    assert p.returncode == 0, f"{block.where}:\n{p.stdout}\n{p.stderr[-3000:]}"
