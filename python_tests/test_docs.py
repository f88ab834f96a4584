"""The documentation stays true: docs/python-api.md is what tools/gen_python_api.py writes from
the installed package's docstrings; every fenced block of README.md and docs/*.md is of a kind
that some suite runs (doc_blocks.py); blocks marked `tdb` run here when TDB imports (make
test-tdb); the README stays a Getting Started page (at most 400 lines); no tracked doc or
makefile names a path of one machine. make test-readme runs the python and C blocks."""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doc_blocks as D  # noqa: E402

ROOT = D.ROOT
API = ROOT / "docs" / "python-api.md"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_python_api", ROOT / "tools" / "gen_python_api.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_python_api_reference_is_generated_from_the_docstrings():
    # a fresh interpreter: the page shows values as they are at import (nodewrite.tdb.stats counts up)
    want = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_python_api.py")], capture_output=True,
                          text=True, check=True, timeout=300, cwd=ROOT).stdout
    have = API.read_text() if API.exists() else ""
    if have != want:
        diff = "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                            "docs/python-api.md (committed)", "generated", n=1))
        pytest.fail("docs/python-api.md is not what tools/gen_python_api.py writes from the installed "
                    "package; run `make docs` and commit it:\n" + diff[:6000])


def test_python_api_reference_covers_every_public_name():
    import nodewrite

    text = API.read_text()
    missing = []
    for mod_name in _generator().MODULES:
        mod = importlib.import_module(mod_name)
        for name in getattr(mod, "__all__", []):
            if name.startswith("__"):
                continue
            obj = getattr(mod, name)
            reexported = getattr(nodewrite, name, None) is obj
            if f"`{mod_name}.{name}" not in text and not (reexported and f"`nodewrite.{name}" in text):
                missing.append(f"{mod_name}.{name}")
    assert not missing, f"public (in __all__) but not in docs/python-api.md: {missing}"
    assert nodewrite.__version__ in text


def test_every_block_is_of_a_kind_a_suite_runs():
    found = D.all_blocks()
    assert found, "no code blocks found in README.md and docs/*.md"
    bad = [p for b in found for p in D.problems(b)]
    assert not bad, "\n".join(bad)
    langs = {b.lang for b in found}
    assert {"python", "c"} <= langs


def test_unclosed_fences_are_caught():
    # a stray ``` would swallow the rest of a page into one block nobody runs
    for path in D.doc_files():
        n = sum(1 for line in path.read_text().splitlines() if line.startswith("```"))
        assert n % 2 == 0, f"{path.relative_to(ROOT)}: {n} fence lines (an unclosed ``` block)"


def test_readme_is_a_getting_started_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 400, "README.md is over 400 lines: move reference material to docs/"
    for needed in ("make test", "make demo"):
        assert needed in text
    for page in re.findall(r"\]\((docs/[^)#]+|CHANGELOG\.md)[)#]", text):
        assert (ROOT / page).exists(), f"README.md links to {page}, which does not exist"


def test_doc_links_resolve():
    for path in D.doc_files():
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
            if target.startswith(("http", "mailto")):
                continue
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)} links to {target}, missing"


MACHINE_PATH = re.compile(r"(?<![\w.])/(work|opt|home|root|Users|mnt)/[\w.-]+")


def test_no_path_of_one_machine_in_docs_or_makefiles():
    files = [*D.doc_files(), ROOT / "CHANGELOG.md", ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
    hits = []
    for f in files:
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if MACHINE_PATH.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "a path of one machine (make it a documented variable):\n" + "\n".join(hits)


TDB_BLOCKS = [b for b in D.all_blocks() if b.lang == "python" and b.marker == "tdb"]


def _tdb_env() -> dict:
    env = dict(os.environ)
    src = os.environ.get("NODEWRITE_TDB_SRC", "").strip()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


def _tdb_importable() -> bool:
    p = subprocess.run([sys.executable, "-c", "import neuron_explainer"], capture_output=True,
                       env=_tdb_env(), timeout=300)
    return p.returncode == 0


@pytest.mark.skipif(not TDB_BLOCKS or not _tdb_importable(),
                    reason="needs a TDB checkout (make test-tdb NODEWRITE_TDB_SRC=...)")
@pytest.mark.parametrize("block", TDB_BLOCKS, ids=[b.where for b in TDB_BLOCKS])
def test_tdb_block(block):
    p = subprocess.run([sys.executable, "-c", block.code], capture_output=True, text=True, timeout=300,
                       cwd=ROOT, env=_tdb_env())
    assert p.returncode == 0, f"{block.where}:\n{p.stdout}\n{p.stderr[-3000:]}"


def test_there_are_tdb_blocks():
    assert TDB_BLOCKS, "the docs show the TDB drop-in: at least one ```python tdb block"
