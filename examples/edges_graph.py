#!/usr/bin/env python3
"""One node's strongest edges across the layers: which upstream nodes feed it, which downstream
nodes it moves, on a small seeded random transformer (TDB's layer: pre-LayerNorm, tanh GELU).

The script runs the model's forward and backward pass itself (torch autograd on a loss: the
log-probability of the next token, summed over positions), puts the activations and their gradients
in a nodewrite store, and asks nodewrite for the edges of one node X:

X is, by default, the MLP neuron of layer (n_layers - 1) // 2 with the largest act x grad at the middle
token. Edges are direct (through the residual stream, as TDB defines them):

- edges *into* X (every upstream node's attribution to X): the out-edge DSTs at each layer up
  to X's, with ``node=X`` as the downstream subnode: ``attn_out_edge_attribution`` (T, T, heads),
  ``mlp_out_edge_attribution`` (T, d_ff), ``token_out_edge_attribution`` (T, 1, no layer);
- edges *out of* X (X's attribution to every downstream node): the in-edge DSTs at each later
  layer with ``node=X`` as the upstream node: ``attn_{query,key,value}_in_edge_attribution``
  (T, T, heads), ``mlp_in_edge_attribution`` (T, d_ff).

Picture (PNG, --out): two layer x token heatmaps; each cell is the strongest node of that row
(layer and kind) writing at that token (attention: at its query), its label the node.

    python examples/edges_graph.py --out build/edges_graph
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np

WORDS = ["The", " cat", " sat", " on", " the", " mat", " because", " it", " was", " warm",
         " and", " soft", ".", " A", " dog", " ran", " to", " a", " park", " then"]


class RandomTransformer:
    """A seeded random pre-LayerNorm transformer (TDB's layer), its weights as torch tensors."""

    def __init__(self, n_layers, d_model, n_heads, d_head, d_ff, n_vocab, n_ctx, seed):
        import torch

        g = torch.Generator().manual_seed(seed)

        def rnd(*shape, std=0.2):
            return torch.randn(*shape, generator=g) * std

        self.dims = (n_layers, d_model, n_heads, d_head, d_ff)
        self.emb, self.pos = rnd(n_vocab, d_model, std=1.0), rnd(n_ctx, d_model, std=0.5)
        self.layers = []
        for _ in range(n_layers):
            self.layers.append({
                "layer_norm_gain.pre_attn": 1 + rnd(d_model, std=0.1), "layer_norm_bias.pre_attn": rnd(d_model, std=0.1),
                "attn.to_query": rnd(n_heads, d_model, d_head, std=0.5), "attn.to_key": rnd(n_heads, d_model, d_head, std=0.5),
                "attn.to_value": rnd(n_heads, d_model, d_head), "attn.query_bias": rnd(n_heads, d_head, std=0.1),
                "attn.key_bias": rnd(n_heads, d_head, std=0.1), "attn.value_bias": rnd(n_heads, d_head, std=0.1),
                "attn.to_residual": rnd(n_heads, d_head, d_model), "attn.out_bias": rnd(d_model, std=0.1),
                "layer_norm_gain.pre_mlp": 1 + rnd(d_model, std=0.1), "layer_norm_bias.pre_mlp": rnd(d_model, std=0.1),
                "mlp.to_hidden": rnd(d_model, d_ff), "mlp.in_bias": rnd(d_ff, std=0.1),
                "mlp.to_residual": rnd(d_ff, d_model, std=0.1), "mlp.out_bias": rnd(d_model, std=0.1),
            })
        self.final_gain, self.unembed = 1 + rnd(d_model, std=0.1), rnd(d_model, n_vocab, std=0.5)

    def run(self, tokens, target):
        """Forward and backward: {(name, layer): (forward, backward)} in nodewrite's shapes."""
        import torch

        _, _, H, dh, _ = self.dims
        T = len(tokens)

        def ln(x, gain, bias):
            xc = x - x.mean(-1, keepdim=True)
            return gain * xc / torch.sqrt((xc * xc).mean(-1, keepdim=True) + 1e-5) + bias

        acts = {}

        def keep(name, layer, t):
            t.retain_grad()
            acts[(name, layer)] = t
            return t

        x = keep("resid.post_emb", None, (self.emb[tokens] + self.pos[:T]).requires_grad_(True))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        for layer, w in enumerate(self.layers):
            a = ln(x, w["layer_norm_gain.pre_attn"], w["layer_norm_bias.pre_attn"])
            q = torch.einsum("td,hde->the", a, w["attn.to_query"]) + w["attn.query_bias"]
            k = torch.einsum("td,hde->the", a, w["attn.to_key"]) + w["attn.key_bias"]
            v = keep("attn.v", layer, torch.einsum("td,hde->the", a, w["attn.to_value"]) + w["attn.value_bias"])
            logits = torch.einsum("qhe,khe->qkh", q, k) / math.sqrt(dh)
            p = keep("attn.qk_probs", layer, logits.masked_fill(~mask[:, :, None], -math.inf).softmax(1))
            z = keep("attn.v_out", layer, torch.einsum("qkh,khe->qhe", p, v))
            x = keep("resid.post_attn", layer, x + torch.einsum("qhe,hed->qd", z, w["attn.to_residual"]) + w["attn.out_bias"])
            pre = ln(x, w["layer_norm_gain.pre_mlp"], w["layer_norm_bias.pre_mlp"]) @ w["mlp.to_hidden"] + w["mlp.in_bias"]
            post = keep("mlp.post_act", layer, torch.nn.functional.gelu(pre, approximate="tanh"))
            x = keep("resid.post_mlp", layer, x + post @ w["mlp.to_residual"] + w["mlp.out_bias"])
        out = ln(x, self.final_gain, 0) @ self.unembed
        loss = out.log_softmax(-1)[torch.arange(T), target].sum()  # every position's target token
        loss.backward()
        return {key: (t.detach().numpy().copy(), t.grad.numpy().copy()) for key, t in acts.items()}


def build(args):
    """The random model, its activations, and nodewrite's model and store of them."""
    import torch

    import nodewrite as nw

    torch.manual_seed(args.seed)
    rt = RandomTransformer(args.n_layers, args.d_model, args.n_heads, args.d_head, args.d_ff, len(WORDS), 64, args.seed)
    rng = np.random.default_rng(args.seed)
    tokens = rng.integers(0, len(WORDS), args.tokens)
    targets = np.append(tokens[1:], rng.integers(0, len(WORDS)))  # the next token, as a language model's loss
    acts = rt.run(torch.as_tensor(tokens), target=torch.as_tensor(targets))

    model = nw.Model(args.n_layers, args.d_model, args.n_heads, args.d_head, args.d_ff)
    for layer, w in enumerate(rt.layers):
        for name, t in w.items():
            model.set_weight(name, layer, t.numpy())
    store = nw.ActivationStore()
    for (name, layer), (fwd, bwd) in acts.items():
        store.put(name, layer, fwd)
        store.put(name, layer, bwd, pass_type="backward")
    labels = [WORDS[t].replace(" ", "\u2423") for t in tokens]
    return model, store, labels


def edges_of(model, store, x, n_layers):
    """{row label: ((T,) strongest signed value per token, (T,) node labels)} into and out of x.

    Edges are direct (through the residual stream), so an upstream node reaches x only by writing
    at x's token t, and x's write changes downstream nodes only through row t: an MLP neuron or
    token row has its one non-zero column at t. Attention rows are spread over the other token
    of the node: its key where the query is t (edges into x, and through the query), its query
    where x's row is the key (through the key or the value; the strongest key shown).
    """
    import nodewrite as nw

    lx, t = x.layer_index, x.tensor_indices[0]

    def by_token(values):
        # values: (T, n) nodes whose token is the row
        j = np.abs(values).argmax(1)
        return values[np.arange(values.shape[0]), j], j

    def attn(values, axis):
        if axis == "key":  # query t, every key: (keys, heads)
            best, h = by_token(values[t])
            return best, [f"H{i}" for i in h]
        best, j = by_token(values.reshape(values.shape[0], -1))  # every query: (keys x heads)
        heads = values.shape[2]
        return best, [f"H{i % heads}\u2190{i // heads}" for i in j]

    def mlp(values):
        best, j = by_token(values)
        return best, [f"n{i}" for i in j]

    into, out = {}, {}
    tok = nw.derive(model, store, "token_out_edge_attribution", None, node=x)[:, 0]
    into["embeddings"] = (tok, [""] * len(tok))
    for layer in range(lx + 1):
        into[f"L{layer} attn (by key)"] = attn(nw.derive(model, store, "attn_out_edge_attribution", layer, node=x), "key")
        if layer < lx:
            into[f"L{layer} mlp"] = mlp(nw.derive(model, store, "mlp_out_edge_attribution", layer, node=x))
    for layer in range(lx + 1, n_layers):
        for sub, axis in (("query", "key"), ("key", "query"), ("value", "query")):
            values = nw.derive(model, store, f"attn_{sub}_in_edge_attribution", layer, node=x)
            out[f"L{layer} attn.{sub[0]} (by {axis})"] = attn(values, axis)
        out[f"L{layer} mlp"] = mlp(nw.derive(model, store, "mlp_in_edge_attribution", layer, node=x))
    return into, out


def draw(path, x_name, labels, panels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(0.55 * len(labels) * len(panels) + 5, 5.4), squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels):
        names = list(rows)
        grid = np.stack([rows[n][0] for n in names])
        vmax = float(np.abs(grid).max()) or 1.0
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        for r, n in enumerate(names):
            for c, label in enumerate(rows[n][1]):
                if label and abs(grid[r, c]) >= 0.2 * vmax:
                    ax.text(c, r, label, ha="center", va="center", fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=8)
        ax.set_xlabel("token (attention rows: the key or the query, as the row says)")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.7)
    fig.suptitle(f"strongest edges of X = {x_name} (random model); each cell: the node of its row with the largest |edge| "
                 "at that token, labelled with its head (\u2190 key) or neuron", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/edges_graph", help="output directory")
    p.add_argument("--tokens", type=int, default=12)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--d-head", type=int, default=16)
    p.add_argument("--d-ff", type=int, default=256)
    p.add_argument("--layer", type=int, default=None, help="X's layer (default: the middle one)")
    p.add_argument("--token", type=int, default=None, help="X's token (default: the middle one)")
    p.add_argument("--neuron", type=int, default=None, help="X's neuron (default: the largest act x grad at X's token)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import nodewrite as nw

    model, store, labels = build(args)
    layer = (args.n_layers - 1) // 2 if args.layer is None else args.layer
    t = len(labels) // 2 if args.token is None else args.token
    if args.neuron is None:
        act_grad = nw.derive(model, store, "mlp_act_times_grad", layer)  # (T, d_ff)
        neuron = int(np.abs(act_grad[t]).argmax())
    else:
        neuron = args.neuron
    x = nw.NodeIndex("mlp_neuron", layer, (t, neuron))
    x_name = f"MLP L{layer} n{neuron} at token {t} ({labels[t]})"
    into, out = edges_of(model, store, x, args.n_layers)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "edges_graph.png")
    draw(path, x_name, labels, [("into X: upstream nodes (out-edge DSTs, node=X)", into),
                                ("out of X: downstream nodes (in-edge DSTs, node=X)", out)])
    print(f"X = {x_name}")
    for title, rows in (("into X", into), ("out of X", out)):
        name, (best, nodes) = max(rows.items(), key=lambda kv: float(np.abs(kv[1][0]).max()))
        c = int(np.abs(best).argmax())
        print(f"strongest edge {title}: {name} {nodes[c]} at token {c} ({labels[c]}): {best[c]:+.4g}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
