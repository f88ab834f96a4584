"""What the library knows about its node types, derived scalars, activations, weights, dtypes,
autoencoder inputs and SAELens hooks, read once from it at import (``nw_*_info_get``).

Every fact here is a row of the library's own tables; nothing is written twice. Use these
instead of lists of names or shapes of your own::

    import nodewrite as nw
    nw.node_type_info("attention_head").index_names   # ('query token', 'key token', 'head')
    nw.dst_info("attn_write_norm").dims                # ('token_pairs', 'heads')
    nw.activation_info("online_mlp_autoencoder_latent").latent_node_type  # 'mlp_autoencoder_latent'
    nw.saelens_hook("blocks.3.hook_mlp_out")          # SAELensHook(suffix='hook_mlp_out', ...)

Dimensions are named "one", "tokens", "token_pairs", "heads", "d_head", "d_model", "d_ff",
"latents", "vocab", "head_channels"; a DST's layout is one of "nodes", "unflattened",
"flattened", "per_sequence_token", "layer", "residual" (T, d_model), "tokens" (T, 1, no layer);
its quantity "norm" or "projection" (the write family), or "in_edge", "out_edge", "gradient",
"act_times_grad", "to_latent" (the edge and attribution DSTs, derived with a node: see
:func:`nodewrite.derive`).
An unknown name is a :class:`~nodewrite.NodeWriteValueError` listing the known ones.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

from . import _core
from .errors import NodeWriteValueError

__all__ = [
    "NodeTypeInfo",
    "DstInfo",
    "ActivationInfo",
    "WeightInfo",
    "DTypeInfo",
    "AutoencoderInputInfo",
    "SAELensHook",
    "node_type_info",
    "dst_info",
    "activation_info",
    "weight_info",
    "dtype_info",
    "autoencoder_input_info",
    "saelens_hook",
    "NODE_TYPES",
    "DSTS",
    "ACTIVATIONS",
    "WEIGHTS",
    "DTYPES",
    "AUTOENCODER_INPUTS",
    "SAELENS_HOOKS",
]


class NodeTypeInfo(NamedTuple):
    """A node type (``nw_node_type_info``)."""

    name: str  #: TDB's NodeType value
    n_indices: int  #: 2, or 3 for attention heads
    is_latent: bool  #: an autoencoder latent (it needs an autoencoder)
    index_names: Tuple[str, ...]  #: TDB's order; the first is the token the write lands on
    activations: Tuple[str, ...]  #: what it reads; the first holds the node's scalar
    weight: Optional[str]  #: its output weight (None for latents: their autoencoder's input decides)
    width: str  #: the dimension of its last index: "d_ff", "heads" or "latents"


class DstInfo(NamedTuple):
    """A derived scalar (``nw_dst_info``): the write family and the edge and attribution DSTs."""

    name: str  #: TDB's DerivedScalarType value
    node_type: Optional[str]  #: the node type whose nodes it covers (None: a whole layer's write, residual rows or tokens)
    layout: str  #: "nodes", "unflattened", "flattened", "per_sequence_token", "layer", "residual" or "tokens"
    #: "norm" or "projection" (a direction is then required): the write family; "in_edge", "out_edge",
    #: "gradient", "act_times_grad" or "to_latent": the edges (derive with node=, gradients from the
    #: store's backward pass)
    quantity: str
    needs_direction: bool
    has_layer: bool
    dims: Tuple[str, ...]  #: the output shape rule, e.g. ("token_pairs", "heads")
    activations: Tuple[str, ...]  #: what it reads at its layer


class ActivationInfo(NamedTuple):
    """A raw activation (``nw_activation_info``), in TDB's layout."""

    name: str  #: TDB's ActivationLocationType value
    dims: Tuple[str, ...]  #: e.g. attn.qk_probs ("tokens", "tokens", "heads")
    has_layer: bool
    latent_node_type: Optional[str]  #: for online_*autoencoder_latent: whose latents it holds


class WeightInfo(NamedTuple):
    """A model weight (``nw_weight_info``), in its canonical layout."""

    name: str  #: TDB's WeightLocationType value
    has_layer: bool  #: False: set with layer None
    dims: Tuple[str, ...]


class DTypeInfo(NamedTuple):
    """An element type (``nw_dtype_info``)."""

    name: str
    item_size: int  #: bytes per element


class AutoencoderInputInfo(NamedTuple):
    """What an autoencoder was trained on (``nw_autoencoder_input_info``)."""

    name: str  #: "mlp_post_act", "residual" or "attn_z"
    input_dim: str  #: the decoder's n_inputs: "d_ff", "d_model" or "head_channels"
    weight: Optional[str]  #: the weight the decoded vector goes through (None: it is the write)


