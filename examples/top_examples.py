#!/usr/bin/env python3
"""Each node's top dataset examples with nodewrite.ray: a derived scalar over many prompts on Ray,
the k largest values per neuron (or head), and the prompt text around each position.

Offline: a HookedTransformer with seeded random weights built from a config (no hub), and
prompts made of words of a small made-up vocabulary (token id i is word i), so the "text" is
readable but means nothing; with a real model, pass its tokenizer's output as ``tokens`` and
``model.to_string`` for the text.

    python examples/top_examples.py                       # a local Ray (started here)
    python examples/top_examples.py --address auto        # an existing cluster (ray start --head ...)
    make example-ray                                      # the first, in .venv-eco

Options: --prompts 512 --T 24 --dst mlp_write_norm --layer 1 --k 5 --nodes 4 --workers 2
(--dst attn_write_norm_per_sequence_token shows heads; an unflattened attention DST shows
(query, key) pairs).
"""

from __future__ import annotations

import argparse

import numpy as np

WORDS = ("the a one my your big small red blue green old new cat dog bird fish tree house road river "
         "city sun moon star rain snow wind fire stone book song door light dark fast slow warm cold "
         "runs sees finds makes takes gives keeps holds reads writes sings walks flies swims jumps "
         "and but or so then when where while if because over under near far").split()


class RandomModel:
    """The zero-argument callable each Ray actor calls once (so only this small object travels)."""

    def __init__(self, n_ctx: int, seed: int = 0):
        self.n_ctx, self.seed = n_ctx, seed

    def __call__(self):
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        cfg = HookedTransformerConfig(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=256,
                                      d_vocab=len(WORDS), n_ctx=self.n_ctx, act_fn="gelu_new",
                                      normalization_type="LN", seed=self.seed, device="cpu")
        return HookedTransformer(cfg).eval()


def context(row: np.ndarray, pos: tuple, width: int = 4) -> str:
    """The words around a position, the position's word(s) in [brackets]."""
    marks = set(int(p) for p in pos)
    lo, hi = max(0, min(marks) - width), min(len(row), max(marks) + width + 1)
    words = [f"[{WORDS[row[i]]}]" if i in marks else WORDS[row[i]] for i in range(lo, hi)]
    return ("... " if lo > 0 else "") + " ".join(words) + (" ..." if hi < len(row) else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=512)
    p.add_argument("--T", type=int, default=24)
    p.add_argument("--dst", default="mlp_write_norm")
    p.add_argument("--layer", type=int, default=1)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--nodes", type=int, default=4, help="how many nodes to print")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--address", default=None, help="ray.init(address=...): 'auto' or ray://host:10001")
    args = p.parse_args()

    import ray

    import nodewrite as nw
    import nodewrite.ray as nwr

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    tokens = np.random.default_rng(0).integers(0, len(WORDS), size=(args.prompts, args.T))
    top = nwr.top_examples(RandomModel(args.T), tokens, args.dst, [args.layer], k=args.k,
                           batch_size=args.batch_size, num_workers=args.workers)[args.layer]
    info = nw.dst_info(args.dst)
    what = "head" if info.node_type == "attention_head" or info.layout in ("unflattened", "flattened") else "node"
    print(f"{args.dst} at layer {args.layer}: top {args.k} of {args.prompts} prompts x {args.T} tokens, "
          f"{top.values.shape[0]} {what}s; the first {args.nodes}:")
    for node in range(min(args.nodes, top.values.shape[0])):
        print(f"\n{what} {node}:")
        for j in range(args.k):
            prompt, pos = int(top.prompt[node, j]), tuple(top.position[node, j])
            where = f"token {pos[0]}" if len(pos) == 1 else f"query {pos[0]}, key {pos[1]}"
            print(f"  {top.values[node, j]:9.4f}  prompt {prompt:4d} {where:>18s}:  {context(tokens[prompt], pos)}")
    ray.shutdown()


if __name__ == "__main__":
    main()
