"""Drop-in replacement for transformer-debugger's ``node_write`` module.

TDB (openai/transformer-debugger) computes what one node writes into the residual stream in
``neuron_explainer/activations/derived_scalars/node_write.py``. For an attention node it first
builds the weighted-value tensor of the whole layer, (T, T, heads, d_head), and then keeps one
element of it. This module gives the same two functions, built from TDB's own classes, that hand
the computation of the one needed product to the native library::

    import nodewrite.tdb
    nodewrite.tdb.install()   # existing TDB code now uses the drop-in

or, without patching anything, call :func:`make_node_write_scalar_deriver` /
:func:`make_node_write_scalar_source` directly.

What the derivers are
---------------------
Real TDB ``ScalarDeriver`` / ``DerivedScalarSource`` objects with ``dst`` ``SINGLE_NODE_WRITE``,
the same ``dst_config`` (``layer_indices=[node layer]``) and location within the layer as the
original's. Their inputs are TDB raw activations at the node's layer: ``attn.qk_probs`` and
``attn.v`` for attention heads (no weighted-value intermediate), ``mlp.post_act`` for MLP neurons
(with its backward-pass source too when ``derive_gradients`` is set, as in the original), and the
node type's ``online_*autoencoder_latent`` for latents. (They are ``RawScalarSource`` objects of
a subclass that reads only the node's layer, the one the deriver keeps, and skips TDB's per-read
``torch.zeros_like`` of the whole activation, 50 MB for ``attn.qk_probs`` at T = 1024, unless a
layer is really missing and has to be filled: the same result.) ``derive_from_raw`` returns,
at the node's layer, a (T, d_model) tensor of ``torch.get_default_dtype()`` on the model
context's device, zero except the node's token row: the original's shape, dtype and device.

Answers and errors
------------------
- Every configuration the original handles gives the original's answer (equal up to float32
  summation order: the tests allow 1e-5 relative, as the parity fixtures do) and every failure
  the original's exception type (an index out of range is an ``IndexError`` raised by
  ``derive_from_raw``, as in the original).
- Both autoencoders (``DstConfig.multi_autoencoder_context`` holding an MLP and an attention
  autoencoder): the original fails ``assert self.has_single_autoencoder_context`` for every node.
  Here each node uses its own autoencoder (``mlp_autoencoder_latent`` the MLP one,
  ``attention_autoencoder_latent`` the attention one), and neurons and heads need none. An
  ``autoencoder_latent`` node stays ambiguous there and raises the original's ``AssertionError``.
- Node types other than the five node-write types, or tensor indices that are not plain integers
  of the expected count, are passed to the original function unchanged.

Devices and dtypes
------------------
The native library is used when the activations are float32 CPU tensors and the model context
(and autoencoder) live on the CPU. Otherwise (a CUDA or MPS device, float16/bfloat16 activations
or weights) the call falls back, for that call, to the original formula restricted to the node:
the node's slice is taken on the tensors' own device (for attention
``qk_probs[q, k, h] * v[k, h]``, never the (T, T, heads, d_head) tensor) and passed through TDB's
own ``ResidualWriteConverter``, so the result is the original's, on the original's device, with
nothing moved between devices beyond what the original moves (the d_head- or d_ff-long slice to
the model context's device). The same path reproduces the original's exception whenever the
native library refuses an input.

Weights
-------
A ``nodewrite.Model`` is built once per (model context, layer, node kind [, autoencoder]) and
cached weakly (entries go away with the model context or autoencoder): the weights from
``ModelContext.get_weight`` (permuted, non-contiguous views) and the autoencoder decoders are
handed over as borrowed views, never copied. In-place edits of those parameters are therefore
seen; if a model context starts serving different tensors, call :func:`clear_cache`.
"""

from __future__ import annotations

import dataclasses
import operator
import sys
import threading
import weakref
from typing import Any, Callable

