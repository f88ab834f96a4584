"""TDB's residual-write derived scalars (the write family), natively: factories for
``make_scalar_derivers._DERIVED_SCALAR_TYPE_REGISTRY``.

- :func:`make_factory`: the factory of a value of :data:`nodewrite.DSTS` (``mlp_write_norm`` ...
  ``attn_layer_write_to_final_residual_grad``). Its ``ScalarDeriver`` has the original's
  ``dst``, ``dst_config`` and location; its sources are the original's raw activations of the
  layer (through the lean source: no per-read ``zeros_like``; for the attention values no
  (T, T, heads, d_head) weighted-value tensor), plus TDB's own final-residual-grad source for a
  projection. The computation is one :func:`nodewrite.derive` on float32 CPU tensors when TDB's
  inputs are the activations the library reads for that value (its ``dst_info(...)
  .activations``); the two ``attn_write_..._per_sequence_token`` values, whose TDB input is
  ``attn.v_out``, and every other device, dtype or refused input go to
  :func:`nodewrite.tdb.torch_fallback.write_family`.
- :func:`make_node_write_to_direction_factory`: ``single_node_write_to_final_residual_grad``,
  the node-write deriver's write projected on TDB's final residual grad, (T, 1), in one
  ``nw_node_write_to_direction`` call; with both autoencoders loaded it answers (the original
  fails ``has_single_autoencoder_context``), as the node-write deriver does.

Construction runs the original's checks in its order (neuron, head and layer values call the
original factory; latent values resolve the autoencoder context as the original does,
``assert autoencoder_context is not None`` included, without the dense ``decoder @ W_out`` the
original forms). ``derive_gradients`` or ``trace_config`` set: the original factory's
deriver, unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import nodewrite as _nw

from . import facts, models, torch_fallback
from .counters import stats
from .namespace import tdb
from .node_write import make_node_write_scalar_deriver
from .sources import lean, raw_sources

__all__ = ["make_factory", "make_node_write_to_direction_factory", "NODE_WRITE_TO_DIRECTION"]

#: The quantities of the write family's values of nodewrite.DSTS (the edge DSTs have none).
QUANTITIES = ("norm", "projection")

#: TDB's DerivedScalarType value of the node write projected on the final residual grad.
NODE_WRITE_TO_DIRECTION = "single_node_write_to_final_residual_grad"


def _activation_names(sources: tuple, info: Any) -> tuple:
    """The forward activation names of a deriver's raw sources (the direction's excluded)."""
    n = len(sources) - (1 if info.needs_direction else 0)
    return tuple(s.activation_location_type.value for s in sources[:n])


def make_factory(dst: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The drop-in factory of write-family value ``dst`` (``original``: TDB's factory)."""
    info = facts.dst(dst)
    if info is None or info.quantity not in QUANTITIES:
        raise ValueError(f"dst: {dst!r} is not a write-family value of nodewrite.DSTS")

    def factory(dst_config: Any) -> Any:
        t = tdb()
        if dst_config.derive_gradients or dst_config.trace_config is not None:
            stats["original"] += 1
            return original(dst_config)
        autoencoder_context = None
        node_info = facts.node_type(info.node_type) if info.node_type is not None else None
        if node_info is not None and node_info.is_latent:
            # the original's resolution, without its dense decoder @ W_out
            node_type = t.NodeType(info.node_type)
            autoencoder_context = dst_config.get_autoencoder_context(node_type)
            assert autoencoder_context is not None
            template = t.make_online_autoencoder_latent_scalar_deriver_factory(node_type)(dst_config)
            sources = raw_sources(template)
            if info.needs_direction:
                sources.append(t.make_final_residual_grad_scalar_source(dst_config, True))
        else:
            template = original(dst_config)
            sources = raw_sources(template)
        location = template.location_within_layer
        sources = tuple(lean(s, dst_config.layer_indices) for s in sources)
        model_context = dst_config.get_model_context()
        # the library reads exactly TDB's inputs (not so for the per-sequence-token values)
        native_inputs = _activation_names(sources, info) == tuple(info.activations)

        def native(tensors: tuple, layer: int) -> Any:
            if not native_inputs:
                raise models.NotNative
            arrays = [models.cpu_float32(x) for x in tensors]
            if node_info is None:
                model = models.dims_model(model_context)
            else:
                model = models.model_for(model_context, layer, info.node_type, autoencoder_context)
            store = _nw.ActivationStore()
            for name, array in zip(info.activations, arrays):
                store.put(name, layer, array)
            direction = arrays[-1] if info.needs_direction else None
            return t.torch.from_numpy(_nw.derive(model, store, dst, layer, direction=direction))

        def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
            return torch_fallback.serve(
                lambda: native(tensors, layer_index),
                lambda: torch_fallback.write_family(info, tensors, layer_index, model_context, autoencoder_context),
            )

        return dataclasses.replace(
            template,
            dst=t.DerivedScalarType(dst),
            sub_scalar_sources=sources,
            tensor_calculate_derived_scalar_fn=fn,
            _specified_location_within_layer=location,
        )

    factory._nodewrite_dropin = True  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = f"make_{dst}_scalar_deriver"
    return factory


def make_node_write_to_direction_factory(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The drop-in factory of ``single_node_write_to_final_residual_grad`` (``original``:
    TDB's)."""

    def make_node_write_to_final_residual_grad_scalar_deriver(dst_config: Any) -> Any:
        t = tdb()
        if dst_config.derive_gradients or dst_config.trace_config is not None:
            stats["original"] += 1
            return original(dst_config)
        base = make_node_write_scalar_deriver(dst_config)
        plan = getattr(base.tensor_calculate_derived_scalar_fn, "nodewrite_plan", None)
        if plan is None:  # a node the node-write drop-in passes to TDB: the original recipe
            return original(dst_config)
        direction_source = t.make_final_residual_grad_scalar_source(dst_config, True)
        n_acts = len(base.sub_scalar_sources)
        torch = t.torch

        def native(acts: tuple, g: Any) -> Any:
            for x in (*acts, g):
                models.cpu_float32(x)
            _, _, deriver, names = plan.native_deriver()
            out = _nw.node_write_to_direction(
                deriver.model, plan.store(acts, names), deriver.node, direction=models.cpu_float32(g)
            )
            return torch.from_numpy(out)

        def fallback(acts: tuple, g: Any) -> Any:  # the node write (T, d_model) in torch, projected
            write = torch_fallback.node_write(plan.node_type, plan.ds_index, plan.slices, plan.converter, acts)
            return torch.einsum("td,td->t", write, g.to(write.dtype))[:, None]

        def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
            acts, g = tensors[:n_acts], tensors[-1]
            plan.check_inputs(acts)
            return torch_fallback.serve(lambda: native(acts, g), lambda: fallback(acts, g))

        return dataclasses.replace(
            base,
            dst=t.DerivedScalarType.SINGLE_NODE_WRITE_TO_FINAL_RESIDUAL_GRAD,
            sub_scalar_sources=tuple(base.sub_scalar_sources) + (direction_source,),
            tensor_calculate_derived_scalar_fn=fn,
            _specified_location_within_layer=base.location_within_layer,
        )

    make_node_write_to_final_residual_grad_scalar_deriver._nodewrite_dropin = True  # type: ignore[attr-defined]
    return make_node_write_to_final_residual_grad_scalar_deriver
