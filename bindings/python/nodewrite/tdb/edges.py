"""TDB's edge-attribution derived scalars without autodiff: factories for
``make_scalar_derivers._DERIVED_SCALAR_TYPE_REGISTRY`` (issue "Edges", section "The drop-in").

Each factory first builds TDB's own deriver (so construction checks and errors are TDB's,
``assert`` on "the" single autoencoder included), then keeps its ``dst``, config, location and
sources and replaces only what it computes:

- in-edges (``attn_{query,key,value}_in_edge_attribution``, ``mlp_in_edge_attribution``,
  ``online_autoencoder_in_edge_attribution``): TDB's sources (the residual before the block, the
  loss gradient at the downstream activation, the upstream node's write) are kept; the
  ``torch.func.jvp`` through a rebuilt layer becomes :func:`nodewrite.tdb.torch_edges.in_edge`,
  once per non-zero row of the write (the in-edge is linear in it);
- ``grad_of_single_subnode_attribution``: :func:`~nodewrite.tdb.torch_edges.subnode_gradient`
  instead of TDB's backward pass;
- out-edges (``attn_out_edge_attribution``, ``mlp_out_edge_attribution``,
  ``online_autoencoder_out_edge_attribution``, ``token_out_edge_attribution``): the direction is
  the drop-in gradient above, and the attention one reads the raw ``attn.qk_probs`` and
  ``attn.v`` instead of TDB's (T, T, heads, d_head) weighted values;
- attention to a latent (``attn_write_to_latent``, ``attn_write_to_latent_summed_over_heads``,
  ``flattened_attn_write_to_latent_summed_over_heads``): the same contraction with TDB's latent
  gradient as the direction, the head sum fused; and
  ``flattened_attn_write_to_latent_summed_over_heads_batched`` without TDB's (T, T, d_model)
  head-summed write.

The computation runs in torch on the tensors' own device and dtype (CUDA included); the native
path (``nodewrite.derive(..., node=...)``) is taken first when the library offers it and falls
back on the refusals of :data:`nodewrite.tdb.torch_fallback.REFUSALS` only. Models the analytic
formulation does not describe (an autoencoder whose activation is not ReLU, a LayerNorm epsilon
other than 1e-5) run TDB's own function on the same inputs, counted as ``"original"``.
``derive_gradients`` or ``trace_config`` set: TDB's deriver unchanged.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import Any, Callable, Optional

import nodewrite as _nw

from . import models, native_store, torch_edges, torch_fallback
from .counters import stats
from .models import NotNative
from .namespace import tdb
from .sources import lean

__all__ = ["IN_EDGE_DSTS", "OUT_EDGE_DSTS", "GRAD_DST", "TO_LATENT_DSTS", "LIBRARY_ONLY_DSTS", "make_factory", "FACTORIES"]

IN_EDGE_DSTS = (
    "attn_query_in_edge_attribution",
    "attn_key_in_edge_attribution",
    "attn_value_in_edge_attribution",
    "mlp_in_edge_attribution",
    "online_autoencoder_in_edge_attribution",
)
GRAD_DST = "grad_of_single_subnode_attribution"
OUT_EDGE_DSTS = (
    "attn_out_edge_attribution",
    "mlp_out_edge_attribution",
    "online_autoencoder_out_edge_attribution",
    "token_out_edge_attribution",
)
TO_LATENT_DSTS = (
    "attn_write_to_latent",
    "attn_write_to_latent_summed_over_heads",
    "flattened_attn_write_to_latent_summed_over_heads",
)
TO_LATENTS_BATCHED_DST = "flattened_attn_write_to_latent_summed_over_heads_batched"
#: Served by the library from TDB's raw store, with TDB's own deriver as the fallback (counted
#: "original"; they have no torch path of their own): act-times-grad, and the attention-to-latent
#: values above that the torch path does not cover.
LIBRARY_ONLY_DSTS = (
    "mlp_act_times_grad",
    "unflattened_attn_act_times_grad",
    "attn_act_times_grad",
    "attn_act_times_grad_per_sequence_token",
    "token_attribution",
    "online_autoencoder_act_times_grad",
    "online_mlp_autoencoder_act_times_grad",
    "online_attention_autoencoder_act_times_grad",
    "autoencoder_latent_grad_wrt_residual_input",
    "attn_write_to_latent_per_sequence_token",
    "attn_write_to_latent_per_sequence_token_batched",
)

#: Set by tests to run the torch path on CPU tensors even where the library would serve them.
force_torch = False


class _Unmodelled(Exception):
    """The analytic formulation does not describe this model: run TDB's own function."""


