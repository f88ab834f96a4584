"""Build of the nodewrite Python package.

`pip install ./bindings/python` (from the repository root) does, in order:
1. builds libnodewrite.so with SwiftPM (scripts/build-lib.sh, i.e. `swift build -c release
   --product nodewrite` with the static Swift runtime, at the repository root) unless it is already newer than every Swift/C source, the header and
   Package.swift;
2. compiles the pybind11 extension nodewrite._core against the public header
   include/nodewrite.h and Debian's pybind11-dev (/usr/include/pybind11), linked to
   libnodewrite.so (DT_NEEDED) with rpath $ORIGIN;
3. puts libnodewrite.so beside the extension, so the installed package needs no
   environment variables.

Environment (optional): NODEWRITE_ROOT = the repository root (default: two levels up from
this file); NODEWRITE_LIB = a prebuilt libnodewrite.so to bundle instead of building one.
"""

import os
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def repo_root() -> str:
    root = os.environ.get("NODEWRITE_ROOT")
    if root:
        return os.path.abspath(root)
    d = HERE
    while True:
        if os.path.isfile(os.path.join(d, "Package.swift")) and os.path.isfile(
            os.path.join(d, "include", "nodewrite.h")
        ):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            raise SystemExit(
                "nodewrite: cannot find the repository root (Package.swift and include/nodewrite.h) "
                f"above {HERE}; set NODEWRITE_ROOT"
            )
        d = parent


ROOT = repo_root()
INCLUDE = os.path.join(ROOT, "include")


def header_version() -> str:
    """NW_VERSION_STRING of include/nodewrite.h: the one place the version is written."""
    import re

    with open(os.path.join(INCLUDE, "nodewrite.h")) as f:
        m = re.search(r'^#define NW_VERSION_STRING "([^"]+)"', f.read(), re.M)
    if m is None:
        raise SystemExit("nodewrite: NW_VERSION_STRING not found in include/nodewrite.h")
    return m.group(1)


def newest_source_mtime() -> float:
    newest = 0.0
    paths = [os.path.join(ROOT, "Package.swift"), os.path.join(ROOT, "scripts", "build-lib.sh")]
    for top in ("Sources", "include"):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, top)):
            paths.extend(os.path.join(dirpath, f) for f in files)
    for p in paths:
        try:
            newest = max(newest, os.path.getmtime(p))
        except OSError:
            pass
    return newest


def swift_library() -> str:
    """Path of an up-to-date libnodewrite.so, building it if needed."""
    prebuilt = os.environ.get("NODEWRITE_LIB")
    if prebuilt:
        if not os.path.isfile(prebuilt):
            raise SystemExit(f"nodewrite: NODEWRITE_LIB={prebuilt} does not exist")
        return os.path.abspath(prebuilt)
    lib = os.path.join(ROOT, ".build", "release", "libnodewrite.so")
    if os.path.isfile(lib) and os.path.getmtime(lib) >= newest_source_mtime():
        return lib
    swift = shutil.which("swift")
    if swift is None:
        raise SystemExit("nodewrite: `swift` is not on PATH; it is needed to build libnodewrite.so")
    script = os.path.join(ROOT, "scripts", "build-lib.sh")
    if os.path.isfile(script):
        # The project's build of the library (static Swift runtime, nw_-only exports).
        cmd = ["bash", script]
    else:
        cmd = [swift, "build", "-c", "release", "--product", "nodewrite"]
    print("nodewrite: building libnodewrite.so:", " ".join(cmd), f"(in {ROOT})", flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    if not os.path.isfile(lib):
        raise SystemExit(f"nodewrite: swift build did not produce {lib}")
    return lib


def pybind11_include() -> str:
    for d in ("/usr/include", "/usr/local/include"):
        if os.path.isfile(os.path.join(d, "pybind11", "pybind11.h")):
            return d
    raise SystemExit(
        "nodewrite: pybind11 headers not found; install Debian's pybind11-dev "
        "(apt-get install -y pybind11-dev python3-dev)"
    )


class BuildExt(build_ext):
    """Builds the Swift library first, links against it, and bundles it."""

    def run(self):
        lib = swift_library()
        libdir = os.path.dirname(lib)
        pb = pybind11_include()
        for ext in self.extensions:
            ext.library_dirs.append(libdir)
            # /usr/include is on the default search path; adding it with -I would break
            # libstdc++'s #include_next, so only a non-default location is added.
            if pb != "/usr/include":
                ext.include_dirs.append(pb)
        super().run()
        # Bundle libnodewrite.so beside the extension (found through rpath $ORIGIN).
        targets = [os.path.join(self.build_lib, "nodewrite")]
        if self.inplace:
            targets.append(os.path.join(HERE, "nodewrite"))
        for t in targets:
            os.makedirs(t, exist_ok=True)
            dst = os.path.join(t, "libnodewrite.so")
            if os.path.exists(dst):
                os.remove(dst)
            shutil.copy2(lib, dst)


if not sys.platform.startswith("linux"):
    print("nodewrite: only Linux is supported by this build script", file=sys.stderr)

ext = Extension(
    "nodewrite._core",
    # One job per file; see the header comment of src/module.cpp.
    sources=sorted(os.path.join("src", f) for f in os.listdir(os.path.join(HERE, "src")) if f.endswith(".cpp")),
    depends=sorted(os.path.join("src", f) for f in os.listdir(os.path.join(HERE, "src")) if f.endswith(".hpp")),
    include_dirs=[INCLUDE],
    libraries=["nodewrite"],
    language="c++",
    extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-g0"],
    extra_link_args=["-Wl,-rpath,$ORIGIN"],
)

setup(version=header_version(), ext_modules=[ext], cmdclass={"build_ext": BuildExt})
