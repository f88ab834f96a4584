"""Running a test body in a fresh Python process with a timeout: a hang or a crash in the child
fails the test instead of stalling or killing the test run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))


def run_in_child(source: str, timeout: float = 60.0) -> str:
    """Runs `source` in a fresh interpreter (python_tests on its path); returns its stdout.
    Fails (AssertionError) on a timeout, a signal or a non-zero exit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONFAULTHANDLER", "1")
    try:
        p = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(source)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the child process did not finish in {timeout} s (hang):\n"
                             f"{(e.stderr or b'')[-3000:]!r}") from None
    assert p.returncode == 0, (
        f"the child process exited with {p.returncode}"
        f"{' (signal %d)' % -p.returncode if p.returncode < 0 else ''}:\n"
        f"{p.stdout[-2000:]}\n{p.stderr[-4000:]}"
    )
    return p.stdout
