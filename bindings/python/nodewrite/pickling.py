"""Pickling of :class:`nodewrite.Model` and :class:`nodewrite.ActivationStore` (by value).

A model pickles as its dimensions, causality, LayerNorm epsilon, MLP activation, and every weight and
autoencoder it holds (decoder, and encoder, latent bias and pre bias when set with ``encoder=``: the
library has no export to read an encoder back, so the binding keeps a copy of one set with
``copy=True``); a store as every entry of both passes (forward and ``pass_type="backward"``, and
the entries of no layer such as ``resid.post_emb``), each tensor a numpy array in its canonical layout:

- with protocol 5 the arrays travel out of band (``pickle.PickleBuffer``), so Ray's object store
  (``ray.put``, task arguments) shares them without a copy, and the unpickled object **borrows**
  them in place (``copy=False``; they arrive read-only, which the library reads as is);
- with protocols 2-4 the arrays are copied into the pickle (in band), and the unpickled object
  borrows its own new arrays.

What each tensor travels as: a borrowed tensor (``copy=False``; every store entry) as the memory
the library reads, a read-only view when it is contiguous, else a contiguous copy in the
canonical layout (a transposed or strided view, a ``layout=`` / ``batch=`` store entry, arrive
as the (T, ...) tensor the library was given); its dtype is kept (float16, float64, and bfloat16
as its uint16 bit patterns, rebuilt as a torch bfloat16 tensor on the other side, so torch must
be importable there). A copy the library made (``copy=True``, a checkpoint's tensors) is read
back from the library (``nw_model_weight_read``): float32, the values derives read. So every
derive of the unpickled object gives the same bits as the original.

A model loaded with :meth:`Model.from_safetensors` pickles by value too (a worker on another
machine need not have the file, and the model may have been changed after loading); that is
the decision of this version, see docs/ray.md.

After unpickling, ``Model.weights()`` reports every weight as borrowed (``copied`` False): the
object holds the unpickled arrays. An object made with ``Model.__new__(Model)`` (not initialised)
refuses to pickle (NodeWriteValueError). Store facts that are not values are not kept: the
unpickled store's entries were put without ``layout=``/``batch=`` (``ActivationStore.batch`` is
None), in the canonical layout.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from . import _core
from .errors import NodeWriteValueError

__all__ = ["restore_model", "restore_store"]


def _travel(a: np.ndarray) -> np.ndarray:
    """A contiguous array (the view itself when it is, so protocol 5 sends it out of band)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _tensor(a: Any, dtype: str) -> Any:
    if dtype != "bfloat16":
        return a
    if getattr(a, "dtype", None) != np.uint16:  # never cast: a cast would make other numbers
        raise NodeWriteValueError(f"pickled state: a bfloat16 tensor travels as its uint16 bit patterns, got "
                                  f"{getattr(a, 'dtype', type(a).__name__)}; the pickle is damaged or of another version")
    import torch  # a bfloat16 tensor can only be held as torch's

    with warnings.catch_warnings():  # torch warns about read-only arrays; the library only reads
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.asarray(a, dtype=np.uint16)).view(torch.bfloat16)


def _model_reduce(self: Any, protocol: int = 2) -> tuple:
    state = _core._model_state(self)  # refuses an uninitialised object first
    state["facts"] = {"layer_norm_epsilon": self.layer_norm_epsilon, "mlp_activation": self.mlp_activation}
    state["weights"] = [(n, l, _travel(a), dt, c) for n, l, a, dt, c in state["weights"]]
    state["autoencoders"] = [(t, l, src, _travel(a), dt, c, None if enc is None else tuple((_travel(x), xd) for x, xd in enc))
                             for t, l, src, a, dt, c, enc in state["autoencoders"]]
    return restore_model, (state,)


def _store_reduce(self: Any, protocol: int = 2) -> tuple:
    return restore_store, ([(n, l, _travel(a), dt, p) for n, l, a, dt, p in _core._store_state(self)],)


def restore_model(state: dict) -> Any:
    """The model a pickle describes (its arrays borrowed in place)."""
    n_layers, d_model, n_heads, d_head, d_ff = state["dims"]
    m = _core.Model(n_layers, d_model, n_heads, d_head, d_ff, causal=state["causal"], **state.get("facts", {}))
    for name, layer, a, dtype, _copied in state["weights"]:
        m.set_weight(name, layer, _tensor(a, dtype), copy=False)
    for node_type, layer, source, a, dtype, _copied, *rest in state["autoencoders"]:
        enc = rest[0] if rest else None
        kw = {} if enc is None else dict(zip(("encoder", "latent_bias", "pre_bias"), (_tensor(x, xd) for x, xd in enc)))
        m.set_autoencoder(node_type, layer, _tensor(a, dtype), source, copy=False, **kw)
    return m


def restore_store(entries: list) -> Any:
    """The store a pickle describes (its arrays borrowed in place)."""
    s = _core.ActivationStore()
    for name, layer, a, dtype, *rest in entries:
        s.put(name, layer, _tensor(a, dtype), pass_type=rest[0] if rest else "forward")
    return s


def _reduce(self: Any) -> tuple:  # __reduce__ (no protocol): the same state
    return _model_reduce(self) if isinstance(self, _core.Model) else _store_reduce(self)


_core.Model.__reduce_ex__ = _model_reduce
_core.Model.__reduce__ = _reduce
_core.ActivationStore.__reduce_ex__ = _store_reduce
_core.ActivationStore.__reduce__ = _reduce
