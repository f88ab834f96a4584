"""The one patch registry: every name the drop-in replaces in TDB, and how it is put back.

:func:`replace` swaps a value for its replacement wherever TDB holds it by name: attributes of
loaded ``neuron_explainer`` modules (one walk of ``sys.modules``) and entries of the given
mappings (the DST registry); :func:`set_item` replaces one mapping entry. :func:`restore_all`
undoes every replacement (where the place still holds the drop-in), then walks ``sys.modules``
once more so that a TDB module imported while the drop-in was installed, which took the drop-in
by name, gets the original back.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Iterable, Iterator, NamedTuple

__all__ = ["lock", "replace", "set_item", "restore_all", "installed"]

#: Held by install() / uninstall() around their whole work.
lock = threading.RLock()


class _Patch(NamedTuple):
    container: Any
    key: Any
    original: Any
    replacement: Any
    is_mapping: bool


_patches: list[_Patch] = []
_original_of: dict[int, tuple[Any, Any]] = {}  # id(replacement) -> (replacement, original)


def _tdb_modules() -> Iterator[Any]:
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "neuron_explainer" or name.startswith("neuron_explainer.")):
            yield module


def _apply(patch: _Patch) -> None:
    _patches.append(patch)
    _original_of[id(patch.replacement)] = (patch.replacement, patch.original)
    if patch.is_mapping:
        patch.container[patch.key] = patch.replacement
    else:
        setattr(patch.container, patch.key, patch.replacement)


def installed() -> bool:
    """True while any replacement is in place."""
    return bool(_patches)


def set_item(mapping: Any, key: Any, replacement: Any) -> None:
    """``mapping[key] = replacement``, recorded."""
    _apply(_Patch(mapping, key, mapping[key], replacement, True))


def replace(original: Any, replacement: Any, mappings: Iterable[Any] = ()) -> None:
    """Replaces ``original`` (by identity) in every loaded TDB module's names and in the
    values of ``mappings``."""
    with lock:
        for module in _tdb_modules():
            for attr, value in list(vars(module).items()):
                if value is original:
                    _apply(_Patch(module, attr, original, replacement, False))
        for mapping in mappings:
            for key, value in list(mapping.items()):
                if value is original:
                    _apply(_Patch(mapping, key, original, replacement, True))


def restore_all() -> None:
    """Puts every original back (see the module docstring)."""
    with lock:
        while _patches:
            p = _patches.pop()
            if p.is_mapping:
                if p.container.get(p.key) is p.replacement:
                    p.container[p.key] = p.original
            elif getattr(p.container, p.key, None) is p.replacement:
                setattr(p.container, p.key, p.original)
        if _original_of:
            for module in _tdb_modules():
                for attr, value in list(vars(module).items()):
                    entry = _original_of.get(id(value))
                    if entry is not None and entry[0] is value:
                        setattr(module, attr, entry[1])
        _original_of.clear()
