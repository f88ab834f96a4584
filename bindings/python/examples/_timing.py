"""Timing helper shared by demo.py and bench.py: medians of per-call times over many batches,
competitors interleaved batch by batch so that they see the same machine conditions."""

import statistics
import time
from typing import Callable, Dict


def per_call_medians(fns: Dict[str, Callable[[], object]], batches: int, calls: int,
                     warmup: int = 3) -> Dict[str, float]:
    """Median seconds per call of each function (batches x calls calls each)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    clock = time.perf_counter
    for _ in range(batches):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(calls):
                fn()
            samples[name].append((clock() - t0) / calls)
    return {name: statistics.median(v) for name, v in samples.items()}


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:7.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:7.2f} us"
    return f"{seconds * 1e3:7.2f} ms"
