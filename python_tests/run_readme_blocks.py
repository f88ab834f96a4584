"""Runs every code block of README.md and docs/*.md (make test-readme, part of make test).

python blocks: each runs in a fresh process of the given interpreter (the .venv's), from the
repository root. A block marked `tl`, `tdb` or `ray` (see doc_blocks.py) runs here when what it
needs imports in that interpreter (for `tdb`: NODEWRITE_TDB_SRC is put on PYTHONPATH); otherwise
one line names the suite that runs it. c blocks: each is compiled and run twice, the two ways
the README's C quick start says: against the build tree (-Iinclude -L.build/release -lnodewrite
with an rpath) and against `make install PREFIX=<dir>` through pkg-config. sh blocks: the make
targets and variables they name must exist, and so must the repository paths they name. text
blocks are output. Anything else fails.

usage: run_readme_blocks.py PYTHON PREFIX [FILE.md ...]   (default: README.md docs/*.md)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doc_blocks as D  # noqa: E402


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, timeout=300, **kw)


def python_env(marker: str) -> dict:
    env = dict(os.environ)
    tdb = os.environ.get("NODEWRITE_TDB_SRC", "").strip()
    if marker == "tdb" and tdb:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (tdb, env.get("PYTHONPATH", "")) if p)
    return env


_can: dict[str, bool] = {}


def can_run(python: str, marker: str) -> bool:
    if not marker:
        return True
    if marker not in _can:
        mods = D.MARKERS[marker][0]
        p = subprocess.run([python, "-c", "import " + ", ".join(mods)], capture_output=True,
                           env=python_env(marker), timeout=300)
        _can[marker] = p.returncode == 0
    return _can[marker]


def make_database() -> tuple[set[str], str]:
    """The targets make knows (from its database) and the text of the makefiles."""
    p = subprocess.run(["make", "-pRrq", "-f", "Makefile", ":"], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, MAKEFLAGS=""))
    targets = set()
    for line in p.stdout.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+):(?!=)", line)
        if m:
            targets.add(m.group(1))
    text = "\n".join(Path(f).read_text() for f in ["Makefile", *sorted(map(str, Path("mk").glob("*.mk")))])
    return targets, text


def check_sh(b: D.Block, targets: set[str], maketext: str) -> None:
    """The make targets and variables an sh block names exist, and the repository paths too."""
    for raw in b.code.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = shlex.split(line.replace("$(", "").replace(")", ""), posix=True)
        if words and words[0] == "make":
            for w in words[1:]:
                if "=" in w:
                    var = w.split("=", 1)[0]
                    if not re.search(rf"(^|[^A-Za-z0-9_]){re.escape(var)}([^A-Za-z0-9_]|$)", maketext):
                        raise SystemExit(f"{b.where}: make variable {var} is used by no makefile")
                elif not w.startswith("-") and w not in targets:
                    raise SystemExit(f"{b.where}: make target {w!r} does not exist")
        for w in words:
            if w.startswith("./") or re.match(r"^(include|bindings|python_tests|tools|examples|docs|Tests)/", w):
                path = w.rstrip("/")
                if not any(Path().glob(path)):
                    raise SystemExit(f"{b.where}: {w} does not exist in the repository")


def main() -> int:
    python, prefix = sys.argv[1], os.path.abspath(sys.argv[2])
    files = [Path(f).resolve() for f in sys.argv[3:]] or D.doc_files()
    targets, maketext = make_database()
    counts = {"python": 0, "c": 0, "sh": 0, "text": 0}
    skipped: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            for b in D.blocks(path):
                try:
                    run_block(b, python, prefix, tmp, targets, maketext, skipped)
                except (SystemExit, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                    msg = e.code if isinstance(e, SystemExit) else f"{b.where}: {e}"
                    print(f"FAILED {msg}", flush=True)
                    failed.append(str(msg))
                    continue
                if not (b.lang == "python" and b.marker and not can_run(python, b.marker)):
                    counts[b.lang] += 1
    print(f"doc blocks: {counts['python']} python and {counts['c']} C blocks ran, {counts['sh']} sh blocks "
          f"checked, in {len(files)} files; {len(skipped)} python blocks need what this venv lacks "
          f"(listed above with the suite that runs them)")
    if failed:
        print(f"{len(failed)} blocks FAILED:\n  " + "\n  ".join(failed))
    if not (counts["python"] and counts["c"]):
        failed.append("no python or no C block ran")
    # make test's table counts this line (the skipped blocks are the "test-readme: skipped:" lines)
    print(f"{sum(counts.values()) - counts['text']} passed, {len(failed)} failed")
    return 1 if failed else 0


def run_block(b: D.Block, python: str, prefix: str, tmp: str, targets: set[str], maketext: str,
              skipped: list[str]) -> None:
    bad = D.problems(b)
    if bad:
        raise SystemExit("\n".join(bad))
    if b.lang == "python":
        if not can_run(python, b.marker):
            mods, where = D.MARKERS[b.marker]
            line = (f"test-readme: skipped: {b.where}, a python {b.marker} block: needs {', '.join(mods)}; "
                    f"runs in {where}")
            print(line, flush=True)
            skipped.append(line)
            return
        print(f"{b.where}: python block{' (' + b.marker + ')' if b.marker else ''}", flush=True)
        p = subprocess.run([python, "-c", b.code], capture_output=True, text=True, timeout=300,
                           env=python_env(b.marker))
        sys.stdout.write(p.stdout)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            raise SystemExit(f"{b.where}: the python block failed")
    elif b.lang == "c":
        print(f"{b.where}: C block", flush=True)
        name = f"{b.path.stem}{b.line}"
        src = os.path.join(tmp, name + ".c")
        with open(src, "w") as f:
            f.write(b.code)
        exe = os.path.join(tmp, name)
        cc = os.environ.get("CC", "cc")
        # 1. the build tree, as the README's C quick start shows
        run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", src,
             "-L.build/release", "-lnodewrite", f"-Wl,-rpath,{os.getcwd()}/.build/release",
             "-o", exe])
        run([exe], env={"PATH": os.environ.get("PATH", "")}, cwd=os.getcwd())
        # 2. an installed copy, through pkg-config
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "nodewrite"], env=env,
                               check=True, capture_output=True, text=True).stdout.split()
        run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", src, *flags,
             f"-Wl,-rpath,{prefix}/lib", "-o", exe + "-installed"])
        run([exe + "-installed"], env={"PATH": os.environ.get("PATH", "")}, cwd=os.getcwd())
    elif b.lang == "sh":
        check_sh(b, targets, maketext)


if __name__ == "__main__":
    sys.exit(main())
