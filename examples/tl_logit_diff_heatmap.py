#!/usr/bin/env python3
"""Which (query, key, head) of one layer push a logit difference, on a TransformerLens model.

For one layer, every attention node (query q, key k, head h) writes
``pattern[h, q, k] * v[k, h] @ W_O[h]`` into the residual stream; projected onto TransformerLens's
direct-logit-attribution direction for ``logit[correct] - logit[incorrect]`` at the query position
(centred, divided by the cached final LayerNorm scale, through ``W_U``: exactly what TL's
``cache.logit_attrs`` computes per head) this gives a (T, T, n_heads) map that TransformerLens itself
cannot produce (its per-head stack already sums over keys). Summed over keys it equals TL's per-head
logit attribution; the script checks that and prints the largest difference.

Output: one heatmap PNG per head (query x key) and one grid of all heads in --out, and the top
nodes as a table.

By default the model is a GPT-2-shaped HookedTransformer with seeded random weights, built
offline from a config (nothing is downloaded). --pretrained NAME loads a real model through
``HookedTransformer.from_pretrained(NAME)`` instead (that may download it, or read the Hugging Face
cache; set HF_HUB_OFFLINE=1 to forbid downloads).

    python examples/tl_logit_diff_heatmap.py --out build/tl_heatmap
    python examples/tl_logit_diff_heatmap.py --pretrained gpt2 --prompt "When Mary and John went to the store, John gave a drink to" --correct " Mary" --incorrect " John" --layer 9
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def build_random_model(args):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=args.n_layers, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=args.d_vocab,
        n_ctx=1024, act_fn="gelu_new", normalization_type="LN", seed=args.seed,
        initializer_range=args.init_range,
    )
    return HookedTransformer(cfg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/tl_heatmap", help="output directory for the PNGs")
    p.add_argument("--layer", type=int, default=None, help="the layer (default: the last)")
    p.add_argument("--pretrained", default=None, help="a TransformerLens model name (may download; default: a random model)")
    p.add_argument("--prompt", default=None, help="the prompt (with --pretrained)")
    p.add_argument("--correct", default=None, help="the correct answer token (str with --pretrained, else an id)")
    p.add_argument("--incorrect", default=None, help="the incorrect answer token")
    p.add_argument("--tokens", type=int, default=16, help="random model: number of random tokens")
    p.add_argument("--n-layers", type=int, default=2, help="random model: layers")
    p.add_argument("--d-vocab", type=int, default=2000, help="random model: vocabulary size (GPT-2: 50257)")
    p.add_argument("--init-range", type=float, default=0.08, help="random model: weight std (larger = sharper attention)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=12, help="rows of the top-nodes table")
    args = p.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    import nodewrite as nw
    import nodewrite.tl as ntl

    torch.set_grad_enabled(False)  # analysis only
    torch.manual_seed(args.seed)
    if args.pretrained:
        from transformer_lens import HookedTransformer

        model = HookedTransformer.from_pretrained(args.pretrained, device="cpu")
        prompt = args.prompt or "When Mary and John went to the store, John gave a drink to"
        toks = model.to_tokens(prompt)
        correct = args.correct or " Mary"
        incorrect = args.incorrect or " John"
        labels = [repr(s)[1:-1] for s in model.to_str_tokens(prompt)]
        title_pair = f"logit({correct!r}) - logit({incorrect!r})"
    else:
        model = build_random_model(args)
        g = torch.Generator().manual_seed(args.seed)
        toks = torch.randint(0, args.d_vocab, (1, args.tokens), generator=g)
        correct = int(args.correct) if args.correct else 1
        incorrect = int(args.incorrect) if args.incorrect else 2
        labels = [str(int(t)) for t in toks[0]]
        title_pair = f"logit[{correct}] - logit[{incorrect}] (random GPT-2-shaped model)"
    model.eval()
    layer = model.cfg.n_layers - 1 if args.layer is None else args.layer
    H, T = model.cfg.n_heads, toks.shape[1]

    with torch.no_grad():
        _, cache = model.run_with_cache(toks)

    t0 = time.perf_counter()
    m = ntl.model_from(model)  # borrowed views of W_O, W_out, W_U
    s = ntl.store_from(cache, batch=0, layers=[layer])  # hook_pattern, hook_v, mlp.hook_post, by strides
    g = ntl.logit_directions(model, cache, correct, incorrect)  # (T, d_model): TL's DLA map per position
    qkh = ntl.qkh_logit_attrs(m, s, layer, g)  # (T, T, H) [query, key, head]
    dt = time.perf_counter() - t0

    # Check against TransformerLens: summed over keys, the per-head DLA.
    tl_heads = cache.logit_attrs(cache.stack_head_results(), correct, incorrect)[layer * H : (layer + 1) * H, 0].T
    err = float(np.max(np.abs(qkh.sum(1) - tl_heads.numpy())) / max(1e-30, float(tl_heads.abs().max())))
    print(f"layer {layer}: per-(q, k, h) contributions to {title_pair}, T = {T}, {H} heads")
    print(f"nodewrite: {dt * 1e3:.1f} ms (model_from + store_from + directions + derive); "
          f"summed over keys vs TL's cache.logit_attrs(stack_head_results()): max rel diff {err:.1e}")

    os.makedirs(args.out, exist_ok=True)
    vmax = float(np.max(np.abs(qkh))) or 1.0
    tick = labels if T <= 32 else None
    for h in range(H):
        fig, ax = plt.subplots(figsize=(5.2, 4.4))
        im = ax.imshow(qkh[:, :, h], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(f"L{layer}H{h}: contribution to {title_pair}", fontsize=8)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        if tick:
            ax.set_xticks(range(T), tick, rotation=90, fontsize=6)
            ax.set_yticks(range(T), tick, fontsize=6)
        fig.colorbar(im, ax=ax, shrink=0.8)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, f"L{layer}H{h}.png"), dpi=90)
        plt.close(fig)
    cols = 4 if H > 4 else H
    rows = (H + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.2 * rows + 0.6), squeeze=False)
    for h in range(rows * cols):
        ax = axes[h // cols][h % cols]
        if h >= H:
            ax.axis("off")
            continue
        im = ax.imshow(qkh[:, :, h], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(f"L{layer}H{h}  (sum {qkh[:, :, h].sum():+.2f})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"per-(query, key, head) direct logit attribution, layer {layer}\n{title_pair}; rows: query, columns: key", fontsize=9)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6)
    grid = os.path.join(args.out, f"L{layer}_all_heads.png")
    fig.savefig(grid, dpi=80)
    plt.close(fig)

    order = np.argsort(-np.abs(qkh).ravel())[: args.top]
    print(f"\ntop {args.top} nodes by |contribution|:")
    print(f"{'rank':>4}  {'head':>6}  {'query':>14}  {'key':>14}  {'contribution':>12}  {'attn prob':>9}")
    pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]
    for r, flat in enumerate(order, 1):
        q, k, h = np.unravel_index(flat, qkh.shape)
        print(f"{r:>4}  L{layer}H{h:<3}  {q:>3} {labels[q][:9]:>10}  {k:>3} {labels[k][:9]:>10}  {qkh[q, k, h]:>+12.4f}  {float(pattern[h, q, k]):>9.3f}")
    print(f"\nwrote {H} per-head heatmaps and {grid}")


if __name__ == "__main__":
    main()
