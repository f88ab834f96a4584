"""A float64 numpy reference of TDB's residual-write derived scalars (the "write family").

One function per derived scalar of issue 11, plus the single-node quantities and the token-space
write, following the definitions of the parity README (`tdb_family.*`, section "Write-family
fixtures"). numpy only, everything in float64; inputs are plain arrays in TDB's layouts:

    a       mlp.post_act                      (T, d_ff)
    p       attn.qk_probs                     (T, T, heads)   [query q, key k, head h]
    v       attn.v                            (T, heads, d_head)
    wsv     attn.weighted_sum_of_values       (T, heads, d_head)  (TDB's attn.v_out)
    z       online_*autoencoder_latent        (T, n_latents)
    delta   resid.delta_mlp / resid.delta_attn (T, d_model)
    w_out   mlp.to_residual                   (d_ff, d_model)
    w_o     attn.to_residual                  (heads, d_head, d_model)
    write   an autoencoder's write vectors    (n_latents, d_model): see autoencoder_write_vectors
    g       a direction: any (T, d_model) array, or one (d_model,) vector for every token

"To final residual grad" means "projected onto g"; TDB's g is the gradient of the loss at the
input of the final layer norm, but any direction works here. Projections use g at the token the
write lands on (the query token for attention).

This is a test oracle, not an implementation: it favours the plainest formula that is exact in
float64 over speed and memory (the attention functions use (T, T, heads) and (T, heads, d_model)
intermediates, never (T, T, heads, d_model)).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

# ------------------------------------------------------------------------------------ helpers


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _direction(g, n_tokens: int, d_model: int) -> np.ndarray:
    """g as a (T, d_model) float64 array; a (d_model,) vector is used for every token."""
    g = _f64(g)
    if g.ndim == 1:
        g = np.broadcast_to(g, (n_tokens, g.shape[0]))
    if g.shape != (n_tokens, d_model):
        raise ValueError(f"direction of shape {g.shape}, expected ({n_tokens}, {d_model}) or ({d_model},)")
    return g


def flatten_lower_triangle(x) -> np.ndarray:
    """(Tq, Tk, heads) -> (n_pairs, heads): the entries with k <= q, row-major over (q, k), so
    that (q, k) lands in row q*(q+1)/2 + k when Tq == Tk. (Tq > Tk continues with full rows.)"""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"expected (Tq, Tk, heads), got shape {x.shape}")
    q, k = np.tril_indices(x.shape[0], 0, x.shape[1])
    return x[q, k, :]


def weighted_sum_of_values(p, v) -> np.ndarray:
    """attn.weighted_sum_of_values from p and v: sum over k of p[q,k,h] v[k,h,:] -> (T, heads, d_head)."""
    return np.einsum("qkh,khd->qhd", _f64(p), _f64(v))


def autoencoder_write_vectors(decoder_weight, w_out=None) -> np.ndarray:
    """The residual write of each latent, (n_latents, d_model). decoder_weight is TDB's
    get_decoder_weight, (n_latents, n_inputs). An autoencoder trained on mlp_post_act decodes MLP
    activations, which go through W_out (pass w_out); one trained on a residual-stream delta
    (resid_delta_attn, resid_delta_mlp) decodes the write itself (w_out=None)."""
    d = _f64(decoder_weight)
    return d if w_out is None else d @ _f64(w_out)


def _head_writes(v, w_o) -> np.ndarray:
    """v[k,h,:] @ W_O[h] for every key and head: (T, heads, d_model)."""
    return np.einsum("khd,hdm->khm", _f64(v), _f64(w_o))


def _head_grad_projections(v, w_o, g) -> np.ndarray:
    """(v[k,h,:] @ W_O[h]) . g[q] for every (q, k, h): (T, T, heads). Contracts W_O with g first."""
    v = _f64(v)
    w_o = _f64(w_o)
    g = _direction(g, v.shape[0], w_o.shape[2])
    wo_g = np.einsum("hdm,qm->qhd", w_o, g)  # (T, heads, d_head)
    return np.einsum("khd,qhd->qkh", v, wo_g)


# ---------------------------------------------------------------------------- MLP neurons


def mlp_write_norm(a, w_out) -> np.ndarray:
    """(T, d_ff): a[t,n] * ||W_out[n]||, signed (negative where a < 0)."""
    return _f64(a) * np.linalg.norm(_f64(w_out), axis=1)[None, :]


def mlp_write_to_final_residual_grad(a, w_out, g) -> np.ndarray:
    """(T, d_ff): a[t,n] * (W_out[n] . g[t])."""
    a = _f64(a)
    w_out = _f64(w_out)
    g = _direction(g, a.shape[0], w_out.shape[1])
    return a * (g @ w_out.T)


# -------------------------------------------------------------------------- attention heads


def unflattened_attn_write_norm(p, v, w_o) -> np.ndarray:
    """(T, T, heads): p[q,k,h] * ||v[k,h] @ W_O[h]||."""
    norms = np.linalg.norm(_head_writes(v, w_o), axis=2)  # (T_k, heads)
    return _f64(p) * norms[None, :, :]


def attn_write_norm(p, v, w_o) -> np.ndarray:
    """(T(T+1)/2, heads): unflattened_attn_write_norm for k <= q, row q*(q+1)/2 + k."""
    return flatten_lower_triangle(unflattened_attn_write_norm(p, v, w_o))


def unflattened_attn_write_to_final_residual_grad(p, v, w_o, g) -> np.ndarray:
    """(T, T, heads): p[q,k,h] * (v[k,h] @ W_O[h]) . g[q]."""
    return _f64(p) * _head_grad_projections(v, w_o, g)


def attn_write_to_final_residual_grad(p, v, w_o, g) -> np.ndarray:
    """(T(T+1)/2, heads): unflattened_attn_write_to_final_residual_grad flattened like attn_write_norm."""
    return flatten_lower_triangle(unflattened_attn_write_to_final_residual_grad(p, v, w_o, g))


def attn_write_norm_per_sequence_token(wsv, w_o) -> np.ndarray:
    """(T, heads): ||wsv[q,h] @ W_O[h]||, the norm of head h's whole write at q (the norm of the
    sum over keys, not the sum of the per-key norms)."""
    return np.linalg.norm(_head_writes(wsv, w_o), axis=2)


def attn_write_to_final_residual_grad_per_sequence_token(wsv, w_o, g) -> np.ndarray:
    """(T, heads): (wsv[q,h] @ W_O[h]) . g[q], which is the sum over k of
    unflattened_attn_write_to_final_residual_grad."""
    wsv = _f64(wsv)
    w_o = _f64(w_o)
    g = _direction(g, wsv.shape[0], w_o.shape[2])
    return np.einsum("qhd,hdm,qm->qh", wsv, w_o, g)


# ------------------------------------------------------------------- autoencoder latents


def online_autoencoder_write_norm(z, write) -> np.ndarray:
    """(T, n_latents): z[t,l] * ||write[l]|| (write from autoencoder_write_vectors). The same
    formula serves online_autoencoder_write_norm, online_mlp_autoencoder_write_norm and
    online_attention_autoencoder_write_norm; they differ in the latents and the autoencoder."""
    return _f64(z) * np.linalg.norm(_f64(write), axis=1)[None, :]


def online_autoencoder_write_to_final_residual_grad(z, write, g) -> np.ndarray:
    """(T, n_latents): z[t,l] * (write[l] . g[t])."""
    z = _f64(z)
    write = _f64(write)
    g = _direction(g, z.shape[0], write.shape[1])
    return z * (g @ write.T)


online_mlp_autoencoder_write_norm = online_autoencoder_write_norm
online_attention_autoencoder_write_norm = online_autoencoder_write_norm
online_mlp_autoencoder_write_to_final_residual_grad = online_autoencoder_write_to_final_residual_grad
online_attention_autoencoder_write_to_final_residual_grad = online_autoencoder_write_to_final_residual_grad


# ------------------------------------------------------------------------- whole layers


def layer_write_norm(delta) -> np.ndarray:
    """(T, 1): ||delta[t]|| (delta = resid.delta_mlp or resid.delta_attn, bias included)."""
    return np.linalg.norm(_f64(delta), axis=1)[:, None]


def layer_write_to_final_residual_grad(delta, g) -> np.ndarray:
    """(T, 1): delta[t] . g[t]."""
    delta = _f64(delta)
    g = _direction(g, delta.shape[0], delta.shape[1])
    return np.einsum("tm,tm->t", delta, g)[:, None]


mlp_layer_write_norm = attn_layer_write_norm = layer_write_norm
mlp_layer_write_to_final_residual_grad = attn_layer_write_to_final_residual_grad = layer_write_to_final_residual_grad


# ------------------------------------------------------------------------------- nodes

NODE_TYPES = (
    "mlp_neuron",
    "attention_head",
    "autoencoder_latent",
    "mlp_autoencoder_latent",
    "attention_autoencoder_latent",
)


def node_write_vector(node_type: str, indices: Sequence[int], *, a=None, p=None, v=None, w_out=None,
                      w_o=None, z=None, write=None) -> tuple[np.ndarray, int]:
    """The node's write vector (d_model,) and the token row it lands on. Indices as TDB's
    NodeIndex.tensor_indices: mlp_neuron (t, n); attention_head (q, k, h); latents (t, l).
    Negative indices count from the end; out of range raises IndexError (as the original)."""
    if node_type == "mlp_neuron":
        t, n = indices
        a = _f64(a)
        return a[t, n] * _f64(w_out)[n], range(a.shape[0])[t]
    if node_type == "attention_head":
        q, k, h = indices
        p = _f64(p)
        return p[q, k, h] * (_f64(v)[k, h] @ _f64(w_o)[h]), range(p.shape[0])[q]
    if node_type in NODE_TYPES:
        t, l = indices
        z = _f64(z)
        return z[t, l] * _f64(write)[l], range(z.shape[0])[t]
    raise ValueError(f"unknown node type {node_type!r}; known: {', '.join(NODE_TYPES)}")


def single_node_write(node_type: str, indices: Sequence[int], n_tokens: int, **inputs) -> np.ndarray:
    """(T, d_model): the node's write vector in its token's row, zeros elsewhere."""
    w, t = node_write_vector(node_type, indices, **inputs)
    out = np.zeros((n_tokens, w.shape[0]))
    out[t] = w
    return out


def single_node_write_to_final_residual_grad(node_type: str, indices: Sequence[int], n_tokens: int, g,
                                             **inputs) -> np.ndarray:
    """(T, 1), not a scalar: w . g[t] in the node's token row t, zeros elsewhere."""
    w, t = node_write_vector(node_type, indices, **inputs)
    g = _direction(g, n_tokens, w.shape[0])
    out = np.zeros((n_tokens, 1))
    out[t, 0] = w @ g[t]
    return out