__all__ = [
    "make_node_write_scalar_deriver",
    "make_node_write_scalar_source",
    "install",
    "uninstall",
    "is_installed",
    "clear_cache",
    "stats",
    "serve",
]

_NODE_WRITE = "neuron_explainer.activations.derived_scalars.node_write"
# modules that import the two functions by name (see `grep -rn make_node_write` in TDB)
_IMPORTERS = (
    "neuron_explainer.activations.derived_scalars.edge_attribution",
    "neuron_explainer.activations.derived_scalars.edge_activation",
    "neuron_explainer.activations.derived_scalars.make_scalar_derivers",
)
_FUNCTION_NAMES = ("make_node_write_scalar_deriver", "make_node_write_scalar_source")


_lock = threading.RLock()
_generation = 0

#: Counters since import (a plain dict; reset by assigning 0s): derive calls served by the
#: native library ("native"), by the node-only torch formula ("torch": a CUDA/MPS device,
#: float16/bfloat16, or an input the library refused, so that TDB's own error is raised), and
#: nodewrite.Model objects built ("models_built"). Check it to see which path ran.
stats: dict[str, int] = {"native": 0, "torch": 0, "models_built": 0}


# ------------------------------------------------------------------------------ TDB, lazily


class _TDB:
    """TDB's names, imported on first use (nodewrite.tdb itself imports without TDB)."""

    def __init__(self) -> None:
        import torch
        from neuron_explainer.activations.derived_scalars import node_write
        from neuron_explainer.activations.derived_scalars.attention import (
            _check_attn_post_softmax_shape,
            make_attn_weighted_value_scalar_deriver,
        )
        from neuron_explainer.activations.derived_scalars.autoencoder import (
            make_online_autoencoder_latent_scalar_deriver_factory,
        )
        from neuron_explainer.activations.derived_scalars.derived_scalar_types import (
            DerivedScalarType,
        )
        from neuron_explainer.activations.derived_scalars.indexing import (
            make_python_slice_from_tensor_indices,
        )
        from neuron_explainer.activations.derived_scalars.locations import (
            ConstantLayerIndexer,
            IdentityLayerIndexer,
        )
        from neuron_explainer.activations.derived_scalars.mlp import get_base_mlp_scalar_deriver
        from neuron_explainer.activations.derived_scalars.postprocessing import (
            ResidualWriteConverter,
        )
        from neuron_explainer.activations.derived_scalars.scalar_deriver import (
            DerivedScalarSource,
            RawScalarSource,
            ScalarDeriver,
        )
        from neuron_explainer.models.autoencoder_context import (
            MultiAutoencoderContext,
            get_decoder_weight,
        )
        from neuron_explainer.models.model_component_registry import (
            Dimension,
            NodeType,
            PassType,
            WeightLocationType,
        )

        # every name imported above becomes an attribute (tdb.NodeType, tdb.torch, ...)
        vars(self).update((name, value) for name, value in locals().items() if name != "self")
        self.check_attn_post_softmax_shape = _check_attn_post_softmax_shape
        self.LeanRawScalarSource = _make_lean_raw_scalar_source_class(RawScalarSource)
        # the original functions, whatever install() later does to the module
        self.original: dict[str, Callable] = {}
        for name in _FUNCTION_NAMES:
            fn = getattr(node_write, name)
            if getattr(fn, "_nodewrite_dropin", False):  # module patched by an earlier import
                fn = _saved_originals[name]
            self.original[name] = fn
        _saved_originals.update(self.original)


