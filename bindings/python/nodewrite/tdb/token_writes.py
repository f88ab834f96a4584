"""TDB's ``postprocessing.TokenWriteConverter`` without its (d_model, n_vocab) copy.

The original multiplies the unembedding by the final layer-norm gain once per converter (a
154 MB tensor for GPT-2) and maps writes through it. The subclass made by
:func:`converter_class` scales the writes by the gain first, ``(w * g) @ W_U`` (the
unembedding a view served by the model context), then subtracts the mean over the vocabulary,
as the original does; ``_unemb_with_ln_gain`` is formed only if something reads it.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from .namespace import tdb

__all__ = ["converter_class"]

_lock = threading.Lock()
_class: Optional[type] = None


def converter_class() -> type:
    """The drop-in subclass of TDB's TokenWriteConverter (built on first use)."""
    global _class
    if _class is None:
        with _lock:
            if _class is None:
                _class = _make_class(tdb().postprocessing.TokenWriteConverter)
    return _class


def _make_class(original: type) -> type:
    t = tdb()
    torch = t.torch
    postprocessing = t.postprocessing

    class TokenWriteConverter(original):  # type: ignore[misc, valid-type]
        """TDB's TokenWriteConverter without the (d_model, n_vocab) ``unembedding * gain``
        copy (see nodewrite.tdb.token_writes)."""

        def __init__(self, model_context: Any, multi_autoencoder_context: Any = None) -> None:
            self._model_context = model_context
            self._multi_autoencoder_context = postprocessing.MultiAutoencoderContext.from_context_or_multi_context(
                multi_autoencoder_context
            )
            self._residual_write_converter = postprocessing.ResidualWriteConverter(
                model_context, multi_autoencoder_context
            )
            self._input_dst_by_node_type = self._residual_write_converter._input_dst_by_node_type
            W = t.WeightLocationType
            self._nodewrite_unembedding = model_context.get_weight(W.UNEMBEDDING, device=model_context.device)
            self._nodewrite_gain = model_context.get_weight(W.LAYER_NORM_GAIN_FINAL, device=model_context.device)

        @property
        def _unemb_with_ln_gain(self) -> Any:  # the original's attribute, formed only if read
            cached = self.__dict__.get("_nodewrite_unemb_with_gain")
            if cached is None:
                cached = torch.einsum("ov,o->ov", self._nodewrite_unembedding, self._nodewrite_gain)
                self.__dict__["_nodewrite_unemb_with_gain"] = cached
            return cached

        def _to_tokens(self, writes: Any) -> Any:
            u = (writes * self._nodewrite_gain.to(writes.dtype)) @ self._nodewrite_unembedding.to(writes.dtype)
            return u - u.mean(dim=-1, keepdim=True)

        def postprocess_tensor(self, ds_index: Any, derived_scalars: Any, **kwargs: Any) -> Any:
            return self._to_tokens(self._residual_write_converter.postprocess_tensor(ds_index, derived_scalars, **kwargs))

        def postprocess_multiple_nodes(self, node_indices: list, ds_store: Any) -> list:
            writes = self._residual_write_converter.postprocess_multiple_nodes(node_indices, ds_store)
            out = self._to_tokens(torch.stack(writes, dim=0))
            return [x.squeeze(0) for x in torch.split(out, 1, dim=0)]

    TokenWriteConverter.__module__ = __name__
    TokenWriteConverter.__qualname__ = "TokenWriteConverter"
    TokenWriteConverter._nodewrite_dropin = True  # type: ignore[attr-defined]
    return TokenWriteConverter
