"""Runs every ```python and ```c block of README.md (make test-readme, part of make test).

python blocks: each runs in a fresh process of the given interpreter (the .venv's), from the
repository root; a block that fails only because TDB (neuron_explainer) is not importable is
reported as skipped (run with a TDB checkout on PYTHONPATH to run it too). c blocks: each is compiled and run twice, built the two ways the README's
"From C" section says: against the build tree (-Iinclude -L.build/release -lnodewrite with an
rpath) and against `make install PREFIX=<dir>` through pkg-config.

usage: run_readme_blocks.py README.md PYTHON PREFIX
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile

BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def run(cmd: list[str] | str, **kw) -> None:
    shown = cmd if isinstance(cmd, str) else " ".join(shlex.quote(c) for c in cmd)
    print("+", shown, flush=True)
    subprocess.run(cmd, check=True, timeout=300, **kw)


def main() -> int:
    readme, python, prefix = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3])
    text = open(readme).read()
    blocks = [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in BLOCK.finditer(text)]
    n_py = n_c = n_skip = 0
    with tempfile.TemporaryDirectory() as tmp:
        for lang, code, line in blocks:
            if lang == "python":
                print(f"README.md:{line}: python block", flush=True)
                p = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
                sys.stdout.write(p.stdout)
                if p.returncode != 0 and "No module named 'neuron_explainer'" in p.stderr:
                    print(f"README.md:{line}: skipped: needs a TDB checkout on the path (make test-tdb)")
                    n_skip += 1
                    continue
                if p.returncode != 0 and re.search(r"No module named '(transformer_lens|sae_lens)'", p.stderr):
                    print(f"README.md:{line}: skipped: needs TransformerLens/SAELens (make test-ecosystem runs it)")
                    n_skip += 1
                    continue
                if p.returncode != 0:
                    sys.stderr.write(p.stderr)
                    raise SystemExit(f"README.md:{line}: the python block failed")
                n_py += 1
            elif lang == "c":
                print(f"README.md:{line}: C block", flush=True)
                src = os.path.join(tmp, f"block{line}.c")
                with open(src, "w") as f:
                    f.write(code)
                exe = os.path.join(tmp, f"block{line}")
                cc = os.environ.get("CC", "cc")
                # 1. the build tree, as "From C" shows
                run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", src,
                     "-L.build/release", "-lnodewrite", f"-Wl,-rpath,{os.getcwd()}/.build/release",
                     "-o", exe])
                run([exe], env={"PATH": os.environ.get("PATH", "")})
                # 2. an installed copy, through pkg-config
                env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
                flags = subprocess.run(["pkg-config", "--cflags", "--libs", "nodewrite"], env=env,
                                       check=True, capture_output=True, text=True).stdout.split()
                run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", src, *flags,
                     f"-Wl,-rpath,{prefix}/lib", "-o", exe + "-installed"])
                run([exe + "-installed"], env={"PATH": os.environ.get("PATH", "")})
                n_c += 1
    print(f"README.md: {n_py} python and {n_c} C blocks ran; {n_skip} python blocks need TDB or TransformerLens")
    return 0 if n_py and n_c else 1


if __name__ == "__main__":
    sys.exit(main())