def _make_lean_raw_scalar_source_class(RawScalarSource: type) -> type:
    class LeanRawScalarSource(RawScalarSource):  # type: ignore[misc, valid-type]
        """TDB's RawScalarSource, with the same derive_from_raw result, minus one cost: TDB's
        ``_fill_in_activations_by_layer_index_at_layer_indices`` allocates
        ``torch.zeros_like`` of the activation (50 MB for attn.qk_probs at T = 1024, GPT-2
        small) on every read, to fill layers that are missing. When no layer is missing (and
        there is no ``None`` layer or "Dummy" source) this returns the same tensors without
        that allocation; otherwise it is TDB's own code.

        ``keep_layers`` (set by the drop-in to the node's layer): when the caller asks for all
        layers, only these (those present) are returned, the ones the deriver then keeps anyway
        (its dst_config.layer_indices). If the node's layer is missing the result is empty, and
        ScalarDeriver fails its non-empty assertion as the original does."""

        keep_layers: tuple | None = None

        def derive_from_raw(self, raw_activation_store: Any, desired_layer_indices: Any) -> Any:
            data = raw_activation_store.get_activations_and_metadata(
                self.activation_location_type, self.pass_type
            )
            by_layer = data.activations_by_layer_index
            if desired_layer_indices is None and self.keep_layers is not None:
                return dataclasses.replace(
                    data,
                    activations_by_layer_index={
                        layer: t for layer, t in by_layer.items() if layer in self.keep_layers
                    },
                )
            desired = data.layer_indices if desired_layer_indices is None else desired_layer_indices
            sources = self.layer_indexer(desired)
            if (
                by_layer
                and None not in by_layer
                and len(sources) == len(desired)
                and all(not isinstance(src, str) and src in by_layer for src in sources)
            ):
                return dataclasses.replace(
                    data,
                    activations_by_layer_index={
                        layer: by_layer[src] for layer, src in zip(desired, sources)
                    },
                )
            return super().derive_from_raw(raw_activation_store, desired_layer_indices)

    LeanRawScalarSource.__qualname__ = LeanRawScalarSource.__name__
    LeanRawScalarSource.__module__ = __name__
    return LeanRawScalarSource


_tdb_instance: _TDB | None = None
_saved_originals: dict[str, Callable] = {}


def _tdb() -> _TDB:
    global _tdb_instance
    if _tdb_instance is None:
        with _lock:
            if _tdb_instance is None:
                _tdb_instance = _TDB()
    return _tdb_instance


def _nw():
    import nodewrite

    return nodewrite


# ----------------------------------------------------------------------- model cache


class _WeakIdMap:
    """A map keyed by object identity that drops entries when the key object is collected.
    Works for unhashable keys (TDB's frozen dataclasses with dict fields); objects that cannot
    be weakly referenced are simply not cached."""

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


# model context -> {(layer, kind key): nodewrite.Model}; for latents the kind key holds a weak
# map keyed by the Autoencoder module
_models = _WeakIdMap()


class _NotNative(Exception):
    """This configuration is not one the native path handles (device, dtype, layout)."""


_NOT_NATIVE = object()  # cached in place of a model that cannot be built natively


def _cpu_float32_numpy(t: Any) -> Any:
    torch = _tdb().torch
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu" or t.dtype != torch.float32:
        raise _NotNative
    return t.detach().numpy()  # a view: same memory, same (non-negative) strides


def _model_dims(model_context: Any) -> dict[str, int]:
    D = _tdb().Dimension
    return dict(
        n_layers=model_context.get_dim_size(D.LAYERS),
        d_model=model_context.get_dim_size(D.RESIDUAL_STREAM_CHANNELS),
        n_heads=model_context.get_dim_size(D.ATTN_HEADS),
        d_head=model_context.get_dim_size(D.VALUE_CHANNELS),
        d_ff=model_context.get_dim_size(D.MLP_ACTS),
    )


def _set_weight(model: Any, name: str, layer: int, model_context: Any) -> None:
    W = _tdb().WeightLocationType
    w = model_context.get_weight(W(name), layer)
    model.set_weight(name, layer, _cpu_float32_numpy(w), copy=False)


def _set_autoencoder(model: Any, node_type: str, layer: int, ae_input: str, decoder: Any) -> None:
    model.set_autoencoder(node_type, layer, _cpu_float32_numpy(decoder), input=ae_input, copy=False)


