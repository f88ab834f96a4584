#!/usr/bin/env python3
"""nodewrite against TransformerLens (TL) on the same model and cache: per-head direct logit
attribution (DLA) of one layer, and the per-(query, key, head) DLA that TL cannot do.

GPT-2-small shape: d_model 768, 12 heads x 64, d_mlp 3072, d_vocab 50257, T = 1024 tokens, one
batch element, a HookedTransformer with seeded random weights built offline from a config. The
model has --n-layers layers (default 1): TL's ``cache.stack_head_results`` computes the head results
of EVERY layer below its ``layer`` argument through ``compute_head_results``, which builds each
layer's (batch, T, heads, d_head, d_model) product, so a 1-layer model is what makes TL's call
measure one layer (with 12 layers it does 12 times the work; nodewrite's cost is per layer):
``--n-layers 12`` measures TL's API as a GPT-2-small user meets it.

- TL: ``cache.stack_head_results(apply_ln=True)`` (centred, divided by ``ln_final.hook_scale``),
  then the projection onto ``tokens_to_residual_directions(a) - ...(b)``; the cached
  ``hook_result`` entries are dropped before every repeat (TL would otherwise reuse them).
- nodewrite: ``nodewrite.tl.logit_directions`` (the same map as one direction per position) and
  ``nodewrite.tl.head_logit_attrs`` (one ``derive`` of
  ``attn_write_to_final_residual_grad_per_sequence_token``); also timed with the adapters
  (``model_from`` + ``store_from``) included.
- nodewrite's per-(q, k, h) DLA, (T, T, heads), ``nodewrite.tl.qkh_logit_attrs``.

Each approach runs in its own child process (same setup: model, tokens, run_with_cache); the
extra peak resident memory of the approach is VmHWM after it minus VmRSS before it, with the
peak reset in between (/proc/self/clear_refs). The results are compared across processes.
Medians over repeats. Prints, never asserts.

Usage: bench_tl.py [--T 1024] [--d-vocab 50257] [--n-layers 1] [--repeats-tl 3] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _memory import reset_peak, vm  # noqa: E402


def setup(args):
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.set_grad_enabled(False)
    cfg = HookedTransformerConfig(
        n_layers=args.n_layers, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=args.d_vocab,
        n_ctx=max(1024, args.T), act_fn="gelu_new", normalization_type="LN", seed=0,
    )
    torch.manual_seed(0)
    model = HookedTransformer(cfg)
    model.eval()
    g = torch.Generator().manual_seed(0)
    toks = torch.randint(0, args.d_vocab, (1, args.T), generator=g)
    a = torch.randint(0, args.d_vocab, (1, args.T), generator=g)
    b = torch.randint(0, args.d_vocab, (1, args.T), generator=g)
    _, cache = model.run_with_cache(toks)
    return model, cache, a, b


def child(args):
    import torch

    model, cache, a, b = setup(args)
    layer = args.n_layers - 1
    H = model.cfg.n_heads
    times = []
    before = vm()["VmRSS"]
    can_reset = reset_peak()
    if args.child == "tl_heads":
        out = None
        for _ in range(args.repeats_tl):
            for l in range(model.cfg.n_layers):
                cache.cache_dict.pop(f"blocks.{l}.attn.hook_result", None)
            t0 = time.perf_counter()
            stack = cache.stack_head_results(layer=layer + 1, apply_ln=True)[layer * H : (layer + 1) * H]
            dirs = model.tokens_to_residual_directions(a) - model.tokens_to_residual_directions(b)
            out = (stack * dirs).sum(-1)[:, 0].T.contiguous()  # (T, H)
            times.append(time.perf_counter() - t0)
            del stack
        result = out.numpy()
    else:
        import nodewrite as nw
        import nodewrite.tl as ntl

        m = ntl.model_from(model)
        s = ntl.store_from(cache, batch=0, layers=[layer])
        g = ntl.logit_directions(model, cache, a, b)
        fn = ntl.head_logit_attrs if args.child in ("nw_heads", "nw_heads_e2e") else ntl.qkh_logit_attrs
        result = fn(m, s, layer, g)  # warm-up
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            if args.child == "nw_heads_e2e":
                m = ntl.model_from(model)
                s = ntl.store_from(cache, batch=0, layers=[layer])
                g = ntl.logit_directions(model, cache, a, b)
            result = fn(m, s, layer, g)
            times.append(time.perf_counter() - t0)
        if args.child == "nw_qkh":
            np.save(os.path.join(args.tmp, "nw_qkh_sum.npy"), result.sum(1))
            result = None
        extra = {"nw_threads": nw.get_num_threads()}
    peak = vm()["VmHWM"]
    if result is not None:
        np.save(os.path.join(args.tmp, f"{args.child}.npy"), result)
    info = {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "n": len(times),
            "peak_extra_bytes": peak - before if can_reset else None, "torch_threads": torch.get_num_threads()}
    if args.child != "tl_heads":
        info.update(extra)
    print("RESULT " + json.dumps(info))


def fmt_t(s):
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def fmt_b(n):
    if n is None:
        return "n/a"
    if n < 1 << 20:
        return f"{n / 1024:.0f} KiB"
    if n < 1 << 30:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n / (1 << 30):.2f} GiB"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--T", type=int, default=1024)
    p.add_argument("--d-vocab", type=int, default=50257)
    p.add_argument("--n-layers", type=int, default=1)
    p.add_argument("--repeats-tl", type=int, default=3)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--child", default=None)
    p.add_argument("--tmp", default=None)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    import torch
    import transformer_lens  # noqa: F401

    import nodewrite as nw

    print(f"GPT-2-small shape (d_model 768, 12 heads x 64, d_mlp 3072), d_vocab {args.d_vocab}, T = {args.T}, "
          f"{args.n_layers} layer(s), DLA of layer {args.n_layers - 1}; torch {torch.__version__}, nodewrite {nw.__version__}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("tl_heads", "nw_heads", "nw_heads_e2e", "nw_qkh"):
            cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--tmp", tmp, "--T", str(args.T),
                   "--d-vocab", str(args.d_vocab), "--n-layers", str(args.n_layers),
                   "--repeats-tl", str(args.repeats_tl), "--repeats", str(args.repeats)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if out.returncode != 0 or not line:
                print(f"{name}: failed (exit {out.returncode})\n{out.stderr[-2000:]}")
                return
            rows[name] = json.loads(line[0][7:])
        tl = np.load(os.path.join(tmp, "tl_heads.npy"))
        nwh = np.load(os.path.join(tmp, "nw_heads.npy"))
        qsum = np.load(os.path.join(tmp, "nw_qkh_sum.npy"))
        scale = float(np.max(np.abs(tl)))
        agree = float(np.max(np.abs(nwh - tl))) / scale
        agree_q = float(np.max(np.abs(qsum - tl))) / scale
    t_tl, m_tl = rows["tl_heads"]["median_s"], rows["tl_heads"]["peak_extra_bytes"]
    print()
    print("| what | time (median) | peak RSS extra | vs TL: time | vs TL: memory |")
    print("| --- | ---: | ---: | ---: | ---: |")
    labels = {
        "tl_heads": "TL: `stack_head_results(apply_ln=True)` + projection, per-head DLA (T, 12)",
        "nw_heads": "nodewrite: `nw.tl.head_logit_attrs` (one `derive`), per-head DLA (T, 12)",
        "nw_heads_e2e": "nodewrite, adapters included: `model_from` + `store_from` + `logit_directions` + derive",
        "nw_qkh": "nodewrite: `nw.tl.qkh_logit_attrs`, per-(q, k, h) DLA (T, T, 12) — TL has none",
    }
    for name, r in rows.items():
        if name == "tl_heads":
            rt = rm = "1×"
        else:
            rt = f"{t_tl / r['median_s']:,.0f}× faster"
            rm = f"{100 * r['peak_extra_bytes'] / m_tl:.2f} %" if (m_tl and r["peak_extra_bytes"] is not None) else "n/a"
        print(f"| {labels[name]} | {fmt_t(r['median_s'])} | {fmt_b(r['peak_extra_bytes'])} | {rt} | {rm} |")
    print()
    print(f"agreement: per-head DLA max |nodewrite - TL| = {agree:.1e} of max |TL|; per-(q,k,h) summed over keys: {agree_q:.1e}")
    print(f"repeats: TL {rows['tl_heads']['n']}, nodewrite {rows['nw_heads']['n']}; torch threads {rows['tl_heads']['torch_threads']}, "
          f"nodewrite threads {rows['nw_heads'].get('nw_threads')}; peak RSS extra = VmHWM after - VmRSS before, peak reset in between, one child process per row")


if __name__ == "__main__":
    main()
