"""nodewrite: what one node of a transformer writes into the residual stream.

A Python binding of libnodewrite (a native re-implementation of the single-node-write
deriver of OpenAI's transformer-debugger, TDB). Names are TDB's own string values::

    import nodewrite as nw
    model = nw.Model(n_layers=3, d_model=48, n_heads=3, d_head=16, d_ff=192)
    model.set_weight("attn.to_residual", 0, w_o)          # (n_heads, d_head, d_model)
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, probs)                  # (T, T, n_heads), read in place
    store.put("attn.v", 0, v)                             # (T, n_heads, d_head)
    out = nw.node_write(model, store, nw.NodeIndex("attention_head", 0, (q, k, h)))

Inputs (numpy float32/float16/float64 arrays, CPU torch float32/float16/bfloat16 tensors,
any strides) are never copied or converted implicitly; outputs are new float32 numpy
arrays. Errors: see :mod:`nodewrite.errors`.
"""

from __future__ import annotations

import operator
from typing import Any, Iterable, Tuple

from . import _core
from .errors import (
    NodeWriteError,
    NodeWriteIndexError,
    NodeWriteKeyError,
    NodeWriteMemoryError,
    NodeWriteValueError,
    check,
)
from .errors import INVALID_ARGUMENT as _INVALID

__version__ = "1.0.0"

if _core.abi_version() != _core.HEADER_ABI_VERSION:  # pragma: no cover
    raise ImportError(
        f"nodewrite: libnodewrite ABI {_core.abi_version()} is loaded, but the extension was "
        f"built against ABI {_core.HEADER_ABI_VERSION}; reinstall the package"
    )

Model = _core.Model
ActivationStore = _core.ActivationStore
NodeWriteDeriver = _core.NodeWriteDeriver
node_write = _core.node_write
node_write_vectors = _core.node_write_vectors

#: TDB NodeType values nodewrite knows, in nw_node_type order.
NODE_TYPES: Tuple[str, ...] = _core.node_type_names()
_NODE_TYPE_SET = frozenset(NODE_TYPES)
#: TDB ActivationLocationType values of raw activations, in nw_activation order.
ACTIVATIONS: Tuple[str, ...] = _core.activation_names()
#: TDB WeightLocationType values, in nw_weight order.
WEIGHTS: Tuple[str, ...] = _core.weight_names()
#: Element types of inputs, in nw_dtype order.
DTYPES: Tuple[str, ...] = _core.dtype_names()

__all__ = [
    "__version__",
    "abi_version",
    "library_version",
    "Model",
    "ActivationStore",
    "NodeIndex",
    "NodeWriteDeriver",
    "node_write",
    "node_write_vectors",
    "NodeWriteError",
    "NodeWriteIndexError",
    "NodeWriteValueError",
    "NodeWriteKeyError",
    "NodeWriteMemoryError",
    "check",
    "NODE_TYPES",
    "ACTIVATIONS",
    "WEIGHTS",
    "DTYPES",
]


def abi_version() -> int:
    """NW_ABI_VERSION of the loaded libnodewrite (the C ABI version)."""
    return _core.abi_version()


def library_version() -> str:
    """Version string of the loaded libnodewrite, "MAJOR.MINOR.PATCH"."""
    return _core.version_string()


def _index(value: Any, what: str) -> int:
    try:
        if isinstance(value, (bool, float)):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise NodeWriteValueError(
            f"{what}: expected an integer, got {type(value).__name__}", _INVALID
        ) from None


class NodeIndex:
    """A node, as TDB's NodeIndex for the forward pass.

    NodeIndex(node_type, layer, tensor_indices)

    node_type: TDB's NodeType value, one of :data:`NODE_TYPES` ("mlp_neuron",
    "attention_head", "autoencoder_latent", "mlp_autoencoder_latent",
    "attention_autoencoder_latent"); a str-valued Enum such as TDB's NodeType works too.
    layer: the layer index. tensor_indices: TDB's order, (token, neuron),
    (query token, key token, head) or (token, latent); negative values count from the
    end, as in Python. Ranges are checked against the model and activations when the
    node is used (IndexError); the type and name are checked here (ValueError).
    """

    __slots__ = ("node_type", "layer_index", "tensor_indices")

    node_type: str
    layer_index: int
    tensor_indices: Tuple[int, ...]

    def __init__(self, node_type: Any, layer: int, tensor_indices: Iterable[int]) -> None:
        value = node_type if type(node_type) is str else getattr(node_type, "value", node_type)
        if not isinstance(value, str):
            raise NodeWriteValueError(
                f"node_type: expected a str, got {type(node_type).__name__}", _INVALID
            )
        if value not in _NODE_TYPE_SET:
            raise NodeWriteValueError(
                f"node_type: unknown node type {value!r}; expected one of {', '.join(NODE_TYPES)}",
                _INVALID,
            )
        value = str.__str__(value)  # an exact str (not a subclass)
        if type(layer) is not int:
            layer = _index(layer, "layer")
        if type(tensor_indices) is tuple and all(type(v) is int for v in tensor_indices):
            indices = tensor_indices  # the common case: a tuple of ints, kept as is
        else:
            if isinstance(tensor_indices, (str, bytes)) or tensor_indices is None:
                raise NodeWriteValueError(
                    "tensor_indices: expected a sequence of integers", _INVALID
                )
            try:
                items = tuple(tensor_indices)
            except TypeError:
                raise NodeWriteValueError(
                    f"tensor_indices: expected a sequence of integers, "
                    f"got {type(tensor_indices).__name__}",
                    _INVALID,
                ) from None
            indices = tuple(_index(v, f"tensor_indices[{i}]") for i, v in enumerate(items))
        _set = object.__setattr__
        _set(self, "node_type", value)
        _set(self, "layer_index", layer)
        _set(self, "tensor_indices", indices)

    @property
    def layer(self) -> int:
        """The layer index (alias of layer_index, TDB's name)."""
        return self.layer_index

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("NodeIndex is immutable")

    def __repr__(self) -> str:
        return f"NodeIndex({self.node_type!r}, {self.layer_index}, {self.tensor_indices!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NodeIndex):
            return NotImplemented
        return (self.node_type, self.layer_index, self.tensor_indices) == (
            other.node_type,
            other.layer_index,
            other.tensor_indices,
        )

    def __hash__(self) -> int:
        return hash((self.node_type, self.layer_index, self.tensor_indices))

    def __reduce__(self):  # pickling: slots + immutability
        return (NodeIndex, (self.node_type, self.layer_index, self.tensor_indices))
