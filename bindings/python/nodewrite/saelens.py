"""SAELens adapters: an SAELens ``SAE`` (standard, JumpReLU, TopK) or transcoder as the
autoencoder of a :class:`nodewrite.Model`, and its latents in an ``ActivationStore``.

::

    import nodewrite as nw, nodewrite.tl, nodewrite.saelens

    m = nw.tl.model_from(model)                              # a HookedSAETransformer / HookedTransformer
    node_type, layer = nw.saelens.attach(m, sae)             # the decoder, borrowed
    _, cache = model.run_with_cache_with_saes(tokens, saes=[sae])
    s = nw.tl.store_from(cache)                              # picks up ...hook_sae_acts_post
    w = nw.node_writes(m, s, node_type, layer, nw.latents_at_token(5, m, node_type, layer))

Where an SAE's latent writes go, by the hook it reads (``cfg.hook_name``, or ``cfg.metadata.hook_name``;
the library's table, :func:`nodewrite.saelens_hook`, decides: this is what it holds):

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
writes to: its decoder writes there.

A model holds one autoencoder per (node type, layer): :func:`attach` refuses a second SAE for an
occupied slot (e.g. ``hook_mlp_out`` and ``mlp.hook_post`` of one layer) instead of replacing the
first. To keep both, use two models, or attach an MLP- or attention-side SAE as the generic
``autoencoder_latent`` node type (``node_type="autoencoder_latent"``, and its latents with
:func:`put_latents` and the same ``node_type=``) when that slot is free. ``replace=True`` replaces.

The write of a latent is what SAELens' ``decode`` adds for it, ``decode(a) - b_dec``, linear in
``a``; ``b_dec`` belongs to no latent. SAEs whose ``decode`` rescales its output
(``normalize_activations`` other than ``"none"``) are refused: their latent writes would need the
run-time scale.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import nodewrite as _nw

from . import _core
from .errors import NodeWriteValueError
from .tl import _STORE_BATCH, _batch_index, _renamed

__all__ = [
    "node_type_for_hook",
    "latent_activation",
    "hook_name",
    "attach",
    "put_latents",
    "LATENT_ACTIVATION",
]


def node_type_for_hook(hook: str) -> Tuple[str, str, int]:
    """(node type, autoencoder input kind, layer) of an SAE reading or writing TransformerLens hook
    ``hook``, from the library's SAELens hook table (:func:`nodewrite.saelens_hook`; see the
    module's table). The input kind is TDB's name of what the SAE reads (``"resid_delta_mlp"``,
    ``"mlp_post_act"``, ...). A hook the library does not read SAEs on is a ``NodeWriteError``."""
    h = _nw.saelens_hook(hook)
    return h.node_type, h.tdb_input, h.layer


def latent_activation(node_type: str) -> str:
    """The store's activation name of a latent node type's latents (from the library's node type
    table: the activation that holds the node's scalar)."""
    if node_type not in _nw.NODE_TYPES or not _nw.node_type_info(node_type).is_latent:
        latent = [n for n in _nw.NODE_TYPES if _nw.node_type_info(n).is_latent]
        raise NodeWriteValueError(f"node_type: expected one of {', '.join(latent)}, got {node_type!r}")
    return _nw.node_type_info(node_type).activations[0]


def __getattr__(name: str) -> Any:
    # LATENT_ACTIVATION: {latent node type: its activation}, a view of the library's table built
    # on first use (kept for the code that indexes it; latent_activation() is the function).
    if name == "LATENT_ACTIVATION":
        table: Dict[str, str] = {n: _nw.node_type_info(n).activations[0] for n in _nw.NODE_TYPES if _nw.node_type_info(n).is_latent}
        globals()[name] = table
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _cfg_get(sae: Any, name: str) -> Any:
    cfg = getattr(sae, "cfg", None)
    if cfg is None:
        raise NodeWriteValueError(f"sae: expected an SAELens SAE (with .cfg), got {type(sae).__name__}")
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
        raise NodeWriteValueError("sae: its cfg names no hook (cfg.hook_name / cfg.metadata.hook_name)")
    return name


def _check_normalization(sae: Any) -> None:
    norm = _cfg_get(sae, "normalize_activations")
    if norm not in (None, "none"):
        raise NodeWriteValueError(
            f"sae: normalize_activations={norm!r}: its decode rescales the output at run time, so a "
            "latent's write is not a[t,i] * W_dec[i]; fold the scale into W_dec first"
        )


#: TDB's generic latent node type: the one other place an MLP- or attention-side SAE can go.
_GENERIC = "autoencoder_latent"


def _occupied(model: Any, node_type: str, layer: int, hook: str) -> NodeWriteValueError:
    other = ""
    if node_type != _GENERIC and (_GENERIC, layer) not in model.autoencoders():
        other = (f", or attach it as the generic latent type with attach(model, sae, node_type={_GENERIC!r}) (free at "
                 f"layer {layer}) and put its latents with put_latents(store, sae, latents, node_type={_GENERIC!r})")
    return NodeWriteValueError(
        f"model: the autoencoder slot ({node_type}, layer {layer}) already holds an SAE, and a model holds one autoencoder "
        f"per (node type, layer): the SAE on {hook!r} would replace it. To keep both SAEs, attach this one to a second "
        f"model (nodewrite.tl.model_from(tl_model) again){other}; to replace the first, pass replace=True"
    )


@_renamed(nw_model="model")
def attach(
    model: "_core.Model",
    sae: Any,
    *,
    node_type: Optional[str] = None,
    layer: Optional[int] = None,
    copy: bool = False,
    replace: bool = False,
) -> Tuple[str, int]:
    """Sets the SAE's decoder ``W_dec`` (d_sae, d_in) as the autoencoder of ``model`` for the
    node type and layer its hook gives (see the module's table; ``node_type=`` / ``layer=``
    override), borrowed (``copy=False``: a view of the parameter). Returns (node_type, layer).

    Its input kind follows from the hook: ``mlp_post_act`` (the decoder goes through ``W_out``),
    ``attn_weighted_sum_of_values`` (heads·d_head, through ``W_O``) or a residual kind (the
    decoded vector is the write). For a transcoder the hook written to decides. A TopK SAE with
    ``rescale_acts_by_decoder_norm`` gets ``W_dec / |W_dec[i]|`` (a copy: that is what its
    ``decode`` multiplies the latents by). A slot that holds an autoencoder already is refused
    (the message says how to keep both SAEs) unless ``replace=True``. The keyword ``nw_model=``
    still works for one release (DeprecationWarning)."""
    _check_normalization(sae)
    hook = hook_name(sae)
    nt, kind, l = node_type_for_hook(hook)
    nt = node_type if node_type is not None else nt
    l = layer if layer is not None else l
    if not replace and (nt, l) in model.autoencoders():
        raise _occupied(model, nt, l, hook)
    W_dec = sae.W_dec
    W_dec = W_dec.detach() if getattr(W_dec, "requires_grad", False) else W_dec
    if _cfg_get(sae, "rescale_acts_by_decoder_norm"):
        # decode divides each latent by its decoder row's norm: the effective decoder is
        # W_dec / |W_dec[i]|, a new tensor (copied into the library).
        W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True)
        copy = True
    if replace:
        model.set_autoencoder(nt, l, W_dec, input=kind, copy=copy, replace=True)
    else:
        model.set_autoencoder(nt, l, W_dec, input=kind, copy=copy)
    return nt, l


