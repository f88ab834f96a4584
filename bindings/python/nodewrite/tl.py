"""TransformerLens adapters: a ``HookedTransformer`` and its ``ActivationCache`` as nodewrite inputs.

::

    import nodewrite as nw, nodewrite.tl

    logits, cache = model.run_with_cache(tokens)           # a TransformerLens HookedTransformer
    m = nw.tl.model_from(model)                            # borrowed views of W_O, W_out, W_U, ln_final.w
    s = nw.tl.store_from(cache, batch=0)                   # hook_pattern, hook_v, mlp.hook_post, SAE latents
    g = nw.tl.logit_directions(model, cache, " Mary", " John", batch=0)  # (T, d_model), TL's DLA as a direction
    per_head = nw.tl.head_logit_attrs(m, s, layer=9, direction=g)     # (T, n_heads)
    per_qkh = nw.tl.qkh_logit_attrs(m, s, layer=9, direction=g)       # (T, T, n_heads) [query, key, head]
    per_neuron = nw.tl.neuron_logit_attrs(m, s, layer=9, direction=g) # (T, d_mlp)

Nothing is copied: the model borrows the parameters (``copy=False``; in-place edits are seen,
replacing a parameter object is not) and the store borrows the cache's tensors, viewed in
nodewrite's layouts by strides (``hook_pattern`` (batch, head, q, k) is put with
``layout="bhqk"``, ``hook_v`` (batch, pos, head, d_head) with ``layout="bthd"``).

Names: ``tl_model`` is the TransformerLens model, ``model`` the :class:`nodewrite.Model` (the
keyword ``nw_model=`` still works for one release and warns with ``DeprecationWarning``).

**Causality** comes from ``cfg.attention_dir``: a ``"bidirectional"`` model gives a non-causal
:class:`nodewrite.Model` (every key of every query is read), a ``"causal"`` one a causal model.

**One batch element per store.** A store records which batch element its entries were put from
(``ActivationStore.batch``, set by :func:`store_from`), and
:func:`logit_directions` marks its direction with the batch element it was made for; the helpers
that take a store and a direction refuse a pair made for different elements (each DLA direction
depends on its element's ``ln_final.hook_scale``), and :func:`logit_attrs` takes the batch from
its store when none is given.

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

import functools
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

import nodewrite as _nw

from . import _core
from .errors import INDEX_OUT_OF_RANGE, NodeWriteIndexError, NodeWriteValueError

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
    "TL_ACTIVATIONS",
]

#: Cache keys of SAE latents (SAELens' ``run_with_cache_with_saes``) end with this.
LATENT_SUFFIX = ".hook_sae_acts_post"

# The attribute logit_directions sets on its result: the batch element it was made for.
_DIRECTION_BATCH = "_nodewrite_batch"


def _renamed(**old_to_new: str) -> Callable:
    """Keeps an old keyword working for one release: ``nw_model=`` for ``model=``, with a
    DeprecationWarning (the planned API calls the library model ``model`` everywhere)."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def call(*args: Any, **kw: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kw:
                    if new in kw:
                        raise TypeError(f"{fn.__name__}() got both {old}= and {new}= (the same argument; {old}= is deprecated)")
                    warnings.warn(f"{fn.__module__}.{fn.__name__}: the keyword {old}= is now {new}= ({old}= goes in the next release)",
                                  DeprecationWarning, stacklevel=2)
                    kw[new] = kw.pop(old)
            return fn(*args, **kw)

        return call

    return wrap


def _t(x: Any) -> Any:
    """A tensor without autograd (same storage): DLPack refuses tensors that require grad."""
    return x.detach() if getattr(x, "requires_grad", False) else x


def _cfg(tl_model: Any) -> Any:
    cfg = getattr(tl_model, "cfg", None)
    if cfg is None:
        raise NodeWriteValueError(f"tl_model: expected a TransformerLens HookedTransformer (with .cfg), got {type(tl_model).__name__}")
    return cfg