def _get_model(model_context: Any, layer: int, kind: str, ae: Any = None, ae_info: tuple = ()) -> Any:
    """The cached nodewrite.Model serving one node kind at one layer of a model context."""
    with _lock:
        per_ctx = _models.get(model_context)
        if per_ctx is None:
            per_ctx = {}
            _models.set(model_context, per_ctx)
        key = (layer, kind, *ae_info)
        if ae is None:
            model = per_ctx.get(key)
        else:
            by_ae = per_ctx.get(key)
            if by_ae is None:
                by_ae = per_ctx[key] = _WeakIdMap()
            model = by_ae.get(ae)
        if model is _NOT_NATIVE:
            raise _NotNative
        if model is not None:
            return model
        try:
            model = _build_model(model_context, layer, kind, ae, ae_info)
        except _NotNative:
            model = _NOT_NATIVE  # remembered: weights on another device or of another dtype
        if ae is None:
            per_ctx[key] = model
        else:
            by_ae.set(ae, model)
        if model is _NOT_NATIVE:
            raise _NotNative
        return model


def _build_model(model_context: Any, layer: int, kind: str, ae: Any, ae_info: tuple) -> Any:
    if model_context.device.type != "cpu":
        raise _NotNative
    nw = _nw()
    model = nw.Model(**_model_dims(model_context))
    if kind == "attention_head":
        _set_weight(model, "attn.to_residual", layer, model_context)
    elif kind == "mlp_neuron":
        _set_weight(model, "mlp.to_residual", layer, model_context)
    else:
        node_type, ae_input = ae_info
        if ae_input == "mlp_post_act":
            _set_weight(model, "mlp.to_residual", layer, model_context)
        _set_autoencoder(model, node_type, layer, ae_input, _tdb().get_decoder_weight(ae))
    stats["models_built"] += 1
    return model


def clear_cache() -> None:
    """Forgets every cached nodewrite.Model (and the per-deriver state built from them), so the
    next derive reads the weights from the model and autoencoder contexts again."""
    global _generation
    with _lock:
        _models.clear()
        _generation += 1


# ----------------------------------------------------------------------------- derivers


_EXPECTED_N_INDICES = {
    "attention_head": 3,
    "mlp_neuron": 2,
    "autoencoder_latent": 2,
    "mlp_autoencoder_latent": 2,
    "attention_autoencoder_latent": 2,
}


def _plain_int_indices(node_index: Any) -> tuple[int, ...] | None:
    expected = _EXPECTED_N_INDICES.get(getattr(node_index.node_type, "value", None))
    indices = node_index.tensor_indices
    if expected is None or indices is None or len(indices) != expected:
        return None
    out = []
    for i in indices:
        if isinstance(i, bool) or i is None:
            return None
        try:
            out.append(operator.index(i))
        except TypeError:
            return None
    return tuple(out)


def _multi_autoencoder_context(dst_config: Any) -> Any:
    """The original's `MultiAutoencoderContext.from_context_or_multi_context(
    dst_config.get_autoencoder_context())`, except where that asserts because a multi context
    holds several autoencoders: then the multi context itself (each node uses its own)."""
    tdb = _tdb()
    multi = dst_config.multi_autoencoder_context
    if (
        dst_config.autoencoder_context is None
        and multi is not None
        and not multi.has_single_autoencoder_context
    ):
        return multi
    return tdb.MultiAutoencoderContext.from_context_or_multi_context(
        dst_config.get_autoencoder_context()
    )


