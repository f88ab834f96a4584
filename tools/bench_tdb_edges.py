#!/usr/bin/env python3
"""Benchmark: TDB's edge-attribution derivers inside TDB's own pipeline, original against the
drop-in (nodewrite.tdb.install()), and the hand-written contraction-first torch formulation
(nodewrite.tdb.torch_edges called directly on the tensors) in the same kind of process.

Model: TDB's own Transformer (nodewrite.tdb.local.make_model: random weights, TDB's checkpoint
layout) of GPT-2-small shape (d_model 768, 12 heads x 64, d_ff 3072), 2 layers; the store is
TDB's RawActivationStore with random activations (causal softmax probabilities) and random
backward-pass gradients. Cases (upstream MLP neuron at layer 0, token T/2; downstream subnode at
layer 1; one layer derived, ``DstConfig(layer_indices=[...])``):

  attn_value_in_edge_attribution, attn_key_in_edge_attribution, attn_query_in_edge_attribution,
  mlp_in_edge_attribution            in-edges of layer 1 from the upstream neuron
  grad_of_single_subnode_attribution V subnode (q T-1, k T/2, head 3) at layer 1
  attn_out_edge_attribution, mlp_out_edge_attribution   layer 0's nodes into that V subnode
  attn_write_to_latent_summed_over_heads   token pairs of layer 1 into attention-autoencoder
                                     latent 5 (256 latents on resid_delta_attn, ReLU)
  flattened_attn_write_to_latent_summed_over_heads_batched   the same for every latent; TDB's
                                     original is skipped above T = 256 (it forms 38.7 GB at 1024)

Each (case, variant) runs in a fresh child process: time = median of the calls
(``make_scalar_deriver(...).derive_from_raw(store, FORWARD)`` for "tdb" and "dropin"; the
torch_edges call for "torch"; for "pair" the library call the drop-in makes, nodewrite.derive on
the store synced from TDB's raw store, and the torch_edges call on the same tensors, alternated in
one process), memory = peak RSS during the calls minus the RSS before them (VmHWM reset through
/proc/self/clear_refs). The drop-in's, the library's and the torch outputs are compared with
TDB's (max |diff| / max(1, max |TDB|)).

    NODEWRITE_TDB_SRC=/path/to/transformer-debugger python tools/bench_tdb_edges.py \
        [--tokens 1024] [--threads 2] [--reps 5] [--cases a,b] [--variants tdb,dropin,pair]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python_tests"))
from bench_tdb_family import fmt_time, peak_rss_mb, reset_peak_rss, rss_now_mb  # noqa: E402

D_MODEL, N_HEADS, D_HEAD, D_FF, N_LAYERS = 768, 12, 64, 3072, 2
CASES = (
    "attn_value_in_edge_attribution",
    "attn_key_in_edge_attribution",
    "attn_query_in_edge_attribution",
    "mlp_in_edge_attribution",
    "grad_of_single_subnode_attribution",
    "attn_out_edge_attribution",
    "mlp_out_edge_attribution",
    "attn_write_to_latent_summed_over_heads",
    "flattened_attn_write_to_latent_summed_over_heads_batched",
)
#: Cases TDB's original cannot run at GPT-2-small shape: it forms (T, T, heads, d_model) floats
#: (38.7 GB at T = 1024), so its variant is skipped above this many tokens (an allocation that
#: size would be met by the OOM killer, not an exception).
TDB_MAX_TOKENS = {"flattened_attn_write_to_latent_summed_over_heads_batched": 256}
N_LATENTS = 256
LATENT = 5
VARIANTS = ("tdb", "dropin", "pair", "torch")
DEFAULT_VARIANTS = ("tdb", "dropin", "pair")


def build(n_tokens: int, model_dir: str):
    import torch
    from neuron_explainer.models.model_component_registry import ActivationLocationType as A

    import tdb_support
    from nodewrite.tdb.local import LocalModelContext, make_model

    if not os.path.exists(os.path.join(model_dir, "config.json")):
        make_model(model_dir, n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, ctx_window=max(1024, n_tokens))
    ctx = LocalModelContext(model_dir)
    g = torch.Generator().manual_seed(0)
    T = n_tokens

    def rn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    def probs():
        logits = rn(T, T, N_HEADS)
        mask = torch.ones(T, T, dtype=torch.bool).tril()[:, :, None]
        return torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=1)

    acts = {(A.RESID_POST_EMBEDDING.value, None, "forward"): rn(T, D_MODEL)}
    for l in range(N_LAYERS):
        acts[(A.RESID_POST_ATTN.value, l, "forward")] = rn(T, D_MODEL)
        acts[(A.RESID_POST_MLP.value, l, "forward")] = rn(T, D_MODEL)
        acts[(A.ATTN_QK_PROBS.value, l, "forward")] = probs()
        acts[(A.ATTN_VALUE.value, l, "forward")] = rn(T, N_HEADS, D_HEAD)
        acts[(A.MLP_POST_ACT.value, l, "forward")] = torch.nn.functional.gelu(rn(T, D_FF))
        acts[(A.ATTN_QK_PROBS.value, l, "backward")] = rn(T, T, N_HEADS, scale=1e-3)
        acts[(A.ATTN_WEIGHTED_SUM_OF_VALUES.value, l, "backward")] = rn(T, N_HEADS, D_HEAD, scale=1e-3)
        acts[(A.MLP_POST_ACT.value, l, "backward")] = rn(T, D_FF, scale=1e-3)
        acts[(A.RESID_DELTA_ATTN.value, l, "forward")] = rn(T, D_MODEL)
    states = {l: {"encoder.weight": rn(N_LATENTS, D_MODEL, scale=0.05), "decoder.weight": rn(D_MODEL, N_LATENTS, scale=0.05),
                  "pre_bias": rn(D_MODEL, scale=0.1), "latent_bias": rn(N_LATENTS, scale=0.1)} for l in range(N_LAYERS)}
    ae_ctx = tdb_support.make_autoencoder_context("resid_delta_attn", states)
    with torch.no_grad():  # the online latents are the autoencoder's encoding of its input, as TDB records them
        for l in range(N_LAYERS):
            acts[(A.ONLINE_ATTENTION_AUTOENCODER_LATENT.value, l, "forward")] = ae_ctx.get_autoencoder(l).encode(
                acts[(A.RESID_DELTA_ATTN.value, l, "forward")]).detach()
    return ctx, tdb_support.make_raw_store(acts), acts, ae_ctx


def dst_config(case: str, ctx, T: int, ae_ctx=None):
    from neuron_explainer.activations.derived_scalars.indexing import (
        AttnSubNodeIndex,
        NodeIndex,
        PreOrPostAct,
        TraceConfig,
    )
    from neuron_explainer.activations.derived_scalars.scalar_deriver import DstConfig
    from neuron_explainer.models.autoencoder_context import MultiAutoencoderContext
    from neuron_explainer.models.model_component_registry import ActivationLocationType, NodeType, PassType

    if "latent" in case:
        multi = MultiAutoencoderContext.from_autoencoder_context_list([ae_ctx])
        kw = {}
        if not case.endswith("_batched"):
            node = NodeIndex(node_type=NodeType.ATTENTION_AUTOENCODER_LATENT, layer_index=1, tensor_indices=(None, LATENT),
                             pass_type=PassType.FORWARD)
            kw["trace_config"] = TraceConfig(node_index=node, pre_or_post_act=PreOrPostAct.POST, detach_layer_norm_scale=False)
        return DstConfig(model_context=ctx, multi_autoencoder_context=multi, layer_indices=[1], **kw)

    if "in_edge" in case:
        node = NodeIndex(node_type=NodeType.MLP_NEURON, layer_index=0, tensor_indices=(T // 2, 7), pass_type=PassType.FORWARD)
        return DstConfig(model_context=ctx, node_index_for_attribution=node, layer_indices=[1])
    node = AttnSubNodeIndex(node_type=NodeType.ATTENTION_HEAD, layer_index=1, tensor_indices=(T - 1, T // 2, 3),
                            pass_type=PassType.FORWARD, q_k_or_v=ActivationLocationType.ATTN_VALUE)
    layers = [1] if case == "grad_of_single_subnode_attribution" else [0]
    return DstConfig(model_context=ctx, node_index_for_attribution=node, layer_indices=layers)


def torch_callable(case: str, ctx, acts, T: int, ae_ctx=None):
    """The hand-written formulation: nodewrite.tdb.torch_edges on the raw tensors."""
    from nodewrite.tdb import edges, torch_edges as te

    tr = ctx.get_or_create_model()
    a = lambda loc, l, p="forward": acts[(loc, l, p)]  # noqa: E731
    import torch

    if "latent" in case:
        w_o = ctx.get_weight(__import__("neuron_explainer.models.model_component_registry", fromlist=["x"]).WeightLocationType.ATTN_TO_RESIDUAL, 1)
        enc = ae_ctx.get_autoencoder(1).encoder.weight.detach()
        ae = ae_ctx.get_autoencoder(1)
        z = torch.relu((a("resid.delta_attn", 1) - ae.pre_bias.detach()) @ enc.T + ae.latent_bias.detach())
        p, v = a("attn.qk_probs", 1), a("attn.v", 1)
        if case.endswith("_batched"):
            def batched():  # per query row: (T, T, heads, n_latents) is never formed
                m = torch.einsum("khe,hed->khd", v, w_o) @ enc.T
                live = (z > 0).to(m.dtype)
                return torch.cat([torch.einsum("kh,khj->kj", p[q, : q + 1], m[: q + 1]) * live[q] for q in range(T)])
            return batched
        return lambda: te.attn_write_to_latent(case, p=p, v=v, v_out=None, w_o=w_o, z=z, encoder=enc, latent=LATENT)

    w0 = edges.layer_weights(tr, 0, torch.device("cpu"), torch.float32)
    w1 = edges.layer_weights(tr, 1, torch.device("cpu"), torch.float32)
    u, n = T // 2, 7
    write = a("mlp.post_act", 0)[u, n] * w0.w_out[n]
    if "in_edge" in case:
        side_x = a("resid.post_attn", 1) if case == "mlp_in_edge_attribution" else a("resid.post_mlp", 0)
        grad = {"attn_value_in_edge_attribution": a("attn.v_out", 1, "backward"),
                "mlp_in_edge_attribution": a("mlp.post_act", 1, "backward")}.get(case, a("attn.qk_probs", 1, "backward"))
        return lambda: te.in_edge(case, layer=1, u=u, write=write, x=side_x, w=w1, grad=grad, detach=False)

    def G():
        return te.subnode_gradient(kind="v", layer_x=a("resid.post_mlp", 0), w=w1, index=(T - 1, T // 2, 3),
                                   grad=a("attn.v_out", 1, "backward"), detach=False)

    if case == "grad_of_single_subnode_attribution":
        return G
    if case == "attn_out_edge_attribution":
        return lambda: te.out_edge(case, G=G(), act=a("attn.qk_probs", 0), v=a("attn.v", 0), w=w0)
    return lambda: te.out_edge(case, G=G(), act=a("mlp.post_act", 0), w=w0)


def child(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(True)
    import nodewrite.tdb
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.activations.derived_scalars.make_scalar_derivers import make_scalar_deriver
    from neuron_explainer.models.model_component_registry import PassType

    ctx, store, acts, ae_ctx = build(args.tokens, args.model_dir)
    ctx.get_or_create_model()
    case, variant = args.case, args.variant
    if variant == "pair":
        return pair(args, ctx, store, acts, ae_ctx)
    if variant == "torch":
        fn = torch_callable(case, ctx, acts, args.tokens, ae_ctx)
        call = lambda: fn()  # noqa: E731
    else:
        if variant == "dropin":
            nodewrite.tdb.install()
        cfg = dst_config(case, ctx, args.tokens, ae_ctx)

        def call():
            d = make_scalar_deriver(DerivedScalarType(case), cfg)
            out = d.derive_from_raw(store, PassType.FORWARD).activations_by_layer_index
            (t,) = out.values()
            return t

    call()  # warm: weights loaded, caches made
    reps = args.reps if variant != "tdb" else args.tdb_reps
    before = rss_now_mb()
    reset_peak_rss()
    samples = []
    out = None
    for _ in range(reps):
        out = None
        t0 = time.perf_counter()
        with torch.no_grad() if variant == "torch" else _null():
            out = call()
        samples.append(time.perf_counter() - t0)
    peak = peak_rss_mb() - before
    torch.save(out.detach().contiguous(), args.out)
    stats = dict(nodewrite.tdb.stats)
    return {"median": statistics.median(samples), "samples": samples, "peak_mb": peak,
            "out_mb": out.numel() * out.element_size() / 2**20, "stats": stats}


def pair(args, ctx, store, acts, ae_ctx) -> dict:
    """The library call the drop-in makes (nodewrite.derive on the store synced from TDB's raw
    store, the same tensors) against the hand-written torch formulation, alternated in this
    process; medians of each."""
    import torch

    import nodewrite.tdb
    from nodewrite.tdb import edges, native_store

    nodewrite.tdb.install()
    case, T = args.case, args.tokens
    cfg = dst_config(case, ctx, T, ae_ctx)
    if "latent" in case:
        node = None if cfg.trace_config is None else cfg.trace_config.node_index
    else:
        node = cfg.node_index_for_attribution
    edge = edges._NativeEdge(case, cfg, node, ctx.get_or_create_model(), detach=False)
    model = edge.model()
    (layer,) = cfg.layer_indices

    def lib():
        with native_store.synced(store) as s:
            return edge.derive(model, s, layer)

    tfn = torch_callable(case, ctx, acts, T, ae_ctx)
    with torch.no_grad():
        lib(), tfn()  # warm
        a, b = [], []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            out = lib()
            a.append(time.perf_counter() - t0)
            del out
            t0 = time.perf_counter()
            tout = tfn()
            b.append(time.perf_counter() - t0)
            del tout
        out = torch.from_numpy(lib())
    torch.save(out.contiguous(), args.out)
    return {"median": statistics.median(a), "torch_median": statistics.median(b), "samples": a, "torch_samples": b,
            "peak_mb": float("nan"), "out_mb": out.numel() * out.element_size() / 2**20, "stats": dict(nodewrite.tdb.stats)}


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--tdb-reps", type=int, default=2)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help="a subset of " + ",".join(VARIANTS) + " (pair: the library call and the torch formulation "
                   "alternated in one process)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", default=None)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    import torch

    if not os.environ.get("NODEWRITE_TDB_SRC"):
        print("bench_tdb_edges: set NODEWRITE_TDB_SRC=/path/to/transformer-debugger")
        return 0
    work = tempfile.mkdtemp(prefix="nodewrite-bench-edges-")
    model_dir = args.model_dir or os.path.join(work, "model")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    print(f"TDB edge DSTs: GPT-2-small shape, T = {args.tokens}, one layer derived, {args.threads} threads; "
          f"medians of {args.tdb_reps} (TDB) / {args.reps} (drop-in, torch) warm calls; peak = RSS growth during the calls")
    print(f"{'case':38s} {'TDB':>10s} {'drop-in':>10s} {'library':>10s} {'torch':>10s} {'TDB/drop-in':>11s} "
          f"{'torch/lib':>9s} {'TDB peak':>9s} {'drop-in pk':>10s} {'out':>7s} {'max diff':>9s} path")
    for case in args.cases.split(","):
        res, outs = {}, {}
        for variant in args.variants.split(","):
            if variant == "tdb" and args.tokens > TDB_MAX_TOKENS.get(case, args.tokens):
                print(f"  {case}: TDB's original not run at T = {args.tokens} (it forms (T, T, heads, d_model) floats)")
                continue
            out = os.path.join(work, f"{case}.{variant}.pt")
            cmd = [sys.executable, __file__, "--child", "--case", case, "--variant", variant, "--out", out,
                   "--tokens", str(args.tokens), "--threads", str(args.threads), "--reps", str(args.reps),
                   "--tdb-reps", str(args.tdb_reps), "--model-dir", model_dir]
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                res[variant] = None
                print(f"  {case} {variant}: failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
                continue
            res[variant] = json.loads(r.stdout.strip().splitlines()[-1])
            outs[variant] = torch.load(out)
            os.remove(out)
        diffs = []
        if "tdb" in outs:
            ref = outs["tdb"]
            scale = max(1.0, float(ref.abs().max()))
            for v in ("dropin", "pair", "torch"):
                if v in outs:
                    diffs.append(float((outs[v].reshape(ref.shape) - ref).abs().max()) / scale)

        def med(v, key="median"):
            return fmt_time(res[v][key]) if res.get(v) else "-"

        tdb_s, drop_s = (res[v]["median"] if res.get(v) else None for v in ("tdb", "dropin"))
        torch_s = res["pair"]["torch_median"] if res.get("pair") else (res["torch"]["median"] if res.get("torch") else None)
        lib_s = res["pair"]["median"] if res.get("pair") else None

        def pk(v):
            return f"{res[v]['peak_mb']:.0f} MB" if res.get(v) else "-"

        path = res["dropin"]["stats"] if res.get("dropin") else {}
        path_s = ",".join(f"{k}={path[k]}" for k in ("native", "torch", "original") if path.get(k))
        out_mb = next((f"{r['out_mb']:.0f} MB" for r in res.values() if r), "-")
        ratio1 = f"{tdb_s / drop_s:.0f}x" if tdb_s and drop_s else "-"
        ratio2 = f"{torch_s / lib_s:.1f}x" if torch_s and lib_s else "-"
        print(f"{case:38s} {med('tdb'):>10s} {med('dropin'):>10s} {med('pair'):>10s} "
              f"{fmt_time(torch_s) if torch_s else '-':>10s} {ratio1:>11s} {ratio2:>9s} {pk('tdb'):>9s} {pk('dropin'):>10s} "
              f"{out_mb:>7s} {max(diffs) if diffs else float('nan'):9.2e} {path_s}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
