"""TransformerLens adapters: a ``HookedTransformer`` and its ``ActivationCache`` as nodewrite inputs.

::

    import nodewrite as nw, nodewrite.tl

    logits, cache = model.run_with_cache(tokens)           # a TransformerLens HookedTransformer
    m = nw.tl.model_from(model)                            # borrowed views of W_O, W_out, W_U, ln_final.w
    s = nw.tl.store_from(cache, batch=0)                   # hook_pattern, hook_v, mlp.hook_post, SAE latents
    g = nw.tl.logit_directions(model, cache, " Mary", " John")   # (T, d_model), TL's DLA as a direction
    per_head = nw.tl.head_logit_attrs(m, s, layer=9, direction=g)     # (T, n_heads)
    per_qkh = nw.tl.qkh_logit_attrs(m, s, layer=9, direction=g)       # (T, T, n_heads) [query, key, head]
    per_neuron = nw.tl.neuron_logit_attrs(m, s, layer=9, direction=g) # (T, d_mlp)

Nothing is copied: the model borrows the parameters (``copy=False``; in-place edits are seen,
replacing a parameter object is not) and the store borrows the cache's tensors, viewed in
nodewrite's layouts by strides (``hook_pattern`` (batch, head, q, k) is put with
``layout="bhqk"``, ``hook_v`` (batch, pos, head, d_head) with ``layout="bthd"``).

**Direct logit attribution as TransformerLens defines it** (``ActivationCache.logit_attrs`` /
``apply_ln_to_stack``): each component is centred over d_model (LN and LNPre models; RMS models
are not centred), divided by the cached ``ln_final.hook_scale`` of its batch element and position,
and dotted with ``W_U[:, correct] - W_U[:, incorrect]``. TL applies neither ``ln_final.w`` nor
``ln_final.b`` there (with ``fold_ln=True`` the weight is in ``W_U`` already). Centring is linear
and self-adjoint, so this is a projection onto one direction per position,
``g[t] = centre(W_U[:, a] - W_U[:, b]) / scale[t]``, which :func:`logit_directions` builds and
the library's ``*_write_to_final_residual_grad`` derived scalars take as ``direction``.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core

__all__ = [
    "model_from",
    "store_from",
    "logit_directions",
    "head_logit_attrs",
    "qkh_logit_attrs",
    "neuron_logit_attrs",
    "latent_logit_attrs",
    "logit_attrs",
    "LATENT_SUFFIX",
]

#: Cache keys of SAE latents (SAELens' ``run_with_cache_with_saes``) end with this.
LATENT_SUFFIX = ".hook_sae_acts_post"


def _t(x: Any) -> Any:
    """A tensor without autograd (same storage): DLPack refuses tensors that require grad."""
    return x.detach() if getattr(x, "requires_grad", False) else x


def _cfg(model: Any) -> Any:
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise _core_error(f"expected a TransformerLens HookedTransformer (with .cfg), got {type(model).__name__}")
    return cfg


def _core_error(msg: str) -> Exception:
    from .errors import NodeWriteValueError

    return NodeWriteValueError(msg)


def model_from(model: Any, *, unembedding: bool = True) -> "_core.Model":
    """A :class:`nodewrite.Model` over a TransformerLens ``HookedTransformer``'s weights, borrowed.

    Per layer: ``blocks[l].attn.W_O`` (n_heads, d_head, d_model) as ``attn.to_residual`` and
    ``blocks[l].mlp.W_out`` (d_mlp, d_model) as ``mlp.to_residual``; ``unembed.W_U``
    (d_model, d_vocab) as ``unembedding`` and ``ln_final.w`` as ``layer_norm_gain.final`` (ones when
    the model has no final LN weight, e.g. after ``fold_ln``: the weight is then in ``W_U``). All
    ``copy=False``: views of the parameters, no copies (the ones vector excepted). Models with
    grouped-query attention, attention-only models (no MLP weights are set) and models whose
    d_mlp is unset are handled; the dimensions come from ``model.cfg``.
    unembedding=False skips ``W_U`` and the gain (they are only read by token-space writes).
    """
    cfg = _cfg(model)
    d_mlp = getattr(cfg, "d_mlp", None) or 1
    m = _core.Model(n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head, d_ff=d_mlp)
    attn_only = bool(getattr(cfg, "attn_only", False))
    for l, block in enumerate(model.blocks):
        m.set_weight("attn.to_residual", l, _t(block.attn.W_O), copy=False)
        if not attn_only and hasattr(block, "mlp") and hasattr(block.mlp, "W_out"):
            m.set_weight("mlp.to_residual", l, _t(block.mlp.W_out), copy=False)
    if unembedding:
        m.set_weight("unembedding", None, _t(model.unembed.W_U), copy=False)
        w = getattr(getattr(model, "ln_final", None), "w", None)
        if w is not None:
            m.set_weight("layer_norm_gain.final", None, _t(w), copy=False)
        else:
            m.set_weight("layer_norm_gain.final", None, np.ones(cfg.d_model, np.float32))
    return m


def _has_batch(cache: Any) -> bool:
    return bool(getattr(cache, "has_batch_dim", True))


def _keys(cache: Any) -> list:
    keys = getattr(cache, "keys", None)
    return list(keys()) if keys is not None else list(cache)


def store_from(
    cache: Any,
    batch: int = 0,
    *,
    layers: Optional[Any] = None,
    store: Optional["_core.ActivationStore"] = None,
    latents: bool = True,
) -> "_core.ActivationStore":
    """An :class:`nodewrite.ActivationStore` over a TransformerLens ``ActivationCache``, borrowed.

    Per layer present in the cache: ``blocks.L.attn.hook_pattern`` (batch, head, q, k) as
    ``attn.qk_probs`` (viewed as [q, k, head] by strides: ``layout="bhqk"``), ``blocks.L.attn.hook_v``
    (batch, pos, head, d_head) as ``attn.v`` (``"bthd"``), ``blocks.L.mlp.hook_post``
    (batch, pos, d_mlp) as ``mlp.post_act`` (``"btn"``); and every SAE latent tensor of the cache
    (keys ending in ``.hook_sae_acts_post``, from SAELens' ``run_with_cache_with_saes``) as the
    latent activation of the node type :func:`nodewrite.saelens.node_type_for_hook` gives its hook.
    batch: which batch element (negative counts from the end); ignored for a cache made with
    ``remove_batch_dim()``. layers: restrict to these layers. store: add to this store instead
    of a new one. latents=False skips the SAE latents. No copies: the store keeps references to
    the cache's tensors (one exception: with grouped-query attention, ``hook_v`` holds fewer heads
    than the model and is expanded to one value vector per head, a copy, as TL does internally).
    """
    from . import saelens as _sae  # no SAELens import: only its hook-name rules

    s = store if store is not None else _core.ActivationStore()
    b = _has_batch(cache)
    kw = {"batch": batch} if b else {}
    pre = "b" if b else ""
    wanted = None if layers is None else {int(l) for l in layers}
    for key in _keys(cache):
        if key.endswith(LATENT_SUFFIX):
            if not latents:
                continue
            hook = key[: -len(LATENT_SUFFIX)]
            node_type, _input, layer = _sae.node_type_for_hook(hook)
            if wanted is not None and layer not in wanted:
                continue
            s.put(_sae.LATENT_ACTIVATION[node_type], layer, _t(cache[key]), layout=pre + "tn", **kw)
            continue
        parts = key.split(".")
        if len(parts) != 4 or parts[0] != "blocks":
            continue
        try:
            layer = int(parts[1])
        except ValueError:
            continue
        if wanted is not None and layer not in wanted:
            continue
        where = parts[2] + "." + parts[3]
        if where == "attn.hook_pattern":
            s.put("attn.qk_probs", layer, _t(cache[key]), layout=pre + "hqk", **kw)
        elif where == "attn.hook_v":
            v = _t(cache[key])
            n_heads = getattr(getattr(getattr(cache, "model", None), "cfg", None), "n_heads", None)
            if n_heads is not None and v.shape[-2] != n_heads and n_heads % v.shape[-2] == 0:
                # grouped-query attention: head h reads key/value head h // (n_heads / n_kv), as
                # TL's repeat_interleave does. Not expressible by strides: this one is a copy.
                v = v.repeat_interleave(n_heads // v.shape[-2], dim=-2)
            s.put("attn.v", layer, v, layout=pre + "thd", **kw)
        elif where == "mlp.hook_post":
            s.put("mlp.post_act", layer, _t(cache[key]), layout=pre + "tn", **kw)
    return s


def _token_ids(model: Any, tokens: Any) -> Any:
    import torch

    if isinstance(tokens, str):
        return torch.as_tensor(model.to_single_token(tokens))
    return torch.as_tensor(tokens)


def logit_directions(
    model: Any,
    cache: Any,
    tokens: Any,
    incorrect_tokens: Any = None,
    *,
    batch: int = 0,
    ln_weight: bool = False,
) -> Any:
    """TransformerLens's direct-logit-attribution map as one direction per position.

    Returns a float32 CPU torch tensor (T, d_model), ``g[t] = centre(W_U[:, a_t] - W_U[:, b_t]) /
    scale[batch, t]``, such that for any component ``c`` (T, d_model) of the residual stream,
    ``(c * g).sum(-1)`` equals TL's ``cache.logit_attrs(c, tokens, incorrect_tokens)`` for that
    batch element: TL's ``apply_ln_to_stack`` centres (LN / LNPre models only), divides by the cached
    ``ln_final.hook_scale`` (LN, LNPre, RMS, RMSPre; other models: no scaling) and dots with
    ``tokens_to_residual_directions``. tokens / incorrect_tokens: a token id, a single-token str,
    or ids per position (T,) or per (batch, position) (B, T). ln_weight=True multiplies the
    direction by ``ln_final.w`` too (which TL leaves out; use it for an unfolded model whose
    ``ln_final.w`` is not 1 if you want the true contribution to the logits, bias aside).
    """
    import torch

    cfg = _cfg(model)
    W_U = _t(model.unembed.W_U)  # (d_model, d_vocab)
    a = _token_ids(model, tokens)
    bt = None if incorrect_tokens is None else _token_ids(model, incorrect_tokens)
    if bt is not None and bt.shape != a.shape:
        raise _core_error(f"tokens and incorrect_tokens must have the same shape, got {tuple(a.shape)} and {tuple(bt.shape)}")

    def columns(ids):  # W_U[:, ids] as (d_model,) or (d_model, T): index_select gathers columns fastest
        if ids.ndim == 2:  # (B, T): this batch element's row only
            ids = ids[batch]
        if ids.ndim == 0:
            return W_U[:, ids]
        return W_U.index_select(1, ids.reshape(-1))

    d = columns(a)
    if bt is not None:
        d = d - columns(bt)
    if ln_weight:
        w = getattr(getattr(model, "ln_final", None), "w", None)
        if w is not None:
            w = _t(w)
            d = d * (w if d.ndim == 1 else w[:, None])
    norm = getattr(cfg, "normalization_type", None)
    if norm in ("LN", "LNPre"):
        d = d - d.mean(dim=0, keepdim=True)
    scale = None
    if norm in ("LN", "LNPre", "RMS", "RMSPre"):
        scale = _t(cache["ln_final.hook_scale"])
        if _has_batch(cache):
            scale = scale[batch]
        T = scale.shape[0]
    else:
        T = _t(cache["hook_embed"]).shape[-2]
    d = d.expand(T, d.shape[0]) if d.ndim == 1 else d.T  # (T, d_model)
    if scale is not None:
        d = d / scale
    return d.to(dtype=torch.float32, device="cpu").contiguous()


def head_logit_attrs(nw_model: "_core.Model", store: "_core.ActivationStore", layer: int, direction: Any) -> np.ndarray:
    """(T, n_heads) float32: each head's write at each query position (summed over keys),
    projected onto ``direction[t]`` — with :func:`logit_directions`, TL's
    ``cache.logit_attrs(cache.stack_head_results(), ...)`` for one layer, without the
    (T, heads, d_model) stack."""
    return _core.derive(nw_model, store, "attn_write_to_final_residual_grad_per_sequence_token", layer, direction=direction)


def qkh_logit_attrs(nw_model: "_core.Model", store: "_core.ActivationStore", layer: int, direction: Any) -> np.ndarray:
    """(T, T, n_heads) float32 [query, key, head]: each (query, key, head) write projected onto
    ``direction[query]``, zero for key > query; summed over keys it is :func:`head_logit_attrs`.
    TransformerLens has no such decomposition."""
    return _core.derive(nw_model, store, "unflattened_attn_write_to_final_residual_grad", layer, direction=direction)


def neuron_logit_attrs(nw_model: "_core.Model", store: "_core.ActivationStore", layer: int, direction: Any) -> np.ndarray:
    """(T, d_mlp) float32: each neuron's write projected onto ``direction[t]`` — TL's
    ``cache.get_neuron_results(layer, project_output_onto=...)`` with a per-position direction."""
    return _core.derive(nw_model, store, "mlp_write_to_final_residual_grad", layer, direction=direction)


_LATENT_DST = {
    "autoencoder_latent": "online_autoencoder_write_to_final_residual_grad",
    "mlp_autoencoder_latent": "online_mlp_autoencoder_write_to_final_residual_grad",
    "attention_autoencoder_latent": "online_attention_autoencoder_write_to_final_residual_grad",
}


def latent_logit_attrs(
    nw_model: "_core.Model", store: "_core.ActivationStore", node_type: str, layer: int, direction: Any
) -> np.ndarray:
    """(T, n_latents) float32: each SAE latent's write (see :mod:`nodewrite.saelens`) projected
    onto ``direction[t]``."""
    if node_type not in _LATENT_DST:
        raise _core_error(f"node_type: expected one of {', '.join(_LATENT_DST)}, got {node_type!r}")
    return _core.derive(nw_model, store, _LATENT_DST[node_type], layer, direction=direction)


def logit_attrs(
    model: Any,
    cache: Any,
    layer: int,
    tokens: Any,
    incorrect_tokens: Any = None,
    *,
    kind: str = "heads",
    batch: int = 0,
    nw_model: Optional["_core.Model"] = None,
    store: Optional["_core.ActivationStore"] = None,
) -> np.ndarray:
    """One call: TL's direct logit attribution of one layer's nodes, for one batch element.

    kind: "heads" (T, n_heads), "qkh" (T, T, n_heads) [query, key, head] or "neurons" (T, d_mlp).
    nw_model / store: reuse ones made by :func:`model_from` / :func:`store_from` (otherwise they
    are made here: borrowed views, cheap)."""
    fns = {"heads": head_logit_attrs, "qkh": qkh_logit_attrs, "neurons": neuron_logit_attrs}
    if kind not in fns:
        raise _core_error(f"kind: expected one of {', '.join(fns)}, got {kind!r}")
    m = nw_model if nw_model is not None else model_from(model)
    s = store if store is not None else store_from(cache, batch=batch, layers=[layer], latents=False)
    g = logit_directions(model, cache, tokens, incorrect_tokens, batch=batch)
    return fns[kind](m, s, layer, g)
