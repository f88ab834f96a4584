"""The write family in transformer-debugger (TDB), natively: a drop-in for the factories of
TDB's residual-write derived scalars, ``single_node_write_to_final_residual_grad`` and
``postprocessing.TokenWriteConverter``. Installed and removed by :func:`nodewrite.tdb.install`
/ :func:`nodewrite.tdb.uninstall` (or this module's :func:`install` / :func:`uninstall`).

What is replaced
----------------
- In ``make_scalar_derivers._DERIVED_SCALAR_TYPE_REGISTRY`` (the dict itself: several entries
  are closures built at import), the factory of every value of :data:`nodewrite.DSTS`
  (``mlp_write_norm`` ... ``attn_layer_write_to_final_residual_grad``) and of
  ``single_node_write_to_final_residual_grad``; the latter also in ``edge_attribution`` and
  every loaded ``neuron_explainer`` module that imported it by name.
- ``postprocessing.TokenWriteConverter`` (and the name in every loaded ``neuron_explainer``
  module that imported it, e.g. ``activation_server.interactive_model``) by a subclass that
  never forms ``unembedding * gain`` (154 MB for GPT-2): it contracts the writes with the gain
  first, ``(w * g) @ W_U``, then subtracts the mean, as the original does.

The derivers
------------
Real TDB ``ScalarDeriver`` objects with the original's ``dst``, ``dst_config`` and location.
Their sources are TDB raw activations of the layer only (the original's raw sources, read by
nodewrite.tdb's lean source: no per-read ``zeros_like``; for the attention projections no
(T, T, heads, d_head) weighted-value tensor), plus TDB's own final-residual-grad source for
the ``..._to_final_residual_grad`` values. The computation is :func:`nodewrite.derive`
(``nw_derive``) on float32 CPU tensors; the two ``attn_write_..._per_sequence_token`` values
(whose input is TDB's ``attn.v_out``, which the library does not take) are contraction-first
torch (per-head Gram matrices for the norm, ``W_O[h] . g`` first for the projection).

Answers, errors, fallbacks
--------------------------
- Construction runs the original's checks in its order (mlp, attention and layer values call
  the original factory; the autoencoder values resolve the autoencoder context exactly as the
  original does, ``assert autoencoder_context is not None`` included, but never form the
  dense ``decoder @ W_out`` the original builds at construction).
- ``derive_gradients`` or ``trace_config`` set: the original factory's deriver, unchanged.
- CUDA/MPS tensors, float16/bfloat16, or an input the library refuses: contraction-first
  torch on the tensors' own device (never the (T, T, heads, d_head) or (T, T, heads, d_model)
  tensors), which raises torch's error where the original would raise one.
- ``single_node_write_to_final_residual_grad`` with both autoencoders loaded answers (the
  original fails ``has_single_autoencoder_context``), as the v1 node-write drop-in does.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any, Callable

__all__ = ["install", "uninstall", "is_installed", "TokenWriteConverter", "stats"]

_MSD = "neuron_explainer.activations.derived_scalars.make_scalar_derivers"
_EA = "neuron_explainer.activations.derived_scalars.edge_attribution"
_POST = "neuron_explainer.activations.derived_scalars.postprocessing"
_SNW_GRAD = "single_node_write_to_final_residual_grad"

#: derive calls served natively ("native"), by contraction-first torch ("torch"), and by the
#: original's own code ("original": derive_gradients / trace_config).
stats: dict[str, int] = {"native": 0, "torch": 0, "original": 0}

_lock = threading.RLock()
# (container, key, original, replacement, is_mapping)
_patches: list[tuple[Any, Any, Any, Any, bool]] = []


def _ntdb():
    from . import tdb

    return tdb


def _nw():
    import nodewrite

    return nodewrite


class _T:
    """TDB's names used here, imported on first use."""

    _inst = None

    @classmethod
    def get(cls) -> "_T":
        if cls._inst is None:
            with _lock:
                if cls._inst is None:
                    cls._inst = cls()
        return cls._inst

    def __init__(self) -> None:
        import torch
        from neuron_explainer.activations.derived_scalars import make_scalar_derivers as msd
        from neuron_explainer.activations.derived_scalars import postprocessing
        from neuron_explainer.activations.derived_scalars.attention import (
            _convert_rectangular_activations_to_flattened_lower_triangle as flatten,
        )
        from neuron_explainer.activations.derived_scalars.autoencoder import (
            make_online_autoencoder_latent_scalar_deriver_factory,
        )
        from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
        from neuron_explainer.activations.derived_scalars.direct_effects import (
            make_final_residual_grad_scalar_source,
        )
        from neuron_explainer.activations.derived_scalars.scalar_deriver import (
            DerivedScalarSource,
            RawScalarSource,
            ScalarDeriver,
        )
        from neuron_explainer.models.autoencoder_context import get_decoder_weight
        from neuron_explainer.models.model_component_registry import NodeType, WeightLocationType

        vars(self).update((k, v) for k, v in locals().items() if k != "self")