def _causal(cfg: Any) -> bool:
    direction = getattr(cfg, "attention_dir", "causal")
    if direction == "causal":
        return True
    if direction == "bidirectional":
        return False
    raise NodeWriteValueError(f"tl_model: cfg.attention_dir = {direction!r}; nodewrite knows 'causal' and 'bidirectional'")


def _int(value: Any, what: str) -> int:
    if isinstance(value, (bool, float)) or value is None:
        raise NodeWriteValueError(f"{what}: expected an integer, got {type(value).__name__}")
    try:
        return value.__index__()
    except (TypeError, AttributeError):
        raise NodeWriteValueError(f"{what}: expected an integer, got {type(value).__name__}") from None


def _batch_index(batch: Any, n: int, what: str = "batch") -> int:
    """batch as an index in [0, n) (negative counts from the end), or a NodeWriteIndexError."""
    b = _int(batch, what)
    if not -n <= b < n:
        raise NodeWriteIndexError(f"{what}: {b} is out of range for a cache of {n} batch elements (0..{n - 1}, or negative from the end)",
                                  INDEX_OUT_OF_RANGE)
    return b + n if b < 0 else b


#: TransformerLens's ``cfg.act_fn`` -> :class:`nodewrite.Model`'s ``mlp_activation``. gelu_new,
#: gelu_fast and gelu_pytorch_tanh are one formula (the tanh approximation; gelu_fast writes
#: sqrt(2/pi) as 0.7978845608, the same float32), "gelu" is torch's exact (erf) GELU.
TL_ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu": "gelu_erf",
    "relu": "relu",
}


def _edge_refusals(tl_model: Any, cfg: Any) -> list:
    """Why the edge DSTs cannot be computed for this model (empty: they can): what nodewrite's
    edge math (pre-LN blocks, LayerNorm, softmax(q.k / sqrt(d_head)) under the mask, one MLP
    with an elementwise activation) would get wrong for it."""
    why = []
    norm = getattr(cfg, "normalization_type", None)
    if norm not in ("LN", "LNPre"):
        why.append(f"cfg.normalization_type = {norm!r}: the edges differentiate a LayerNorm (mean-centred; 'LN' or 'LNPre'), "
                   "and an RMS norm or no norm has another Jacobian")
    act = getattr(cfg, "act_fn", None)
    if not getattr(cfg, "attn_only", False) and act not in TL_ACTIVATIONS:
        why.append(f"cfg.act_fn = {act!r}: nodewrite differentiates {', '.join(sorted(TL_ACTIVATIONS))} "
                   "(solu_ln, silu and the rest are not covered)")
    pos = getattr(cfg, "positional_embedding_type", "standard")
    if pos != "standard":
        why.append(f"cfg.positional_embedding_type = {pos!r}: queries and keys are then not linear in the LayerNorm's output "
                   "(rotary, shortformer and alibi change the scores)")
    for flag, what in (("parallel_attn_mlp", "the MLP then reads the block's input, not resid.post_attn"),
                       ("gated_mlp", "a gated MLP is not one matrix and an activation"),
                       ("use_qk_norm", "queries and keys are normalised"),
                       ("use_local_attn", "a local attention window masks keys")):
        if getattr(cfg, flag, False):
            why.append(f"cfg.{flag} = True: {what}")
    if getattr(cfg, "num_experts", None):
        why.append("cfg.num_experts is set: a mixture of experts is not one MLP")
    cap = getattr(cfg, "attn_scores_soft_cap", -1.0)
    if cap is not None and cap > 0:
        why.append(f"cfg.attn_scores_soft_cap = {cap}: the scores are soft-capped")
    want = float(np.sqrt(cfg.d_head))
    for l, block in enumerate(getattr(tl_model, "blocks", [])):
        scale = getattr(getattr(block, "attn", None), "attn_scale", want)
        scale = float(scale.item() if hasattr(scale, "item") else scale)
        if abs(scale - want) > 1e-6 * want:
            why.append(f"blocks[{l}].attn.attn_scale = {scale:g} (cfg.use_attn_scale = {getattr(cfg, 'use_attn_scale', True)}, "
                       f"cfg.scale_attn_by_inverse_layer_idx = {getattr(cfg, 'scale_attn_by_inverse_layer_idx', False)}): "
                       f"the edges divide the scores by sqrt(d_head) = {want:g}")
            break
    return why


