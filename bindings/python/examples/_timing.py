"""Timing helper shared by the demo and the benches: medians of per-call times over many batches.

Each competitor runs its warm-up and all its batches in a row, not interleaved with the others:
OpenBLAS's and OpenMP's worker threads keep spinning on the cores for a while after a call, and
would otherwise run against the next competitor's threads (the warm-up absorbs that)."""

import statistics
import time
from typing import Callable, Dict


def per_call_medians(fns: Dict[str, Callable[[], object]], batches: int, calls: int,
                     warmup: int = 3) -> Dict[str, float]:
    """Median seconds per call of each function (batches x calls calls each)."""
    clock = time.perf_counter
    medians = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        samples = []
        for _ in range(batches):
            t0 = clock()
            for _ in range(calls):
                fn()
            samples.append((clock() - t0) / calls)
        medians[name] = statistics.median(samples)
    return medians


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:7.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:7.2f} us"
    return f"{seconds * 1e3:7.2f} ms"
