"""scripts/run-suites.py, the runner of `make test` and .ci/run: counts read from each runner's
closing lines, a failure anywhere makes the exit status non-zero, and the last line is
"N passed, N failed" with the totals. Steps here are tiny makefiles in a temporary directory."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "run-suites.py"
spec = importlib.util.spec_from_file_location("run_suites", SCRIPT)
rs = importlib.util.module_from_spec(spec)
sys.modules["run_suites"] = rs
spec.loader.exec_module(rs)


def counts(lines, rc=0, build=False):
    s = rs.Step("x", "t", build)
    s.rc = rc
    rs.parse(s, lines)
    return s.passed, s.failed, s.skipped


SWIFT_OK = ["◇ Test a() started.", "✔ Test a() passed after 0.01 seconds.",
            "✔ Test run with 52 tests in 14 suites passed after 0.555 seconds.",
            "\t Executed 0 tests, with 0 failures (0 unexpected) in 0.0 (0.0) seconds"]
SWIFT_FAILED = ["✘ Test a() recorded an issue at X.swift:3:4: Expectation failed",
                "✘ Test a() failed after 0.01 seconds with 1 issue.", "✘ Suite S failed after 0.1 seconds with 1 issue.",
                "✘ Test b(x:) with 3 test cases failed after 0.02 seconds with 2 issues.",
                "✘ Test run with 52 tests in 14 suites failed after 0.6 seconds with 3 issues."]


@pytest.mark.parametrize("lines, rc, want", [
    (["3 passed, 2 skipped, 1 xfailed, 4 warnings in 0.51s"], 0, (3, 0, 3)),
    (["==== 1 failed, 630 passed, 156 skipped in 16.83s ===="], 1, (630, 1, 156)),
    (["2 errors in 3.0s"], 1, (0, 2, 0)),
    (["1 passed in 62.32s (0:01:02)"], 0, (1, 0, 0)),
    (["c_parity: 70 cases", "70 passed, 0 failed", "1 passed, 0 failed"], 0, (71, 0, 0)),
    (["safetensors: 57 rows, 2 failures"], 1, (55, 2, 0)),
    (SWIFT_OK, 0, (52, 0, 0)),
    (SWIFT_FAILED, 1, (50, 2, 0)),
    (["Test Suite 'All tests' failed at 2026. Executed 5 tests, with 1 failure (0 unexpected) in 0.1 (0.1) seconds"], 1, (4, 1, 0)),
    (["something printed, no counts"], 0, (1, 0, 0)),  # a step without counts is one check
    (["Segmentation fault"], 139, (0, 1, 0)),  # ... and one failure when it fails
    (["10 passed, 0 failed"], 2, (10, 1, 0)),  # non-zero exit with no failure counted: one failure
    (["test-ecosystem: skipped: not importable"], 0, (0, 0, 0)),
    (["   70 passed, 0 failed"], 0, (70, 0, 0)),
    (["it said 70 passed, 0 failed today"], 0, (1, 0, 0)),  # not alone on its line: not a count
])
def test_counts(lines, rc, want):
    assert counts(lines, rc) == want


def test_a_build_step_counts_only_its_failure():
    assert counts(["[1/300] Compiling x.swift"], 0, build=True) == (0, 0, 0)
    assert counts(["error: no such module"], 1, build=True) == (0, 1, 0)


def test_failure_output_leaves_noise_and_tracebacks_in_the_log():
    lines = ["make[1]: x", "\t Executed 0 tests, with 0 failures (0 unexpected) in 0.0 (0.0) seconds",
             "↳ Testing Library Version: 6.3.1 (937120cbc281cf2)", "↳ Target Platform: x86_64-unknown-linux-gnu", "◇ Test a() started.", "✔ Test a() passed after 0.01 seconds.", "[3/9] Compiling a.swift",
             "ok     1 nw_x  something", ".....F..   [ 50%]", "=================== FAILURES ===================",
             "____ test_x ____", "E   assert 1 == 2", "============ short test summary info ============",
             "FAILED t.py::test_x - assert 1 == 2", "1 failed, 7 passed in 0.1s"]
    shown = rs.shown_on_failure([l + "\n" for l in lines])
    assert shown == ["make[1]: x", "(pytest's FAILURES section: in the log)", "============ short test summary info ============",
                     "FAILED t.py::test_x - assert 1 == 2", "1 failed, 7 passed in 0.1s"]


def run(tmp_path, makefile, *targets, build=()):
    (tmp_path / "Makefile").write_text(makefile)
    args = [sys.executable, str(SCRIPT), "--make", "make -C " + str(tmp_path), "--logs", str(tmp_path / "logs")]
    args += [a for b in build for a in ("--build", b)] + list(targets)
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


MAKEFILE = """\
ok:
\t@echo "3 passed in 0.1s"
bad:
\t@echo "2 passed, 1 failed"; exit 1
quiet:
\t@true
crash:
\t@exit 3
lib:
\t@echo built
"""


def test_every_step_runs_the_exit_status_and_the_last_line(tmp_path):
    p = run(tmp_path, MAKEFILE, "ok", "bad", "quiet", "crash", build=["lib"])
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert lines[-1] == "6 passed, 2 failed"  # 3 + 2 + 1 (quiet: one check); bad 1, crash 1
    assert lines[-2] == "failed: bad, crash"
    table = lines[lines.index(next(l for l in lines if l.startswith("step "))):]
    assert [r.split()[:3] for r in table if r.split() and r.split()[0] in ("build-lib", "ok", "bad", "quiet", "crash", "total")] == [
        ["build-lib", "-", "-"], ["ok", "3", "0"], ["bad", "2", "1"], ["quiet", "1", "0"], ["crash", "0", "1"], ["total", "6", "2"]]
    assert (tmp_path / "logs" / "bad.log").read_text().splitlines()[0] == "2 passed, 1 failed"  # the whole output


def test_all_passing_exits_zero(tmp_path):
    p = run(tmp_path, MAKEFILE, "ok", "quiet", build=["lib"])
    assert p.returncode == 0
    assert p.stdout.splitlines()[-1] == "4 passed, 0 failed"


def test_a_failed_build_fails_the_run(tmp_path):
    p = run(tmp_path, MAKEFILE + "broken:\n\t@exit 2\n", "ok", build=["broken"])
    assert p.returncode == 1
    assert p.stdout.splitlines()[-1] == "3 passed, 1 failed"