def _set_read_side(m: Any, tl_model: Any, cfg: Any) -> None:
    """The weights the edge DSTs read, borrowed (LNPre: gain 1, bias 0, copies; grouped-query
    attention: TL's W_K / W_V / b_K / b_V properties repeat the key-value heads, copies)."""
    gqa = bool(getattr(cfg, "n_key_value_heads", None)) and cfg.n_key_value_heads != cfg.n_heads
    attn_only = bool(getattr(cfg, "attn_only", False))
    ones = np.ones(cfg.d_model, np.float32)
    zeros = np.zeros(cfg.d_model, np.float32)
    for l, block in enumerate(tl_model.blocks):
        lns = (("pre_attn", getattr(block, "ln1", None)),) + (() if attn_only else (("pre_mlp", getattr(block, "ln2", None)),))
        for where, ln in lns:
            w, b = getattr(ln, "w", None), getattr(ln, "b", None)
            m.set_weight(f"layer_norm_gain.{where}", l, _t(w) if w is not None else ones, copy=w is None)
            m.set_weight(f"layer_norm_bias.{where}", l, _t(b) if b is not None else zeros, copy=b is None)
        a = block.attn
        for name, attr in (("attn.to_query", "W_Q"), ("attn.to_key", "W_K"), ("attn.to_value", "W_V"),
                           ("attn.query_bias", "b_Q"), ("attn.key_bias", "b_K"), ("attn.value_bias", "b_V"),
                           ("attn.out_bias", "b_O")):
            m.set_weight(name, l, _t(getattr(a, attr)), copy=gqa and attr in ("W_K", "W_V", "b_K", "b_V"))
        if not attn_only:
            m.set_weight("mlp.to_hidden", l, _t(block.mlp.W_in), copy=False)
            m.set_weight("mlp.in_bias", l, _t(block.mlp.b_in), copy=False)
            m.set_weight("mlp.out_bias", l, _t(block.mlp.b_out), copy=False)


