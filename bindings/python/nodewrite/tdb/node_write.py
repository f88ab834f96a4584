"""TDB's node-write factories (``derived_scalars/node_write.py``), natively.

:func:`make_node_write_scalar_deriver` and :func:`make_node_write_scalar_source` take TDB's
arguments and return real TDB objects: a ``ScalarDeriver`` with dst ``SINGLE_NODE_WRITE``, the
original's ``dst_config`` (``layer_indices=[node layer]``) and location within the layer, and
the ``DerivedScalarSource`` of its forward pass at the node's layer. Their inputs are TDB raw
activations at the node's layer, read through the lean source (:mod:`nodewrite.tdb.sources`):
``attn.qk_probs`` and ``attn.v`` for heads (no weighted-value intermediate), ``mlp.post_act``
for neurons (with its backward source too under ``derive_gradients``, as the original), the
latent activation for latents. ``derive_from_raw`` returns, at the node's layer, a (T, d_model)
tensor of ``torch.get_default_dtype()`` on the model context's device, zero but the node's token
row: the original's shape, dtype and device.

- Every configuration the original handles gives the original's answer (up to float32
  summation order) or the original's exception type (an out-of-range index is an
  ``IndexError`` from ``derive_from_raw``, with the original's message).
- Both autoencoders loaded (``DstConfig.multi_autoencoder_context`` with an MLP and an
  attention autoencoder): the original fails ``assert self.has_single_autoencoder_context``;
  here each latent node uses its own autoencoder, heads and neurons none. An
  ``autoencoder_latent`` node stays ambiguous there and raises the original's
  ``AssertionError``.
- Node types nodewrite does not have, and tensor indices that are not plain integers of the
  node type's count (the library's ``n_indices``), go to TDB's own function unchanged.
- Devices, dtypes and refusals: :mod:`nodewrite.tdb.torch_fallback`.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, Optional

import nodewrite as _nw

from . import facts, models, torch_fallback
from .namespace import tdb
from .sources import lean

__all__ = ["make_node_write_scalar_deriver", "make_node_write_scalar_source", "NodeWritePlan"]

# NodeWriteDeriver.write (issue 18's name; .derive before it, kept as a deprecated alias)
_WRITE = "write" if hasattr(_nw.NodeWriteDeriver, "write") else "derive"


def _plain_int_indices(node_index: Any) -> Optional[tuple[int, ...]]:
    info = facts.node_type(node_index.node_type)
    indices = node_index.tensor_indices
    if info is None or indices is None or len(indices) != info.n_indices:
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
    """The original's ``MultiAutoencoderContext.from_context_or_multi_context(
    dst_config.get_autoencoder_context())``, except where that asserts because a multi context
    holds several autoencoders: then the multi context itself (each node uses its own)."""
    multi = dst_config.multi_autoencoder_context
    if dst_config.autoencoder_context is None and multi is not None and not multi.has_single_autoencoder_context:
        return multi
    return tdb().MultiAutoencoderContext.from_context_or_multi_context(dst_config.get_autoencoder_context())


class NodeWritePlan:
    """What one drop-in deriver needs at derive time; callable as the deriver's function.
    ``native(tensors)`` / ``native_deriver()`` are also used by the write family's
    ``single_node_write_to_final_residual_grad``."""

    def __init__(self, node_index: Any, indices: tuple, model_context: Any, autoencoders: Any,
                 converter: Any, ds_index: Any) -> None:
        self.node_index = node_index
        self.node_type = node_index.node_type
        self.layer = node_index.layer_index
        self.indices = indices
        self.model_context = model_context
        self.autoencoders = autoencoders
        self.converter = converter
        self.ds_index = ds_index
        self.slices = tdb().make_python_slice_from_tensor_indices(ds_index.tensor_indices)
        self.is_attention = node_index.node_type == tdb().NodeType.ATTENTION_HEAD
        # (generation, autoencoder module or None, nodewrite deriver, its activation names)
        self._native: Optional[tuple] = None

    def check_inputs(self, tensors: tuple) -> None:
        """The checks TDB's weighted-value deriver makes first, in its order."""
        if self.is_attention:
            assert len(tensors) == 2, ([t.shape for t in tensors],)
            tdb().check_attn_post_softmax_shape(tensors[0])

    def __call__(self, tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
        self.check_inputs(tensors)
        assert pass_type == tdb().PassType.FORWARD
        assert layer_index == self.layer
        return torch_fallback.serve(
            lambda: self.native(tensors),
            lambda: torch_fallback.node_write(self.node_type, self.ds_index, self.slices, self.converter, tensors),
        )

    def _autoencoder_context(self) -> Any:
        if self.autoencoders is None:
            raise models.NotNative
        context = self.autoencoders.get_autoencoder_context(self.ds_index.dst.node_type)
        if context is None:
            raise models.NotNative  # the fallback raises the original's error
        return context

    def native_deriver(self) -> tuple:
        """(generation, autoencoder, nodewrite.NodeWriteDeriver, activation names), cached."""
        info = facts.node_type(self.node_type)
        context = self._autoencoder_context() if info.is_latent else None
        autoencoder = None if context is None else context.get_autoencoder(self.layer)
        cached = self._native
        if cached is not None and cached[0] == models.generation() and cached[1] is autoencoder:
            return cached
        generation = models.generation()
        model = models.model_for(self.model_context, self.layer, info.name, context)
        deriver = _nw.NodeWriteDeriver(model, _nw.NodeIndex(info.name, self.layer, self.indices))
        names = tuple(name for name, _ in deriver.requirements)
        self._native = (generation, autoencoder, deriver, names)
        return self._native

    def store(self, tensors: tuple, names: tuple) -> Any:
        """A nodewrite ActivationStore holding the forward tensors under the deriver's names."""
        arrays = [models.cpu_float32(t) for t in tensors[: len(names)]]  # derive_gradients: forward only
        store = _nw.ActivationStore()
        for name, array in zip(names, arrays):
            store.put(name, self.layer, array)
        return store

    def native(self, tensors: tuple) -> Any:
        torch = tdb().torch
        for t in tensors:  # before any model is built: the device and dtype decide
            models.cpu_float32(t)
        _, _, deriver, names = self.native_deriver()
        out = torch.from_numpy(getattr(deriver, _WRITE)(self.store(tensors, names)))
        dtype = torch.get_default_dtype()
        return out if out.dtype == dtype else out.to(dtype)


def _activation_deriver(node_type: Any, layer_config: Any) -> Any:
    """The deriver of the node's activations whose raw sources, configuration and location the
    node-write deriver takes over (for heads its weighted-value computation never runs)."""
    t = tdb()
    if node_type == t.NodeType.ATTENTION_HEAD:
        return t.make_attn_weighted_value_scalar_deriver(dst_config=layer_config)
    if node_type == t.NodeType.MLP_NEURON:
        return t.get_base_mlp_scalar_deriver(dst_config=layer_config)
    return t.make_online_autoencoder_latent_scalar_deriver_factory(node_type)(layer_config)


def make_node_write_scalar_deriver(dst_config: Any) -> Any:
    """TDB's SINGLE_NODE_WRITE ``ScalarDeriver`` for ``dst_config.node_index_for_attribution``,
    the write computed by the library (see the module docstring)."""
    t = tdb()
    node = dst_config.node_index_for_attribution
    assert node is not None and node.layer_index is not None
    indices = _plain_int_indices(node)
    if indices is None:  # not a node the library knows: TDB's own function
        return t.original["make_node_write_scalar_deriver"](dst_config)
    # built in TDB's order, so that the same inputs fail with the same exceptions first; the
    # single-autoencoder assertion is lifted (see _multi_autoencoder_context)
    model_context = dst_config.get_model_context()
    autoencoders = _multi_autoencoder_context(dst_config)
    converter = t.ResidualWriteConverter(model_context=model_context, multi_autoencoder_context=autoencoders)
    base = _activation_deriver(node.node_type, dataclasses.replace(dst_config, layer_indices=[node.layer_index]))
    plan = NodeWritePlan(node, indices, model_context, autoencoders, converter,
                         converter.convert_node_index_to_ds_index(node))

    def derive(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
        return plan(tensors, layer_index, pass_type)

    derive.nodewrite_plan = plan  # type: ignore[attr-defined]
    return dataclasses.replace(
        base,
        dst=t.DerivedScalarType.SINGLE_NODE_WRITE,
        sub_scalar_sources=tuple(lean(s, (node.layer_index,)) for s in base.sub_scalar_sources),
        tensor_calculate_derived_scalar_fn=derive,
        _specified_location_within_layer=base.location_within_layer,
    )


def make_node_write_scalar_source(dst_config: Any) -> Any:
    """TDB's ``DerivedScalarSource`` of the node's write: the drop-in deriver, forward pass,
    at the node's layer."""
    t = tdb()
    node = dst_config.node_index_for_attribution
    assert node is not None and node.layer_index is not None
    return t.DerivedScalarSource(
        scalar_deriver=make_node_write_scalar_deriver(dst_config),
        pass_type=t.PassType.FORWARD,
        layer_indexer=t.ConstantLayerIndexer(node.layer_index),
    )


for _fn in (make_node_write_scalar_deriver, make_node_write_scalar_source):
    _fn._nodewrite_dropin = True  # type: ignore[attr-defined]
del _fn
