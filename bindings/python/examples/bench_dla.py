#!/usr/bin/env python3
"""Per-head direct logit attribution of one layer, GPT-2-small shape (d_model 768, 12 heads x 64),
T = 1024, float32, in one process: nodewrite's attn_write_to_final_residual_grad_per_sequence_token
(out[q, h] = (z[q, h] @ W_O[h]) . g[q]) against the same numbers written in torch from the same
arrays. A benchmark, not a test (prints one table; never asserts).

  nodewrite, attn.v_out in the store   z (TransformerLens's hook_z) read: W_O[h] g[q] first, one
                                       (T x d_model) @ (d_model x heads.d_head) product, then dots
  nodewrite, p and v only              the sum over keys of p . v recomputed (no attn.v_out)
  torch (z @ W_O) . g                  TransformerLens's route: the (T, heads, d_model) head results,
                                       then the dot with g[q] (einsum, then mul and sum)
  torch einsum qhe,hed,qd->qh          one three-operand einsum (torch picks the order)
  torch contraction-first              (g @ W_O^T) viewed (T, heads, d_head), times z, summed

Every row is a median of per-call times (_timing.per_call_medians); ratio = each row's time /
nodewrite's with attn.v_out (> 1: nodewrite is faster). g is dense (every row non-zero), as a
logit-difference direction at every position is.

Usage: bench_dla.py [--quick] [--threads N]
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import fmt_time, per_call_medians  # noqa: E402

import nodewrite as nw  # noqa: E402

D_MODEL, N_HEADS, D_HEAD, T = 768, 12, 64, 1024
DST = "attn_write_to_final_residual_grad_per_sequence_token"


def main() -> None:
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare against")
        return
    quick = "--quick" in sys.argv
    if "--threads" in sys.argv:
        n = int(sys.argv[sys.argv.index("--threads") + 1])
        nw.set_num_threads(n)
        torch.set_num_threads(n)
    torch.set_grad_enabled(False)

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(N_HEADS, T, T, generator=g).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    p = logits.softmax(-1).permute(1, 2, 0).contiguous()  # (q, k, h)
    v = torch.randn(T, N_HEADS, D_HEAD, generator=g)
    z = torch.einsum("qkh,khe->qhe", p, v).contiguous()  # hook_z of the same forward pass
    w_o = torch.randn(N_HEADS, D_HEAD, D_MODEL, generator=g) * 0.02
    grad = torch.randn(T, D_MODEL, generator=g) * 0.01

    model = nw.Model(n_layers=1, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_ff=4 * D_MODEL)
    model.set_weight("attn.to_residual", 0, w_o, copy=False)
    with_z, without_z = nw.ActivationStore(), nw.ActivationStore()
    for s in (with_z, without_z):
        s.put("attn.qk_probs", 0, p)
        s.put("attn.v", 0, v)
    with_z.put("attn.v_out", 0, z)

    out = np.empty((T, N_HEADS), np.float32)
    t_out = torch.empty(T, N_HEADS)
    w_rows = w_o.reshape(N_HEADS * D_HEAD, D_MODEL)
    fns = {
        "nodewrite, attn.v_out in the store": lambda: nw.derive(model, with_z, DST, 0, direction=grad, out=out),
        "nodewrite, p and v only": lambda: nw.derive(model, without_z, DST, 0, direction=grad, out=out),
        "torch (z @ W_O) . g": lambda: torch.sum(torch.einsum("qhe,hed->qhd", z, w_o) * grad[:, None, :], -1, out=t_out),
        "torch einsum qhe,hed,qd->qh": lambda: torch.einsum("qhe,hed,qd->qh", z, w_o, grad),
        "torch contraction-first": lambda: torch.sum(torch.mm(grad, w_rows.T).view(T, N_HEADS, D_HEAD) * z, -1, out=t_out),
    }

    # The same numbers first (float32 rounding apart).
    ref = torch.einsum("qhe,hed,qd->qh", z.double(), w_o.double(), grad.double()).numpy()
    scale = max(1.0, float(np.abs(ref).max()))
    for name, fn in fns.items():
        r = fn()
        got = np.asarray(r if not isinstance(r, torch.Tensor) else r.numpy())
        err = float(np.abs(got - ref).max()) / scale
        if err > 1e-5:
            raise SystemExit(f"{name}: max |diff| vs float64 = {err:.2e} x scale, > 1e-5")

    batches, calls = (5, 3) if quick else (15, 5)
    med = per_call_medians(fns, batches=batches, calls=calls, rounds=1 if quick else 3)
    base = med["nodewrite, attn.v_out in the store"]
    print(f"nodewrite {nw.__version__} ({nw.get_num_threads()} threads), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), Python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"GPT-2-small shape, T = {T}, float32; {DST}, dense g")
    print(f"{'':40s} {'median':>10s}  {'time / nodewrite(v_out)':>24s}")
    for name, sec in med.items():
        ratio = f"{sec / base:6.2f}x" if name.startswith("torch") or name.endswith("only") else ""
        print(f"{name:40s} {fmt_time(sec):>10s}  {ratio:>24s}")


if __name__ == "__main__":
    main()
