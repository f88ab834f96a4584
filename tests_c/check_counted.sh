#!/usr/bin/env bash
# Checks that every nw_ function the library exports has a row in the call-count table of
# tests_c/boundary.c (CC_NAMES), which checks that one call counts exactly 1 in
# nw_thread_call_count: an export added without one fails here.
set -euo pipefail
lib=${1:?usage: check_counted.sh LIB}
dir=$(dirname "$0")
rows=$(sed -n '/^static const char \*const CC_NAMES\[\] = {/,/};/p' "$dir/boundary.c" | grep -o '"nw_[a-z_0-9]*' | tr -d '"' | sort -u)
missing=$(comm -23 <(nm -D --defined-only "$lib" | awk '$2 == "T" && $3 ~ /^nw_/ {print $3}' | sort -u) <(echo "$rows"))
if [ -n "$missing" ]; then
    echo "FAIL: exports without a call-count row in tests_c/boundary.c (CC_NAMES):"; echo "$missing"; exit 1
fi
echo "call count: every one of the $(wc -l <<<"$rows") exports has a row in tests_c/boundary.c"
