"""The one torch fallback: when, and what it computes.

When (:func:`serve`): the library is asked first. The call runs in torch instead only when
the library cannot take it, which is one of

- the tensors or contexts are not float32 on the CPU (CUDA, MPS, ``meta``, float16, bfloat16,
  float64): :class:`~nodewrite.tdb.models.NotNative`, decided before the library is called;
- the library refuses the input (:data:`REFUSALS`: an index out of range, a shape, a dtype,
  a layout or argument it does not take, something it does not do); TDB's own formula then
  gives TDB's answer or raises TDB's own exception (an out-of-range index is TDB's
  ``IndexError`` with TDB's message).

Anything else propagates as it would in TDB: out of memory (``NodeWriteMemoryError``, a
``MemoryError``), a missing input (``NodeWriteKeyError``, a ``KeyError``), memory that changed
under the library (``NodeWriteStaleInputError``), and every non-nodewrite exception.

What: TDB's formulas restricted to what is asked, on the tensors' own device, in their dtypes
(no casts TDB does not make, so mixed dtypes fail as in TDB): for one node, the node's slice
(``qk_probs[q, k, h] * v[k, h]`` for a head, never the (T, T, heads, d_head) tensor) through
TDB's ``ResidualWriteConverter``; for the write family, contractions first (per-head Gram
matrices for norms, ``W_O[h] . g`` first for projections).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import nodewrite as _nw
from nodewrite import errors as _errors

from . import facts
from .counters import stats
from .models import NotNative
from .namespace import tdb

__all__ = ["REFUSALS", "serve", "node_write", "write_family"]

#: Library statuses on which a call falls back to torch (refusals of the input); every other
#: status propagates.
REFUSALS = frozenset(
    {
        _errors.INDEX_OUT_OF_RANGE,
        _errors.SHAPE_MISMATCH,
        _errors.UNSUPPORTED_DTYPE,
        _errors.UNSUPPORTED,
        _errors.INVALID_ARGUMENT,
    }
)

T = TypeVar("T")


def serve(native: Callable[[], T], fallback: Callable[[], T]) -> T:
    """``native()``, or ``fallback()`` if it raised NotNative or a refusal (see the module
    docstring); counted in ``stats``."""
    try:
        out = native()
    except NotNative:
        pass
    except _nw.NodeWriteError as e:
        if e.status not in REFUSALS:
            raise
    else:
        stats["native"] += 1
        return out
    stats["torch"] += 1
    return fallback()


def node_write(node_type: Any, ds_index: Any, slices: Any, converter: Any, tensors: tuple) -> Any:
    """The node's write as TDB computes it, restricted to the node, on the tensors' device: a
    (T, d_model) tensor of the default dtype, zero but the node's token row."""
    t = tdb()
    torch = t.torch
    if node_type == t.NodeType.ATTENTION_HEAD:
        probs, value = tensors
        q, k, h = ds_index.tensor_indices
        if value.ndim == 3 and tuple(value.shape[:2]) == tuple(probs.shape[1:]):
            node_activation = probs[q, k, h] * value[k, h]  # one element of the weighted values
        else:  # shapes TDB's einsum rejects: let it raise its own error
            node_activation = torch.einsum("fth,thd->fthd", probs, value)[slices]
        n_tokens = probs.shape[0]
    else:
        n_tokens = tensors[0].shape[0]
        node_activation = tensors[0][slices]
    write = converter.postprocess_tensor(ds_index, node_activation)
    out = torch.zeros((n_tokens, *write.shape), device=write.device)
    out[ds_index.tensor_indices[0]] = write
    return out


def _write_rows(node_info: Any, layer: int, model_context: Any, autoencoder_context: Any, device: Any) -> Any:
    """(n_nodes, d_model) write vectors of a neuron or latent node type at a layer."""
    t = tdb()

    def weight(name: str) -> Any:
        w = model_context.get_weight(t.WeightLocationType(name), layer, device=device)
        return w.reshape(-1, w.shape[-1])  # attn.to_residual: (heads * d_head, d_model)

    if not node_info.is_latent:
        return weight(node_info.weight)
    decoder = t.get_decoder_weight(autoencoder_context.get_autoencoder(layer)).to(device)
    ae_input = facts.autoencoder_input(autoencoder_context.dst)
    through = None if ae_input is None else ae_input.weight
    return decoder if through is None else decoder @ weight(through)


def write_family(info: Any, tensors: tuple, layer: int, model_context: Any, autoencoder_context: Any = None) -> Any:
    """A write-family derived scalar (``info``: its DstInfo) by contraction-first torch, on the
    tensors' device. ``tensors``: TDB's inputs in its order, the final residual grad last for a
    projection."""
    t = tdb()
    torch = t.torch
    g = tensors[-1] if info.needs_direction else None
    x = tensors[0]
    device = x.device
    if info.layout == "layer":
        return torch.einsum("td,td->t", x, g)[:, None] if g is not None else torch.linalg.norm(x, dim=1)[:, None]
    node_info = facts.node_type(info.node_type)
    if info.layout == "nodes":
        rows = _write_rows(node_info, layer, model_context, autoencoder_context, device)
        return x * torch.einsum("ao,to->ta", rows, g) if g is not None else x * torch.linalg.norm(rows, dim=1)[None]
    w_o = model_context.get_weight(t.WeightLocationType(node_info.weight), layer, device=device)  # (h, d_head, d)
    if info.layout == "per_sequence_token":  # TDB's input: attn.v_out (T, heads, d_head)
        if g is not None:
            return torch.einsum("qhd,qhd->qh", x, torch.einsum("hdm,qm->qhd", w_o.to(g.dtype), g))
        gram = torch.einsum("hdm,hem->hde", w_o, w_o)
        return torch.sqrt(torch.clamp(torch.einsum("qhd,hde,qhe->qh", x, gram, x), min=0))
    probs, value = tensors[0], tensors[1]  # (T, T, heads), (T, heads, d_head)
    if g is not None:
        out = probs * torch.einsum("khd,qhd->qkh", value, torch.einsum("hdm,qm->qhd", w_o.to(g.dtype), g))
    else:
        gram = torch.einsum("hdm,hem->hde", w_o, w_o)
        norms = torch.sqrt(torch.clamp(torch.einsum("khd,hde,khe->kh", value, gram, value), min=0))
        out = probs * norms[None]
    return t.flatten_lower_triangle(out) if info.layout == "flattened" else out