# ------------------------------------------------------------------- weights from TDB's model

_weights_lock = threading.Lock()
_weights: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def layer_weights(transformer: Any, layer: int, device: Any, dtype: Any) -> torch_edges.LayerWeights:
    """The read side of one layer of TDB's ``Transformer``, in torch_edges' layout (cached per
    transformer, layer, device and dtype; views of the parameters where possible)."""
    key = (layer, str(device), dtype)
    with _weights_lock:
        per_model = _weights.setdefault(transformer, {})
        if key in per_model:
            return per_model[key]
    block = transformer.xf_layers[layer]
    attn, mlp = block.attn, block.mlp
    for norm in (block.ln_1, block.ln_2):
        if float(norm.eps) != torch_edges.LN_EPS:
            raise _Unmodelled(f"LayerNorm eps {norm.eps}")
    n_heads = attn.n_heads
    t = tdb().torch

    def c(x: Any) -> Any:
        return x.detach().to(device=device, dtype=dtype)

    def heads_in(lin: Any) -> tuple:  # nn.Linear(d_model, heads * d_head)
        w = c(lin.weight)  # (H*dh, D)
        d = w.shape[1]
        return w.T.reshape(d, n_heads, -1).permute(1, 0, 2), c(lin.bias).reshape(n_heads, -1)

    w_q, b_q = heads_in(attn.q_proj)
    w_k, b_k = heads_in(attn.k_proj)
    w_v, b_v = heads_in(attn.v_proj)
    w_o = c(attn.out_proj.weight).T.reshape(n_heads, -1, c(attn.out_proj.weight).shape[0])
    with t.no_grad():
        weights = torch_edges.LayerWeights(
            c(block.ln_1.weight), c(block.ln_1.bias), w_q, w_k, w_v, b_q, b_k, b_v, w_o,
            c(block.ln_2.weight), c(block.ln_2.bias), c(mlp.in_layer.weight).T, c(mlp.in_layer.bias),
            c(mlp.out_layer.weight).T,
        )
    with _weights_lock:
        _weights.setdefault(transformer, {})[key] = weights
    return weights


def _autoencoder(autoencoder_context: Any, layer: int, device: Any, dtype: Any) -> tuple:
    """(torch_edges.Autoencoder, TDB's Autoencoder) of a layer."""
    t = tdb()
    ae = autoencoder_context.get_autoencoder(layer)
    if type(ae.activation).__name__ != "ReLU":
        raise _Unmodelled(f"autoencoder activation {type(ae.activation).__name__}")
    dst = autoencoder_context.dst.value
    if dst not in ("mlp_post_act", "resid_delta_attn"):
        raise _Unmodelled(f"autoencoder input {dst}")
    encoder = ae.encoder.weight.detach().to(device=device, dtype=dtype)
    decoder = t.get_decoder_weight(ae).detach().to(device=device, dtype=dtype)
    side = "mlp" if dst == "mlp_post_act" else "attn"
    return torch_edges.Autoencoder(dst, encoder, decoder, side), ae


def _latents(ae: Any, block_input: Any, x: Any, w: torch_edges.LayerWeights, detach: bool, kind: str, layer: Any) -> Any:
    """The autoencoder's latents recomputed from the residual x before its input (ReLU)."""
    torch = tdb().torch
    with torch.no_grad():
        if kind == "mlp_post_act":
            inp = layer.mlp.act(torch_edges.MLP(x, w, detach).pre)
        else:
            att = torch_edges.Attention(x, w, detach)
            inp = torch.einsum("qhe,hed->qd", torch.einsum("qkh,khe->qhe", att.p, att.v), w.w_o)
            inp = inp + layer.attn.out_proj.bias.detach().to(x.dtype)
        return ae.encode(inp.to(ae.encoder.weight.dtype)).to(x.dtype)