def token_write(w, unembedding, ln_gain) -> np.ndarray:
    """The token-space write of write vector(s) w, (d_model,) -> (n_vocab,) or (n, d_model) ->
    (n, n_vocab): u = w @ (unembedding * ln_gain[:, None]), then u - mean(u) over the vocabulary.
    Only the final layer norm's gain enters (not its bias, not its normalisation)."""
    u = _f64(w) @ (_f64(unembedding) * _f64(ln_gain)[:, None])
    return u - u.mean(axis=-1, keepdims=True)


# ---------------------------------------------------------- by DST name, with TDB's rules


class AmbiguousAutoencoderError(LookupError):
    """A generic autoencoder DST (online_autoencoder_*) asked for with other than exactly one
    autoencoder loaded: the original fails an assertion there (it resolves "the" autoencoder)."""


LAYER_DSTS: dict[str, Callable[..., np.ndarray]] = {
    "mlp_write_norm": mlp_write_norm,
    "mlp_write_to_final_residual_grad": mlp_write_to_final_residual_grad,
    "unflattened_attn_write_norm": unflattened_attn_write_norm,
    "unflattened_attn_write_to_final_residual_grad": unflattened_attn_write_to_final_residual_grad,
    "attn_write_norm": attn_write_norm,
    "attn_write_to_final_residual_grad": attn_write_to_final_residual_grad,
    "attn_write_norm_per_sequence_token": attn_write_norm_per_sequence_token,
    "attn_write_to_final_residual_grad_per_sequence_token": attn_write_to_final_residual_grad_per_sequence_token,
    "online_autoencoder_write_norm": online_autoencoder_write_norm,
    "online_mlp_autoencoder_write_norm": online_mlp_autoencoder_write_norm,
    "online_attention_autoencoder_write_norm": online_attention_autoencoder_write_norm,
    "online_autoencoder_write_to_final_residual_grad": online_autoencoder_write_to_final_residual_grad,
    "online_mlp_autoencoder_write_to_final_residual_grad": online_mlp_autoencoder_write_to_final_residual_grad,
    "online_attention_autoencoder_write_to_final_residual_grad": online_attention_autoencoder_write_to_final_residual_grad,
    "mlp_layer_write_norm": mlp_layer_write_norm,
    "attn_layer_write_norm": attn_layer_write_norm,
    "mlp_layer_write_to_final_residual_grad": mlp_layer_write_to_final_residual_grad,
    "attn_layer_write_to_final_residual_grad": attn_layer_write_to_final_residual_grad,
}

