#!/usr/bin/env bash
# Builds .build/release/libnodewrite.so as a self-contained shared library: the Swift
# runtime linked in statically (it loads into a process with no Swift toolchain), and
# only the nw_ functions of include/nodewrite.h exported. Prints the library's path.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product nodewrite -Xswiftc -static-stdlib \
    -Xlinker --version-script="$PWD/include/nodewrite.map" >&2
echo "$PWD/.build/release/libnodewrite.so"
