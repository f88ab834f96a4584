#!/usr/bin/env bash
# one-check.sh CMD [ARGS...]: runs CMD (its output unchanged), then counts it as ONE check for
# `make test`'s table: prints "1 passed, 0 failed" when it exits 0, else "0 passed, 1 failed", and
# exits with CMD's status. For test programs that report no counts of their own.
"$@"
rc=$?
if [ "$rc" -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit "$rc"
