#!/usr/bin/env python3
"""TDB's write family (issue 11) through nodewrite.derive / token_writes against hand-written,
contraction-first torch, at GPT-2-small shape (d_model 768, 12 heads x 64, d_ff 3072,
n_vocab 50,257) and T = 1024, one layer, in one process.

Each quantity is timed with a dense G (every row of the (T, d_model) direction non-zero) and
with TDB's usual last-row-only G (its loss reads the last token's logits). Both sides get a
preallocated output where they accept one (nodewrite: out=; torch: out= of its last op):

  unflattened_attn_write_to_final_residual_grad  (T, T, heads)
      torch: torch.mul(p, einsum("khd,qhd->qkh", v, einsum("hdm,qm->qhd", W_O, G)), out=)
  unflattened_attn_write_norm                     (T, T, heads)
      torch: torch.mul(p, norm(einsum("khd,hdm->khm", v, W_O), dim=-1)[None], out=)
  mlp_write_to_final_residual_grad                (T, d_ff), 2.4 G multiply-adds with a dense G
      torch: torch.mul(post, G @ W_out.T, out=), and torch.mm(G, W_out.T, out=).mul_(post) (no
      temporary); the ratio is against the faster of the two
  token writes of 1,000 nodes (+ top-20)          (1000, n_vocab)
      torch: W @ (W_U * g[:, None]) - mean, then topk(20) (W, the nodes' write vectors, is given
      to torch precomputed; nodewrite computes it inside token_writes)

Medians of per-call times: each competitor's warm-up and batches in a row, the competitors
taking turns three times; ratio = torch / nodewrite (>= 1: nodewrite at
least as fast); "peak +MB": extra resident memory of one call (VmHWM after
/proc/self/clear_refs, minus the RSS before it).

Usage: bench_family.py [--quick] [--threads N]   (prints one table; never asserts)
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import fmt_time, per_call_medians  # noqa: E402
from bench_sets import peak_extra_mb  # noqa: E402

import nodewrite as nw  # noqa: E402

D_MODEL, N_HEADS, D_HEAD, D_FF, N_VOCAB, T = 768, 12, 64, 3072, 50257, 1024


def main() -> None:
    quick = "--quick" in sys.argv
    if "--threads" in sys.argv:
        nw.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    import torch

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(N_HEADS, T, T, generator=g)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    p = torch.softmax(logits.masked_fill(~causal, float("-inf")), dim=-1).permute(1, 2, 0).contiguous()
    del logits
    v = torch.randn(T, N_HEADS, D_HEAD, generator=g)
    w_o = torch.randn(N_HEADS, D_HEAD, D_MODEL, generator=g) * 0.02
    post = torch.nn.functional.gelu(torch.randn(T, D_FF, generator=g))
    w_out = torch.randn(D_FF, D_MODEL, generator=g) * 0.02
    w_u = torch.randn(D_MODEL, N_VOCAB, generator=g) * 0.02
    gain = 1.0 + 0.1 * torch.randn(D_MODEL, generator=g)
    g_dense = torch.randn(T, D_MODEL, generator=g) * 0.01
    g_last = torch.zeros(T, D_MODEL)
    g_last[-1] = g_dense[-1]

    model = nw.Model(n_layers=1, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_ff=D_FF)
    model.set_weight("attn.to_residual", 0, w_o, copy=False)
    model.set_weight("mlp.to_residual", 0, w_out, copy=False)
    model.set_weight("unembedding", None, w_u, copy=False)
    model.set_weight("layer_norm_gain.final", None, gain, copy=False)
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, p)
    store.put("attn.v", 0, v)
    store.put("mlp.post_act", 0, post)

    print(f"nodewrite {nw.__version__} ({nw.get_num_threads()} threads), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), Python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"GPT-2-small shape, T = {T}, n_vocab {N_VOCAB}, float32, one layer")

    out_qkh = torch.empty(T, T, N_HEADS)
    t_qkh = torch.empty(T, T, N_HEADS)
    out_mlp = torch.empty(T, D_FF)
    t_mlp = torch.empty(T, D_FF)

    def attn_grad_torch(G):
        return lambda: torch.mul(p, torch.einsum("khd,qhd->qkh", v, torch.einsum("hdm,qm->qhd", w_o, G)), out=t_qkh)

    def attn_norm_torch():
        return torch.mul(p, torch.linalg.norm(torch.einsum("khd,hdm->khm", v, w_o), dim=-1)[None], out=t_qkh)

    def mlp_grad_torch(G):
        return lambda: torch.mul(post, G @ w_out.T, out=t_mlp)

    def mlp_grad_torch_in_place(G):
        return lambda: torch.mm(G, w_out.T, out=t_mlp).mul_(post)

    def derive(dst, G=None, out=None):
        return lambda: nw.derive(model, store, dst, 0, direction=G, out=out)

    rng = np.random.default_rng(0)
    nodes = np.stack([rng.integers(0, T, 1000), rng.integers(0, D_FF, 1000)], axis=1)
    writes = torch.from_numpy(nw.node_writes(model, store, "mlp_neuron", 0, nodes))

    def token_torch(k=None):
        def run():
            u = writes @ (w_u * gain[:, None])
            u -= u.mean(dim=1, keepdim=True)
            return u if k is None else torch.topk(u, k, dim=1)
        return run

    # agreement (printed)
    a = nw.derive(model, store, "unflattened_attn_write_to_final_residual_grad", 0, direction=g_dense)
    b = attn_grad_torch(g_dense)().numpy()
    tv_nw, ti_nw = nw.top_token_writes(model, store, "mlp_neuron", 0, nodes, 20)
    tv_t, ti_t = token_torch(20)()
    print(f"agreement: attn grad max|diff|/max {np.abs(a - b).max() / np.abs(b).max():.1e}; "
          f"top-20 ids equal {float((ti_t.numpy() == ti_nw).mean()) * 100:.2f}%\n")

    s = 3 if quick else 1
    groups = [
        ("unflattened_attn_write_to_final_residual_grad, dense G", 8 // s + 1, 2, {
            "nodewrite derive(out=)": derive("unflattened_attn_write_to_final_residual_grad", g_dense, out_qkh),
            "torch contraction-first (out=)": attn_grad_torch(g_dense),
        }),
        ("unflattened_attn_write_to_final_residual_grad, last-row G", 8 // s + 1, 2, {
            "nodewrite derive(out=)": derive("unflattened_attn_write_to_final_residual_grad", g_last, out_qkh),
            "torch contraction-first (out=)": attn_grad_torch(g_last),
        }),
        ("unflattened_attn_write_norm", 8 // s + 1, 2, {
            "nodewrite derive(out=)": derive("unflattened_attn_write_norm", None, out_qkh),
            "torch contraction-first (out=)": attn_norm_torch,
        }),
        ("mlp_write_to_final_residual_grad, dense G", 8 // s + 1, 2, {
            "nodewrite derive(out=)": derive("mlp_write_to_final_residual_grad", g_dense, out_mlp),
            "torch mul(post, G @ W_out.T, out=)": mlp_grad_torch(g_dense),
            "torch mm(G, W_out.T, out=).mul_(post)": mlp_grad_torch_in_place(g_dense),
        }),
        ("mlp_write_to_final_residual_grad, last-row G", 8 // s + 1, 2, {
            "nodewrite derive(out=)": derive("mlp_write_to_final_residual_grad", g_last, out_mlp),
            "torch mul(post, G @ W_out.T, out=)": mlp_grad_torch(g_last),
            "torch mm(G, W_out.T, out=).mul_(post)": mlp_grad_torch_in_place(g_last),
        }),
        ("token writes, 1,000 nodes", 4 // s + 1, 1, {
            "nodewrite token_writes": lambda: nw.token_writes(model, store, "mlp_neuron", 0, nodes),
            "torch W @ (W_U * g[:, None]) - mean": token_torch(),
        }),
        ("token writes, 1,000 nodes, top-20", 4 // s + 1, 1, {
            "nodewrite top_token_writes(k=20)": lambda: nw.top_token_writes(model, store, "mlp_neuron", 0, nodes, 20),
            "torch ... + topk(20)": token_torch(20),
        }),
    ]
    print(f"{'quantity':<58} {'implementation':<38} {'median':>10} {'ratio':>8} {'peak +MB':>9}")
    for title, batches, calls, fns in groups:
        med = per_call_medians(fns, batches, calls, warmup=1, rounds=3)
        nw_name = next(iter(fns))
        base = min(v for k, v in med.items() if k != nw_name)
        for name, fn in fns.items():
            ratio = f"{base / med[name]:.2f}x" if name == nw_name else ""
            print(f"{title:<58} {name:<38} {fmt_time(med[name]):>10} {ratio:>8} {peak_extra_mb(fn):9.1f}")
            title = ""
    print("\nratio = torch / nodewrite (>= 1: nodewrite at least as fast)")


if __name__ == "__main__":
    main()
