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

from . import _core
from .errors import (
    NodeWriteError,
    NodeWriteIndexError,
    NodeWriteKeyError,
    NodeWriteMemoryError,
    NodeWriteStaleInputError,
    NodeWriteValueError,
    check,
)

if _core.abi_version() != _core.HEADER_ABI_VERSION:  # pragma: no cover
    raise ImportError(
        f"nodewrite: libnodewrite ABI {_core.abi_version()} is loaded, but the extension was "
        f"built against ABI {_core.HEADER_ABI_VERSION}; reinstall the package"
    )

#: The version, from one place: the loaded library's nw_version_string() (the header's
#: NW_VERSION_STRING, which the package metadata also reads at build time).
__version__: str = _core.version_string()

Model = _core.Model
ActivationStore = _core.ActivationStore
NodeWriteDeriver = _core.NodeWriteDeriver
node_write = _core.node_write
node_write_vectors = _core.node_write_vectors
autoencoder_input_kind = _core.autoencoder_input_kind

# Model and ActivationStore pickle (by value, protocol 5: out-of-band buffers; a model loaded with
# Model.from_safetensors by its path plus a content check): nodewrite.pickling.
from . import pickling  # noqa: E402,F401

# The library's facts (nodewrite.info): NODE_TYPES, DSTS, ACTIVATIONS, WEIGHTS, DTYPES, the
# *_info functions and saelens_hook.
from . import info  # noqa: E402
from .info import *  # noqa: E402,F401,F403
from .info import ACTIVATIONS, DTYPES, NODE_TYPES, WEIGHTS, node_type_info  # noqa: E402

#: Status names and codes, {"NW_OK": 0, "NW_ERR_INVALID_ARGUMENT": -1, ...} (from the library).
STATUSES: dict = dict(errors._STATUS_CODES)

__all__ = [
    "__version__",
    "abi_version",
    "library_version",
    "autoencoder_input_kind",
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
    "NodeWriteStaleInputError",
    "check",
    "STATUSES",
]
__all__ += [n for n in info.__all__ if n not in __all__]

# Node sets, the write family and token writes: see nodewrite.sets.
from .sets import *  # noqa: E402,F401,F403
from . import sets as _sets  # noqa: E402

__all__ += [n for n in _sets.__all__ if n not in __all__]


def __dir__() -> list:
    """The API (and the submodules errors, info, tdb, tl and saelens), not implementation names."""
    return sorted(__all__ + ["errors", "info", "tdb", "tl", "saelens"])


def abi_version() -> int:
    """NW_ABI_VERSION of the loaded libnodewrite (the C ABI version)."""
    return _core.abi_version()


def library_version() -> str:
    """Version string of the loaded libnodewrite, "MAJOR.MINOR.PATCH"."""
    return _core.version_string()


def _index(value: object, what: str) -> int:
    if isinstance(value, (bool, float)) or value is None:
        raise NodeWriteValueError(f"{what}: expected an integer, got {type(value).__name__}")
    try:
        return value.__index__()  # type: ignore[attr-defined]
    except (TypeError, AttributeError):
        raise NodeWriteValueError(
            f"{what}: expected an integer, got {type(value).__name__}"
        ) from None


_MISSING = object()


_SUBNODES = ("attn.q", "attn.k", "attn.v")


