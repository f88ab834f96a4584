"""The README's ```python blocks that use TransformerLens or SAELens, run in a fresh interpreter
(the one running the tests: .venv-eco's under `make test-ecosystem`). make test-readme skips them
where transformer_lens is not importable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import eco_support as E

if E.torch is None or E.sae_lens is None:  # pragma: no cover
    pytest.skip("transformer_lens / sae_lens not importable (run `make test-ecosystem`)", allow_module_level=True)

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = [m for m in re.finditer(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
          if re.search(r"transformer_lens|sae_lens|nodewrite\.tl|nodewrite\.saelens", m.group(1))]


def test_there_are_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block(i):
    m = BLOCKS[i]
    line = README.read_text().count("\n", 0, m.start()) + 1
    p = subprocess.run([sys.executable, "-c", m.group(1)], capture_output=True, text=True, timeout=300,
                       cwd=README.parent)
    assert p.returncode == 0, f"README.md:{line}:\n{p.stdout}\n{p.stderr[-3000:]}"
