"""Pickling of :class:`nodewrite.Model` and :class:`nodewrite.ActivationStore`.

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

A model loaded with ``Model.from_safetensors(path)`` pickles by default as its **file path plus a
content check** (``pickle_by="path"``): the absolute path, the file's size and the SHA-256 of
its bytes, and of ``config.json`` beside it (or that there is none), taken when it was loaded
(with the file's identity checked unchanged across the load and the hash). Unpickling loads the
file again and checks it: a file that is missing, or whose size or content differs, raises
``NodeWriteStaleInputError`` naming the path and the fix. ``from_safetensors(path,
pickle_by="value")`` pickles by value, as above (for workers that do not see the file). A
model changed after loading (``set_weight``, ``set_autoencoder``, ``load_autoencoder``,
``remove_autoencoder``, even one that failed) no longer holds only what the file gives, so it
pickles by value whatever it was loaded with; ``Model.pickle_by`` says which the next pickle
uses. ``copy.copy`` and ``copy.deepcopy`` copy by value always (the file is not read again).

After unpickling by value, ``Model.weights()`` reports every weight as borrowed (``copied``
False), which is what is true: the unpickled model borrows the unpickled arrays (with protocol
5 the out-of-band buffers themselves; with protocols 2-4 arrays made from the pickle's bytes),
and a weight the original held as the library's copy arrives as float32 (its dtype in
``weights()``). After unpickling by path, the model is the file's again: ``copied`` True and the
file's dtypes. An object made with ``Model.__new__(Model)`` (not initialised) refuses to pickle
(NodeWriteValueError). A store's entries arrive in the canonical layout, put without
``layout=``; an entry put with ``batch=`` arrives as that element's tensor and is marked as put
with it, so ``ActivationStore.batch`` is the same after unpickling (and a later ``put`` with
another ``batch=`` is refused as it was on the original).
"""

from __future__ import annotations

import hashlib
import os
import socket
import warnings
import weakref
from typing import Any, Callable, NamedTuple, Optional, Tuple

import numpy as np

from . import _core
from .errors import NodeWriteStaleInputError, NodeWriteValueError

__all__ = ["restore_model", "restore_store", "restore_model_from_file", "from_safetensors"]

_load_safetensors = _core.Model.from_safetensors  # the library's loader (nw_model_load_safetensors)


class FileCheck(NamedTuple):
    """What a model pickled by path carries: the file and what its bytes were at load."""

    path: str  # absolute
    size: int
    sha256: str
    config_sha256: Optional[str]  # config.json beside the file, None when there was none


# Models loaded with pickle_by="path": model -> (FileCheck, the model's write count after loading).
_FILES: "weakref.WeakKeyDictionary[Any, Tuple[FileCheck, int]]" = weakref.WeakKeyDictionary()


def _config_path(path: str) -> str:
    return os.path.join(os.path.dirname(path), "config.json")


def _identity(path: str) -> tuple:
    """The file's and config.json's identity (device, inode, size, modification and change
    times), None for a file that is not there."""
    out = []
    for p in (path, _config_path(path)):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            out.append(None)
            continue
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def _sha256(path: str) -> Optional[str]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    h = hashlib.sha256()
    with f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_checked(path: str, expect: Optional[Callable[[FileCheck], None]] = None) -> Tuple[Any, FileCheck]:
    """The model the file gives, and its content check, the file unchanged across both;
    ``expect(check)`` runs before the model is loaded (and raises when the check is not what
    it must be)."""
    before = _identity(path)
    check = FileCheck(path, before[0][2] if before[0] else 0, _sha256(path) or "", _sha256(_config_path(path)))
    if expect is not None:
        expect(check)
    model = _load_safetensors(path)
    if _identity(path) != before:
        raise NodeWriteStaleInputError(
            f"{path}: the file (or config.json beside it) changed while it was loaded; write checkpoints to "
            "another name and rename them into place, then load again")
    return model, check


def from_safetensors(path: Any, *, pickle_by: str = "path") -> Any:
    """from_safetensors(path: str | os.PathLike, *, pickle_by: str = "path") -> Model

    A model from a checkpoint file, read natively (nw_model_load_safetensors): a Hugging Face GPT-2
    model.safetensors (with config.json beside it, or n_head in its metadata) or a TransformerLens
    state dict saved with safetensors. Dimensions are inferred and checked against each other; the
    tensors are read into memory the library owns, in the file's dtype, and the file is not read
    again (what happens to it later does not change the model; a file that changes while it is read
    is NodeWriteStaleInputError). weights() lists what the library loaded (dtype as stored): the
    write side, and the read side the edge DSTs need where the file has it; for GPT-2,
    config.json's layer_norm_epsilon and activation_function are the model's (docs/c-api.md,
    Checkpoints, lists the tensors and keys read).

    pickle_by: how the model pickles (nodewrite.pickling). "path" (default): as the file's absolute
    path plus a content check (its size and SHA-256, and config.json's, hashed once here);
    unpickling loads the file again and raises NodeWriteStaleInputError when it is missing or
    differs. "value": every tensor travels in the pickle (workers that do not see the file). A
    model changed after loading pickles by value either way (Model.pickle_by tells).
    Raises ValueError (not a readable checkpoint, inconsistent shapes, an unknown pickle_by, ...),
    all NodeWriteError.
    """
    if pickle_by not in ("path", "value"):
        raise NodeWriteValueError(f"pickle_by = {pickle_by!r}: expected 'path' (the file path plus a content check) "
                                  "or 'value' (every tensor in the pickle)")
    if pickle_by == "value":
        return _load_safetensors(path)
    try:
        full = os.path.abspath(os.fspath(path))
    except TypeError:
        full = None
    if not isinstance(full, str):
        return _load_safetensors(path)  # raises the loader's error (a path of the wrong type)
    model, check = _load_checked(full)
    _FILES[model] = (check, _core._model_writes(model))
    return model


