"""The one model cache: TDB model contexts and autoencoder contexts -> ``nodewrite.Model``.

A ``nodewrite.Model`` is built once per (model context, layer, node type[, autoencoder]) and
kept weakly: the entry goes when the model context (or the autoencoder module) is collected.
The weights come from ``ModelContext.get_weight`` (TDB's permuted, non-contiguous views) and the
decoders from the autoencoders, handed over borrowed (``copy=False``): in-place edits are seen.
Which weight a node type needs, and which one a latent's decoded vector goes through, the
library says (:mod:`nodewrite.tdb.facts`).

The library takes float32 CPU tensors: a context on another device or a weight of another dtype
raises :class:`NotNative` (remembered for that entry), and the caller runs the torch fallback.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Optional

import nodewrite as _nw

from . import facts
from .counters import stats
from .namespace import tdb

__all__ = ["NotNative", "cpu_float32", "edge_model", "model_dims", "model_for", "dims_model", "clear_cache", "generation"]


class NotNative(Exception):
    """Not something the library takes (a device other than the CPU, a dtype other than
    float32): the call is served by the torch fallback."""


_lock = threading.RLock()
_generation = 0


def generation() -> int:
    """Incremented by :func:`clear_cache`; per-deriver state built before is rebuilt."""
    return _generation


class WeakIdMap:
    """A map keyed by object identity that drops an entry when its key object is collected.
    Works for unhashable keys (TDB's frozen dataclasses with dict fields); objects that cannot
    be weakly referenced are not cached."""

    def __init__(self) -> None:
        self._d: dict[int, tuple[weakref.ref, Any]] = {}

    def get(self, obj: Any) -> Any:
        entry = self._d.get(id(obj))
        if entry is not None and entry[0]() is obj:
            return entry[1]
        return None

    def set(self, obj: Any, value: Any) -> None:
        key = id(obj)
        d = self._d

        def _drop(ref: weakref.ref, key: int = key) -> None:
            entry = d.get(key)
            if entry is not None and entry[0] is ref:
                del d[key]

        try:
            ref = weakref.ref(obj, _drop)
        except TypeError:
            return
        d[key] = (ref, value)

    def clear(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


#: model context -> {key: nodewrite.Model | _NOT_NATIVE | WeakIdMap(autoencoder -> ...)}
models = WeakIdMap()
_NOT_NATIVE = object()  # cached where a model cannot be built natively


def cpu_float32(t: Any) -> Any:
    """A numpy view of a float32 CPU tensor (same memory and strides); NotNative otherwise."""
    torch = tdb().torch
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu" or t.dtype != torch.float32:
        raise NotNative
    return t.detach().numpy()


def model_dims(model_context: Any) -> dict[str, int]:
    """nodewrite.Model's dimensions, from TDB's Dimension sizes of the model context."""
    D = tdb().Dimension
    return dict(
        n_layers=model_context.get_dim_size(D.LAYERS),
        d_model=model_context.get_dim_size(D.RESIDUAL_STREAM_CHANNELS),
        n_heads=model_context.get_dim_size(D.ATTN_HEADS),
        d_head=model_context.get_dim_size(D.VALUE_CHANNELS),
        d_ff=model_context.get_dim_size(D.MLP_ACTS),
    )


def _cached(model_context: Any, key: tuple, autoencoder: Any, build: Any) -> Any:
    with _lock:
        per_context = models.get(model_context)
        if per_context is None:
            per_context = {}
            models.set(model_context, per_context)
        if autoencoder is None:
            model = per_context.get(key)
        else:
            by_autoencoder = per_context.get(key)
            if by_autoencoder is None:
                by_autoencoder = per_context[key] = WeakIdMap()
            model = by_autoencoder.get(autoencoder)
        if model is None:
            try:
                model = build()
            except NotNative:
                model = _NOT_NATIVE
            else:
                stats["models_built"] += 1
            if autoencoder is None:
                per_context[key] = model
            else:
                by_autoencoder.set(autoencoder, model)
        if model is _NOT_NATIVE:
            raise NotNative
        return model


def _new_model(model_context: Any) -> Any:
    if model_context.device.type != "cpu":
        raise NotNative
    return _nw.Model(**model_dims(model_context))


def _set_weight(model: Any, name: str, layer: int, model_context: Any) -> None:
    weight = model_context.get_weight(tdb().WeightLocationType(name), layer)
    model.set_weight(name, layer, cpu_float32(weight), copy=False)


def dims_model(model_context: Any) -> Any:
    """A model with the context's dimensions and no weights (for the layer-write values)."""
    return _cached(model_context, ("dims",), None, lambda: _new_model(model_context))


def model_for(model_context: Any, layer: int, node_type: str, autoencoder_context: Optional[Any] = None) -> Any:
    """The model serving ``node_type`` nodes at ``layer``: the node type's output weight, or
    for a latent node type the autoencoder of ``autoencoder_context`` at that layer (and the
    weight its decoded vector goes through). NotNative if the library cannot take them."""
    info = facts.node_type(node_type)
    if info is None:
        raise NotNative
    if not info.is_latent:
        def build() -> Any:
            model = _new_model(model_context)
            _set_weight(model, info.weight, layer, model_context)
            return model

        return _cached(model_context, (layer, node_type), None, build)
    if autoencoder_context is None or autoencoder_context.device.type != "cpu":
        raise NotNative
    trained_on = autoencoder_context.dst.value
    ae_input = facts.autoencoder_input(trained_on)
    if ae_input is None:  # an autoencoder input the library does not take
        raise NotNative
    autoencoder = autoencoder_context.get_autoencoder(layer)

    def build_latent() -> Any:
        model = _new_model(model_context)
        if ae_input.weight is not None:
            _set_weight(model, ae_input.weight, layer, model_context)
        decoder = cpu_float32(tdb().get_decoder_weight(autoencoder))
        model.set_autoencoder(node_type, layer, decoder, input=trained_on, copy=False)
        return model

    return _cached(model_context, (layer, node_type, trained_on), autoencoder, build_latent)


def clear_cache() -> None:
    """Forgets every cached nodewrite.Model (and the per-deriver state built from them), so the
    next call reads the weights from the model and autoencoder contexts again."""
    global _generation
    with _lock:
        models.clear()
        _generation += 1


def _as_float32(t: Any) -> Any:
    """A float32 numpy array of a CPU tensor of a floating dtype the drop-in serves natively
    (float32 as a view; float16, bfloat16, float64 as a float32 copy); NotNative otherwise."""
    torch = tdb().torch
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
        raise NotNative
    if t.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise NotNative
    return t.detach().to(torch.float32).numpy()


def edge_model(model_context: Any, autoencoder_contexts: tuple, layer_weights: Any) -> Any:
    """The model serving the edge DSTs of a model context: every layer's read-side weights
    (``layer_weights(layer)``: torch_edges.LayerWeights plus the attention and MLP output biases
    of TDB's Transformer) and write side, and the autoencoders of ``autoencoder_contexts``
    with their encoders. Cached per model context and autoencoder modules (copies: the
    read-side weights are rearranged from TDB's nn.Linear layout)."""
    if model_context.device.type != "cpu" or any(c.device.type != "cpu" for c in autoencoder_contexts):
        raise NotNative
    dims = model_dims(model_context)
    autoencoders = tuple((c.dst.value, l, c.get_autoencoder(l)) for c in autoencoder_contexts for l in range(dims["n_layers"]))
    node_types = {}
    for c in autoencoder_contexts:
        if c.autoencoder_node_type is None:
            raise NotNative
        node_types[c.dst.value] = c.autoencoder_node_type.value
    key = ("edges", tuple((c.dst.value, c.get_autoencoder(0) is not None) for c in autoencoder_contexts))

    def build() -> Any:
        t = tdb()
        model = _new_model(model_context)
        for layer in range(dims["n_layers"]):
            w, out_bias, mlp_out_bias = layer_weights(layer)
            for name, value in (
                ("layer_norm_gain.pre_attn", w.ln1_gain), ("layer_norm_bias.pre_attn", w.ln1_bias),
                ("layer_norm_gain.pre_mlp", w.ln2_gain), ("layer_norm_bias.pre_mlp", w.ln2_bias),
                ("attn.to_query", w.w_q), ("attn.to_key", w.w_k), ("attn.to_value", w.w_v),
                ("attn.query_bias", w.b_q), ("attn.key_bias", w.b_k), ("attn.value_bias", w.b_v),
                ("attn.to_residual", w.w_o), ("attn.out_bias", out_bias),
                ("mlp.to_hidden", w.w_in), ("mlp.in_bias", w.b_in),
                ("mlp.to_residual", w.w_out), ("mlp.out_bias", mlp_out_bias),
            ):
                model.set_weight(name, layer, _as_float32(value))
        for trained_on, layer, ae in autoencoders:
            ae_input = facts.autoencoder_input(trained_on)
            if ae_input is None:
                raise NotNative
            node_type = node_types[trained_on]
            model.set_autoencoder(
                node_type, layer, _as_float32(t.get_decoder_weight(ae)), input=trained_on,
                encoder=_as_float32(ae.encoder.weight), latent_bias=_as_float32(ae.latent_bias),
                pre_bias=_as_float32(ae.pre_bias),
            )
        return model

    # keyed by the first autoencoder module (its collection drops the entry); the others by identity in the key
    first = autoencoders[0][2] if autoencoders else None
    key = key + tuple(id(ae) for _, _, ae in autoencoders[1:])
    return _cached(model_context, key, first, build)
