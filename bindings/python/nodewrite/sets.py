"""Node sets and TDB's write family (re-exported by :mod:`nodewrite`).

- :func:`node_writes`: the write vectors of n nodes of one type at one layer, in one call;
  the index arrays of the common sets come from :func:`keys_and_heads_at_query`,
  :func:`heads_at`, :func:`neurons_at_token` and :func:`latents_at_token` (int64 (n, k)
  arrays in TDB's index order, ready for ``indices=``).
- :func:`derive`: TDB's derived scalars (:data:`DSTS`) for every node of a layer: the write family,
  and with ``node=`` the in-edges, out-edges, gradients and attention-to-latent (act-times-grad
  without one), their gradients read from the store's backward pass.
- :func:`node_write_to_direction`: TDB's ``single_node_write_to_final_residual_grad``.
- :func:`token_writes`: token-space writes of a node set (TDB's ``TokenWriteConverter``);
  :func:`top_token_writes`: the top k of them per node, as :class:`TopTokenWrites`.
- :func:`set_num_threads` / :func:`get_num_threads`.
- :func:`set_output_cache_bytes` / :func:`get_output_cache_bytes`: how much released output
  memory is kept for the next output of the same size.

The computations are the library's (``nw_node_writes``, ``nw_derive``, ``nw_derive_node``, ...): one call into
the C ABI per Python call, the GIL released around it.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core
from .errors import NodeWriteIndexError, NodeWriteKeyError, NodeWriteValueError

__all__ = [
    "node_writes",
    "token_writes",
    "top_token_writes",
    "TopTokenWrites",
    "derive",
    "node_write_to_direction",
    "set_num_threads",
    "get_num_threads",
    "set_output_cache_bytes",
    "get_output_cache_bytes",
    "keys_and_heads_at_query",
    "heads_at",
    "neurons_at_token",
    "latents_at_token",
    "DSTS",
]

node_writes = _core.node_writes
token_writes = _core.token_writes
top_token_writes = _core.top_token_writes
TopTokenWrites = _core.TopTokenWrites
derive = _core.derive
node_write_to_direction = _core.node_write_to_direction
set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads
set_output_cache_bytes = _core.set_output_cache_bytes
get_output_cache_bytes = _core.get_output_cache_bytes

from .info import DSTS  # noqa: E402  (TDB DerivedScalarType values derive supports, from the library)


def _count(value: Any, attr: str, what: str) -> int:
    """An int, or the dimension `attr` of a nodewrite.Model."""
    if isinstance(value, _core.Model):
        return int(getattr(value, attr))
    if isinstance(value, (bool, float)) or value is None:
        raise NodeWriteValueError(f"{what}: expected an int or a nodewrite.Model, got {type(value).__name__}")
    try:
        n = value.__index__()
    except (AttributeError, TypeError):
        raise NodeWriteValueError(
            f"{what}: expected an int or a nodewrite.Model, got {type(value).__name__}"
        ) from None
    if n < 0:
        raise NodeWriteValueError(f"{what}: {n} is negative")
    return n


def _token(value: Any, what: str) -> int:
    if isinstance(value, (bool, float)) or value is None:
        raise NodeWriteValueError(f"{what}: expected an integer, got {type(value).__name__}")
    try:
        return value.__index__()
    except (AttributeError, TypeError):
        raise NodeWriteValueError(f"{what}: expected an integer, got {type(value).__name__}") from None


def keys_and_heads_at_query(q: int, n_heads: Union[int, "_core.Model"]) -> np.ndarray:
    """Every attention node (q, k, h) with key k <= q at query q: an int64 array
    (n_heads * (q + 1), 3), head-major (for h, for k), for
    ``node_writes(model, store, "attention_head", layer, indices)``.
    q >= 0 (a negative q cannot say which keys precede it without T); n_heads: an int or a Model."""
    q = _token(q, "q")
    h = _count(n_heads, "n_heads", "n_heads")
    if q < 0:
        raise NodeWriteIndexError(f"q: {q} is negative; pass the query token counted from 0")
    out = np.empty((h, q + 1, 3), dtype=np.int64)
    out[:, :, 0] = q
    out[:, :, 1] = np.arange(q + 1, dtype=np.int64)[None, :]
    out[:, :, 2] = np.arange(h, dtype=np.int64)[:, None]
    return out.reshape(h * (q + 1), 3)


def heads_at(q: int, k: int, n_heads: Union[int, "_core.Model"]) -> np.ndarray:
    """Every head at one (query, key) pair: int64 (n_heads, 3), rows (q, k, h) for h = 0 .. n_heads-1."""
    q = _token(q, "q")
    k = _token(k, "k")
    h = _count(n_heads, "n_heads", "n_heads")
    out = np.empty((h, 3), dtype=np.int64)
    out[:, 0] = q
    out[:, 1] = k
    out[:, 2] = np.arange(h, dtype=np.int64)
    return out


def neurons_at_token(t: int, d_ff: Union[int, "_core.Model"]) -> np.ndarray:
    """Every MLP neuron at token t: int64 (d_ff, 2), rows (t, n) for n = 0 .. d_ff-1."""
    t = _token(t, "t")
    n = _count(d_ff, "d_ff", "d_ff")
    out = np.empty((n, 2), dtype=np.int64)
    out[:, 0] = t
    out[:, 1] = np.arange(n, dtype=np.int64)
    return out


def latents_at_token(
    t: int,
    n_latents: Union[int, "_core.Model"],
    node_type: Optional[str] = None,
    layer: Optional[int] = None,
) -> np.ndarray:
    """Every autoencoder latent at token t: int64 (n_latents, 2), rows (t, l).

    n_latents: an int, or a Model together with node_type ("autoencoder_latent",
    "mlp_autoencoder_latent", "attention_autoencoder_latent") and layer (which may be omitted
    when that node type's autoencoder is set at one layer only): the count is then the number
    of rows of the decoder set with Model.set_autoencoder."""
    t = _token(t, "t")
    if isinstance(n_latents, _core.Model):
        if node_type is None:
            raise NodeWriteValueError("latents_at_token: with a Model, pass node_type (and layer)")
        nt = getattr(node_type, "value", node_type)
        found = {l: info for (name, l), info in n_latents.autoencoders().items() if name == nt}
        if layer is None:
            if len(found) != 1:
                raise NodeWriteValueError(
                    f"latents_at_token: {nt} autoencoders are set at layers {sorted(found)}; pass layer"
                )
            (info,) = found.values()
        else:
            info = found.get(_token(layer, "layer"))
            if info is None:
                raise NodeWriteKeyError(f"no {nt} autoencoder is set at layer {layer}")
        n = int(info["shape"][0])
    else:
        n = _count(n_latents, "", "n_latents")
    out = np.empty((n, 2), dtype=np.int64)
    out[:, 0] = t
    out[:, 1] = np.arange(n, dtype=np.int64)
    return out
