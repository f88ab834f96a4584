"""What the drop-in needs to know about node types, derived scalars and autoencoder inputs,
asked from the library's info tables (``nodewrite.node_type_info``, ``nodewrite.dst_info``,
``nodewrite.autoencoder_input_info``), never re-encoded here.

Each function returns the library's info record, or None for a name the library does not have
(then the drop-in leaves the call to TDB).
"""

from __future__ import annotations

from typing import Any, Optional

import nodewrite as _nw

__all__ = ["node_type", "dst", "autoencoder_input"]

_NODE_TYPES = frozenset(_nw.NODE_TYPES)
_DSTS = frozenset(_nw.DSTS)


def node_type(name: Any) -> Optional[_nw.NodeTypeInfo]:
    """The library's NodeTypeInfo of a node type (TDB NodeType or its value), or None."""
    value = getattr(name, "value", name)
    return _nw.node_type_info(value) if value in _NODE_TYPES else None


def dst(name: Any) -> Optional[_nw.DstInfo]:
    """The library's DstInfo of a derived scalar (TDB DerivedScalarType or its value), or None."""
    value = getattr(name, "value", name)
    return _nw.dst_info(value) if value in _DSTS else None


def autoencoder_input(trained_on: Any) -> Optional[_nw.AutoencoderInputInfo]:
    """The library's AutoencoderInputInfo of what an autoencoder trained on TDB
    DerivedScalarType ``trained_on`` reads ("mlp_post_act", "residual", "attn_z"), or None if
    nodewrite takes no such autoencoder."""
    kind = _nw.autoencoder_input_kind(getattr(trained_on, "value", trained_on))
    return None if kind is None else _nw.autoencoder_input_info(kind)