class NodeIndex:
    """A node, as TDB's NodeIndex (and, with q_k_or_v, TDB's AttnSubNodeIndex).

    NodeIndex(node_type: str, layer: int, tensor_indices: Sequence[int | None], *,
    q_k_or_v: str | None = None), or with TDB's keywords: NodeIndex(node_type=..., layer_index=...,
    tensor_indices=...[, pass_type=PassType.FORWARD]) (``layer=`` works too).

    node_type: TDB's NodeType value, one of :data:`NODE_TYPES` ("mlp_neuron",
    "attention_head", "autoencoder_latent", "mlp_autoencoder_latent",
    "attention_autoencoder_latent"); a str-valued Enum such as TDB's NodeType works too.
    layer: the layer index. tensor_indices: TDB's order, (token, neuron),
    (query token, key token, head) or (token, latent); negative values count from the
    end, as in Python. None where TDB has None, the token of a latent (an autoencoder latent
    type only): the trace latent NodeIndex("attention_autoencoder_latent", L, (None, latent)),
    the node argument of derive's attention-to-latent DSTs (everything else refuses it when the
    node is used).
    q_k_or_v: for an attention head as the downstream subnode of derive's
    grad_of_single_subnode_attribution and out-edges (TDB's AttnSubNodeIndex): "attn.q", "attn.k"
    or "attn.v" (TDB's ActivationLocationType works too); None (the default) for a plain head.
    Checked here: the node type, integer values, the number of indices and q_k_or_v
    (ValueError); against the model and activations when the node is used: the ranges
    (IndexError).
    """

    __slots__ = ("node_type", "layer_index", "tensor_indices", "q_k_or_v")

    node_type: str
    layer_index: int
    tensor_indices: "tuple[int | None, ...]"
    q_k_or_v: "str | None"

    def __init__(
        self,
        node_type: object,
        layer: int = _MISSING,  # type: ignore[assignment]
        tensor_indices: "Iterable[int | None]" = _MISSING,  # type: ignore[assignment]
        *,
        layer_index: int = _MISSING,  # type: ignore[assignment]
        pass_type: object = None,
        q_k_or_v: object = None,
    ) -> None:
        if layer is not _MISSING and layer_index is not _MISSING:
            raise TypeError("NodeIndex() got both layer and layer_index (the same argument)")
        if layer is _MISSING:
            layer = layer_index
        missing = [n for n, v in (("layer_index", layer), ("tensor_indices", tensor_indices)) if v is _MISSING]
        if missing:
            raise TypeError(f"NodeIndex() missing required argument(s): {', '.join(missing)}")
        if pass_type is not None and getattr(pass_type, "value", pass_type) != "forward":
            raise NodeWriteValueError(
                f"pass_type: node writes exist for the forward pass only, got {pass_type!r}"
            )
        value = node_type if type(node_type) is str else getattr(node_type, "value", node_type)
        if not isinstance(value, str):
            raise NodeWriteValueError(f"node_type: expected a str, got {type(node_type).__name__}")
        if value not in NODE_TYPES:
            raise NodeWriteValueError(
                f"node_type: unknown node type {value!r}; expected one of {', '.join(NODE_TYPES)}"
            )
        value = str.__str__(value)  # an exact str (not a subclass)
        if type(layer) is not int:
            layer = _index(layer, "layer")
        if type(tensor_indices) is tuple and all(type(v) is int for v in tensor_indices):
            indices = tensor_indices  # the common case: a tuple of ints, kept as is
        else:
            if isinstance(tensor_indices, (str, bytes)) or tensor_indices is None:
                raise NodeWriteValueError("tensor_indices: expected a sequence of integers")
            try:
                items = tuple(tensor_indices)  # type: ignore[arg-type]
            except TypeError:
                raise NodeWriteValueError(
                    f"tensor_indices: expected a sequence of integers, "
                    f"got {type(tensor_indices).__name__}"
                ) from None
            # None only as a latent's token (TDB's trace latent (None, latent)).
            latent = node_type_info(value).is_latent
            indices = tuple(
                None if v is None and i == 0 and latent else _index(v, f"tensor_indices[{i}]")
                for i, v in enumerate(items)
            )
        names = node_type_info(value).index_names
        if len(indices) != len(names):
            raise NodeWriteValueError(
                f"tensor_indices: a {value} node has {len(names)} indices ({', '.join(names)}), "
                f"got {len(indices)}: {indices!r}"
            )
        if q_k_or_v is not None:
            part = q_k_or_v if type(q_k_or_v) is str else getattr(q_k_or_v, "value", q_k_or_v)
            if part not in _SUBNODES:
                raise NodeWriteValueError(
                    f"q_k_or_v: {q_k_or_v!r} is not a part of an attention head; expected one of "
                    f"{', '.join(map(repr, _SUBNODES))} (or None for the whole head)"
                )
            if value != "attention_head":
                raise NodeWriteValueError(
                    f"q_k_or_v: only an attention_head node has Q, K and V subnodes, not a {value} node"
                )
            q_k_or_v = str.__str__(part)
        _set = object.__setattr__
        _set(self, "node_type", value)
        _set(self, "layer_index", layer)
        _set(self, "tensor_indices", indices)
        _set(self, "q_k_or_v", q_k_or_v)

    @property
    def layer(self) -> int:
        """The layer index (alias of layer_index, TDB's name)."""
        return self.layer_index

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("NodeIndex is immutable")

    def __repr__(self) -> str:
        sub = "" if self.q_k_or_v is None else f", q_k_or_v={self.q_k_or_v!r}"
        return f"NodeIndex({self.node_type!r}, {self.layer_index}, {self.tensor_indices!r}{sub})"

    def _key(self) -> tuple:
        return (self.node_type, self.layer_index, self.tensor_indices, self.q_k_or_v)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NodeIndex):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        if self.q_k_or_v is None:  # as before subnodes existed
            return hash((self.node_type, self.layer_index, self.tensor_indices))
        return hash(self._key())

    def __reduce__(self) -> tuple:  # pickling: slots + immutability
        if self.q_k_or_v is None:
            return (NodeIndex, (self.node_type, self.layer_index, self.tensor_indices))
        return (_subnode, (self.node_type, self.layer_index, self.tensor_indices, self.q_k_or_v))


def _subnode(node_type: str, layer: int, tensor_indices: tuple, q_k_or_v: str) -> NodeIndex:
    """Unpickles a NodeIndex with q_k_or_v (__reduce__ takes positional arguments only)."""
    return NodeIndex(node_type, layer, tensor_indices, q_k_or_v=q_k_or_v)
