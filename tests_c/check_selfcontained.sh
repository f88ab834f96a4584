#!/usr/bin/env bash
# Checks that the shared library needs no Swift runtime shared object, so that it
# loads into a process without a Swift toolchain, and exports only nw_ functions.
set -euo pipefail
lib=${1:?usage: check_selfcontained.sh LIB}
needed=$(readelf -d "$lib" | awk '/NEEDED/ {print $NF}' | tr -d '[]')
if grep -q 'swift' <<<"$needed"; then
    echo "FAIL: $lib needs a Swift runtime library:"; grep swift <<<"$needed"; exit 1
fi
if ldd "$lib" | grep -q 'not found'; then
    echo "FAIL: unresolved dependencies:"; ldd "$lib" | grep 'not found'; exit 1
fi
functions=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}')
others=$(grep -v '^nw_' <<<"$functions" || true)
if [ -n "$others" ]; then echo "FAIL: exports functions other than nw_*:"; echo "$others"; exit 1; fi
echo "self-contained: $lib needs only $(echo $needed | tr ' ' ','); exports $(wc -l <<<"$functions") nw_ functions"