def _q_k_or_v(node_index: Any) -> Optional[str]:
    alt = getattr(node_index, "q_k_or_v", None)
    return None if alt is None else {"attn.q": "q", "attn.k": "k", "attn.v": "v"}[alt.value]


# --------------------------------------------------------------------------------- serving


_raw = threading.local()  # the RawActivationStore of the derive_from_raw call under way (a stack)


def _native_first(deriver: Any, edge: "_NativeEdge", count_fallback: Optional[str] = None) -> Any:
    """``deriver`` whose ``derive_from_raw(store, FORWARD)`` asks the library first for every
    layer TDB's pipeline would output (the layers of its first source, filtered by the config's
    ``layer_indices``, as ``ScalarDeriver.derive_from_raw`` does), reading TDB's raw store
    directly (:mod:`nodewrite.tdb.native_store`): the other sources (the node's write, the
    gradient direction, the loss gradients) are not derived, since the library reads what it
    needs from the raw store. Where the library cannot take the call (another device or dtype,
    a refusal of torch_fallback.REFUSALS, a model it does not describe) or the torch path is
    forced, TDB's own ``derive_from_raw`` runs with the drop-in function, the raw store made
    known to it (``count_fallback``: the stats key that run counts, for a function that counts
    nothing itself)."""
    t = tdb()
    method = type(deriver).derive_from_raw
    first_source = lean(deriver.sub_scalar_sources[0], None)  # TDB's result without its per-read copy

    def fast(raw_activation_store: Any, pass_type: Any) -> Any:
        if force_torch or pass_type != t.PassType.FORWARD:
            raise NotNative
        first = _first_layers(first_source, raw_activation_store)
        data = {k: v for k, v in first.items() if deriver.dst_config.layer_indices is None
                or k is None or k in deriver.dst_config.layer_indices}
        if not data:  # TDB's pipeline raises or returns nothing: its own code says which
            raise NotNative
        model = edge.model()
        torch = t.torch
        outs = {}
        with native_store.synced(raw_activation_store) as store:
            for layer, like in data.items():
                outs[layer] = torch.from_numpy(edge.derive(model, store, layer)).to(like.dtype)
        stats["native"] += len(outs)
        return t.ActivationsAndMetadata(dst=deriver.dst, pass_type=pass_type, activations_by_layer_index=outs)

    def derive_from_raw(raw_activation_store: Any, pass_type: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            try:
                return fast(raw_activation_store, pass_type)
            except NotNative:
                pass
            except _nw.NodeWriteError as e:
                if e.status not in torch_fallback.REFUSALS:
                    raise
        if count_fallback is not None:
            stats[count_fallback] += 1
        stack = getattr(_raw, "stack", None)
        if stack is None:
            stack = _raw.stack = []
        stack.append(raw_activation_store)
        try:
            return method(deriver, raw_activation_store, pass_type, *args, **kwargs)
        finally:
            stack.pop()

    object.__setattr__(deriver, "derive_from_raw", derive_from_raw)  # a frozen dataclass: its fields unchanged
    return deriver


def _first_layers(source: Any, raw_activation_store: Any) -> dict:
    """{layer: tensor} of ``source`` derived from the raw store as TDB's pipeline would, for its
    layers and dtypes only: derived on a copy of the store whose tensors are ``meta`` tensors of
    the same shapes and dtypes (no memory touched: TDB's residual derivers fill missing layers
    with ``zeros_like`` copies, which is most of a native call's time otherwise); on the real
    store where TDB's code cannot run on meta tensors."""
    t = tdb()
    torch = t.torch
    try:
        meta = type(raw_activation_store)({
            key: dataclasses.replace(data, activations_by_layer_index={
                layer: torch.empty(x.shape, dtype=x.dtype, device="meta")
                for layer, x in data.activations_by_layer_index.items()})
            for key, data in raw_activation_store.activations_by_sub_activation_location_type_and_pass_type.items()
        })
        return source.derive_from_raw(meta, None).activations_by_layer_index
    except Exception:  # noqa: BLE001 - any failure on meta tensors: the real store decides
        return source.derive_from_raw(raw_activation_store, None).activations_by_layer_index


def _autoencoder_contexts(dst_config: Any) -> tuple:
    if dst_config.autoencoder_context is not None:
        return (dst_config.autoencoder_context,)
    multi = dst_config.multi_autoencoder_context
    return () if multi is None else tuple(multi.autoencoder_context_by_node_type.values())


class _NativeEdge:
    """The library's ``nodewrite.derive(model, store, dst, layer, node=node, ...)`` for one
    drop-in deriver: :meth:`derive` on a store, :meth:`__call__` for a call of the deriver's
    function (the store: TDB's raw store of the ``derive_from_raw`` call under way)."""

    def __init__(self, dst: str, dst_config: Any, node: Any, transformer: Any, detach: Optional[bool] = None) -> None:
        self.dst, self.node, self.transformer = dst, node, transformer
        self.model_context = dst_config.get_model_context()
        self.contexts = _autoencoder_contexts(dst_config)
        self.detach = bool(dst_config.detach_layer_norm_scale_for_attribution) if detach is None else detach

    def _read_side(self, layer: int) -> tuple:
        torch = tdb().torch
        block = self.transformer.xf_layers[layer]
        w = layer_weights(self.transformer, layer, torch.device("cpu"), torch.float32)
        return w, block.attn.out_proj.bias.detach(), block.mlp.out_layer.bias.detach()

    def model(self) -> Any:
        """The cached edge model (models.edge_model); NotNative where the library's formulation
        does not describe TDB's model (then TDB's own function runs)."""
        try:
            n_layers = len(self.transformer.xf_layers)
            for c in self.contexts:  # what the library models: ReLU autoencoders (and LayerNorm eps 1e-5, below)
                for l in range(n_layers):
                    if type(c.get_autoencoder(l).activation).__name__ != "ReLU":
                        raise _Unmodelled("autoencoder activation")
            return models.edge_model(self.model_context, self.contexts, self._read_side)
        except _Unmodelled:
            raise NotNative from None

    def derive(self, model: Any, store: Any, layer: Any) -> Any:
        return _nw.derive(model, store, self.dst, layer, node=self.node, detach_layer_norm_scale=self.detach)

    def __call__(self, tensors: tuple, layer: Any) -> Any:
        torch = tdb().torch
        for x in tensors:  # the device and dtype decide before anything is built
            models._as_float32(x)
        stack = getattr(_raw, "stack", None)
        if not stack:
            raise NotNative
        model = self.model()
        with native_store.synced(stack[-1]) as store:
            out = self.derive(model, store, layer)
        return torch.from_numpy(out).to(tensors[0].dtype)


def _native_edge(dst: str, dst_config: Any, node: Any, transformer: Any, detach: Optional[bool] = None) -> _NativeEdge:
    return _NativeEdge(dst, dst_config, node, transformer, detach)


def _serve(compute: Callable[[], Any], original: Callable[[], Any], native: Optional[Callable[[], Any]] = None) -> Any:
    """The library's ``native()`` first (nodewrite.derive), then ``compute()`` (torch) where
    it cannot take the call (another device or dtype, no raw store known, a refusal of
    torch_fallback.REFUSALS); TDB's ``original()`` for a model the formulation does not
    describe."""

    def not_native() -> Any:
        raise NotNative

    def fallback() -> Any:
        try:
            return compute()
        except _Unmodelled:
            stats["torch"] -= 1
            stats["original"] += 1
            return original()

    if force_torch:
        stats["torch"] += 1
        return fallback()
    return torch_fallback.serve(native or not_native, fallback)


def _no_grad(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        with tdb().torch.no_grad():
            return fn(*args)

    return wrapped


# ---------------------------------------------------------------------------------- in-edges


def _in_edge_factory(dst: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def factory(dst_config: Any) -> Any:
        t = tdb()
        torch = t.torch
        template = original(dst_config)  # TDB's checks and errors, and its sources
        if dst_config.derive_gradients or dst_config.trace_config is not None:
            stats["original"] += 1
            return template
        resid_source, _grad_source, write_source = template.sub_scalar_sources
        original_fn = template.tensor_calculate_derived_scalar_fn
        model_context = dst_config.get_model_context()
        transformer = model_context.get_or_create_model()
        autoencoder_context = dst_config.get_autoencoder_context() if dst.startswith("online_") else None
        detach = bool(dst_config.detach_layer_norm_scale_for_attribution)
        resid_location = resid_source.location_within_layer

        def compute(resid: Any, grad: Any, write: Any, layer: int) -> Any:
            w = layer_weights(transformer, layer, resid.device, resid.dtype)
            T = resid.shape[0]
            ae = z = None
            if autoencoder_context is not None:
                ae, tdb_ae = _autoencoder(autoencoder_context, layer, resid.device, resid.dtype)
                z = _latents(tdb_ae, None, resid, w, detach, ae.input, transformer.xf_layers[layer])
                shape: tuple = (T, ae.encoder.shape[0])
            elif dst == "mlp_in_edge_attribution":
                shape = (T, w.w_in.shape[1])
            else:
                shape = (T, T, w.w_q.shape[0])
            precedes = t.precedes_final_layer(
                derived_scalar_location_within_layer=write_source.location_within_layer,
                derived_scalar_layer_index=write_source.layer_index,
                final_residual_location_within_layer=resid_location,
                final_residual_layer_index=layer,
            )
            out = torch.zeros(shape, dtype=resid.dtype, device=resid.device)
            if not precedes:
                return out
            write = write.to(resid.dtype)
            rows = torch.nonzero(write.abs().sum(-1)).flatten().tolist()
            for u in rows:
                out += torch_edges.in_edge(dst, layer=layer, u=u, write=write[u], x=resid, w=w, grad=grad,
                                           detach=detach, ae=ae, z=z)
            return out

        native = _native_edge(dst, dst_config, dst_config.node_index_for_attribution, transformer)

        def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
            resid, grad, write = tensors
            return _serve(_no_grad(lambda: compute(resid, grad, write, layer_index)),
                          lambda: original_fn(tensors, layer_index, pass_type),
                          lambda: native(tensors, layer_index))

        return _native_first(dataclasses.replace(template, tensor_calculate_derived_scalar_fn=fn,
                                                 _specified_location_within_layer=template.location_within_layer), native)

    return factory


# ------------------------------------------------------------------------ gradients, out-edges


def _gradient_deriver(template: Any) -> Any:
    """TDB's ``grad_of_single_subnode_attribution`` deriver ``template`` (sources: the residual
    before the subnode, the loss gradient at it) computing its gradient analytically."""
    t = tdb()
    torch = t.torch
    dst_config = template.dst_config
    node_index = dst_config.node_index_for_attribution
    kind_of = {t.NodeType.MLP_NEURON: "mlp", t.NodeType.ATTENTION_HEAD: None}
    kind = kind_of.get(node_index.node_type, "latent")
    if kind is None:
        kind = _q_k_or_v(node_index)
    model_context = dst_config.get_model_context()
    transformer = model_context.get_or_create_model()
    autoencoder_context = dst_config.get_autoencoder_context() if kind == "latent" else None
    detach = bool(dst_config.detach_layer_norm_scale_for_attribution)
    index = tuple(node_index.tensor_indices)
    original_fn = template.tensor_calculate_derived_scalar_fn

    def compute(resid: Any, grad: Any, layer: int) -> Any:
        w = layer_weights(transformer, layer, resid.device, resid.dtype)
        ae = z = None
        if kind == "latent":
            ae, tdb_ae = _autoencoder(autoencoder_context, layer, resid.device, resid.dtype)
            z = _latents(tdb_ae, None, resid, w, detach, ae.input, transformer.xf_layers[layer])
        return torch_edges.subnode_gradient(kind=kind, layer_x=resid, w=w, index=index, grad=grad.to(resid.dtype),
                                            detach=detach, ae=ae, z=z)

    native = _native_edge(GRAD_DST, dst_config, node_index, transformer)

    def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
        resid, grad = tensors
        return _serve(_no_grad(lambda: compute(resid, grad, layer_index)),
                      lambda: original_fn(tensors, layer_index, pass_type),
                      lambda: native(tensors, layer_index))

    del torch
    return _native_first(dataclasses.replace(template, tensor_calculate_derived_scalar_fn=fn,
                                             _specified_location_within_layer=template.location_within_layer), native)


def _grad_factory(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def factory(dst_config: Any) -> Any:
        template = original(dst_config)
        if dst_config.derive_gradients or dst_config.trace_config is not None:
            stats["original"] += 1
            return template
        return _gradient_deriver(template)

    return factory


def _out_edge_factory(dst: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def factory(dst_config: Any) -> Any:
        t = tdb()
        torch = t.torch
        template = original(dst_config)
        if dst_config.derive_gradients or dst_config.trace_config is not None:
            stats["original"] += 1
            return template
        base_source, direction_source = template.sub_scalar_sources
        original_fn = template.tensor_calculate_derived_scalar_fn
        direction = t.DerivedScalarSource(
            _gradient_deriver(direction_source.scalar_deriver),
            pass_type=direction_source.pass_type,
            layer_indexer=direction_source.layer_indexer,
        )
        location = template.location_within_layer
        model_context = dst_config.get_model_context()
        if dst == "attn_out_edge_attribution":
            # the raw probabilities and values, not TDB's (T, T, heads, d_head) weighted values
            from .sources import raw_sources

            sources: tuple = (*raw_sources(base_source.scalar_deriver), direction)
        else:
            sources = (base_source, direction)
        autoencoder_context = dst_config.get_autoencoder_context() if dst.startswith("online_") else None
        native = _native_edge(dst, dst_config, dst_config.node_index_for_attribution, model_context.get_or_create_model())

        def precedes(layer: Any) -> bool:
            return t.precedes_final_layer(
                final_residual_location_within_layer=direction.location_within_layer,
                final_residual_layer_index=direction.layer_index,
                derived_scalar_location_within_layer=location,
                derived_scalar_layer_index=layer,
            )

        def weight(name: str, layer: int, like: Any) -> Any:
            w = model_context.get_weight(t.WeightLocationType(name), layer, device=like.device)
            return w.to(like.dtype)

        def compute(acts: tuple, G: Any, layer: Any) -> Any:
            act = acts[0]
            if dst == "attn_out_edge_attribution":
                probs, v = acts
                if not precedes(layer):
                    return torch.zeros_like(probs)
                return torch_edges.out_edge(dst, G=G.to(probs.dtype), act=probs, v=v,
                                            w=_WO(weight("attn.to_residual", layer, probs)))
            if dst == "token_out_edge_attribution":
                return torch_edges.out_edge(dst, G=G.to(act.dtype), act=act)
            if not precedes(layer):
                return torch.zeros_like(act)
            if dst == "mlp_out_edge_attribution":
                return act * (G.to(act.dtype) @ weight("mlp.to_residual", layer, act).T)
            ae, _ = _autoencoder(autoencoder_context, layer, act.device, act.dtype)
            rows = ae.decoder if ae.input != "mlp_post_act" else ae.decoder @ weight("mlp.to_residual", layer, act)
            return act * (G.to(act.dtype) @ rows.T)

        def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
            acts, G = tensors[:-1], tensors[-1]

            def original_call() -> Any:
                if dst == "attn_out_edge_attribution":  # TDB's own recipe on its own inputs
                    weighted = torch.einsum("qkh,khd->qkhd", acts[0], acts[1])
                    return original_fn((weighted, G), layer_index, pass_type)
                return original_fn(tensors, layer_index, pass_type)

            return _serve(_no_grad(lambda: compute(acts, G, layer_index)), original_call,
                          lambda: native(tensors, layer_index))

        return _native_first(dataclasses.replace(template, sub_scalar_sources=sources, tensor_calculate_derived_scalar_fn=fn,
                                                 _specified_location_within_layer=location), native)

    return factory


def _to_latent_factory(dst: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``attn_write_to_latent`` and its two head-summed forms: the raw probabilities and values
    of the layer and TDB's own latent-gradient direction D (T, d_model), contracted as
    ``p[q,k,h] * v[k,h] . (W_O[h] D[q])`` (the head sum fused), never TDB's (T, T, heads, d_head)
    weighted values."""

    def factory(dst_config: Any) -> Any:
        t = tdb()
        torch = t.torch
        template = original(dst_config)
        if dst_config.derive_gradients:
            stats["original"] += 1
            return template
        inner = template if dst == "attn_write_to_latent" else template.sub_scalar_sources[0].scalar_deriver
        weighted_source, direction = inner.sub_scalar_sources
        from .sources import raw_sources

        sources = (*raw_sources(weighted_source.scalar_deriver), direction)
        model_context = dst_config.get_model_context()
        original_inner = inner.tensor_calculate_derived_scalar_fn
        original_outer = template.tensor_calculate_derived_scalar_fn
        trace = dst_config.trace_config
        native = _native_edge(dst, dst_config, None if trace is None else trace.node_index,
                              model_context.get_or_create_model(), detach=False)

        def compute(probs: Any, v: Any, D: Any, layer: Any) -> Any:
            w_o = model_context.get_weight(t.WeightLocationType("attn.to_residual"), layer, device=probs.device)
            gh = torch.einsum("hed,qd->qhe", w_o.to(D.dtype), D)
            full = probs * torch.einsum("khe,qhe->qkh", v, gh.to(v.dtype))
            if dst == "attn_write_to_latent":
                return full
            summed = full.sum(-1, keepdim=True)
            return summed if dst == "attn_write_to_latent_summed_over_heads" else t.flatten_lower_triangle(summed)

        def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
            probs, v, D = tensors

            def original_call() -> Any:
                weighted = torch.einsum("qkh,khd->qkhd", probs, v)
                out = original_inner((weighted, D), layer_index, pass_type)
                return out if inner is template else original_outer((out,), layer_index, pass_type)

            return _serve(_no_grad(lambda: compute(probs, v, D, layer_index)), original_call,
                          lambda: native(tensors, layer_index))

        return _native_first(dataclasses.replace(template, sub_scalar_sources=sources, tensor_calculate_derived_scalar_fn=fn),
                             native)

    return factory


def _to_latents_batched_factory(dst: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``flattened_attn_write_to_latent_summed_over_heads_batched``: TDB forms the head-summed
    write (T, T, d_model) first (38.7 GB at T = 1024 for GPT-2 small); here
    ``m[k, h] = v[k, h] W_O[h] encoder^T`` (T, heads, n_latents) once, then one query row at a
    time ``sum_h p[q, k, h] m[k, h]`` times the ReLU's derivative at the latents of row q,
    written straight into the flattened lower triangle."""

    def factory(dst_config: Any) -> Any:
        t = tdb()
        torch = t.torch
        template = original(dst_config)  # TDB's checks: one layer, a linear encoder, a ReLU
        if dst_config.derive_gradients:
            stats["original"] += 1
            return template
        write_source, latents_source = template.sub_scalar_sources
        from .sources import raw_sources

        sources = (*raw_sources(write_source.scalar_deriver), latents_source)
        model_context = dst_config.get_model_context()
        autoencoder_context = dst_config.get_autoencoder_context(t.NodeType.ATTENTION_AUTOENCODER_LATENT)
        original_fn = template.tensor_calculate_derived_scalar_fn
        write_fn = write_source.scalar_deriver.tensor_calculate_derived_scalar_fn
        native = _native_edge(dst, dst_config, None, model_context.get_or_create_model(), detach=False)

        def compute(probs: Any, v: Any, z: Any, layer: Any) -> Any:
            _autoencoder(autoencoder_context, layer, probs.device, probs.dtype)  # ReLU, or TDB's function
            encoder = autoencoder_context.get_autoencoder(layer).encoder.weight.detach().to(device=v.device)
            w_o = model_context.get_weight(t.WeightLocationType("attn.to_residual"), layer, device=v.device)
            m = torch.einsum("khe,hed->khd", v, w_o.to(v.dtype)) @ encoder.to(v.dtype).T  # (T, H, n_latents)
            live = (z > 0).to(m.dtype)
            T = probs.shape[0]
            out = torch.empty((T * (T + 1) // 2, m.shape[-1]), dtype=m.dtype, device=m.device)
            row = 0
            for q in range(T):
                n = q + 1
                torch.mul(torch.einsum("kh,khj->kj", probs[q, :n], m[:n]), live[q], out=out[row:row + n])
                row += n
            return out

        def fn(tensors: tuple, layer_index: Any, pass_type: Any) -> Any:
            probs, v, z = tensors

            def original_call() -> Any:
                write = write_fn((probs, v), layer_index, pass_type)
                return original_fn((write, z), layer_index, pass_type)

            return _serve(_no_grad(lambda: compute(probs, v, z, layer_index)), original_call,
                          lambda: native(tensors, layer_index))

        return _native_first(dataclasses.replace(template, sub_scalar_sources=sources, tensor_calculate_derived_scalar_fn=fn),
                             native)

    return factory


def _library_only_factory(dst: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """TDB's deriver of ``dst`` (its construction checks and errors), served by the library from
    TDB's raw store for every output layer; TDB's own function where the library cannot take
    the call. The node: the trace latent for the attention-to-latent values, none for the rest."""

    def factory(dst_config: Any) -> Any:
        template = original(dst_config)
        if dst_config.derive_gradients:
            stats["original"] += 1
            return template
        trace = dst_config.trace_config
        node = None if trace is None or dst not in _TRACED else trace.node_index
        if trace is not None and dst not in _TRACED:  # act-times-grad under a trace: TDB's own
            stats["original"] += 1
            return template
        transformer = dst_config.get_model_context().get_or_create_model()
        native = _native_edge(dst, dst_config, node, transformer, detach=False)
        return _native_first(dataclasses.replace(template), native, count_fallback="original")

    return factory


_TRACED = ("autoencoder_latent_grad_wrt_residual_input", "attn_write_to_latent_per_sequence_token")


class _WO:
    """The one field of LayerWeights that torch_edges.out_edge reads."""

    def __init__(self, w_o: Any) -> None:
        self.w_o = w_o


def make_factory(dst: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The drop-in factory of edge DST ``dst`` (``original``: TDB's registry factory)."""
    if dst in IN_EDGE_DSTS:
        factory = _in_edge_factory(dst, original)
    elif dst == GRAD_DST:
        factory = _grad_factory(original)
    elif dst in OUT_EDGE_DSTS:
        factory = _out_edge_factory(dst, original)
    elif dst == TO_LATENTS_BATCHED_DST:
        factory = _to_latents_batched_factory(dst, original)
    elif dst in TO_LATENT_DSTS:
        factory = _to_latent_factory(dst, original)
    elif dst in LIBRARY_ONLY_DSTS:
        factory = _library_only_factory(dst, original)
    else:
        raise ValueError(f"dst: {dst!r} is not an edge DST the drop-in replaces")
    factory._nodewrite_dropin = True  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = f"make_{dst}_scalar_deriver"
    return factory


#: Every edge DST the drop-in replaces.
FACTORIES = (*IN_EDGE_DSTS, GRAD_DST, *OUT_EDGE_DSTS, *TO_LATENT_DSTS, TO_LATENTS_BATCHED_DST, *LIBRARY_ONLY_DSTS)
