#!/usr/bin/env bash
# Builds .build/release/libnodewrite.so (self-contained: see Package.swift's release
# linker settings) and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product nodewrite >&2
echo "$PWD/.build/release/libnodewrite.so"
