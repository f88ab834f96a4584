"""Every case of the edge-attribution fixtures (tdb_edges.*: TDB's in-edges, out-edges,
act-times-grad, attention-to-latent and single-node writes) through the Python API: a Model with
the read-side weights and autoencoder encoders, an ActivationStore with both passes, one
``nodewrite.derive(..., node=...)`` per output. Within 1e-5 x max(1, max|TDB|), exact zeros where
TDB's are zero, TDB's AssertionErrors as NodeWriteError; from numpy arrays, from torch tensors, and
from weights given as strided (transposed-copy) views. Then the bad inputs the edge calls refuse,
each naming its argument."""

from __future__ import annotations

import numpy as np
import pytest

import nodewrite as nw
from edges_fixture import (
    AUTOENCODER_NODE_TYPES, CASES, MODEL, N_LAYERS, STORES, WEIGHTS, autoencoder_arrays, autoencoder_input,
    autoencoders_of, case_node, expected, store_activations, weight,
)
from edges_fixture import TENSORS
from nw_fixtures import REL_TOL

T, D, H, DH, F = MODEL["n_tokens"], MODEL["d_model"], MODEL["n_heads"], MODEL["d_head"], MODEL["d_ff"]
SUBNODES = {"q": "attn.q", "k": "attn.k", "v": "attn.v"}


def strided(a: np.ndarray) -> np.ndarray:
    """The same values as a non-contiguous view: the reversed-axes view of a copy, viewed back."""
    v = np.ascontiguousarray(a.T).T
    assert a.ndim < 2 or not v.flags.c_contiguous
    return v


def build(store: str, convert=np.asarray, weights=np.asarray, generic=False):
    """The model and store of one fixture store: every weight (read side included) and autoencoder
    (with its encoder) of every layer, and every activation of both passes. generic: the store's
    single autoencoder set under "autoencoder_latent" (TDB's generic latent type, whose node writes
    read it) instead of its specific latent type."""
    m = nw.Model(N_LAYERS, D, H, DH, F)
    for L in range(N_LAYERS):
        for fixture_name, name in WEIGHTS:
            m.set_weight(name, L, weights(weight(fixture_name, L)))
        for which in autoencoders_of(store):
            a = autoencoder_arrays(which, L)
            m.set_autoencoder("autoencoder_latent" if generic else AUTOENCODER_NODE_TYPES[which], L, convert(a["decoder_weight"]), autoencoder_input(which),
                              encoder=convert(a["encoder_weight"]), latent_bias=convert(a["latent_bias"]),
                              pre_bias=convert(a["pre_bias"]))
    s = nw.ActivationStore()
    keep = []
    for location, layer, pass_type, tensor in store_activations(store):
        arr = convert(TENSORS[tensor])
        keep.append(arr)
        s.put(location, layer, arr, pass_type=pass_type)
    return m, s


def torch_tensor(a: np.ndarray):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.array(a))


_BUILT: dict = {}


def setup_of(store: str, variant: str):
    key = (store, variant)
    if key not in _BUILT:
        if variant == "numpy":
            _BUILT[key] = build(store)
        elif variant == "generic":
            _BUILT[key] = build(store, generic=True)
        elif variant == "torch":
            _BUILT[key] = build(store, convert=torch_tensor, weights=torch_tensor)
        else:  # every weight and autoencoder array given as a strided view
            _BUILT[key] = build(store, convert=strided, weights=strided)
    return _BUILT[key]


def node_index(d: dict) -> nw.NodeIndex:
    sub = d.get("subnode")
    return nw.NodeIndex(d["node_type"], d["layer"], tuple(d["tensor_indices"]),
                        q_k_or_v=SUBNODES[sub] if sub else None)


def error_layer(case: dict):
    """The layer a raising case is asked at (TDB raises when the deriver is made, at any layer)."""
    if case["dst"] in ("token_out_edge_attribution", "token_attribution"):
        return None
    if "layer_indices" in case:
        return case["layer_indices"][0]
    node = case_node(case)
    return node["layer"] if node else 0


def check_close(got: np.ndarray, exp: np.ndarray, where: str) -> None:
    assert got.dtype == np.float32 and got.shape == exp.shape, (where, got.shape, exp.shape)
    tol = REL_TOL * max(1.0, float(np.abs(exp).max()) if exp.size else 0.0)
    err = float(np.abs(got.astype(np.float64) - exp).max()) if exp.size else 0.0
    assert err <= tol, f"{where}: max |nodewrite - TDB| = {err:.3g} > {tol:.3g}"
    zeros = exp == 0
    assert np.all(got[zeros] == 0), f"{where}: {int(np.sum(got[zeros] != 0))} entries not exactly 0 where TDB's are"


def run_case(case: dict, variant: str) -> None:
    nd = case_node(case)
    node = node_index(nd) if nd else None
    dst = case["dst"]
    # The node write of a generic autoencoder_latent reads the autoencoder set under that type
    # (the edges take the model's single autoencoder under its specific type: the other setups).
    generic = case["group"] == "single_node_write" and node.node_type == "autoencoder_latent"
    m, s = setup_of(case["store"], "generic" if generic else variant)
    if case["group"] == "single_node_write":
        for key, exp in expected(case).items():
            check_close(np.asarray(nw.node_write(m, s, node)), exp, f"{case['id']} layer {key}")
        return
    kw = dict(node=node, detach_layer_norm_scale=bool(case.get("detach", False)))
    if "error" in case:
        # TDB: AssertionError where it needs the single autoencoder and both are loaded.
        assert case["store"] == "both" and case["error"] == "AssertionError"
        with pytest.raises(nw.NodeWriteError, match="autoencoder"):
            nw.derive(m, s, dst, error_layer(case), **kw)
        return
    for key, exp in expected(case).items():
        layer = None if key == "none" else int(key)
        got = nw.derive(m, s, dst, layer, **kw)
        check_close(got, exp, f"{case['id']} {dst} layer {key}")
        if variant == "numpy":  # out= gives the same bits
            buf = np.full(exp.shape, np.nan, np.float32)
            assert nw.derive(m, s, dst, layer, out=buf, **kw) is buf
            assert np.array_equal(buf, got)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['dst']}" for c in CASES])
def test_case_numpy(case):
    run_case(case, "numpy")


# Every case again from torch tensors, and from strided weight views (numpy).
@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['dst']}" for c in CASES])
def test_case_torch(case):
    run_case(case, "torch")


@pytest.mark.parametrize("case", CASES[::3], ids=[f"{c['id']}-{c['dst']}" for c in CASES[::3]])
def test_case_strided_weights(case):
    run_case(case, "strided")