def _pickle_by(self: Any) -> str:
    """How this model pickles next: "path" (loaded with Model.from_safetensors(path,
    pickle_by="path") and not changed since: the file path plus a content check) or "value"."""
    rec = _FILES.get(self)
    return "path" if rec is not None and rec[1] == _core._model_writes(self) else "value"


def restore_model_from_file(check: FileCheck) -> Any:
    """The model a pickle by path describes: the file loaded again, after checking it is the one
    the model was loaded from."""
    check = FileCheck(*check)
    fix = ("copy the checkpoint (and its config.json) to that path on this machine, or pickle the model by value: "
           f"Model.from_safetensors({check.path!r}, pickle_by='value')")
    if not os.path.exists(check.path):
        raise NodeWriteStaleInputError(
            f"unpickling a Model loaded from {check.path}: there is no such file on this machine "
            f"({socket.gethostname()}); {fix}")
    size = os.path.getsize(check.path)
    if size != check.size:
        raise NodeWriteStaleInputError(
            f"unpickling a Model loaded from {check.path}: the file has {size} bytes on this machine "
            f"({socket.gethostname()}), {check.size} when the model was loaded: it is not the same file; {fix}")
    def expect(now: FileCheck) -> None:
        if now.size != check.size or now.sha256 != check.sha256:
            raise NodeWriteStaleInputError(
                f"unpickling a Model loaded from {check.path}: the file's content (SHA-256) on this machine "
                f"({socket.gethostname()}) differs from when the model was loaded; {fix}")
        if now.config_sha256 != check.config_sha256:
            what = ("is missing" if now.config_sha256 is None else "appeared" if check.config_sha256 is None
                    else "differs")
            raise NodeWriteStaleInputError(
                f"unpickling a Model loaded from {check.path}: {_config_path(check.path)} {what} on this machine "
                f"({socket.gethostname()}) compared with when the model was loaded; {fix}")

    model, _ = _load_checked(check.path, expect)
    _FILES[model] = (check, _core._model_writes(model))
    return model


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
    rec = _FILES.get(self)
    if rec is not None and rec[1] == _core._model_writes(self):
        return restore_model_from_file, (tuple(rec[0]),)
    return _model_reduce_by_value(self)


def _model_reduce_by_value(self: Any) -> tuple:
    state = _core._model_state(self)  # refuses an uninitialised object first
    state["facts"] = {"layer_norm_epsilon": self.layer_norm_epsilon, "mlp_activation": self.mlp_activation}
    state["weights"] = [(n, l, _travel(a), dt, c) for n, l, a, dt, c in state["weights"]]
    state["autoencoders"] = [(t, l, src, _travel(a), dt, c, None if enc is None else tuple((_travel(x), xd) for x, xd in enc))
                             for t, l, src, a, dt, c, enc in state["autoencoders"]]
    return restore_model, (state,)


def _store_reduce(self: Any, protocol: int = 2) -> tuple:
    return restore_store, ([(n, l, _travel(a), dt, p, b) for n, l, a, dt, p, b in _core._store_state(self)],)


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
        pass_type = rest[0] if rest else "forward"
        s.put(name, layer, _tensor(a, dtype), pass_type=pass_type)
        if len(rest) > 1 and rest[1] is not None:  # put with batch=: the element's tensor arrived
            _core._store_mark_batch(s, name, layer, pass_type, rest[1])
    return s


def _reduce(self: Any) -> tuple:  # __reduce__ (no protocol): the same state
    return _model_reduce(self) if isinstance(self, _core.Model) else _store_reduce(self)


_core.Model.from_safetensors = staticmethod(from_safetensors)
_core.Model.pickle_by = property(_pickle_by, doc=_pickle_by.__doc__)
def _model_copy(self: Any, memo: Any = None) -> Any:
    """copy.copy / copy.deepcopy: by value always (a copy in this process never needs the file,
    which may have changed since the model was loaded); the copy pickles by value too."""
    fn, args = _model_reduce_by_value(self)
    return fn(*args)


_core.Model.__copy__ = _model_copy
_core.Model.__deepcopy__ = _model_copy
_core.Model.__reduce_ex__ = _model_reduce
_core.Model.__reduce__ = _reduce
_core.ActivationStore.__reduce_ex__ = _store_reduce
_core.ActivationStore.__reduce__ = _reduce