def put_latents(
    store: "_core.ActivationStore",
    sae: Any,
    latents: Any,
    *,
    batch: Optional[int] = None,
    node_type: Optional[str] = None,
    layer: Optional[int] = None,
) -> Tuple[str, int]:
    """Puts SAE latents (the output of ``sae.encode``, or a cache's ``...hook_sae_acts_post``)
    into ``store`` under the activation of the SAE's node type, borrowed: (batch, T, d_sae) with
    ``batch=`` the element, or (T, d_sae) (batch is then ignored). batch defaults to the
    store's batch element when it was made by :func:`nodewrite.tl.store_from` (another one is
    refused: one store, one batch element), else 0; the store then records it. Returns
    (node_type, layer)."""
    nt, _kind, l = node_type_for_hook(hook_name(sae))
    nt = node_type if node_type is not None else nt
    l = layer if layer is not None else l
    t = latents.detach() if getattr(latents, "requires_grad", False) else latents
    activation = latent_activation(nt)
    if len(t.shape) == 3:
        held = _STORE_BATCH.get(store)
        element = _batch_index(batch if batch is not None else (held if held is not None else 0), int(t.shape[0]))
        if held is not None and held != element:
            raise NodeWriteValueError(
                f"batch: {element}, but the store holds batch element {held} (store_from(cache, batch={held})); "
                f"pass batch={held} or leave it out, or use another store"
            )
        store.put(activation, l, t, layout="btn", batch=element)
        _STORE_BATCH[store] = element
    else:
        store.put(activation, l, t)
    return nt, l