# ------------------------------------------------------------------------------ helpers

_AE_NODE_TYPE = {
    "online_autoencoder": "autoencoder_latent",
    "online_mlp_autoencoder": "mlp_autoencoder_latent",
    "online_attention_autoencoder": "attention_autoencoder_latent",
}


def _family() -> tuple:
    return _nw().DSTS


def _raw_sources(deriver: Any) -> list:
    """The RawScalarSources under a deriver's source tree, in the order its function sees them."""
    t = _T.get()
    out = []
    for src in deriver.sub_scalar_sources:
        if isinstance(src, t.RawScalarSource):
            out.append(src)
        elif isinstance(src, t.DerivedScalarSource):
            out.extend(_raw_sources(src.scalar_deriver))
        else:
            raise TypeError(type(src))
    return out


def _lean(src: Any, layers: Any) -> Any:
    """nodewrite.tdb's lean RawScalarSource (no zeros_like per read; only the deriver's layers)."""
    ntdb = _ntdb()
    tdb = ntdb._tdb()
    if type(src) is not tdb.RawScalarSource:
        return src
    lean = tdb.LeanRawScalarSource(src.activation_location_type, src.pass_type, src.layer_indexer)
    if layers is not None and isinstance(src.layer_indexer, tdb.IdentityLayerIndexer):
        lean.keep_layers = tuple(layers)
    return lean


def _native_ok(tensors: tuple, model_context: Any) -> bool:
    torch = _T.get().torch
    return model_context.device.type == "cpu" and all(
        isinstance(x, torch.Tensor) and x.device.type == "cpu" and x.dtype == torch.float32 for x in tensors
    )


def _np(x: Any) -> Any:
    return x.detach().numpy()


_layer_models: dict = {}  # id(model_context) -> (weakref, nodewrite.Model with no weights)


def _dims_model(model_context: Any) -> Any:
    import weakref

    entry = _layer_models.get(id(model_context))
    if entry is not None and entry[0]() is model_context:
        return entry[1]
    m = _nw().Model(**_ntdb()._model_dims(model_context))
    try:
        _layer_models[id(model_context)] = (weakref.ref(model_context), m)
    except TypeError:
        pass
    return m


# ------------------------------------------------------------------ contraction-first torch


def _torch_family(dst: str, tensors: tuple, layer: int, dst_config: Any, ae: Any = None) -> Any:
    """The DST by contraction-first torch on the tensors' device. Dtypes are combined as the
    original combines them (no casts it does not make), so mixed dtypes fail as there."""
    t = _T.get()
    torch = t.torch
    W = t.WeightLocationType
    mc = dst_config.get_model_context()
    grad = "_to_final_residual_grad" in dst
    g = tensors[-1] if grad else None
    x = tensors[0]
    dev = x.device

    def weight(loc):
        return mc.get_weight(loc, layer, device=dev)

    if dst.startswith("mlp_layer") or dst.startswith("attn_layer"):
        return torch.einsum("td,td->t", x, g)[:, None] if grad else torch.linalg.norm(x, dim=1)[:, None]
    if dst.startswith("mlp_"):
        w_out = weight(W.MLP_TO_RESIDUAL)
        return x * torch.einsum("ao,to->ta", w_out, g) if grad else x * torch.linalg.norm(w_out, dim=1)[None]
    if dst.startswith("online_"):
        write = _ae_write_tensor(ae, mc, layer, dev)
        return x * torch.einsum("ao,to->ta", write, g) if grad else x * torch.linalg.norm(write, dim=1)[None]
    w_o = weight(W.ATTN_TO_RESIDUAL)  # (heads, d_head, d_model)
    if dst.endswith("per_sequence_token"):  # x = attn.v_out (T, heads, d_head)
        if grad:
            return torch.einsum("qhd,qhd->qh", x, torch.einsum("hdm,qm->qhd", w_o.to(g.dtype), g))
        gram = torch.einsum("hdm,hem->hde", w_o, w_o)
        return torch.sqrt(torch.clamp(torch.einsum("qhd,hde,qhe->qh", x, gram, x), min=0))
    p, v = tensors[0], tensors[1]  # p: (T, T, heads), v: (T, heads, d_head)
    if grad:
        out = p * torch.einsum("khd,qhd->qkh", v, torch.einsum("hdm,qm->qhd", w_o.to(g.dtype), g))
    else:
        gram = torch.einsum("hdm,hem->hde", w_o, w_o)
        norms = torch.sqrt(torch.clamp(torch.einsum("khd,hde,khe->kh", v, gram, v), min=0))
        out = p * norms[None]
    return t.flatten(out) if dst.startswith("attn_write") else out


