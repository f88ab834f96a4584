"""The parity fixtures (Tests/NodeWriteTests/Fixtures/tdb_tiny.{json,safetensors}), loaded
with a small safetensors reader (numpy only), and models/stores built from them through the
nodewrite Python API."""

from __future__ import annotations

import json
import os
import struct
from functools import lru_cache
from typing import Dict

import numpy as np

import nodewrite as nw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.environ.get(
    "NODEWRITE_FIXTURES", os.path.join(ROOT, "Tests", "NodeWriteTests", "Fixtures")
)

_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}

# Tolerance of the parity README for a float32 port: max|port - orig| <= 1e-5 * max(1, max|orig|).
REL_TOL = 1e-5


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    """Read-only numpy views of every tensor of a .safetensors file (no copies)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = np.dtype(_DTYPES[info["dtype"]])
        start, end = info["data_offsets"]
        count = (end - start) // dt.itemsize
        arr = np.frombuffer(data, dtype=dt, count=count, offset=base + start)
        out[name] = arr.reshape(info["shape"])
    return out


@lru_cache(maxsize=None)
def spec() -> dict:
    with open(os.path.join(FIXTURES, "tdb_tiny.json")) as f:
        return json.load(f)


@lru_cache(maxsize=None)
def tensors() -> Dict[str, np.ndarray]:
    return read_safetensors(os.path.join(FIXTURES, "tdb_tiny.safetensors"))


def dims() -> dict:
    m = spec()["model"]
    return {k: m[k] for k in ("n_layers", "d_model", "n_heads", "d_head", "d_ff")}


def n_tokens() -> int:
    return spec()["model"]["n_tokens"]


def cases():
    return spec()["cases"]


AE_NODE_TYPES = {
    "single": [("autoencoder_latent", "mlp")],
    "multi": [("mlp_autoencoder_latent", "mlp"), ("attention_autoencoder_latent", "attention")],
    "none": [],
}

ACTIVATIONS = (
    "mlp.post_act",
    "attn.qk_probs",
    "attn.v",
    "online_autoencoder_latent",
    "online_mlp_autoencoder_latent",
    "online_attention_autoencoder_latent",
)


def make_model(autoencoders: str = "none", convert=None, copy: bool = True) -> nw.Model:
    """The fixture model (weights of every layer, and the autoencoders of a case's kind).
    convert(array) -> the object handed to the binding (default: the array itself)."""
    t = tensors()
    conv = convert or (lambda a: a)
    model = nw.Model(**dims())
    aes = spec()["autoencoders"]
    for layer in range(dims()["n_layers"]):
        model.set_weight("mlp.to_residual", layer, conv(t[f"weights.{layer}.mlp.to_residual"]), copy=copy)
        model.set_weight("attn.to_residual", layer, conv(t[f"weights.{layer}.attn.to_residual"]), copy=copy)
        for node_type, which in AE_NODE_TYPES[autoencoders]:
            model.set_autoencoder(
                node_type,
                layer,
                conv(t[f"autoencoders.{which}.{layer}.decoder_weight"]),
                input=aes[which]["input"],
                copy=copy,
            )
    return model


def make_store(convert=None) -> nw.ActivationStore:
    t = tensors()
    conv = convert or (lambda a: a)
    store = nw.ActivationStore()
    for layer in range(dims()["n_layers"]):
        for name in ACTIVATIONS:
            key = f"activations.{layer}.{name}"
            if key in t:
                store.put(name, layer, conv(t[key]))
    return store


def token_row(case: dict) -> int:
    return case["tensor_indices"][0] % n_tokens()


def node_of(case: dict) -> nw.NodeIndex:
    return nw.NodeIndex(case["node_type"], case["layer"], tuple(case["tensor_indices"]))


def assert_matches(port: np.ndarray, expected: np.ndarray, token: int, rel: float = REL_TOL) -> None:
    """Shape, then dtype, then values (README tolerance), then exact zeros off the token row."""
    assert port.shape == expected.shape, (port.shape, expected.shape)
    assert port.dtype == np.float32, port.dtype
    assert port.flags.c_contiguous and port.flags.writeable, "outputs are new C-contiguous arrays"
    scale = max(1.0, float(np.max(np.abs(expected))))
    diff = float(np.max(np.abs(port.astype(np.float64) - expected.astype(np.float64))))
    assert diff <= rel * scale, f"max |port - orig| = {diff:.3g} > {rel * scale:.3g}"
    others = np.delete(port, token, axis=0)
    assert np.count_nonzero(others) == 0, "non-zero values off the node's token row"