# the autoencoder node type each autoencoder DST uses, and the latents it reads
_AUTOENCODER_DST_NODE_TYPE = {
    "online_autoencoder": ("autoencoder_latent", "online_autoencoder_latent"),
    "online_mlp_autoencoder": ("mlp_autoencoder_latent", "online_mlp_autoencoder_latent"),
    "online_attention_autoencoder": ("attention_autoencoder_latent", "online_attention_autoencoder_latent"),
}


def derive(dst: str, acts: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray], *, g=None,
           autoencoders: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """One layer's value of DST `dst` (TDB's DerivedScalarType value) from named inputs:

    acts: TDB activation names of the layer: "mlp.post_act", "attn.qk_probs", "attn.v",
      "attn.weighted_sum_of_values" (computed from p and v when absent), "resid.delta_mlp",
      "resid.delta_attn", and the latents "online_autoencoder_latent",
      "online_mlp_autoencoder_latent", "online_attention_autoencoder_latent".
    weights: "mlp.to_residual", "attn.to_residual".
    g: the direction, for the "..._to_final_residual_grad" DSTs.
    autoencoders: the loaded autoencoders' write vectors (autoencoder_write_vectors), keyed by
      node type "mlp_autoencoder_latent" / "attention_autoencoder_latent". The generic
      online_autoencoder_* DSTs use the single loaded one and raise AmbiguousAutoencoderError
      otherwise (the original's assertion), as the specific DSTs raise without theirs.
    """
    if dst not in LAYER_DSTS:
        raise ValueError(f"unsupported DST {dst!r}; supported: {', '.join(LAYER_DSTS)}")
    fn = LAYER_DSTS[dst]
    to_grad = "_to_final_residual_grad" in dst
    if to_grad and g is None:
        raise ValueError(f"{dst} needs a direction g")
    extra = (g,) if to_grad else ()
    if dst.startswith("online_"):
        prefix = dst.split("_write")[0]
        node_type, latents = _AUTOENCODER_DST_NODE_TYPE[prefix]
        loaded = dict(autoencoders or {})
        if node_type == "autoencoder_latent":
            if len(loaded) != 1:
                raise AmbiguousAutoencoderError(
                    f"{dst} needs exactly one loaded autoencoder, got {len(loaded)} ({', '.join(loaded) or 'none'})"
                )
            (write,) = loaded.values()
        elif node_type in loaded:
            write = loaded[node_type]
        else:
            raise AmbiguousAutoencoderError(f"{dst}: no {node_type} autoencoder loaded")
        return fn(acts[latents], write, *extra)
    if dst.startswith("mlp_layer") or dst.startswith("attn_layer"):
        return fn(acts["resid.delta_" + dst.split("_")[0]], *extra)
    if dst.startswith("mlp_"):
        return fn(acts["mlp.post_act"], weights["mlp.to_residual"], *extra)
    if dst.endswith("per_sequence_token"):
        wsv = acts.get("attn.weighted_sum_of_values")
        if wsv is None:
            wsv = weighted_sum_of_values(acts["attn.qk_probs"], acts["attn.v"])
        return fn(wsv, weights["attn.to_residual"], *extra)
    return fn(acts["attn.qk_probs"], acts["attn.v"], weights["attn.to_residual"], *extra)
