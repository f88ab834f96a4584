"""What the drop-in needs to know about node types, derived scalars and autoencoder inputs,
asked from the library's info tables (``nodewrite.node_type_info``, ``nodewrite.dst_info``,
``nodewrite.autoencoder_input_info``), never re-encoded here.

Each function returns the library's info record, or None for a name the library does not have
(then the drop-in leaves the call to TDB). Until the binding exposes the info calls, the same
records come from :mod:`nodewrite.tdb._interim_facts` (delete it when they land).
"""

from __future__ import annotations

from typing import Any, Optional

import nodewrite as _nw

__all__ = ["node_type", "dst", "autoencoder_input"]

if hasattr(_nw, "dst_info") and hasattr(_nw, "node_type_info") and hasattr(_nw, "autoencoder_input_info"):
    _node_type_info = _nw.node_type_info
    _dst_info = _nw.dst_info
    _autoencoder_input_info = _nw.autoencoder_input_info
else:  # pragma: no cover - only until the binding's info API is merged
    from ._interim_facts import autoencoder_input_info as _autoencoder_input_info
    from ._interim_facts import dst_info as _dst_info
    from ._interim_facts import node_type_info as _node_type_info

_NODE_TYPES = frozenset(_nw.NODE_TYPES)
_DSTS = frozenset(_nw.DSTS)


def node_type(name: Any) -> Optional[Any]:
    """``NodeTypeInfo`` of a node type (TDB NodeType or its value), or None if nodewrite has none."""
    value = getattr(name, "value", name)
    return _node_type_info(value) if value in _NODE_TYPES else None


def dst(name: Any) -> Optional[Any]:
    """``DstInfo`` of a derived scalar (TDB DerivedScalarType or its value), or None."""
    value = getattr(name, "value", name)
    return _dst_info(value) if value in _DSTS else None


def autoencoder_input(trained_on: Any) -> Optional[Any]:
    """``AutoencoderInputInfo`` of what an autoencoder trained on TDB DerivedScalarType
    ``trained_on`` reads ("mlp_post_act", "residual", ...), or None if nodewrite takes no such
    autoencoder."""
    kind = _nw.autoencoder_input_kind(getattr(trained_on, "value", trained_on))
    return None if kind is None else _autoencoder_input_info(kind)
