"""Random inputs for every edge and attribution DST of ``nodewrite.derive`` on a small model, and
the node argument each DST takes, for the tests that iterate over every DST (test_call_counts,
test_info, test_family, ...): the write family needs only the output weights and forward
activations; the edge DSTs also the read-side weights, one autoencoder with its encoder, the
residual stream and the backward pass."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

import nodewrite as nw

READ_SIDE = (
    "layer_norm_gain.pre_attn", "layer_norm_bias.pre_attn", "layer_norm_gain.pre_mlp", "layer_norm_bias.pre_mlp",
    "attn.to_query", "attn.to_key", "attn.to_value", "attn.query_bias", "attn.key_bias", "attn.value_bias",
    "attn.out_bias", "mlp.to_hidden", "mlp.in_bias", "mlp.out_bias",
)


def is_write_family(dst: str) -> bool:
    return nw.dst_info(dst).quantity in ("norm", "projection")


WRITE_FAMILY = tuple(d for d in nw.DSTS if is_write_family(d))
EDGE_DSTS = tuple(d for d in nw.DSTS if not is_write_family(d))


def _sizes(m: nw.Model, T: int, n_latents: int) -> dict:
    return {"one": 1, "tokens": T, "token_pairs": T * (T + 1) // 2, "heads": m.n_heads, "d_head": m.d_head,
            "d_model": m.d_model, "d_ff": m.d_ff, "latents": n_latents, "head_channels": m.n_heads * m.d_head}


def shape_of(m: nw.Model, dst: str, T: int, n_latents: int) -> Tuple[int, ...]:
    """The output shape of dst by its table shape rule (nodewrite.dst_info)."""
    sizes = _sizes(m, T, n_latents)
    return tuple(sizes[d] for d in nw.dst_info(dst).dims)


def edge_model_and_store(T: int = 5, n_layers: int = 2, d_model: int = 8, n_heads: int = 2, d_head: int = 4,
                         d_ff: int = 6, n_latents: int = 7, seed: int = 0):
    """A causal model with every weight (output and read side) of every layer and one attention
    autoencoder (input resid_delta_attn) with its encoder at every layer, and a store with every
    activation of both passes (attention probabilities causal and normalised; resid.post_emb of no
    layer). Returns (model, store, arrays kept alive)."""
    rng = np.random.default_rng(seed)
    m = nw.Model(n_layers, d_model, n_heads, d_head, d_ff)
    s = nw.ActivationStore()
    keep = []
    sizes = _sizes(m, T, n_latents)

    def arr(shape):
        a = rng.standard_normal(shape).astype(np.float32)
        keep.append(a)
        return a

    for L in range(n_layers):
        for name in ("mlp.to_residual", "attn.to_residual") + READ_SIDE:
            m.set_weight(name, L, arr(tuple(sizes[d] for d in nw.weight_info(name).dims)))
        m.set_autoencoder("attention_autoencoder_latent", L, arr((n_latents, d_model)), "resid_delta_attn",
                          encoder=arr((n_latents, d_model)), latent_bias=arr((n_latents,)), pre_bias=arr((d_model,)))
    for name in nw.ACTIVATIONS:
        info = nw.activation_info(name)
        shape = tuple(sizes[d] for d in info.dims)
        for L in (range(n_layers) if info.has_layer else [None]):
            for pass_type in ("forward", "backward"):
                x = arr(shape)
                if name == "attn.qk_probs" and pass_type == "forward":
                    x = np.exp(x) * np.tril(np.ones((T, T), np.float32))[:, :, None]
                    x = (x / x.sum(1, keepdims=True)).astype(np.float32)
                    keep.append(x)
                if info.latent_node_type and pass_type == "forward":
                    x = np.maximum(x, 0)
                    keep.append(x)
                s.put(name, L, x, pass_type=pass_type)
    return m, s, keep


def edge_args(dst: str, layer: int = 1) -> Tuple[Optional[int], dict]:
    """(layer argument, keyword arguments) of derive for an edge DST at `layer` (>= 1) of
    edge_model_and_store: the node each one takes (an upstream MLP neuron at layer 0 for in-edges,
    the Q subnode of a head at `layer` for gradients and out-edges, the trace latent at `layer` for
    attention to a latent; none for act-times-grad and the _batched forms), layer None for the DSTs
    of no layer, the upstream layer 0 for out-edges."""
    info = nw.dst_info(dst)
    subnode = nw.NodeIndex("attention_head", layer, (3, 1, 0), q_k_or_v="attn.q")
    trace = nw.NodeIndex("attention_autoencoder_latent", layer, (None, 2))
    if info.quantity == "in_edge":
        node: Optional[nw.NodeIndex] = nw.NodeIndex("mlp_neuron", 0, (2, 1))
    elif info.quantity == "gradient":
        node = trace if "latent" in dst else subnode
    elif info.quantity == "out_edge":
        node, layer = subnode, 0
    elif info.quantity == "to_latent":
        node = None if dst.endswith("_batched") else trace
    else:
        node = None
    return (layer if info.has_layer else None), ({"node": node} if node is not None else {})