def _ae_write_tensor(ae_context: Any, mc: Any, layer: int, dev: Any) -> Any:
    """Fallback only: the autoencoder's write vectors at one layer (TDB's formula)."""
    t = _T.get()
    ae = ae_context.get_autoencoder(layer)
    dec = t.get_decoder_weight(ae).to(dev)
    if ae_context.dst.value == "mlp_post_act":
        return dec @ mc.get_weight(t.WeightLocationType.MLP_TO_RESIDUAL, layer, device=dev)
    return dec


# ---------------------------------------------------------------------------- factories


def _make_dst_factory(dst: str, original: Callable) -> Callable:
    def factory(dst_config: Any) -> Any:
        t = _T.get()
        if dst_config.derive_gradients or dst_config.trace_config is not None:
            stats["original"] += 1
            return original(dst_config)
        grad = "_to_final_residual_grad" in dst
        ae_context = None
        ae_node_type = None
        if dst.startswith("online_"):
            # The original's resolution, without its dense decoder @ W_out.
            ae_node_type = _AE_NODE_TYPE[dst.split("_write")[0]]
            ae_context = dst_config.get_autoencoder_context(t.NodeType(ae_node_type))
            assert ae_context is not None
            base = t.make_online_autoencoder_latent_scalar_deriver_factory(t.NodeType(ae_node_type))(dst_config)
            sources = _raw_sources(base)
            if grad:
                sources.append(t.make_final_residual_grad_scalar_source(dst_config, True))
            location = base.location_within_layer
            template = base
        else:
            template = original(dst_config)
            sources = _raw_sources(template)
            location = template.location_within_layer
        layers = dst_config.layer_indices
        sources = tuple(_lean(s, layers) for s in sources)
        mc = dst_config.get_model_context()

        def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
            if _native_ok(tensors, mc) and not dst.endswith("per_sequence_token"):
                try:
                    out = _derive_native(dst, tensors, layer_index, mc, ae_context, ae_node_type)
                except (_ntdb()._NotNative, _nw().NodeWriteError):
                    pass
                else:
                    stats["native"] += 1
                    return out
            stats["torch"] += 1
            return _torch_family(dst, tensors, layer_index, dst_config, ae_context)

        return dataclasses.replace(
            template,
            dst=t.DerivedScalarType(dst),
            sub_scalar_sources=sources,
            tensor_calculate_derived_scalar_fn=fn,
            _specified_location_within_layer=location,
        )

    factory._nodewrite_dropin = True  # type: ignore[attr-defined]
    factory.__name__ = f"make_{dst}_scalar_deriver"
    factory.__qualname__ = factory.__name__
    return factory


def _derive_native(dst: str, tensors: tuple, layer: int, mc: Any, ae_context: Any, ae_node_type: Any) -> Any:
    torch = _T.get().torch
    nw = _nw()
    ntdb = _ntdb()
    grad = "_to_final_residual_grad" in dst
    store = nw.ActivationStore()
    acts = tensors[:-1] if grad else tensors
    if dst.startswith("mlp_layer") or dst.startswith("attn_layer"):
        model = _dims_model(mc)
        store.put("resid.delta_" + dst.split("_")[0], layer, _np(acts[0]))
    elif dst.startswith("mlp_"):
        model = ntdb._get_model(mc, layer, "mlp_neuron")
        store.put("mlp.post_act", layer, _np(acts[0]))
    elif dst.startswith("online_"):
        ae_input = ae_context.dst.value
        if ae_context.device.type != "cpu" or nw.autoencoder_input_kind(ae_input) is None:
            raise ntdb._NotNative
        ae = ae_context.get_autoencoder(layer)
        model = ntdb._get_model(mc, layer, "latent", ae, (ae_node_type, ae_input))
        latents = {"autoencoder_latent": "online_autoencoder_latent",
                   "mlp_autoencoder_latent": "online_mlp_autoencoder_latent",
                   "attention_autoencoder_latent": "online_attention_autoencoder_latent"}[ae_node_type]
        store.put(latents, layer, _np(acts[0]))
    else:
        model = ntdb._get_model(mc, layer, "attention_head")
        store.put("attn.qk_probs", layer, _np(acts[0]))
        store.put("attn.v", layer, _np(acts[1]))
    out = nw.derive(model, store, dst, layer, direction=_np(tensors[-1]) if grad else None)
    return torch.from_numpy(out)


