"""Interim: the records of the binding's planned info API (``nodewrite.node_type_info``,
``dst_info``, ``autoencoder_input_info``; issue 18, item 1) for the fields the drop-in reads,
used by :mod:`nodewrite.tdb.facts` only while the installed binding lacks them.

This is a copy of the library's tables (Sources/NodeWriteCore), the kind of copy the info API
removes: delete this file once the binding exposes those calls.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import nodewrite as _nw


class NodeTypeInfo(NamedTuple):
    name: str
    n_indices: int
    is_latent: bool
    activations: tuple
    weight: Optional[str]


class DstInfo(NamedTuple):
    name: str
    node_type: Optional[str]
    layout: str
    quantity: str
    needs_direction: bool
    activations: tuple


class AutoencoderInputInfo(NamedTuple):
    name: str
    weight: Optional[str]


_NODE_TYPES = {
    "mlp_neuron": (False, ("mlp.post_act",), "mlp.to_residual"),
    "attention_head": (False, ("attn.qk_probs", "attn.v"), "attn.to_residual"),
    "autoencoder_latent": (True, ("online_autoencoder_latent",), None),
    "mlp_autoencoder_latent": (True, ("online_mlp_autoencoder_latent",), None),
    "attention_autoencoder_latent": (True, ("online_attention_autoencoder_latent",), None),
}


def node_type_info(name: str) -> NodeTypeInfo:
    is_latent, activations, weight = _NODE_TYPES[name]
    return NodeTypeInfo(name, _nw._core.node_type_index_count(name), is_latent, activations, weight)


_NODE_DSTS = {  # name prefix -> (node type, layout)
    "mlp_write": ("mlp_neuron", "nodes"),
    "unflattened_attn_write": ("attention_head", "unflattened"),
    "attn_write": ("attention_head", "flattened"),
    "online_autoencoder_write": ("autoencoder_latent", "nodes"),
    "online_mlp_autoencoder_write": ("mlp_autoencoder_latent", "nodes"),
    "online_attention_autoencoder_write": ("attention_autoencoder_latent", "nodes"),
}
_LAYER_DSTS = {"mlp_layer_write": "resid.delta_mlp", "attn_layer_write": "resid.delta_attn"}


def dst_info(name: str) -> DstInfo:
    projection = "_to_final_residual_grad" in name
    stem = name.replace("_to_final_residual_grad", "").replace("_norm", "")
    quantity = "projection" if projection else "norm"
    if stem in _LAYER_DSTS:
        return DstInfo(name, None, "layer", quantity, projection, (_LAYER_DSTS[stem],))
    layout = None
    if stem.endswith("_per_sequence_token"):
        stem, layout = stem[: -len("_per_sequence_token")], "per_sequence_token"
    node_type, nodes_layout = _NODE_DSTS[stem]
    return DstInfo(name, node_type, layout or nodes_layout, quantity, projection,
                   node_type_info(node_type).activations)


def autoencoder_input_info(kind: str) -> AutoencoderInputInfo:
    weight = {"mlp_post_act": "mlp.to_residual", "attn_z": "attn.to_residual"}.get(kind)
    return AutoencoderInputInfo(kind, weight)