@_renamed(model="tl_model")
def model_from(tl_model: Any, *, unembedding: bool = True, edges: Optional[bool] = None) -> "_core.Model":
    """A :class:`nodewrite.Model` over a TransformerLens ``HookedTransformer``'s weights, borrowed.

    Per layer: ``blocks[l].attn.W_O`` (n_heads, d_head, d_model) as ``attn.to_residual`` and
    ``blocks[l].mlp.W_out`` (d_mlp, d_model) as ``mlp.to_residual``; ``unembed.W_U``
    (d_model, d_vocab) as ``unembedding`` and ``ln_final.w`` as ``layer_norm_gain.final`` (ones when
    the model has no final LN weight, e.g. after ``fold_ln``: the weight is then in ``W_U``). All
    ``copy=False``: views of the parameters, no copies (the ones vector excepted). Models with
    grouped-query attention, attention-only models (no MLP weights are set) and models whose
    d_mlp is unset are handled; the dimensions come from ``tl_model.cfg``, and so does causality:
    ``cfg.attention_dir == "bidirectional"`` gives a non-causal model (``Model(..., causal=False)``),
    another value than "causal" or "bidirectional" is refused.
    unembedding=False skips ``W_U`` and the gain (they are only read by token-space writes).

    **The read side** (what the edge DSTs of :func:`nodewrite.derive` with ``node=`` read), borrowed
    too: ``ln1.w`` / ``ln1.b`` as ``layer_norm_gain.pre_attn`` / ``layer_norm_bias.pre_attn``,
    ``ln2.w`` / ``ln2.b`` as ``..._pre_mlp`` (an LNPre model, e.g. after ``fold_ln``: gain 1 and bias
    0), ``W_Q`` / ``W_K`` / ``W_V`` (n_heads, d_model, d_head) as ``attn.to_query`` / ``to_key`` /
    ``to_value``, ``b_Q`` / ``b_K`` / ``b_V`` and ``b_O``, ``W_in`` as ``mlp.to_hidden``, ``b_in`` and
    ``b_out``; grouped-query attention through TL's own ``W_K`` / ``W_V`` (one key-value head per query
    head: copies); ``cfg.eps`` as ``layer_norm_epsilon`` and ``cfg.act_fn`` as ``mlp_activation``
    (:data:`TL_ACTIVATIONS`). edges=None (default): set when nodewrite's edge math fits the model,
    skipped otherwise (an edge DST then reports the missing weight); edges=True: a model it does
    not fit is refused with the reasons (an RMS norm or none, another activation, rotary or other
    positional schemes, parallel attention and MLP, a gated MLP or experts, soft-capped scores, an
    attention scale other than sqrt(d_head): ``use_attn_scale=False`` or
    ``scale_attn_by_inverse_layer_idx``); edges=False: skipped.
    """
    cfg = _cfg(tl_model)
    causal = _causal(cfg)
    if edges is not None and not isinstance(edges, bool):
        raise NodeWriteValueError(f"edges: expected True, False or None, got {type(edges).__name__}")
    refusals = [] if edges is False else _edge_refusals(tl_model, cfg)
    if edges and refusals:
        raise NodeWriteValueError("tl_model: nodewrite's edge DSTs do not fit this model: " + "; ".join(refusals)
                                  + " (model_from(tl_model, edges=False) still gives the write-family DSTs)")
    read_side = edges is not False and not refusals
    d_mlp = getattr(cfg, "d_mlp", None) or 1
    dims = dict(n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head, d_ff=d_mlp)
    if not causal:
        dims["causal"] = False
    if read_side:
        dims["layer_norm_epsilon"] = float(cfg.eps)
        if not getattr(cfg, "attn_only", False):
            dims["mlp_activation"] = TL_ACTIVATIONS[cfg.act_fn]
    m = _nw.Model(**dims)
    attn_only = bool(getattr(cfg, "attn_only", False))
    for l, block in enumerate(tl_model.blocks):
        m.set_weight("attn.to_residual", l, _t(block.attn.W_O), copy=False)
        if not attn_only and hasattr(block, "mlp") and hasattr(block.mlp, "W_out"):
            m.set_weight("mlp.to_residual", l, _t(block.mlp.W_out), copy=False)
    if unembedding:
        m.set_weight("unembedding", None, _t(tl_model.unembed.W_U), copy=False)
        w = getattr(getattr(tl_model, "ln_final", None), "w", None)
        if w is not None:
            m.set_weight("layer_norm_gain.final", None, _t(w), copy=False)
        else:
            m.set_weight("layer_norm_gain.final", None, np.ones(cfg.d_model, np.float32))
    if read_side:
        _set_read_side(m, tl_model, cfg)
    return m


# Gradient keys of a cache made with run_with_cache(..., incl_bwd=True) end with this.
_GRAD = "_grad"

# TransformerLens's residual hooks -> TDB's residual-stream locations (hook_resid_pre of block 0 is
# resid.post_emb, of no layer; of a later block it equals the previous block's hook_resid_post).
_RESIDUAL = {"hook_resid_pre": "resid.post_emb", "hook_resid_mid": "resid.post_attn", "hook_resid_post": "resid.post_mlp"}


def _has_batch(cache: Any) -> bool:
    return bool(getattr(cache, "has_batch_dim", True))


def _keys(cache: Any) -> list:
    keys = getattr(cache, "keys", None)
    return list(keys()) if keys is not None else list(cache)


