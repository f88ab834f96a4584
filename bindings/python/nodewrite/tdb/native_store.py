"""The nodewrite ActivationStore of a TDB ``RawActivationStore``, kept from call to call.

:func:`synced` gives one ``nodewrite.ActivationStore`` per RawActivationStore (held weakly: it
goes when the raw store is collected), brought up to date on every call: an entry is put again
when its tensor is another object or its data pointer, version counter (``_version``: every
in-place op bumps it), shape, strides or dtype changed, and removed when the raw store no longer
holds it. A new put is a new causality scan of ``attn.qk_probs``, so a mutated pattern is never
judged by an old scan. float32 CPU tensors are borrowed as they are (no copy, any strides);
float16, bfloat16 and float64 ones are converted to float32 once per version. Activations the
library does not read (not in ``nodewrite.ACTIVATIONS``) are skipped.

The returned context manager holds the entry's lock while the caller derives, so a concurrent
call cannot re-put an entry the library is reading.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

import nodewrite as _nw

from . import models

__all__ = ["synced", "clear", "puts"]

#: Entries put since import (tests read it to see that an unchanged store is not put again).
puts = 0

_lock = threading.Lock()
_stores = models.WeakIdMap()  # RawActivationStore -> _Synced
_NAMES = frozenset(_nw.ACTIVATIONS)


class _Synced:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store = _nw.ActivationStore()
        # (name, layer, pass) -> (tensor, signature, the array put)
        self.entries: dict[tuple, tuple] = {}


def _signature(t: Any) -> tuple:
    return (t.data_ptr(), t._version, tuple(t.shape), t.stride(), t.dtype, t.device)


def _sync(entry: _Synced, raw: Any) -> None:
    global puts
    seen = set()
    entries, store = entry.entries, entry.store
    for key, acts in raw.activations_by_sub_activation_location_type_and_pass_type.items():
        name = key.activation_location_type.value
        if name not in _NAMES:
            continue
        pass_type = key.pass_type.value
        for layer, tensor in acts.activations_by_layer_index.items():
            k = (name, layer, pass_type)
            seen.add(k)
            old = entries.get(k)
            signature = _signature(tensor)
            if old is not None and old[0] is tensor and old[1] == signature:
                continue
            array = models._as_float32(tensor)  # NotNative: another device or dtype
            store.put(name, layer, array, pass_type=pass_type)
            entries[k] = (tensor, signature, array)
            puts += 1
    for k in [k for k in entries if k not in seen]:
        store.remove(k[0], k[1], pass_type=k[2])
        del entries[k]


@contextlib.contextmanager
def synced(raw: Any) -> Iterator[Any]:
    """``with synced(raw) as store:`` the nodewrite ActivationStore of RawActivationStore
    ``raw``, up to date, locked for the block. NotNative if a tensor is not a CPU tensor of a
    floating dtype the library takes (the store then stays as it was before that tensor)."""
    with _lock:
        entry = _stores.get(raw)
        if entry is None:
            entry = _Synced()
            _stores.set(raw, entry)
    with entry.lock:
        _sync(entry, raw)
        yield entry.store


def clear() -> None:
    """Forgets every cached store (the next call puts every tensor again)."""
    with _lock:
        _stores.clear()