class _NodeWritePlan:
    """What one drop-in deriver needs at derive time; the derive function of the deriver."""

    def __init__(
        self,
        node_index: Any,
        indices: tuple[int, ...],
        model_context: Any,
        multi_autoencoder_context: Any,
        converter: Any,
        ds_index: Any,
    ) -> None:
        self.node_index = node_index
        self.layer = node_index.layer_index
        self.kind = node_index.node_type.value
        self.indices = indices
        self.model_context = model_context
        self.multi = multi_autoencoder_context
        self.converter = converter
        self.ds_index = ds_index
        self.slices = _tdb().make_python_slice_from_tensor_indices(ds_index.tensor_indices)
        self.sequence_token_index = ds_index.tensor_indices[0]
        # (generation, autoencoder module or None, nodewrite deriver, its requirement names)
        self._native: tuple | None = None

    # -- the ScalarDeriver's tensor_calculate_derived_scalar_fn
    def __call__(self, tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
        tdb = _tdb()
        if self.kind == "attention_head":
            # the original's weighted-value deriver checks, in its order
            assert len(tensors) == 2, ([t.shape for t in tensors],)
            tdb.check_attn_post_softmax_shape(tensors[0])
        assert pass_type == tdb.PassType.FORWARD
        assert layer_index == self.layer
        try:
            out = self._derive_native(tensors)
        except (_NotNative, _nw().NodeWriteError):
            # _NotNative (device, dtype), or the library refused the input (an index out of
            # range, a shape): the original formula below gives the original's answer, or its
            # exception and message. Anything else is a bug and propagates.
            pass
        else:
            stats["native"] += 1
            return out
        stats["torch"] += 1
        return self._derive_torch(tensors)

    def _autoencoder(self) -> tuple[Any, str]:
        """(Autoencoder module, input DerivedScalarType value) of this latent node, as the
        original's ResidualWriteConverter resolves them."""
        node_type = self.ds_index.dst.node_type
        if self.multi is None:
            raise _NotNative
        ae_context = self.multi.get_autoencoder_context(node_type)
        if ae_context is None or ae_context.device.type != "cpu":
            raise _NotNative
        ae_input = ae_context.dst.value
        if _nw().autoencoder_input_kind(ae_input) is None:  # the library says what it supports
            raise _NotNative
        return ae_context.get_autoencoder(self.layer), ae_input

    def _native_deriver(self) -> tuple:
        ae = None
        if self.kind not in ("attention_head", "mlp_neuron"):
            ae, ae_input = self._autoencoder()
        cached = self._native
        if cached is not None and cached[0] == _generation and cached[1] is ae:
            return cached
        generation = _generation
        if ae is None:
            model = _get_model(self.model_context, self.layer, self.kind)
        else:
            model = _get_model(self.model_context, self.layer, "latent", ae, (self.kind, ae_input))
        nw = _nw()
        deriver = nw.NodeWriteDeriver(model, nw.NodeIndex(self.kind, self.layer, self.indices))
        names = tuple(name for name, _ in deriver.requirements)
        self._native = (generation, ae, deriver, names)
        return self._native

    def _derive_native(self, tensors: tuple) -> Any:
        tdb = _tdb()
        torch = tdb.torch
        arrays = [_cpu_float32_numpy(t) for t in tensors]
        _, _, deriver, names = self._native_deriver()
        store = _nw().ActivationStore()
        for name, array in zip(names, arrays):  # mlp with derive_gradients: forward only
            store.put(name, self.layer, array)
        out = torch.from_numpy(deriver.derive(store))
        dtype = torch.get_default_dtype()
        if out.dtype != dtype:
            out = out.to(dtype)
        return out

    def _derive_torch(self, tensors: tuple) -> Any:
        """The node's write by TDB's own formula, restricted to the node, on the tensors' device."""
        torch = _tdb().torch
        if self.kind == "attention_head":
            probs, value = tensors
            q, k, h = self.ds_index.tensor_indices
            if value.ndim == 3 and tuple(value.shape[:2]) == tuple(probs.shape[1:]):
                node_activation = probs[q, k, h] * value[k, h]  # one element of the weighted values
            else:  # shapes TDB's einsum rejects: let it raise its own error
                node_activation = torch.einsum("fth,thd->fthd", probs, value)[self.slices]
            n_tokens = probs.shape[0]
        else:
            n_tokens = tensors[0].shape[0]
            node_activation = tensors[0][self.slices]
        write = self.converter.postprocess_tensor(self.ds_index, node_activation)
        out = torch.zeros((n_tokens, *write.shape), device=write.device)
        out[self.sequence_token_index] = write
        return out


def _lean_source(source: Any, layer: int) -> Any:
    tdb = _tdb()
    lean = tdb.LeanRawScalarSource(source.activation_location_type, source.pass_type, source.layer_indexer)
    if isinstance(source.layer_indexer, tdb.IdentityLayerIndexer):
        lean.keep_layers = (layer,)
    return lean


def _dropin(fn: Callable) -> Callable:
    fn._nodewrite_dropin = True  # type: ignore[attr-defined]
    return fn


def _activation_deriver(node_type: Any, layer_config: Any) -> Any:
    """The deriver of the node's activations whose raw sources, configuration and location the
    node-write deriver takes over (for attention its weighted-value computation never runs)."""
    tdb = _tdb()
    if node_type == tdb.NodeType.ATTENTION_HEAD:
        return tdb.make_attn_weighted_value_scalar_deriver(dst_config=layer_config)
    if node_type == tdb.NodeType.MLP_NEURON:
        return tdb.get_base_mlp_scalar_deriver(dst_config=layer_config)
    return tdb.make_online_autoencoder_latent_scalar_deriver_factory(node_type)(layer_config)


@_dropin
def make_node_write_scalar_deriver(dst_config: Any) -> Any:
    """TDB's SINGLE_NODE_WRITE ``ScalarDeriver`` for ``dst_config.node_index_for_attribution``,
    with the write computed by the native library (see the module docstring for inputs,
    devices and the both-autoencoders case)."""
    tdb = _tdb()
    node = dst_config.node_index_for_attribution
    assert node is not None and node.layer_index is not None
    indices = _plain_int_indices(node)
    if indices is None:  # not a node the library knows: TDB's own function
        return tdb.original["make_node_write_scalar_deriver"](dst_config)

    # Built in TDB's order, so that the same inputs fail with the same exceptions first; the
    # single-autoencoder assertion is lifted (see _multi_autoencoder_context).
    model_context = dst_config.get_model_context()
    autoencoders = _multi_autoencoder_context(dst_config)
    converter = tdb.ResidualWriteConverter(model_context=model_context, multi_autoencoder_context=autoencoders)
    base = _activation_deriver(node.node_type, dataclasses.replace(dst_config, layer_indices=[node.layer_index]))
    plan = _NodeWritePlan(
        node, indices, model_context, autoencoders, converter, converter.convert_node_index_to_ds_index(node)
    )
    raw_sources = tuple(
        _lean_source(source, node.layer_index) if type(source) is tdb.RawScalarSource else source
        for source in base.sub_scalar_sources
    )

    def derive(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
        return plan(tensors, layer_index, pass_type)

    derive.nodewrite_plan = plan  # type: ignore[attr-defined]
    return dataclasses.replace(
        base,
        dst=tdb.DerivedScalarType.SINGLE_NODE_WRITE,
        sub_scalar_sources=raw_sources,
        tensor_calculate_derived_scalar_fn=derive,
        _specified_location_within_layer=base.location_within_layer,
    )


@_dropin
def make_node_write_scalar_source(dst_config: Any) -> Any:
    """TDB's ``DerivedScalarSource`` of the node's write: the drop-in deriver, forward pass,
    at the node's layer."""
    tdb = _tdb()
    node = dst_config.node_index_for_attribution
    assert node is not None and node.layer_index is not None
    return tdb.DerivedScalarSource(
        scalar_deriver=make_node_write_scalar_deriver(dst_config),
        pass_type=tdb.PassType.FORWARD,
        layer_indexer=tdb.ConstantLayerIndexer(node.layer_index),
    )


# ------------------------------------------------------------------------ install/uninstall


_DROPINS = {
    "make_node_write_scalar_deriver": make_node_write_scalar_deriver,
    "make_node_write_scalar_source": make_node_write_scalar_source,
}
# (container, key, original, is_mapping) for everything install() replaced
_patches: list[tuple[Any, str, Any, bool]] = []


def is_installed() -> bool:
    """True between install() and uninstall()."""
    return bool(_patches)


def install() -> None:
    """Makes existing TDB code use the drop-in. Replaces ``make_node_write_scalar_deriver`` and
    ``make_node_write_scalar_source`` in TDB's ``node_write`` module, in every loaded
    ``neuron_explainer`` module that imported them by name (``edge_attribution``,
    ``edge_activation``, ``make_scalar_derivers``, which are imported here first), and the
    ``SINGLE_NODE_WRITE`` entry of the DST registry (``make_scalar_derivers.
    _DERIVED_SCALAR_TYPE_REGISTRY``). Idempotent; :func:`uninstall` restores the originals."""
    import importlib

    tdb = _tdb()
    with _lock:
        if _patches:
            return
        for name in _IMPORTERS:
            try:
                importlib.import_module(name)
            except ImportError:  # an optional TDB module that cannot load here: nothing to patch
                pass
        originals = {id(fn): name for name, fn in tdb.original.items()}
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or not (mod_name == "neuron_explainer" or mod_name.startswith("neuron_explainer.")):
                continue
            for attr, value in list(vars(mod).items()):
                name = originals.get(id(value))
                if name is not None and value is tdb.original[name]:
                    _patches.append((mod, attr, value, False))
                    setattr(mod, attr, _DROPINS[name])
        msd = sys.modules.get("neuron_explainer.activations.derived_scalars.make_scalar_derivers")
        registry = getattr(msd, "_DERIVED_SCALAR_TYPE_REGISTRY", None)
        if isinstance(registry, dict):
            for key, value in list(registry.items()):
                name = originals.get(id(value))
                if name is not None and value is tdb.original[name]:
                    _patches.append((registry, key, value, True))
                    registry[key] = _DROPINS[name]
        from . import tdb_family  # the write family (issue 11): registry entries, TokenWriteConverter

        tdb_family.install()


def uninstall() -> None:
    """Restores everything :func:`install` replaced (where it still holds the drop-in), and the
    names in ``neuron_explainer`` modules imported while it was installed."""
    from . import tdb_family

    tdb_family.uninstall()
    with _lock:
        while _patches:
            container, key, original, is_mapping = _patches.pop()
            if is_mapping:
                if container.get(key) is _DROPINS.get(original.__name__):
                    container[key] = original
            elif getattr(container, key, None) is _DROPINS.get(original.__name__):
                setattr(container, key, original)
        if _tdb_instance is None:
            return
        dropins = {id(fn): name for name, fn in _DROPINS.items()}
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or not (mod_name == "neuron_explainer" or mod_name.startswith("neuron_explainer.")):
                continue
            for attr, value in list(vars(mod).items()):
                name = dropins.get(id(value))
                if name is not None and value is _DROPINS[name]:
                    setattr(mod, attr, _tdb_instance.original[name])


# ------------------------------------------------------------------------------- server


def serve(argv: list | None = None) -> None:
    """Installs the drop-in, then runs TDB's activation server
    (``neuron_explainer/activation_server/main.py``) with ``argv`` (default: ``sys.argv[1:]``),
    in this process: ``python -m nodewrite.tdb --model_name gpt2-small --port 8000 ...``
    takes the same arguments as ``python neuron_explainer/activation_server/main.py``."""
    install()
    import fire
    from neuron_explainer.activation_server import main as server

    args = sys.argv[1:] if argv is None else list(argv)
    sys.argv = [server.__file__, *args]
    fire.Fire(server.main)


if __name__ == "__main__":  # python -m nodewrite.tdb ...: the package's module, not this copy
    import nodewrite.tdb as _module

    _module.serve()