def _n_batch(cache: Any) -> int:
    for key in _keys(cache):
        shape = getattr(cache[key], "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
    raise NodeWriteValueError("cache: no tensors in it")


def _store_batch(store: Any) -> Optional[int]:
    """The batch element a store's entries were put from (``ActivationStore.batch``; one per store)."""
    return None if store is None else getattr(store, "batch", None)


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
    What the edge DSTs read too: ``blocks.L.attn.hook_z`` (batch, pos, head, d_head) as ``attn.v_out``
    (``"bthd"``), and TDB's residual-stream locations: ``blocks.0.hook_resid_pre`` as ``resid.post_emb`` (no layer),
    ``blocks.L.hook_resid_mid`` as ``resid.post_attn`` and ``blocks.L.hook_resid_post`` as
    ``resid.post_mlp`` (``"btd"``). **Gradients**: a cache made with
    ``tl_model.run_with_cache(..., incl_bwd=True)`` holds ``*_grad`` keys, put as the backward pass
    (``pass_type="backward"``): ``attn.hook_pattern_grad`` (attn.qk_probs), ``attn.hook_z_grad``
    (attn.v_out), ``mlp.hook_post_grad`` (mlp.post_act), the residual hooks' grads and the SAE
    latents' grads.
    batch: which batch element (negative counts from the end; out of range is a
    NodeWriteIndexError); ignored for a cache made with ``remove_batch_dim()``. The store records
    it (``ActivationStore.batch``): the helpers of this module then refuse a direction made for
    another element, and adding to a store (``store=``) that holds another element is refused
    before anything is put.
    layers: restrict to these layers. store: add to this store instead of a new one.
    latents=False skips the SAE latents. Two SAEs of the cache whose latents would go to the same
    (node type, layer) are refused (put them with :func:`nodewrite.saelens.put_latents` and a
    ``node_type=`` each). No copies: the store keeps references to the cache's tensors (one
    exception: with grouped-query attention, ``hook_v`` holds fewer heads than the model and is
    expanded to one value vector per head, a copy, as TL does internally).
    """
    from . import saelens as _sae  # no SAELens import: only the core's hook table

    b = _has_batch(cache)
    element = _batch_index(batch, _n_batch(cache)) if b else None
    held = _store_batch(store)
    if held is not None and element is not None and held != element:
        raise NodeWriteValueError(
            f"store: it holds batch element {held} (store_from(..., batch={held})), and this call puts batch element "
            f"{element}; one store holds one batch element: make another store (leave store= out)"
        )
    kw = {"batch": element} if b else {}
    pre = "b" if b else ""
    wanted = None if layers is None else {_int(l, "layers") for l in layers}
    # (activation, layer, tensor, layout, pass): checked first, put after (bad input writes nothing)
    puts: list = []
    latent_from: Dict[Tuple[str, int], str] = {}
    for key in _keys(cache):
        grad = key.endswith(_GRAD)
        base = key[: -len(_GRAD)] if grad else key
        pass_type = "backward" if grad else "forward"
        if base.endswith(LATENT_SUFFIX):
            if not latents:
                continue
            hook = base[: -len(LATENT_SUFFIX)]
            node_type, _input, layer = _sae.node_type_for_hook(hook)
            if wanted is not None and layer not in wanted:
                continue
            if (node_type, layer, pass_type) in latent_from:
                raise NodeWriteValueError(
                    f"cache: the latents of SAEs on {latent_from[node_type, layer, pass_type]!r} and {hook!r} both belong to node type "
                    f"{node_type} at layer {layer}, and a store holds one activation per (node type, layer); use "
                    "store_from(cache, latents=False), then nodewrite.saelens.put_latents(store, sae, latents, node_type=...) "
                    "with another latent node type for one of them (attached with the same node_type=), or two stores"
                )
            latent_from[node_type, layer, pass_type] = hook
            puts.append((_sae.latent_activation(node_type), layer, _t(cache[key]), pre + "tn", pass_type))
            continue
        parts = base.split(".")
        if len(parts) not in (3, 4) or parts[0] != "blocks":
            continue
        try:
            layer = int(parts[1])
        except ValueError:
            continue
        if wanted is not None and layer not in wanted:
            continue
        where = ".".join(parts[2:])
        if where in _RESIDUAL:
            if where == "hook_resid_pre":  # TDB's residual locations: after the embedding, and after each sublayer
                if layer != 0:
                    continue
                puts.append(("resid.post_emb", None, _t(cache[key]), pre + "td", pass_type))
            else:
                puts.append((_RESIDUAL[where], layer, _t(cache[key]), pre + "td", pass_type))
        elif where == "attn.hook_pattern":
            puts.append(("attn.qk_probs", layer, _t(cache[key]), pre + "hqk", pass_type))
        elif where == "attn.hook_z":
            puts.append(("attn.v_out", layer, _t(cache[key]), pre + "thd", pass_type))
        elif grad:
            if where == "mlp.hook_post":
                puts.append(("mlp.post_act", layer, _t(cache[key]), pre + "tn", pass_type))
        elif where == "attn.hook_v":
            v = _t(cache[key])
            n_heads = getattr(getattr(getattr(cache, "model", None), "cfg", None), "n_heads", None)
            if n_heads is not None and v.shape[-2] != n_heads and n_heads % v.shape[-2] == 0:
                # grouped-query attention: head h reads key/value head h // (n_heads / n_kv), as
                # TL's repeat_interleave does. Not expressible by strides: this one is a copy.
                v = v.repeat_interleave(n_heads // v.shape[-2], dim=-2)
            puts.append(("attn.v", layer, v, pre + "thd", pass_type))
        elif where == "mlp.hook_post":
            puts.append(("mlp.post_act", layer, _t(cache[key]), pre + "tn", pass_type))
    s = store if store is not None else _nw.ActivationStore()
    for activation, layer, tensor, layout, pass_type in puts:
        if pass_type == "forward":
            s.put(activation, layer, tensor, layout=layout, **kw)
        else:
            s.put(activation, layer, tensor, pass_type=pass_type, layout=layout, **kw)
    return s


def _token_ids(tl_model: Any, tokens: Any, what: str) -> Any:
    import torch

    if isinstance(tokens, str):
        return torch.as_tensor(tl_model.to_single_token(tokens))
    ids = torch.as_tensor(tokens)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise NodeWriteValueError(f"{what}: token ids must be integers, got dtype {ids.dtype}")
    if ids.ndim > 2:
        raise NodeWriteValueError(f"{what}: expected a token id, (T,) or (batch, T) token ids, got shape {tuple(ids.shape)}")
    d_vocab = tl_model.unembed.W_U.shape[-1]
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= d_vocab):
        bad = int(ids.max()) if int(ids.max()) >= d_vocab else int(ids.min())
        raise NodeWriteIndexError(
            f"{what}: token id {bad} is outside the vocabulary (d_vocab = {d_vocab}: ids 0..{d_vocab - 1}); "
            "pass ids of this model's tokenizer (tl_model.to_single_token(s) for a string)",
            INDEX_OUT_OF_RANGE,
        )
    return ids.long()


def _tag(direction: Any, element: Optional[int]) -> Any:
    try:
        setattr(direction, _DIRECTION_BATCH, element)
    except AttributeError:  # pragma: no cover - torch tensors take attributes
        pass
    return direction


def _check_pair(store: Any, direction: Any) -> None:
    """A direction from logit_directions and a store from store_from must be for one batch element."""
    s = _store_batch(store)
    d = getattr(direction, _DIRECTION_BATCH, None)
    if s is not None and d is not None and s != d:
        raise NodeWriteValueError(
            f"direction: it was made for batch element {d} (logit_directions(..., batch={d})), but the store holds batch "
            f"element {s} (store_from(cache, batch={s})); make the direction with batch={s}, or the store with batch={d}"
        )


@_renamed(model="tl_model")
def logit_directions(
    tl_model: Any,
    cache: Any,
    tokens: Any,
    incorrect_tokens: Any = None,
    *,
    batch: Optional[int] = None,
    store: Optional["_core.ActivationStore"] = None,
    ln_weight: bool = False,
) -> Any:
    """TransformerLens's direct-logit-attribution map as one direction per position.

    Returns a float32 CPU torch tensor (T, d_model), ``g[t] = centre(W_U[:, a_t] - W_U[:, b_t]) /
    scale[batch, t]``, such that for any component ``c`` (T, d_model) of the residual stream,
    ``(c * g).sum(-1)`` equals TL's ``cache.logit_attrs(c, tokens, incorrect_tokens)`` for that
    batch element: TL's ``apply_ln_to_stack`` centres (LN / LNPre models only), divides by the cached
    ``ln_final.hook_scale`` (LN, LNPre, RMS, RMSPre; other models: no scaling) and dots with
    ``tokens_to_residual_directions``. tokens / incorrect_tokens: a token id, a single-token str,
    or ids per position (T,) or per (batch, position) (B, T); an id outside the vocabulary is a
    NodeWriteIndexError naming the argument. batch: the batch element (default: the store's, when
    ``store=`` is given, else 0); the result remembers it, and the helpers of this module refuse it
    with a store of another element. ln_weight=True multiplies the
    direction by ``ln_final.w`` too (which TL leaves out; use it for an unfolded model whose
    ``ln_final.w`` is not 1 if you want the true contribution to the logits, bias aside).
    """
    import torch

    cfg = _cfg(tl_model)
    W_U = _t(tl_model.unembed.W_U)  # (d_model, d_vocab)
    a = _token_ids(tl_model, tokens, "tokens")
    bt = None if incorrect_tokens is None else _token_ids(tl_model, incorrect_tokens, "incorrect_tokens")
    if bt is not None and bt.shape != a.shape:
        raise NodeWriteValueError(f"incorrect_tokens: must have the shape of tokens, got {tuple(bt.shape)} and {tuple(a.shape)}")
    has_batch = _has_batch(cache)
    element: Optional[int] = None
    if has_batch:
        from_store = _store_batch(store)
        if batch is None:
            batch = from_store if from_store is not None else 0
        element = _batch_index(batch, _n_batch(cache))
        if from_store is not None and from_store != element:
            raise NodeWriteValueError(
                f"batch: {element}, but the store holds batch element {from_store} (store_from(cache, batch={from_store})); "
                f"pass batch={from_store} or leave it out"
            )

    def columns(ids):  # W_U[:, ids] as (d_model,) or (d_model, T): index_select gathers columns fastest
        if ids.ndim == 2:  # (B, T): this batch element's row only
            if element is None:
                raise NodeWriteValueError("tokens: (batch, T) ids with a cache without a batch dimension; pass (T,) ids")
            ids = ids[element]
        if ids.ndim == 0:
            return W_U[:, ids]
        return W_U.index_select(1, ids.reshape(-1))

    d = columns(a)
    if bt is not None:
        d = d - columns(bt)
    if ln_weight:
        w = getattr(getattr(tl_model, "ln_final", None), "w", None)
        if w is not None:
            w = _t(w)
            d = d * (w if d.ndim == 1 else w[:, None])
    norm = getattr(cfg, "normalization_type", None)
    if norm in ("LN", "LNPre"):
        d = d - d.mean(dim=0, keepdim=True)
    scale = None
    if norm in ("LN", "LNPre", "RMS", "RMSPre"):
        scale = _t(cache["ln_final.hook_scale"])
        if has_batch:
            scale = scale[element]
        T = scale.shape[0]
    else:
        T = _t(cache["hook_embed"]).shape[-2]
    if d.ndim == 2 and d.shape[1] != T:
        raise NodeWriteValueError(f"tokens: {d.shape[1]} ids per position row, but the cache has T = {T} positions")
    d = d.expand(T, d.shape[0]) if d.ndim == 1 else d.T  # (T, d_model)
    if scale is not None:
        d = d / scale
    return _tag(d.to(dtype=torch.float32, device="cpu").contiguous(), element)


@functools.lru_cache(maxsize=None)
def _projection_dst(node_type: str, layout: str) -> str:
    """The derived scalar that projects node_type's writes onto a direction per token, in layout
    (from the library's DST table)."""
    found = [name for name in _nw.DSTS
             if (lambda i: i.node_type == node_type and i.layout == layout and i.quantity == "projection")(_nw.dst_info(name))]
    if len(found) != 1:
        raise NodeWriteValueError(f"node_type: the library has no projection of {node_type} writes laid out as {layout!r}")
    return found[0]


def _project(model: Any, store: Any, node_type: str, layout: str, layer: Any, direction: Any) -> np.ndarray:
    _check_pair(store, direction)
    return _nw.derive(model, store, _projection_dst(node_type, layout), layer, direction=direction)


@_renamed(nw_model="model")
def head_logit_attrs(model: "_core.Model", store: "_core.ActivationStore", layer: int, direction: Any) -> np.ndarray:
    """(T, n_heads) float32: each head's write at each query position (summed over keys),
    projected onto ``direction[t]`` — with :func:`logit_directions`, TL's
    ``cache.logit_attrs(cache.stack_head_results(), ...)`` for one layer, without the
    (T, heads, d_model) stack. A direction made for another batch element than the store's is
    refused."""
    return _project(model, store, "attention_head", "per_sequence_token", layer, direction)


@_renamed(nw_model="model")
def qkh_logit_attrs(model: "_core.Model", store: "_core.ActivationStore", layer: int, direction: Any) -> np.ndarray:
    """(T, T, n_heads) float32 [query, key, head]: each (query, key, head) write projected onto
    ``direction[query]`` (zero for key > query in a causal model); summed over keys it is
    :func:`head_logit_attrs`. TransformerLens has no such decomposition."""
    return _project(model, store, "attention_head", "unflattened", layer, direction)


@_renamed(nw_model="model")
def neuron_logit_attrs(model: "_core.Model", store: "_core.ActivationStore", layer: int, direction: Any) -> np.ndarray:
    """(T, d_mlp) float32: each neuron's write projected onto ``direction[t]`` — TL's
    ``cache.get_neuron_results(layer, project_output_onto=...)`` with a per-position direction."""
    return _project(model, store, "mlp_neuron", "nodes", layer, direction)


@_renamed(nw_model="model")
def latent_logit_attrs(
    model: "_core.Model", store: "_core.ActivationStore", node_type: str, layer: int, direction: Any
) -> np.ndarray:
    """(T, n_latents) float32: each SAE latent's write (see :mod:`nodewrite.saelens`) projected
    onto ``direction[t]``. node_type: a latent node type."""
    if node_type not in _nw.NODE_TYPES or not _nw.node_type_info(node_type).is_latent:
        latent = [n for n in _nw.NODE_TYPES if _nw.node_type_info(n).is_latent]
        raise NodeWriteValueError(f"node_type: expected one of {', '.join(latent)}, got {node_type!r}")
    return _project(model, store, node_type, "nodes", layer, direction)


_KINDS = {"heads": head_logit_attrs, "qkh": qkh_logit_attrs, "neurons": neuron_logit_attrs}


@_renamed(nw_model="model")
def logit_attrs(
    tl_model: Any,
    cache: Any,
    layer: int,
    tokens: Any,
    incorrect_tokens: Any = None,
    *,
    kind: str = "heads",
    batch: Optional[int] = None,
    model: Optional["_core.Model"] = None,
    store: Optional["_core.ActivationStore"] = None,
) -> np.ndarray:
    """One call: TL's direct logit attribution of one layer's nodes, for one batch element.

    kind: "heads" (T, n_heads), "qkh" (T, T, n_heads) [query, key, head] or "neurons" (T, d_mlp).
    layer: 0 .. n_layers - 1 (else a NodeWriteIndexError naming it). batch: the batch element;
    default: the store's when ``store=`` is given (a different one is refused), else 0.
    model / store: reuse ones made by :func:`model_from` / :func:`store_from` (otherwise they
    are made here: borrowed views, cheap)."""
    if kind not in _KINDS:
        raise NodeWriteValueError(f"kind: expected one of {', '.join(_KINDS)}, got {kind!r}")
    if model is not None and not isinstance(model, _nw.Model):
        raise NodeWriteValueError(f"model: expected a nodewrite.Model (from model_from), got {type(model).__name__}; "
                                  "the TransformerLens model is the first argument")
    n_layers = _cfg(tl_model).n_layers
    l = _int(layer, "layer")
    if not 0 <= l < n_layers:
        raise NodeWriteIndexError(f"layer: {l} is out of range for a model of {n_layers} layers (0..{n_layers - 1})",
                                  INDEX_OUT_OF_RANGE)
    m = model if model is not None else model_from(tl_model)
    if store is None:
        s = store_from(cache, batch=0 if batch is None else batch, layers=[l], latents=False)
    else:
        s = store
    g = logit_directions(tl_model, cache, tokens, incorrect_tokens, batch=batch, store=s)
    return _KINDS[kind](m, s, l, g)
