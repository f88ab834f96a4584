"""The edge-attribution fixtures (Tests/NodeWriteTests/Fixtures/tdb_edges.{json,safetensors}):
TDB's own outputs for its in-edge, out-edge, act-times-grad and attention-to-latent derived
scalars, and what each case reads. Shared by the analytic torch reference's parity test
(test_edges_reference.py) and the Python API's (test_edges.py), so both read the fixture alike.

A case's store ("none", "mlp", "attn", "both"; "own" cases name the store of their single
autoencoder) says which autoencoders were loaded; every activation of that store, of both passes,
is in ``store_activations(store)``; the weights of every layer are ``WEIGHTS`` (fixture name,
nodewrite's weight name); an autoencoder's arrays are ``autoencoder_arrays(which, layer)``."""

from __future__ import annotations

import json
import os
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from nw_fixtures import FIXTURES, read_safetensors

MANIFEST = json.load(open(os.path.join(FIXTURES, "tdb_edges.json")))
TENSORS: Dict[str, np.ndarray] = read_safetensors(os.path.join(FIXTURES, "tdb_edges.safetensors"))
MODEL = MANIFEST["model"]
N_LAYERS: int = MODEL["n_layers"]
CASES: List[dict] = MANIFEST["cases"]
STORES = ("none", "mlp", "attn", "both")

# TDB asks for "the" single autoencoder in these; with both loaded it raises AssertionError.
NEEDS_SINGLE_AE = {
    "online_autoencoder_act_times_grad", "autoencoder_latent_grad_wrt_residual_input",
    "attn_write_to_latent_per_sequence_token",
}

# (fixture name under weights.{L}., nodewrite weight name); every one has a layer.
WEIGHTS: Tuple[Tuple[str, str], ...] = (
    ("mlp.to_residual", "mlp.to_residual"), ("attn.to_residual", "attn.to_residual"),
    ("ln_1.gain", "layer_norm_gain.pre_attn"), ("ln_1.bias", "layer_norm_bias.pre_attn"),
    ("ln_2.gain", "layer_norm_gain.pre_mlp"), ("ln_2.bias", "layer_norm_bias.pre_mlp"),
    ("attn.to_query", "attn.to_query"), ("attn.to_key", "attn.to_key"), ("attn.to_value", "attn.to_value"),
    ("attn.query_bias", "attn.query_bias"), ("attn.key_bias", "attn.key_bias"),
    ("attn.value_bias", "attn.value_bias"), ("attn.out_bias", "attn.out_bias"),
    ("mlp.to_hidden", "mlp.to_hidden"), ("mlp.in_bias", "mlp.in_bias"), ("mlp.out_bias", "mlp.out_bias"),
)

# The fixture's autoencoders: which -> (the latent node type nodewrite sets it under, its input).
AUTOENCODER_NODE_TYPES = {"mlp": "mlp_autoencoder_latent", "attention": "attention_autoencoder_latent"}


def weight(fixture_name: str, layer: int) -> np.ndarray:
    return TENSORS[f"weights.{layer}.{fixture_name}"]


def autoencoders_of(store: str) -> Tuple[str, ...]:
    """The autoencoders ("mlp", "attention") loaded in a store."""
    return {"none": (), "mlp": ("mlp",), "attn": ("attention",), "both": ("mlp", "attention")}[store]


def autoencoder_input(which: str) -> str:
    """TDB's DerivedScalarType of what autoencoder `which` was trained on."""
    return MANIFEST["autoencoders"][which]["input"]


def autoencoder_arrays(which: str, layer: int) -> Dict[str, np.ndarray]:
    """decoder_weight (n_latents, n_inputs), encoder_weight (n_latents, n_inputs), latent_bias, pre_bias."""
    a = f"autoencoders.{which}.{layer}"
    return {k: TENSORS[f"{a}.{k}"] for k in ("decoder_weight", "encoder_weight", "latent_bias", "pre_bias")}


def store_activations(store: str) -> Iterator[Tuple[str, Optional[int], str, str]]:
    """(location, layer or None, pass "forward"/"backward", tensor name) of every activation of a store."""
    for a in MANIFEST["activations"]:
        if a["store"] == store:
            layer = a.get("layer")
            yield a["location"], layer if isinstance(layer, int) else None, a["pass"], a["tensor"]


def case_node(case: dict) -> Optional[dict]:
    """The case's node argument: its node (upstream node or downstream subnode), its trace latent,
    or None. tensor_indices may hold None (a trace latent's token); "subnode" is "q", "k" or "v"."""
    return case.get("node") or case.get("trace_latent")


def expected(case: dict) -> Dict[str, np.ndarray]:
    """{layer key ("0", "1", ... or "none"): TDB's output} of a case that does not raise."""
    return {k: np.array(TENSORS[name]) for k, name in case["expected"].items()}
