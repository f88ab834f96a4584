"""SAELens adapters: an SAELens ``SAE`` (standard, JumpReLU, TopK) or transcoder as the
autoencoder of a :class:`nodewrite.Model`, and its latents in an ``ActivationStore``.

::

    import nodewrite as nw, nodewrite.tl, nodewrite.saelens

    m = nw.tl.model_from(model)                              # a HookedSAETransformer / HookedTransformer
    node_type, layer = nw.saelens.attach(m, sae)             # the decoder, borrowed
    _, cache = model.run_with_cache_with_saes(tokens, saes=[sae])
    s = nw.tl.store_from(cache)                              # picks up ...hook_sae_acts_post
    w = nw.node_writes(m, s, node_type, layer, nw.latents_at_token(5, m, node_type, layer))

Where an SAE's latent writes go, by the hook it reads (``cfg.hook_name``, or ``cfg.metadata.hook_name``):

| SAE hook | node type | input kind | the write of latent i at token t |
| --- | --- | --- | --- |
| ``blocks.L.hook_mlp_out`` | ``mlp_autoencoder_latent`` | ``resid_delta_mlp`` | ``a[t,i] * W_dec[i]`` |
| ``blocks.L.mlp.hook_post`` | ``mlp_autoencoder_latent`` | ``mlp_post_act`` | ``a[t,i] * W_dec[i] @ W_out[L]`` |
| ``blocks.L.hook_attn_out`` | ``attention_autoencoder_latent`` | ``resid_delta_attn`` | ``a[t,i] * W_dec[i]`` |
| ``blocks.L.attn.hook_z`` | ``attention_autoencoder_latent`` | ``attn_weighted_sum_of_values`` | ``a[t,i] * W_dec[i] @ W_O[L]`` (heads·d_head flattened) |
| ``blocks.L.hook_resid_pre`` / ``_mid`` / ``_post`` | ``autoencoder_latent`` | ``resid_post_embedding`` (L = 0) or ``resid_post_mlp`` / ``resid_post_attn`` / ``resid_post_mlp`` | ``a[t,i] * W_dec[i]`` |

MLP-side SAEs are ``mlp_autoencoder_latent`` nodes and attention-side ones
``attention_autoencoder_latent`` nodes (TDB's convention, so one MLP and one attention SAE of a
layer can be loaded together); residual-stream SAEs are TDB's generic ``autoencoder_latent``. A
transcoder (``cfg.hook_name_out`` / ``metadata.hook_name_out``) is classified by the hook it
writes to: its decoder writes there. Two SAEs with the same node type at the same layer (e.g.
``hook_mlp_out`` and ``mlp.hook_post``) cannot be attached to one model at once; use two models.

The write of a latent is what SAELens' ``decode`` adds for it, ``decode(a) - b_dec``, linear in
``a``; ``b_dec`` belongs to no latent. SAEs whose ``decode`` rescales its output
(``normalize_activations`` other than ``"none"``) are refused: their latent writes would need the
run-time scale.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Tuple

from . import _core
from .errors import NodeWriteValueError

__all__ = [
    "node_type_for_hook",
    "hook_name",
    "attach",
    "put_latents",
    "LATENT_ACTIVATION",
]

#: The store's activation name of each latent node type's latents.
LATENT_ACTIVATION = {
    "autoencoder_latent": "online_autoencoder_latent",
    "mlp_autoencoder_latent": "online_mlp_autoencoder_latent",
    "attention_autoencoder_latent": "online_attention_autoencoder_latent",
}

_HOOK = re.compile(r"^blocks\.(\d+)\.(hook_mlp_out|mlp\.hook_post|hook_attn_out|attn\.hook_z|hook_resid_pre|hook_resid_mid|hook_resid_post)$")
_KIND = {
    "hook_mlp_out": ("mlp_autoencoder_latent", "resid_delta_mlp"),
    "mlp.hook_post": ("mlp_autoencoder_latent", "mlp_post_act"),
    "hook_attn_out": ("attention_autoencoder_latent", "resid_delta_attn"),
    "attn.hook_z": ("attention_autoencoder_latent", "attn_weighted_sum_of_values"),
    "hook_resid_mid": ("autoencoder_latent", "resid_post_attn"),
    "hook_resid_post": ("autoencoder_latent", "resid_post_mlp"),
}


def node_type_for_hook(hook: str) -> Tuple[str, str, int]:
    """(node type, autoencoder input kind, layer) of an SAE reading or writing TransformerLens hook
    ``hook`` (see the module's table). Other hooks are a ``NodeWriteValueError``."""
    m = _HOOK.match(hook)
    if m is None:
        raise NodeWriteValueError(
            f"SAE hook {hook!r}: nodewrite knows SAEs on blocks.L.hook_mlp_out, blocks.L.mlp.hook_post, "
            "blocks.L.hook_attn_out, blocks.L.attn.hook_z and blocks.L.hook_resid_pre/mid/post"
        )
    layer, where = int(m.group(1)), m.group(2)
    if where == "hook_resid_pre":
        return "autoencoder_latent", ("resid_post_embedding" if layer == 0 else "resid_post_mlp"), layer
    node_type, kind = _KIND[where]
    return node_type, kind, layer


def _cfg_get(sae: Any, name: str) -> Any:
    cfg = getattr(sae, "cfg", None)
    if cfg is None:
        raise NodeWriteValueError(f"expected an SAELens SAE (with .cfg), got {type(sae).__name__}")
    meta = getattr(cfg, "metadata", None)
    for src in (meta, cfg):
        if src is None:
            continue
        v = getattr(src, name, None)
        if v is None and isinstance(src, dict):
            v = src.get(name)
        if v is not None:
            return v
    return None


def hook_name(sae: Any) -> str:
    """The hook an SAE's decoder writes to: ``hook_name_out`` for a transcoder, else ``hook_name``."""
    out = _cfg_get(sae, "hook_name_out")
    name = out if out is not None else _cfg_get(sae, "hook_name")
    if not isinstance(name, str):
        raise NodeWriteValueError("this SAE's cfg names no hook (cfg.hook_name / cfg.metadata.hook_name)")
    return name


def _check_normalization(sae: Any) -> None:
    norm = _cfg_get(sae, "normalize_activations")
    if norm not in (None, "none"):
        raise NodeWriteValueError(
            f"SAE with normalize_activations={norm!r}: its decode rescales the output at run time, so a "
            "latent's write is not a[t,i] * W_dec[i]; fold the scale into W_dec first"
        )


def attach(
    nw_model: "_core.Model",
    sae: Any,
    *,
    node_type: Optional[str] = None,
    layer: Optional[int] = None,
    copy: bool = False,
) -> Tuple[str, int]:
    """Sets the SAE's decoder ``W_dec`` (d_sae, d_in) as the autoencoder of ``nw_model`` for the
    node type and layer its hook gives (see the module's table; ``node_type=`` / ``layer=``
    override), borrowed (``copy=False``: a view of the parameter). Returns (node_type, layer).

    Its input kind follows from the hook: ``mlp_post_act`` (the decoder goes through ``W_out``),
    ``attn_weighted_sum_of_values`` (heads·d_head, through ``W_O``) or a residual kind (the
    decoded vector is the write). For a transcoder the hook written to decides. A TopK SAE with
    ``rescale_acts_by_decoder_norm`` gets ``W_dec / |W_dec[i]|`` (a copy: that is what its
    ``decode`` multiplies the latents by)."""
    _check_normalization(sae)
    nt, kind, l = node_type_for_hook(hook_name(sae))
    nt = node_type if node_type is not None else nt
    l = layer if layer is not None else l
    W_dec = sae.W_dec
    W_dec = W_dec.detach() if getattr(W_dec, "requires_grad", False) else W_dec
    if _cfg_get(sae, "rescale_acts_by_decoder_norm"):
        # decode divides each latent by its decoder row's norm: the effective decoder is
        # W_dec / |W_dec[i]|, a new tensor (copied into the library).
        W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True)
        copy = True
    nw_model.set_autoencoder(nt, l, W_dec, input=kind, copy=copy)
    return nt, l


def put_latents(
    store: "_core.ActivationStore",
    sae: Any,
    latents: Any,
    *,
    batch: Optional[int] = 0,
    node_type: Optional[str] = None,
    layer: Optional[int] = None,
) -> Tuple[str, int]:
    """Puts SAE latents (the output of ``sae.encode``, or a cache's ``...hook_sae_acts_post``)
    into ``store`` under the activation of the SAE's node type, borrowed: (batch, T, d_sae) with
    ``batch=`` the element (default 0), or (T, d_sae) (batch is then ignored). Returns
    (node_type, layer)."""
    nt, _kind, l = node_type_for_hook(hook_name(sae))
    nt = node_type if node_type is not None else nt
    l = layer if layer is not None else l
    t = latents.detach() if getattr(latents, "requires_grad", False) else latents
    if len(t.shape) == 3:
        store.put(LATENT_ACTIVATION[nt], l, t, layout="btn", batch=0 if batch is None else batch)
    else:
        store.put(LATENT_ACTIVATION[nt], l, t)
    return nt, l
