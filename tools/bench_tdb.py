#!/usr/bin/env python3
"""Benchmark: transformer-debugger's original node-write deriver vs nodewrite.tdb, inside TDB.

Both derivers are built by their ``make_node_write_scalar_deriver(DstConfig(...))`` and timed on
``ScalarDeriver.derive_from_raw(raw_store, PassType.FORWARD)`` end to end, on TDB's own
``RawActivationStore``, at GPT-2-small dimensions (d_model 768, 12 heads x 64, d_ff 3072,
12 layers; activations at one layer), for T = 64, 256, 1024 tokens, an attention-head node and an
MLP-neuron node. Medians and ratios come from the same run. The original's attention path
builds the (T, T, 12, 64) weighted-value tensor (3.2 GB at T = 1024, seconds per call), so its
slow cases get few repetitions. This prints; it never asserts.

Needs TDB: NODEWRITE_TDB_SRC=/path/to/transformer-debugger, and torch + nodewrite installed in
the running Python. Without TDB it prints why it is skipped and exits 0.

    NODEWRITE_TDB_SRC=/path/to/transformer-debugger python tools/bench_tdb.py [--tokens 64,256,1024]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python_tests"))
import tdb_support  # noqa: E402

N_LAYERS, D_MODEL, N_HEADS, D_HEAD, D_FF = 12, 768, 12, 64, 3072
LAYER = 5


def fmt_time(s: float) -> str:
    if s >= 1.0:
        return f"{s:8.3f} s "
    if s >= 1e-3:
        return f"{s * 1e3:8.3f} ms"
    return f"{s * 1e6:8.1f} us"


def timed(fn, budget: float, min_reps: int, max_reps: int, first: float | None = None) -> list[float]:
    """Samples of fn() until `budget` seconds are spent (between min_reps and max_reps samples).
    `first`, if given, is a sample already taken."""
    samples = [] if first is None else [first]
    spent = sum(samples)
    while len(samples) < max_reps and (len(samples) < min_reps or spent < budget):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        samples.append(dt)
        spent += dt
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", default="64,256,1024", help="comma-separated T values")
    ap.add_argument("--budget", type=float, default=1.0, help="seconds per measurement (about)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    reason = tdb_support.tdb_unavailable_reason()
    if reason is not None:
        print(f"bench-tdb: skipped: {reason}")
        return 0
    try:
        import nodewrite
        import nodewrite.tdb as ntdb
        from nodewrite.tdb.namespace import tdb as tdb_names
    except ImportError as e:
        print(f"bench-tdb: skipped: nodewrite is not importable here ({e})")
        return 0

    import torch
    from neuron_explainer.activations.derived_scalars.indexing import NodeIndex
    from neuron_explainer.activations.derived_scalars.scalar_deriver import DstConfig
    from neuron_explainer.models.model_component_registry import NodeType, PassType

    g = torch.Generator().manual_seed(args.seed)
    checkpoint = {
        f"xf_layers.{LAYER}.attn.out_proj.weight": torch.randn(D_MODEL, N_HEADS * D_HEAD, generator=g) * 0.02,
        f"xf_layers.{LAYER}.mlp.out_layer.weight": torch.randn(D_MODEL, D_FF, generator=g) * 0.02,
    }
    model_context = tdb_support.make_model_context(
        checkpoint, n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_ff=D_FF
    )
    original_make = tdb_names().original["make_node_write_scalar_deriver"]

    print(
        "TDB make_node_write_scalar_deriver (original) vs nodewrite.tdb (drop-in): "
        "ScalarDeriver.derive_from_raw(raw_store, FORWARD) end to end"
    )
    print(
        f"GPT-2-small dims: d_model {D_MODEL}, {N_HEADS} heads x {D_HEAD}, d_ff {D_FF}, "
        f"{N_LAYERS} layers (activations at layer {LAYER}); nodewrite {nodewrite.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} CPUs"
    )
    header = (
        f"{'node':<16}{'T':>6}  {'original median':>15} {'n':>4}  {'drop-in median':>15} {'n':>5}"
        f"  {'ratio':>10}  {'max|diff|/max|orig|':>20}"
    )
    print(header)
    print("-" * len(header))

    rows = []
    for n_tokens in [int(t) for t in args.tokens.split(",") if t]:
        logits = torch.randn(N_HEADS, n_tokens, n_tokens, generator=g)
        causal = torch.ones(n_tokens, n_tokens, dtype=torch.bool).tril()
        probs = torch.softmax(logits.masked_fill(~causal, float("-inf")), dim=-1)
        activations = {
            ("attn.qk_probs", LAYER): probs.permute(1, 2, 0).contiguous(),  # (T, T_k, heads)
            ("attn.v", LAYER): torch.randn(n_tokens, N_HEADS, D_HEAD, generator=g),
            ("mlp.post_act", LAYER): torch.nn.functional.gelu(torch.randn(n_tokens, D_FF, generator=g)),
        }
        del logits, causal, probs
        raw_store = tdb_support.make_raw_store(activations)
        nodes = [
            ("attention_head", NodeType.ATTENTION_HEAD, (n_tokens - 1, n_tokens // 2, 7)),
            ("mlp_neuron", NodeType.MLP_NEURON, (n_tokens - 1, 1234)),
        ]
        for label, node_type, indices in nodes:
            cfg = DstConfig(
                model_context=model_context,
                node_index_for_attribution=NodeIndex(
                    node_type=node_type,
                    tensor_indices=indices,
                    layer_index=LAYER,
                    pass_type=PassType.FORWARD,
                ),
            )
            original = original_make(cfg)
            dropin = ntdb.make_node_write_scalar_deriver(cfg)

            def run_original():
                return original.derive_from_raw(raw_store, PassType.FORWARD)

            def run_dropin():
                return dropin.derive_from_raw(raw_store, PassType.FORWARD)

            native_before = ntdb.stats["native"]
            out_dropin = run_dropin()  # warm-up: hands the layer's weights to the library once
            t0 = time.perf_counter()
            out_original = run_original()
            first = time.perf_counter() - t0
            slow = first > 0.25
            a = out_original.activations_by_layer_index[LAYER]
            b = out_dropin.activations_by_layer_index[LAYER]
            rel = float((a - b).abs().max()) / max(1e-30, float(a.abs().max()))
            del out_original, out_dropin, a, b
            # the slow original: its first call counts as a sample, 3 samples in all
            t_orig = timed(
                run_original,
                args.budget,
                min_reps=3,
                max_reps=3 if slow else 200,
                first=first if slow else None,
            )
            t_drop = timed(run_dropin, args.budget, min_reps=5, max_reps=5000)
            native = ntdb.stats["native"] - native_before == len(t_drop) + 1
            m_orig, m_drop = statistics.median(t_orig), statistics.median(t_drop)
            ratio = m_orig / m_drop
            rows.append((label, n_tokens, m_orig, m_drop, ratio))
            print(
                f"{label:<16}{n_tokens:>6}  {fmt_time(m_orig):>15} {len(t_orig):>4}  "
                f"{fmt_time(m_drop):>15} {len(t_drop):>5}  {ratio:>9.1f}x  {rel:>20.2e}"
                + ("" if native else "   (drop-in did not use the native library!)"),
                flush=True,
            )
        del raw_store, activations

    print()
    print("ratio = original median / drop-in median (higher is better for the drop-in).")
    for label, n_tokens, _, _, ratio in rows:
        if label == "attention_head" and n_tokens == 1024:
            verdict = "met" if ratio >= 1000 else "NOT met"
            print(f"target >= 1000x for attention at T = 1024: {ratio:.0f}x ({verdict})")
    mlp = [r for r in rows if r[0] == "mlp_neuron"]
    if mlp:
        slower = [f"T={r[1]}" for r in mlp if r[4] < 1.0]
        print(
            "target: MLP never slower: "
            + (f"slower at {', '.join(slower)}" if slower else f"met (lowest ratio {min(r[4] for r in mlp):.2f}x)")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
