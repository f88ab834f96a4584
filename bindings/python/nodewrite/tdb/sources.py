"""The drop-in's raw activation sources: TDB's ``RawScalarSource`` minus a per-read copy.

TDB's ``RawScalarSource.derive_from_raw`` allocates ``torch.zeros_like`` of the activation on
every read (50 MB for ``attn.qk_probs`` at T = 1024, GPT-2 small) to fill layers that may be
missing. :func:`lean_class` is a subclass that returns the same tensors without that allocation
when no layer is missing (and there is no ``None`` layer or "Dummy" source), and runs TDB's own
code otherwise. ``keep_layers`` (set to the deriver's layers): when the caller asks for all
layers, only those (the ones present) are returned, the ones the deriver keeps anyway; if one
is missing the result is empty and ScalarDeriver fails its non-empty assertion as the original
does.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Iterable, Optional

from .namespace import tdb

__all__ = ["lean_class", "lean", "raw_sources"]

_lock = threading.Lock()
_class: Optional[type] = None


def lean_class() -> type:
    """The RawScalarSource subclass (built from TDB's class on first use)."""
    global _class
    if _class is None:
        with _lock:
            if _class is None:
                _class = _make_class(tdb().RawScalarSource)
    return _class


def _make_class(RawScalarSource: type) -> type:
    class LeanRawScalarSource(RawScalarSource):  # type: ignore[misc, valid-type]
        """TDB's RawScalarSource with the same derive_from_raw result, without the per-read
        zeros_like when no layer is missing (see nodewrite.tdb.sources)."""

        keep_layers: Optional[tuple] = None

        def derive_from_raw(self, raw_activation_store: Any, desired_layer_indices: Any) -> Any:
            data = raw_activation_store.get_activations_and_metadata(
                self.activation_location_type, self.pass_type
            )
            by_layer = data.activations_by_layer_index
            if desired_layer_indices is None and self.keep_layers is not None:
                return dataclasses.replace(
                    data,
                    activations_by_layer_index={
                        layer: t for layer, t in by_layer.items() if layer in self.keep_layers
                    },
                )
            desired = data.layer_indices if desired_layer_indices is None else desired_layer_indices
            sources = self.layer_indexer(desired)
            if (
                by_layer
                and None not in by_layer
                and len(sources) == len(desired)
                and all(not isinstance(src, str) and src in by_layer for src in sources)
            ):
                return dataclasses.replace(
                    data,
                    activations_by_layer_index={layer: by_layer[src] for layer, src in zip(desired, sources)},
                )
            return super().derive_from_raw(raw_activation_store, desired_layer_indices)

    LeanRawScalarSource.__module__ = __name__
    LeanRawScalarSource.__qualname__ = "LeanRawScalarSource"
    return LeanRawScalarSource


def lean(source: Any, layers: Optional[Iterable[int]]) -> Any:
    """The lean copy of a plain TDB RawScalarSource (others are returned as they are);
    ``layers``: the deriver's layers (None: all)."""
    t = tdb()
    if type(source) is not t.RawScalarSource:
        return source
    copy = lean_class()(source.activation_location_type, source.pass_type, source.layer_indexer)
    if layers is not None and isinstance(source.layer_indexer, t.IdentityLayerIndexer):
        copy.keep_layers = tuple(layers)
    return copy


def raw_sources(deriver: Any) -> list:
    """The RawScalarSources under a deriver's source tree, in the order its function sees them."""
    t = tdb()
    out = []
    for source in deriver.sub_scalar_sources:
        if isinstance(source, t.RawScalarSource):
            out.append(source)
        elif isinstance(source, t.DerivedScalarSource):
            out.extend(raw_sources(source.scalar_deriver))
        else:
            raise TypeError(f"unexpected scalar source {type(source).__name__}")
    return out