def _make_snw_grad_factory(original: Callable) -> Callable:
    """single_node_write_to_final_residual_grad: the node's write (the v1 drop-in's deriver)
    projected on TDB's final residual grad, (T, 1), in one nw_node_write_to_direction call."""

    def make_node_write_to_final_residual_grad_scalar_deriver(dst_config: Any) -> Any:
        t = _T.get()
        ntdb = _ntdb()
        if dst_config.derive_gradients or dst_config.trace_config is not None:
            stats["original"] += 1
            return original(dst_config)
        base = ntdb.make_node_write_scalar_deriver(dst_config)
        plan = getattr(base.tensor_calculate_derived_scalar_fn, "nodewrite_plan", None)
        if plan is None:  # a node the v1 drop-in passes to TDB: the original recipe
            return original(dst_config)
        node_fn = base.tensor_calculate_derived_scalar_fn
        direction = t.make_final_residual_grad_scalar_source(dst_config, True)
        sources = tuple(base.sub_scalar_sources) + (direction,)
        n_acts = len(base.sub_scalar_sources)
        torch = t.torch

        def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
            acts, g = tensors[:n_acts], tensors[-1]
            if plan.kind == "attention_head":
                assert len(acts) == 2, ([x.shape for x in acts],)
                ntdb._tdb().check_attn_post_softmax_shape(acts[0])
            if _native_ok(tensors, plan.model_context):
                try:
                    _, _, deriver, names = plan._native_deriver()
                    store = _nw().ActivationStore()
                    for name, x in zip(names, acts):
                        store.put(name, plan.layer, _np(x))
                    out = _nw().node_write_to_direction(deriver.model, store, deriver.node, _np(g))
                except (ntdb._NotNative, _nw().NodeWriteError):
                    pass
                else:
                    stats["native"] += 1
                    ntdb.stats["native"] += 1  # v1's counter: the node write was native
                    return torch.from_numpy(out)
            stats["torch"] += 1
            write = node_fn(acts, layer_index, pass_type)  # the drop-in's node write (T, d_model)
            return torch.einsum("td,td->t", write, g.to(write.dtype))[:, None]

        return dataclasses.replace(
            base,
            dst=t.DerivedScalarType.SINGLE_NODE_WRITE_TO_FINAL_RESIDUAL_GRAD,
            sub_scalar_sources=sources,
            tensor_calculate_derived_scalar_fn=fn,
            _specified_location_within_layer=base.location_within_layer,
        )

    make_node_write_to_final_residual_grad_scalar_deriver._nodewrite_dropin = True  # type: ignore[attr-defined]
    return make_node_write_to_final_residual_grad_scalar_deriver


# ------------------------------------------------------------------- TokenWriteConverter

_converter_class: Any = None


