#!/usr/bin/env python3
"""nodewrite.ray.top_examples: prompts per second with 1 and 2 Ray workers, the driver's peak
memory, and the same work in one process without Ray (nodewrite.topk.local_top_examples).

Default: 2,048 prompts x T = 128 tokens on a 4-layer, d_model 256 HookedTransformer with seeded
random weights (4 heads x 64, d_mlp 1024, d_vocab 1000; built offline from a config), one
derived scalar (--dst, default mlp_write_norm) on every layer, k = 20 per node. Each worker
(and the single-process loop) runs torch and nodewrite with --threads threads (default 1), so
that 2 workers on 2 cores compare with 1 worker on 1; a --workers entry WxT runs W workers of
T threads each (e.g. 1x2: one worker using both cores). With --repeats R the worker counts
alternate R times and the medians are printed.

Driver memory: the driver's peak resident memory (VmHWM) during the call minus its resident
memory before (the peak is reset first through /proc/self/clear_refs), and VmHWM itself. Every
result is compared with the first, bit for bit. Prints, never asserts.

Usage: bench_ray.py [--prompts 2048] [--T 128] [--layers 4] [--d-model 256] [--dst mlp_write_norm]
                    [--k 20] [--batch-size 64] [--workers 1,2[,1x2]] [--threads 1] [--repeats 1]
                    [--local-repeats 1] [--no-local]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _memory import reset_peak, vm  # noqa: E402


class ModelFactory:
    """What each actor calls once: the random TL model, with the thread counts set."""

    def __init__(self, n_layers, d_model, n_ctx, threads, seed=0):
        self.args = (n_layers, d_model, n_ctx, threads, seed)

    def __call__(self):
        import torch
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        import nodewrite as nw

        n_layers, d_model, n_ctx, threads, seed = self.args
        torch.set_num_threads(threads)
        nw.set_num_threads(threads)
        cfg = HookedTransformerConfig(n_layers=n_layers, d_model=d_model, n_heads=d_model // 64, d_head=64,
                                      d_mlp=4 * d_model, d_vocab=1000, n_ctx=n_ctx, act_fn="gelu_new",
                                      normalization_type="LN", seed=seed, device="cpu")
        model = HookedTransformer(cfg)
        model.eval()
        return model


def timed_worker(base):
    """nodewrite.ray's actor class, recording when each batch starts and ends (wall clock) in a
    file per actor under $NW_BENCH_TIMES (the bench's own instrumentation: the library's actor
    is unchanged)."""

    class Timed(base):
        def __call__(self, batch):
            t0 = time.time()
            out = super().__call__(batch)
            with open(os.path.join(os.environ["NW_BENCH_TIMES"], f"{os.getpid()}.txt"), "a") as f:
                f.write(f"{t0} {time.time()} {len(batch['tokens'])}\n")
            return out

    return Timed


def batch_phase(times_dir, t0):
    """(seconds from the call to the first batch's start, seconds from it to the last batch's end,
    batches per actor) from the files timed_worker wrote, which are then removed."""
    spans, per_actor = [], []
    for name in os.listdir(times_dir):
        with open(os.path.join(times_dir, name)) as f:
            rows = [tuple(map(float, line.split())) for line in f if line.strip()]
        os.remove(os.path.join(times_dir, name))
        spans += rows
        per_actor.append(len(rows))
    first, last = min(r[0] for r in spans), max(r[1] for r in spans)
    return first - t0, last - first, sorted(per_actor)


def same(a, b):
    return set(a) == set(b) and all(
        np.array_equal(getattr(a[l], f), getattr(b[l], f), equal_nan=True) for l in a for f in a[l]._fields)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=2048)
    p.add_argument("--T", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--dst", default="mlp_write_norm")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--local-repeats", type=int, default=1, help="runs of the single-process loop (median)")
    p.add_argument("--no-local", action="store_true", help="skip the single-process loop")
    args = p.parse_args()

    import ray
    import torch

    import nodewrite as nw
    import nodewrite.ray as nwr
    from nodewrite.topk import local_top_examples

    tokens = np.random.default_rng(1).integers(0, 1000, size=(args.prompts, args.T))
    layers = list(range(args.layers))
    print(f"bench_ray: {args.prompts} prompts x T = {args.T}, {args.layers} layers, d_model {args.d_model}, "
          f"dst {args.dst}, k = {args.k}, batch {args.batch_size}, {args.threads} thread(s) per worker; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, nice {os.nice(0)} "
          f"(Ray workers: {os.environ.get('RAY_worker_niceness', os.nice(0))}); "
          f"torch {torch.__version__}, ray {ray.__version__}, nodewrite {nw.__version__}")
    results = {}
    rows = []

    if not args.no_local:
        model = ModelFactory(args.layers, args.d_model, args.T, args.threads)()
        t0 = time.perf_counter()
        local_top_examples(model, tokens[: args.batch_size], args.dst, layers, k=args.k)  # warm-up
        times = []
        for _ in range(args.local_repeats):
            reset_peak()
            before = vm()["VmRSS"]
            t0 = time.perf_counter()
            results["local"] = local_top_examples(model, tokens, args.dst, layers, k=args.k, batch_size=args.batch_size)
            times.append(time.perf_counter() - t0)
            after = vm()
        rows.append(("single process (no Ray)", float(np.median(times)), after["VmHWM"] - before, after["VmHWM"]))
        del model

    specs = []  # (workers, threads per worker)
    for item in args.workers.split(","):
        w, _, t = item.partition("x")
        specs.append((int(w), int(t) if t else args.threads))
    import tempfile

    # Ray starts its worker processes at nice 15 (its worker_niceness), the driver and the
    # single-process loop run at the shell's: on a machine shared with other work the workers
    # would yield the cores to it and the rows would not compare. Workers at the driver's nice
    # unless RAY_worker_niceness is set.
    os.environ.setdefault("RAY_worker_niceness", str(os.nice(0)))
    times_dir = tempfile.mkdtemp(prefix="bench_ray_")
    os.environ["NW_BENCH_TIMES"] = times_dir  # the actors inherit it
    nwr._Worker = timed_worker(nwr._Worker)
    ray.init(num_cpus=max(w * t for w, t in specs), include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False

    def name_of(w, t):
        return f"Ray, {w} worker{'s' if w > 1 else ''}" + ("" if t == args.threads else f", {t} threads each")

    def run(w, t, toks):
        return nwr.top_examples(ModelFactory(args.layers, args.d_model, args.T, t), toks, args.dst, layers, k=args.k,
                                batch_size=args.batch_size, num_workers=w, threads_per_worker=t)

    for w, t in specs:  # warm-up: Ray Data's planning and the workers' first imports, on a small input
        run(w, t, tokens[: 2 * args.batch_size])
        for name in os.listdir(times_dir):
            os.remove(os.path.join(times_dir, name))
    times = {spec: [] for spec in specs}
    phases = {spec: [] for spec in specs}
    peaks = {}
    for _ in range(args.repeats):  # the worker counts alternate
        for spec in specs:
            reset_peak()
            before = vm()["VmRSS"]
            t0 = time.perf_counter()
            results[spec] = run(*spec, tokens)
            times[spec].append(time.perf_counter() - t0)
            after = vm()
            peaks[spec] = (after["VmHWM"] - before, after["VmHWM"])
            start, span, per_actor = batch_phase(times_dir, time.time() - times[spec][-1])
            phases[spec].append(span)
            print(f"  {name_of(*spec)}: {times[spec][-1]:.2f} s: first batch after {start:.2f} s (actor start-up), "
                  f"batches for {span:.2f} s ({per_actor} per actor), the rest {times[spec][-1] - start - span:.2f} s "
                  f"(merge); load average {os.getloadavg()[0]:.2f}", flush=True)
    for spec in specs:
        rows.append((name_of(*spec), float(np.median(times[spec])), *peaks[spec]))
    ray.shutdown()

    print(f"{'':28s} {'seconds':>8s} {'prompts/s':>10s} {'driver peak +MB':>16s} {'driver VmHWM MB':>16s}")
    for name, t, extra, hwm in rows:
        print(f"{name:28s} {t:8.2f} {args.prompts / t:10.1f} {extra / 2**20:16.1f} {hwm / 2**20:16.1f}")
    ray_rows = {name: t for name, t, *_ in rows if name.startswith("Ray")}
    if "Ray, 1 worker" in ray_rows and "Ray, 2 workers" in ray_rows:
        print(f"2 workers / 1 worker: {ray_rows['Ray, 1 worker'] / ray_rows['Ray, 2 workers']:.2f}x (medians)")
        one, two = (float(np.median(phases[(w, args.threads)])) for w in (1, 2))
        print(f"batch phase only (first batch's start to last batch's end, actor start-up and merge left out): "
              f"{args.prompts / one:.1f} and {args.prompts / two:.1f} prompts/s, {one / two:.2f}x")
    if args.repeats > 1 and (1, args.threads) in times and (2, args.threads) in times:
        ratios = [a / b for a, b in zip(times[(1, args.threads)], times[(2, args.threads)])]
        print("2 workers / 1 worker per repeat: " + ", ".join(f"{r:.2f}x" for r in ratios))
    first = next(iter(results.values()))
    print("results identical across runs: " + ("yes" if all(same(first, r) for r in results.values()) else "NO"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
