"""Support for running nodewrite.tdb against a local transformer-debugger (TDB) checkout.

Nothing here is TDB code: TDB is found through ``NODEWRITE_TDB_SRC=/path/to/checkout`` (the
directory that holds ``neuron_explainer/``), which is put on ``sys.path``. This module builds, from
TDB's own classes, the pieces a test or a benchmark needs:

- a ``ModelContext`` subclass serving weights from memory through the same split/permute code path
  as TDB's ``StandardModelContext`` (so ``get_weight`` returns the same permuted, non-contiguous
  views);
- real ``AutoencoderContext`` objects whose autoencoders are pre-loaded (no disk or network);
- TDB's own ``RawActivationStore`` from the parity fixtures.

Used by ``python_tests/test_tdb_dropin.py`` and ``tools/bench_tdb.py``.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT / "Tests" / "NodeWriteTests" / "Fixtures"

TDB_ENV = "NODEWRITE_TDB_SRC"

_TDB_MODULES = (
    "neuron_explainer.activations.derived_scalars.node_write",
    "neuron_explainer.activations.derived_scalars.scalar_deriver",
    "neuron_explainer.activations.derived_scalars.activations_and_metadata",
    "neuron_explainer.activations.derived_scalars.indexing",
    "neuron_explainer.models.model_context",
    "neuron_explainer.models.autoencoder_context",
    "neuron_explainer.models.model_component_registry",
)


def tdb_unavailable_reason() -> str | None:
    """None when TDB (and torch) can be imported; otherwise why not, for a skip message."""
    src = os.environ.get(TDB_ENV)
    if not src:
        return (
            f"transformer-debugger not available: set {TDB_ENV}=/path/to/transformer-debugger "
            "(a checkout of openai/transformer-debugger, with torch and its few imports installed)"
        )
    if not (Path(src) / "neuron_explainer").is_dir():
        return f"{TDB_ENV}={src} does not contain neuron_explainer/"
    if src not in sys.path:
        sys.path.insert(0, src)
    try:
        import torch  # noqa: F401

        for name in _TDB_MODULES:
            importlib.import_module(name)
    except Exception as e:  # ImportError, or an import-time failure inside TDB
        return f"transformer-debugger at {src} is not importable: {type(e).__name__}: {e}"
    return None


# ---------------------------------------------------------------------------- fixtures


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a .safetensors file (float32/float16/int64 tensors) into numpy arrays."""
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(raw[base + start : base + end], dtype=dtypes[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def load_fixtures(fixtures_dir: str | os.PathLike = FIXTURES_DIR) -> tuple[dict, dict]:
    fixtures_dir = Path(fixtures_dir)
    meta = json.loads((fixtures_dir / "tdb_tiny.json").read_text())
    tensors = read_safetensors(fixtures_dir / "tdb_tiny.safetensors")
    return meta, tensors


# ---------------------------------------------------------------- TDB-side objects


def make_model_context(
    checkpoint: dict[str, Any],
    *,
    n_layers: int,
    d_model: int,
    n_heads: int,
    d_head: int,
    d_ff: int,
    n_vocab: int = 50257,
    ctx_window: int = 1024,
    device: Any = None,
):
    """A TDB ModelContext serving ``checkpoint`` (torch tensors keyed like TDB's model pieces,
    e.g. ``xf_layers.0.mlp.out_layer.weight`` of shape (d_model, d_ff)) exactly as
    ``StandardModelContext._get_weight_helper`` serves them: split per head, then a permuting
    einsum, so ``get_weight`` returns the same non-contiguous views as with a real model."""
    import torch
    from neuron_explainer.models.model_component_registry import Dimension, WeightLocationType
    from neuron_explainer.models.model_context import ModelContext

    class InMemoryModelContext(ModelContext):
        def __init__(self) -> None:
            super().__init__(model_name="nodewrite-in-memory", device=device or torch.device("cpu"))
            self.pieces = {k: torch.as_tensor(v) for k, v in checkpoint.items()}
            self.get_weight_calls = 0
            self._dims = {
                Dimension.MAX_CONTEXT_LENGTH: ctx_window,
                Dimension.RESIDUAL_STREAM_CHANNELS: d_model,
                Dimension.VOCAB_SIZE: n_vocab,
                Dimension.ATTN_HEADS: n_heads,
                Dimension.QUERY_AND_KEY_CHANNELS: d_head,
                Dimension.VALUE_CHANNELS: d_head,
                Dimension.MLP_ACTS: d_ff,
                Dimension.LAYERS: n_layers,
            }

        def get_dim_size(self, model_dimension_spec):
            return self._dims[model_dimension_spec]

        def _get_weight_helper(self, location_type, layer=None, device=None):
            # the same recipe as StandardModelContext._get_weight_helper for the two output weights
            self.get_weight_calls += 1
            if location_type == WeightLocationType.MLP_TO_RESIDUAL:
                weight = self.pieces[f"xf_layers.{layer}.mlp.out_layer.weight"]
                weight = weight.to(device or self.device)
                return torch.einsum("rh->hr", weight)
            if location_type == WeightLocationType.ATTN_TO_RESIDUAL:
                weight = self.pieces[f"xf_layers.{layer}.attn.out_proj.weight"]
                weight = weight.to(device or self.device)
                r, hv = weight.shape
                weight = weight.reshape(r, n_heads, hv // n_heads)
                return torch.einsum("rhv->hvr", weight)
            raise NotImplementedError(f"the in-memory context serves only the output weights, not {location_type}")

        def get_encoding(self):
            raise NotImplementedError("no tokenizer in the in-memory model context")

        def get_or_create_model(self, *args, **kwargs):
            raise NotImplementedError("no Transformer in the in-memory model context")

        def get_model_config_as_dict(self) -> dict[str, Any]:
            return {
                "d_model": d_model,
                "n_layers": n_layers,
                "n_heads": n_heads,
                "d_ff": d_ff,
            }

    return InMemoryModelContext()


def make_autoencoder_context(dst_value: str, state_by_layer: dict[int, dict[str, Any]], device=None):
    """A real TDB AutoencoderContext (trained on DerivedScalarType ``dst_value``) whose
    autoencoders are already in its cache, so nothing is read from disk."""
    import torch
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.models.autoencoder import Autoencoder
    from neuron_explainer.models.autoencoder_context import AutoencoderConfig, AutoencoderContext

    dst = DerivedScalarType(dst_value)
    paths = {layer: f"memory://nodewrite/{dst_value}/{layer}" for layer in state_by_layer}
    cache = {}
    for layer, state in state_by_layer.items():
        sd = {k: torch.as_tensor(v) for k, v in state.items()}
        ae = Autoencoder.from_state_dict(sd, strict=False)
        for p in ae.parameters():
            p.requires_grad = False
        cache[paths[layer]] = ae
    return AutoencoderContext(
        autoencoder_config=AutoencoderConfig(dst=dst, autoencoder_path_by_layer_index=paths),
        device=device or torch.device("cpu"),
        _cached_autoencoders_by_path=cache,
    )


def make_raw_store(activations: dict[tuple, Any]):
    """TDB's RawActivationStore from {(ActivationLocationType value, layer[, pass type value]):
    tensor}; the pass type defaults to "forward"."""
    import torch
    from neuron_explainer.activations.derived_scalars.activations_and_metadata import (
        RawActivationStore,
    )
    from neuron_explainer.models.model_component_registry import (
        ActivationLocationType,
        ActivationLocationTypeAndPassType,
        PassType,
    )

    nested: dict = {}
    for key_tuple, t in activations.items():
        alt_value, layer = key_tuple[:2]
        pass_type = PassType(key_tuple[2]) if len(key_tuple) > 2 else PassType.FORWARD
        key = ActivationLocationTypeAndPassType(ActivationLocationType(alt_value), pass_type)
        nested.setdefault(key, {})[layer] = torch.as_tensor(t)
    return RawActivationStore.from_nested_dict_of_activations(nested)


class FixtureWorld:
    """The parity fixtures as TDB objects: model context, autoencoder contexts, raw stores."""

    ACTIVATION_KEYS = {
        # fixture name -> (ActivationLocationType value, which store(s))
        "mlp.post_act": "mlp.post_act",
        "attn.qk_probs": "attn.qk_probs",
        "attn.v": "attn.v",
        "online_mlp_autoencoder_latent": "online_mlp_autoencoder_latent",
        "online_attention_autoencoder_latent": "online_attention_autoencoder_latent",
        "online_autoencoder_latent": "online_autoencoder_latent",
    }

    def __init__(self, fixtures_dir: str | os.PathLike = FIXTURES_DIR) -> None:
        import torch

        self.meta, self.tensors = load_fixtures(fixtures_dir)
        m = self.meta["model"]
        self.dims = dict(
            n_layers=m["n_layers"],
            d_model=m["d_model"],
            n_heads=m["n_heads"],
            d_head=m["d_head"],
            d_ff=m["d_ff"],
        )
        self.cases = self.meta["cases"]
        t = self.tensors
        checkpoint = {
            k[len("checkpoint.") :]: torch.from_numpy(v)
            for k, v in t.items()
            if k.startswith("checkpoint.")
        }
        self.model_context = make_model_context(checkpoint, n_vocab=97, **self.dims)
        aes = self.meta["autoencoders"]
        self.ae_contexts = {}
        for kind in ("mlp", "attention"):
            states: dict[int, dict[str, Any]] = {}
            prefix = f"autoencoders.{kind}."
            for k, v in t.items():
                if k.startswith(prefix) and ".state." in k:
                    layer_s, rest = k[len(prefix) :].split(".state.")
                    states.setdefault(int(layer_s), {})[rest] = torch.from_numpy(v)
            self.ae_contexts[kind] = make_autoencoder_context(aes[kind]["input"], states)
        acts = {}
        for k, v in t.items():
            if k.startswith("activations."):
                layer_s, name = k[len("activations.") :].split(".", 1)
                if name in self.ACTIVATION_KEYS:
                    acts[(self.ACTIVATION_KEYS[name], int(layer_s))] = torch.from_numpy(v)
        self.activations = acts
        self.raw_store = make_raw_store(acts)

    def dst_config(self, case: dict, autoencoders: str | None = None):
        """TDB's DstConfig for a case. autoencoders: "none", "single" (the MLP autoencoder as
        DstConfig.autoencoder_context) or "multi" (both, as multi_autoencoder_context); default:
        the case's own setting."""
        from neuron_explainer.activations.derived_scalars.indexing import NodeIndex
        from neuron_explainer.activations.derived_scalars.scalar_deriver import DstConfig
        from neuron_explainer.models.autoencoder_context import MultiAutoencoderContext
        from neuron_explainer.models.model_component_registry import NodeType, PassType

        node = NodeIndex(
            node_type=NodeType(case["node_type"]),
            tensor_indices=tuple(case["tensor_indices"]),
            layer_index=case["layer"],
            pass_type=PassType.FORWARD,
        )
        kind = autoencoders or case["autoencoders"]
        kwargs: dict[str, Any] = {}
        if kind == "single":
            kwargs["autoencoder_context"] = self.ae_contexts["mlp"]
        elif kind == "multi":
            kwargs["multi_autoencoder_context"] = MultiAutoencoderContext.from_autoencoder_context_list(
                [self.ae_contexts["mlp"], self.ae_contexts["attention"]]
            )
        elif kind == "single_attention":
            kwargs["autoencoder_context"] = self.ae_contexts["attention"]
        elif kind == "multi_one":
            # a MultiAutoencoderContext holding only the node's own autoencoder
            own = "attention" if "attention" in case["node_type"] else "mlp"
            kwargs["multi_autoencoder_context"] = MultiAutoencoderContext.from_autoencoder_context_list(
                [self.ae_contexts[own]]
            )
        elif kind != "none":
            raise ValueError(kind)
        return DstConfig(
            model_context=self.model_context, node_index_for_attribution=node, **kwargs
        )

    def expected(self, case: dict) -> np.ndarray | None:
        name = case.get("expected")
        return None if name is None else self.tensors[name]
