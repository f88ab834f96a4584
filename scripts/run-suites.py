#!/usr/bin/env python3
"""Runs the steps of `make test` one by one and ends with a table a person reads.

    run-suites.py --make MAKE [--logs DIR] [--build TARGET ...] -- SUITE_TARGET ...

Each step is `MAKE --no-print-directory TARGET`, its whole output kept in DIR/<name>.log and only a
few lines of it shown: the closing lines of the runners inside it (pytest's summary, `swift test`'s
"Test run with N tests ... passed", a plain "N passed, N failed" line) and the skip reasons when it
passes; the lines that are not progress noise (the tail of them) when it fails. Build steps (--build)
come first and are timed but not counted, unless they fail. Every step runs even after a failure;
the exit status is 1 when any step failed.

Counts per step, from its log: every pytest summary ("3 passed, 1 skipped in 0.5s"), every plain
"N passed, N failed" line alone on a line, `swift test`'s closing lines (Swift Testing's
"Test run with N tests" and XCTest's last "Executed N tests, with M failures"), and "<name>: N rows,
M failures". A step whose log has none of them counts as one check. A step that exits non-zero with no
failure counted counts one failure. The last line printed is "N passed, N failed" with the totals.

Python 3 standard library only (it runs before any virtualenv exists).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional

PYTEST = re.compile(r"^=*\s*((?:\d+ [a-z]+(?:, )?)+) in [\d.]+s(?: \([\d:]+\))?\s*=*$")
PLAIN = re.compile(r"^(\d+) passed, (\d+) failed$")
ROWS = re.compile(r"^[\w.-]+: (\d+) rows, (\d+) failures?$")
SWIFT_RUN = re.compile(r"Test run with (\d+) tests?(?: in \d+ suites?)? (passed|failed) after [\d.]+ seconds?")
SWIFT_FAILED_TEST = re.compile(r"\bTest (?!run with)\S.* failed after [\d.]+ seconds?")
XCTEST = re.compile(r"Executed (\d+) tests?, with (\d+) failures?")
SKIP_LINE = re.compile(r"^[\w.-]+: skipped\b")

NOISE = [
    re.compile(r"\b(Test|Suite) .* started\.$"),
    re.compile(r"\b(Test|Suite) (?!run with).* passed after [\d.]+ seconds?\.?$"),
    re.compile(r"^Test (Case|Suite) '.*' (started|passed)"),
    re.compile(r"^\[\d+/\d+\] "),
    re.compile(r"^(Building for|Build complete|Compiling|Emitting|Write |Linking|Planning build|Fetching|Computing)"),
    re.compile(r"^ok\s+\d+ "),
    re.compile(r"^[.sFExX]+\s*\[\s*\d+%\]$"),  # pytest -q progress
]


@dataclass
class Step:
    name: str
    target: str
    build: bool
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    rc: int = 0
    counted: bool = False
    closing: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.failed == 0


def parse(step: Step, lines: List[str]) -> None:
    swift_total: Optional[int] = None
    swift_failed_tests = 0
    xctest: Optional[tuple] = None
    for raw in lines:
        line = raw.rstrip("\n")
        s = line.strip()
        m = PYTEST.match(s)
        if m:
            parts = dict((w, int(n)) for n, w in (p.split(" ", 1) for p in m.group(1).split(", ")))
            step.passed += parts.get("passed", 0) + parts.get("xpassed", 0)
            step.failed += parts.get("failed", 0) + parts.get("error", 0) + parts.get("errors", 0)
            step.skipped += parts.get("skipped", 0) + parts.get("xfailed", 0)
            step.counted = True
            step.closing.append(s)
            continue
        m = PLAIN.match(s)
        if m:
            step.passed += int(m.group(1))
            step.failed += int(m.group(2))
            step.counted = True
            continue  # a plain count line is shown as the step's result line
        m = ROWS.match(s)
        if m:
            rows, bad = int(m.group(1)), int(m.group(2))
            step.passed += rows - bad
            step.failed += bad
            step.counted = True
            step.closing.append(s)
            continue
        m = SWIFT_RUN.search(s)
        if m:
            swift_total = int(m.group(1))
            step.closing.append(s)
            continue
        if SWIFT_FAILED_TEST.search(s):
            swift_failed_tests += 1
            continue
        m = XCTEST.search(s)
        if m:
            xctest = (int(m.group(1)), int(m.group(2)), s)
            continue
        if SKIP_LINE.match(s) or s.startswith("SKIPPED "):
            step.closing.append(s)
    if swift_total is not None:
        failed = min(swift_failed_tests, swift_total)
        step.passed += swift_total - failed
        step.failed += failed
        step.counted = True
    if xctest is not None and xctest[0] > 0:  # XCTest runs too, and says "Executed 0 tests" when it has none
        step.passed += xctest[0] - xctest[1]
        step.failed += xctest[1]
        step.counted = True
        step.closing.append(xctest[2])
    if not step.counted and not step.build:
        if step.rc == 0 and any(SKIP_LINE.match(c) for c in step.closing):
            pass  # skipped, not counted
        elif step.rc == 0:
            step.passed += 1
    if step.rc != 0 and step.failed == 0:
        step.failed += 1


def shown_on_failure(lines: List[str], limit: int = 150) -> List[str]:
    kept = [l.rstrip("\n") for l in lines if not any(p.search(l.strip()) for p in NOISE)]
    if len(kept) > limit:
        return [f"... ({len(kept) - limit} earlier lines in the log)"] + kept[-limit:]
    return kept


def run(make: List[str], step: Step, logdir: str) -> None:
    path = os.path.join(logdir, step.name + ".log")
    print(f"== {step.name}  ({' '.join(make[:1])} {step.target}; log {path})", flush=True)
    t0 = time.monotonic()
    with open(path, "w") as log:
        p = subprocess.run(make + ["--no-print-directory", step.target], stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    step.seconds = time.monotonic() - t0
    step.rc = p.returncode
    with open(path, errors="replace") as log:
        lines = log.readlines()
    parse(step, lines)
    if step.ok:
        for c in step.closing:
            print("   " + c)
    else:
        for l in shown_on_failure(lines):
            print("   | " + l)
        print(f"   exit status {step.rc}; the whole output: {path}")
    if step.build:
        result = "ok" if step.ok else "FAILED"
    else:
        result = f"{step.passed} passed, {step.failed} failed" + (f", {step.skipped} skipped" if step.skipped else "")
        if not step.counted and step.ok and step.passed == 0:
            result = "skipped"
    print(f"   -> {result} ({step.seconds:.1f} s)", flush=True)


def table(steps: List[Step]) -> List[str]:
    rows = [("step", "passed", "failed", "skipped", "seconds")]
    for s in steps:
        if s.build:
            rows.append((s.name, "-", str(s.failed) if s.failed else "-", "-", f"{s.seconds:.1f}"))
        elif not s.counted and s.ok and s.passed == 0:
            rows.append((s.name, "0", "0", "all", f"{s.seconds:.1f}"))
        else:
            rows.append((s.name, str(s.passed), str(s.failed), str(s.skipped), f"{s.seconds:.1f}"))
    rows.append(("total", str(sum(s.passed for s in steps)), str(sum(s.failed for s in steps)),
                 str(sum(s.skipped for s in steps)), f"{sum(s.seconds for s in steps):.1f}"))
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    out = []
    for i, r in enumerate(rows):
        out.append(r[0].ljust(w[0]) + "".join("  " + c.rjust(w[j + 1]) for j, c in enumerate(r[1:])))
        if i == 0 or i == len(rows) - 2:
            out.append("-" * (sum(w) + 8))
    return out


def step_name(target: str) -> str:
    name = target.split("/")[-1].lstrip(".")
    for prefix in ("test-",):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name.replace("-if-available", "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make", default="make", help="the make command (a recipe passes $(MAKE))")
    ap.add_argument("--logs", default="build/test-logs", help="directory of the per-step logs")
    ap.add_argument("--build", action="append", default=[], metavar="TARGET", help="a build step (timed, not counted)")
    ap.add_argument("targets", nargs="+", help="the test targets, run in this order")
    a = ap.parse_args()
    os.makedirs(a.logs, exist_ok=True)
    make = a.make.split()
    steps = [Step(n if n.startswith("build") else "build-" + n, t, True) for t, n in ((t, step_name(t)) for t in a.build)]
    steps += [Step(step_name(t), t, False) for t in a.targets]
    t0 = time.monotonic()
    for s in steps:
        run(make, s, a.logs)
    print()
    print(f"make test: {len(steps)} steps in {time.monotonic() - t0:.0f} s (logs in {a.logs}/)")
    for line in table(steps):
        print(line)
    failed = [s.name for s in steps if not s.ok]
    if failed:
        print("failed: " + ", ".join(failed))
    print(f"{sum(s.passed for s in steps)} passed, {sum(s.failed for s in steps)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
