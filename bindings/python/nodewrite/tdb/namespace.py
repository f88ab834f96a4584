"""The one lazy namespace of TDB's names used by the drop-in.

``import nodewrite.tdb`` imports neither TDB nor torch; :func:`tdb` imports them on first use,
once, and returns an object whose attributes are the names below (``tdb().NodeType``,
``tdb().torch``, ...), plus ``original``: TDB's own node-write factories as TDB defines them,
whatever :func:`nodewrite.tdb.install` later does to its modules.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

__all__ = ["tdb", "NODE_WRITE_FUNCTIONS"]

#: TDB's node-write factories (``derived_scalars/node_write.py``), which the drop-in replaces.
NODE_WRITE_FUNCTIONS = ("make_node_write_scalar_deriver", "make_node_write_scalar_source")

_lock = threading.Lock()
_instance: "_Namespace | None" = None


class _Namespace:
    """TDB's names; see the module docstring."""

    original: dict[str, Callable[..., Any]]

    def __init__(self) -> None:
        import torch
        from neuron_explainer.activations.derived_scalars import make_scalar_derivers as msd
        from neuron_explainer.activations.derived_scalars import node_write, postprocessing
        from neuron_explainer.activations.derived_scalars.activations_and_metadata import (
            ActivationsAndMetadata,
        )
        from neuron_explainer.activations.derived_scalars.attention import (
            _check_attn_post_softmax_shape as check_attn_post_softmax_shape,
        )
        from neuron_explainer.activations.derived_scalars.attention import (
            _convert_rectangular_activations_to_flattened_lower_triangle as flatten_lower_triangle,
        )
        from neuron_explainer.activations.derived_scalars.attention import (
            make_attn_weighted_value_scalar_deriver,
        )
        from neuron_explainer.activations.derived_scalars.autoencoder import (
            make_online_autoencoder_latent_scalar_deriver_factory,
        )
        from neuron_explainer.activations.derived_scalars.derived_scalar_types import (
            DerivedScalarType,
        )
        from neuron_explainer.activations.derived_scalars.direct_effects import (
            make_final_residual_grad_scalar_source,
        )
        from neuron_explainer.activations.derived_scalars.indexing import (
            make_python_slice_from_tensor_indices,
        )
        from neuron_explainer.activations.derived_scalars.locations import (
            ConstantLayerIndexer,
            IdentityLayerIndexer,
        )
        from neuron_explainer.activations.derived_scalars.locations import precedes_final_layer
        from neuron_explainer.activations.derived_scalars.mlp import get_base_mlp_scalar_deriver
        from neuron_explainer.activations.derived_scalars.postprocessing import (
            ResidualWriteConverter,
        )
        from neuron_explainer.activations.derived_scalars.scalar_deriver import (
            DerivedScalarSource,
            RawScalarSource,
            ScalarDeriver,
        )
        from neuron_explainer.models.autoencoder_context import (
            MultiAutoencoderContext,
            get_decoder_weight,
        )
        from neuron_explainer.models.model_component_registry import (
            Dimension,
            NodeType,
            PassType,
            WeightLocationType,
        )

        # every name imported above becomes an attribute
        vars(self).update((name, value) for name, value in locals().items() if name != "self")
        # TDB's own node-write factories (install() always imports this namespace first, so
        # these are read before anything is patched)
        self.original = {name: getattr(node_write, name) for name in NODE_WRITE_FUNCTIONS}


def tdb() -> _Namespace:
    """TDB's names, imported on the first call (raises ImportError without TDB)."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = _Namespace()
    return _instance


def loaded() -> bool:
    """True once :func:`tdb` has imported TDB."""
    return _instance is not None
