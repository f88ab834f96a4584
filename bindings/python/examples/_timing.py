"""Timing helper shared by the demo and the benches: medians of per-call times over many batches.

Each competitor runs its warm-up and all its batches in a row, not interleaved with the others:
OpenBLAS's and OpenMP's worker threads keep spinning on the cores for a while after a call (numpy's
OpenBLAS for about 0.1 s), and would otherwise run against the next competitor's threads. The
warm-up absorbs that: its calls, and at least WARMUP_SECONDS of them."""

import statistics
import time
from typing import Callable, Dict


WARMUP_SECONDS = 0.2


def per_call_medians(fns: Dict[str, Callable[[], object]], batches: int, calls: int,
                     warmup: int = 3, rounds: int = 1) -> Dict[str, float]:
    """Median seconds per call of each function (rounds x batches x calls calls each). With
    rounds > 1 the competitors take turns, round after round (each turn: warm-up, then its
    batches in a row), so that slow drifts of a shared machine reach all of them alike."""
    clock = time.perf_counter
    samples: Dict[str, list] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock()
            done = 0
            while done < warmup or clock() - start < WARMUP_SECONDS:
                fn()
                done += 1
            for _ in range(batches):
                t0 = clock()
                for _ in range(calls):
                    fn()
                samples[name].append((clock() - t0) / calls)
    return {name: statistics.median(s) for name, s in samples.items()}


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:7.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:7.2f} us"
    return f"{seconds * 1e3:7.2f} ms"