class SAELensHook(NamedTuple):
    """An SAELens hook nodewrite reads SAEs on (``nw_saelens_hook_info``), at one layer."""

    suffix: str  #: the hook is "blocks.{layer}." + suffix
    node_type: str  #: the latent node type its SAE's latents are
    input: str  #: the autoencoder input kind ("residual", "mlp_post_act", "attn_z")
    tdb_input: str  #: TDB's DerivedScalarType of what it reads at this layer ("resid_delta_mlp", ...)
    layer: int


_NODE_TYPES: Dict[str, NodeTypeInfo] = {r[0]: NodeTypeInfo(*r) for r in _core.node_type_table()}
_DSTS: Dict[str, DstInfo] = {r[0]: DstInfo(*r) for r in _core.dst_table()}
_ACTIVATIONS: Dict[str, ActivationInfo] = {r[0]: ActivationInfo(*r) for r in _core.activation_table()}
_WEIGHTS: Dict[str, WeightInfo] = {r[0]: WeightInfo(*r) for r in _core.weight_table()}
_DTYPES: Dict[str, DTypeInfo] = {r[0]: DTypeInfo(*r) for r in _core.dtype_table()}
_AE_INPUTS: Dict[str, AutoencoderInputInfo] = {
    r[0]: AutoencoderInputInfo(*r) for r in _core.autoencoder_input_table()
}
_HOOK_ROWS: Tuple[Tuple[str, str, str, str], ...] = _core.saelens_hook_table()

#: TDB NodeType values, in nw_node_type order.
NODE_TYPES: Tuple[str, ...] = tuple(_NODE_TYPES)
#: TDB DerivedScalarType values :func:`nodewrite.derive` supports, in nw_dst order.
DSTS: Tuple[str, ...] = tuple(_DSTS)
#: TDB ActivationLocationType values of raw activations, in nw_activation order.
ACTIVATIONS: Tuple[str, ...] = tuple(_ACTIVATIONS)
#: TDB WeightLocationType values, in nw_weight order.
WEIGHTS: Tuple[str, ...] = tuple(_WEIGHTS)
#: Element types of inputs, in nw_dtype order.
DTYPES: Tuple[str, ...] = tuple(_DTYPES)
#: Autoencoder input kinds, in nw_autoencoder_input order.
AUTOENCODER_INPUTS: Tuple[str, ...] = tuple(_AE_INPUTS)
#: Suffixes of the SAELens hooks nodewrite reads ("hook_mlp_out", ...), each once, in table order.
SAELENS_HOOKS: Tuple[str, ...] = tuple(dict.fromkeys(r[0] for r in _HOOK_ROWS))


def _name(value: object, what: str) -> str:
    v = value if type(value) is str else getattr(value, "value", value)  # a str-valued Enum too
    if not isinstance(v, str):
        raise NodeWriteValueError(f"{what}: expected a str, got {type(value).__name__}")
    return v


def _row(table: dict, value: object, what: str) -> tuple:
    name = _name(value, what)
    row = table.get(name)
    if row is None:
        raise NodeWriteValueError(f"{what}: unknown {what} {name!r}; expected one of {', '.join(table)}")
    return row


def node_type_info(name: str) -> NodeTypeInfo:
    """The library's facts of a node type ("mlp_neuron", "attention_head", ...)."""
    return _row(_NODE_TYPES, name, "node type")


def dst_info(name: str) -> DstInfo:
    """The library's facts of a derived scalar ("mlp_write_norm", ...)."""
    return _row(_DSTS, name, "derived scalar")


def activation_info(name: str) -> ActivationInfo:
    """The library's facts of a raw activation ("mlp.post_act", ...)."""
    return _row(_ACTIVATIONS, name, "activation")


def weight_info(name: str) -> WeightInfo:
    """The library's facts of a weight ("mlp.to_residual", ...)."""
    return _row(_WEIGHTS, name, "weight")


def dtype_info(name: str) -> DTypeInfo:
    """The library's facts of an element type ("float32", ...)."""
    return _row(_DTYPES, name, "dtype")


def autoencoder_input_info(kind: str) -> AutoencoderInputInfo:
    """The library's facts of an autoencoder input kind ("mlp_post_act", "residual", "attn_z")."""
    return _row(_AE_INPUTS, kind, "autoencoder input kind")


def saelens_hook(hook_name: str) -> SAELensHook:
    """What an SAE on the SAELens hook ``hook_name`` ("blocks.L.<suffix>") is to nodewrite: the
    latent node type, the autoencoder input kind, TDB's name of what it reads, and L (the
    library's ``nw_saelens_hook_find``). A hook nodewrite does not read is a NodeWriteValueError."""
    row, layer = _core.saelens_hook_find(_name(hook_name, "hook_name"))
    suffix, node_type, kind, tdb_input = _HOOK_ROWS[row]
    return SAELensHook(suffix, node_type, kind, tdb_input, layer)