def _make_converter_class(original: type) -> type:
    t = _T.get()
    torch = t.torch

    class TokenWriteConverter(original):  # type: ignore[misc, valid-type]
        """TDB's TokenWriteConverter without the (d_model, n_vocab) ``unembedding * gain`` copy
        made per converter: writes are scaled by the final gain first, then multiplied by the
        unembedding (a view served by the model context), then mean-subtracted."""

        def __init__(self, model_context: Any, multi_autoencoder_context: Any = None) -> None:
            self._model_context = model_context
            self._multi_autoencoder_context = t.postprocessing.MultiAutoencoderContext.from_context_or_multi_context(
                multi_autoencoder_context
            )
            self._residual_write_converter = t.postprocessing.ResidualWriteConverter(
                model_context, multi_autoencoder_context
            )
            self._input_dst_by_node_type = self._residual_write_converter._input_dst_by_node_type
            W = t.WeightLocationType
            self._nodewrite_unembedding = model_context.get_weight(W.UNEMBEDDING, device=model_context.device)
            self._nodewrite_gain = model_context.get_weight(W.LAYER_NORM_GAIN_FINAL, device=model_context.device)

        @property
        def _unemb_with_ln_gain(self) -> Any:  # the original's attribute, formed only if read
            cached = self.__dict__.get("_nodewrite_unemb_with_gain")
            if cached is None:
                cached = torch.einsum("ov,o->ov", self._nodewrite_unembedding, self._nodewrite_gain)
                self.__dict__["_nodewrite_unemb_with_gain"] = cached
            return cached

        def _to_tokens(self, writes: Any) -> Any:
            u = (writes * self._nodewrite_gain.to(writes.dtype)) @ self._nodewrite_unembedding.to(writes.dtype)
            return u - u.mean(dim=-1, keepdim=True)

        def postprocess_tensor(self, ds_index: Any, derived_scalars: Any, **kwargs: Any) -> Any:
            residual_write = self._residual_write_converter.postprocess_tensor(ds_index, derived_scalars, **kwargs)
            return self._to_tokens(residual_write)

        def postprocess_multiple_nodes(self, node_indices: list, ds_store: Any) -> list:
            writes = self._residual_write_converter.postprocess_multiple_nodes(node_indices, ds_store)
            out = self._to_tokens(torch.stack(writes, dim=0))
            return [x.squeeze(0) for x in torch.split(out, 1, dim=0)]

    TokenWriteConverter.__module__ = __name__
    TokenWriteConverter._nodewrite_dropin = True  # type: ignore[attr-defined]
    return TokenWriteConverter


# ------------------------------------------------------------------------ install/uninstall


def is_installed() -> bool:
    return bool(_patches)


def _patch(container: Any, key: Any, original: Any, replacement: Any, is_mapping: bool) -> None:
    _patches.append((container, key, original, replacement, is_mapping))
    if is_mapping:
        container[key] = replacement
    else:
        setattr(container, key, replacement)


def install() -> None:
    """Replaces the registry entries, single_node_write_to_final_residual_grad and
    TokenWriteConverter (see the module docstring). Idempotent."""
    import importlib

    global _converter_class
    with _lock:
        if _patches:
            return
        t = _T.get()
        for name in (_EA, "neuron_explainer.activation_server.interactive_model"):
            try:
                importlib.import_module(name)
            except Exception:  # optional modules (the server needs its own dependencies)
                pass
        registry = t.msd._DERIVED_SCALAR_TYPE_REGISTRY
        DST = t.DerivedScalarType
        for value in _family():
            key = DST(value)
            original = registry.get(key)
            if original is None or getattr(original, "_nodewrite_dropin", False):
                continue
            _patch(registry, key, original, _make_dst_factory(value, original), True)
        key = DST(_SNW_GRAD)
        original = registry.get(key)
        if original is not None and not getattr(original, "_nodewrite_dropin", False):
            replacement = _make_snw_grad_factory(original)
            _patch(registry, key, original, replacement, True)
            for mod_name, mod in list(sys.modules.items()):
                if mod is None or not mod_name.startswith("neuron_explainer"):
                    continue
                for attr, value in list(vars(mod).items()):
                    if value is original:
                        _patch(mod, attr, original, replacement, False)
        original_cls = t.postprocessing.TokenWriteConverter
        if not getattr(original_cls, "_nodewrite_dropin", False):
            _converter_class = _make_converter_class(original_cls)
            for mod_name, mod in list(sys.modules.items()):
                if mod is None or not mod_name.startswith("neuron_explainer"):
                    continue
                for attr, value in list(vars(mod).items()):
                    if value is original_cls:
                        _patch(mod, attr, original_cls, _converter_class, False)


def uninstall() -> None:
    """Restores every name install() replaced (where it still holds the drop-in)."""
    with _lock:
        while _patches:
            container, key, original, replacement, is_mapping = _patches.pop()
            if is_mapping:
                if container.get(key) is replacement:
                    container[key] = original
            elif getattr(container, key, None) is replacement:
                setattr(container, key, original)


def __getattr__(name: str) -> Any:
    if name == "TokenWriteConverter":  # the drop-in class (built from TDB's on first use)
        if _converter_class is None:
            return _make_converter_class(_T.get().postprocessing.TokenWriteConverter)
        return _converter_class
    raise AttributeError(name)
