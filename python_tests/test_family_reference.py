"""The float64 reference of the write family (family_reference.py) against the fixtures made by
running TDB's own derivers (Tests/NodeWriteTests/Fixtures/tdb_family.{json,safetensors}).

Every expected tensor must be reproduced within 1e-5 * max(1, max|expected|), with exact zeros
wherever the expected tensor is zero; the manifest's error entries must raise. numpy + pytest only
(no nodewrite, no torch): this proves the reference that the native implementation is later
checked against."""

from __future__ import annotations

import json
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import family_reference as ref

FIXTURES = Path(__file__).resolve().parent.parent / "Tests" / "NodeWriteTests" / "Fixtures"
REL_TOL = 1e-5


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as a read-only numpy array (little-endian F32/F64/I64)."""
    dtypes = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4"}
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dt = np.dtype(dtypes[info["dtype"]])
        out[name] = np.frombuffer(raw, dt, (end - start) // dt.itemsize, 8 + n + start).reshape(info["shape"])
    return out


@lru_cache(maxsize=None)
def manifest() -> dict:
    return json.loads((FIXTURES / "tdb_family.json").read_text())


@lru_cache(maxsize=None)
def tensors() -> dict[str, np.ndarray]:
    return read_safetensors(FIXTURES / "tdb_family.safetensors")


def n_layers() -> int:
    return manifest()["model"]["n_layers"]


def acts(layer: int) -> dict[str, np.ndarray]:
    prefix = f"activations.{layer}."
    return {k[len(prefix) :]: v for k, v in tensors().items() if k.startswith(prefix)}


def weights(layer: int) -> dict[str, np.ndarray]:
    t = tensors()
    return {name: t[f"weights.{layer}.{name}"] for name in ("mlp.to_residual", "attn.to_residual")}


def write_vectors(kind: str, layer: int) -> np.ndarray:
    """An autoencoder's write vectors, as the manifest says they are formed."""
    t = tensors()
    decoder = t[f"autoencoders.{kind}.{layer}.decoder_weight"]
    ae = manifest()["autoencoders"][kind]
    w_out = t[f"weights.{layer}.mlp.to_residual"] if ae["input"] == "mlp_post_act" else None
    return ref.autoencoder_write_vectors(decoder, w_out)


def loaded_autoencoders(config: str, layer: int, own: str | None = None) -> dict[str, np.ndarray]:
    """The write vectors of the autoencoders loaded in a configuration of the manifest
    (autoencoder_configs: multi, single, none, own), keyed by node type."""
    kinds = {"multi": ["mlp", "attention"], "single": ["mlp"], "none": [], "own": [own] if own else []}[config]
    return {manifest()["autoencoders"][k]["node_type"]: write_vectors(k, layer) for k in kinds}


def g() -> np.ndarray:
    return tensors()["activations.final_residual_grad"]


def assert_matches(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.float64, what
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual - expected.astype(np.float64)).max())
    assert err <= REL_TOL * scale, f"{what}: max|ref - expected| = {err:.3e} > {REL_TOL * scale:.3e}"
    zeros = expected == 0
    assert np.all(actual[zeros] == 0), (
        f"{what}: {int(np.count_nonzero(actual[zeros]))} entries not exactly zero where expected is zero"
    )


# ------------------------------------------------------------------------- the fixture itself


def test_fixture_is_what_the_readme_describes():
    m = manifest()["model"]
    t = tensors()
    T, d_model = m["n_tokens"], m["d_model"]
    assert t["activations.final_residual_grad"].shape == (T, d_model)
    nonzero = sorted(set(np.nonzero(g())[0].tolist()))
    assert nonzero == manifest()["final_residual_grad"]["nonzero_rows"] == [T - 1]
    assert all(v.dtype == np.float32 for v in t.values())
    assert len(manifest()["nodes"]) == 25
    dsts = {d["dst"] for d in manifest()["dsts"]}
    assert dsts == set(ref.LAYER_DSTS), dsts ^ set(ref.LAYER_DSTS)


# -------------------------------------------------------------------------- layer DSTs

LAYER_CASES = [
    (d["dst"], d["autoencoders"], i)
    for i, d in enumerate(manifest()["dsts"])
]


@pytest.mark.parametrize("dst,config,index", LAYER_CASES, ids=[f"{d}-{c}" for d, c, _ in LAYER_CASES])
def test_layer_dst(dst, config, index):
    entry = manifest()["dsts"][index]
    if "error" in entry:
        # the original fails (AssertionError) for the generic autoencoder DSTs with both loaded
        assert entry["error"] == "AssertionError" and config == "multi"
        for layer in range(n_layers()):
            with pytest.raises(ref.AmbiguousAutoencoderError):
                ref.derive(dst, acts(layer), weights(layer), g=g(), autoencoders=loaded_autoencoders(config, layer))
        return
    assert len(entry["tensors"]) == n_layers()
    for layer, name in enumerate(entry["tensors"]):
        expected = tensors()[name]
        assert list(expected.shape) == entry["shape"]
        actual = ref.derive(dst, acts(layer), weights(layer), g=g(), autoencoders=loaded_autoencoders(config, layer))
        assert_matches(actual, expected, name)


def test_per_sequence_token_from_probs_and_values():
    """weighted_sum_of_values computed from p and v gives the same per-sequence-token outputs."""
    for layer in range(n_layers()):
        a = acts(layer)
        wsv = ref.weighted_sum_of_values(a["attn.qk_probs"], a["attn.v"])
        np.testing.assert_allclose(wsv, a["attn.weighted_sum_of_values"], rtol=0, atol=1e-6)
        w_o = weights(layer)["attn.to_residual"]
        for dst, fn, extra in [
            ("attn_write_norm_per_sequence_token", ref.attn_write_norm_per_sequence_token, ()),
            ("attn_write_to_final_residual_grad_per_sequence_token",
             ref.attn_write_to_final_residual_grad_per_sequence_token, (g(),)),
        ]:
            assert_matches(fn(wsv, w_o, *extra), tensors()[f"expected.{dst}.{layer}"], f"{dst}.{layer} from p, v")


def test_generic_autoencoder_dsts_need_exactly_one_autoencoder():
    a, w = acts(0), weights(0)
    for dst in ("online_autoencoder_write_norm", "online_autoencoder_write_to_final_residual_grad"):
        for config in ("multi", "none"):
            with pytest.raises(ref.AmbiguousAutoencoderError):
                ref.derive(dst, a, w, g=g(), autoencoders=loaded_autoencoders(config, 0))
    with pytest.raises(ref.AmbiguousAutoencoderError):
        ref.derive("online_attention_autoencoder_write_norm", a, w, autoencoders=loaded_autoencoders("single", 0))
    with pytest.raises(ValueError, match="supported"):
        ref.derive("attn_write", a, w)


def test_the_natural_alternatives_do_not_match():
    """The README's traps: each wrong formula misses the fixture (so the test would catch it)."""
    t = tensors()
    a, w = acts(1), weights(1)
    wrong_norm = np.abs(a["mlp.post_act"]) * np.linalg.norm(w["mlp.to_residual"], axis=1)
    assert np.abs(wrong_norm - t["expected.mlp_write_norm.1"]).max() > 1e-3
    unflat = ref.unflattened_attn_write_norm(a["attn.qk_probs"], a["attn.v"], w["attn.to_residual"])
    col_major = ref.flatten_lower_triangle(unflat.transpose(1, 0, 2))  # (k, q) order: upper triangle
    assert np.abs(col_major - t["expected.attn_write_norm.1"]).max() > 1e-3
    sum_of_norms = unflat.sum(axis=1)
    assert np.abs(sum_of_norms - t["expected.attn_write_norm_per_sequence_token.1"]).max() > 1e-3


# ------------------------------------------------------------------------------- nodes


def node_inputs(node: dict, config: str) -> dict:
    """The inputs of node_write_vector for a node, given the autoencoder configuration its
    expected tensor was computed with."""
    layer = node["layer"]
    a, w = acts(layer), weights(layer)
    node_type = node["node_type"]
    if node_type == "mlp_neuron":
        return {"a": a["mlp.post_act"], "w_out": w["mlp.to_residual"]}
    if node_type == "attention_head":
        return {"p": a["attn.qk_probs"], "v": a["attn.v"], "w_o": w["attn.to_residual"]}
    kind = {"autoencoder_latent": "mlp", "mlp_autoencoder_latent": "mlp", "attention_autoencoder_latent": "attention"}[
        node_type
    ]
    latents = {
        "autoencoder_latent": "online_autoencoder_latent",
        "mlp_autoencoder_latent": "online_mlp_autoencoder_latent",
        "attention_autoencoder_latent": "online_attention_autoencoder_latent",
    }[node_type]
    assert config in ("multi", "single", "own"), (node["id"], config)
    return {"z": a[latents], "write": write_vectors(kind, layer)}


NODES = manifest()["nodes"]


@pytest.mark.parametrize("node", NODES, ids=[f"{n['id']}-{n['node_type']}" for n in NODES])
def test_node(node):
    T = manifest()["model"]["n_tokens"]
    t = tensors()
    idx = tuple(node["tensor_indices"])
    checked = 0
    for key in ("single_node_write", "single_node_write_to_final_residual_grad"):
        entry = node[key]
        inputs = node_inputs(node, entry["autoencoders"])
        if key == "single_node_write":
            actual = ref.single_node_write(node["node_type"], idx, T, **inputs)
        else:
            actual = ref.single_node_write_to_final_residual_grad(node["node_type"], idx, T, g(), **inputs)
        expected = t[entry["expected"]]
        assert list(expected.shape) == entry["shape"]
        assert_matches(actual, expected, f"{node['id']} {key}")
        checked += 1
    entry = node["token_write"]
    w, _ = ref.node_write_vector(node["node_type"], idx, **node_inputs(node, entry["autoencoders"]))
    actual = ref.token_write(w, t["weights.unembedding"], t["weights.final_ln.gain"])
    assert_matches(actual, t[entry["expected"]], f"{node['id']} token_write")
    assert abs(actual.sum()) < 1e-9 * max(1.0, np.abs(actual).max())  # mean-subtracted
    assert checked == 2


def test_token_write_batched_equals_rows():
    t = tensors()
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, t["weights.unembedding"].shape[0]))
    batched = ref.token_write(w, t["weights.unembedding"], t["weights.final_ln.gain"])
    for i in range(5):
        np.testing.assert_allclose(batched[i], ref.token_write(w[i], t["weights.unembedding"], t["weights.final_ln.gain"]),
                                   rtol=1e-12, atol=1e-12)


def test_node_index_errors_like_the_original():
    layer = 0
    inputs = node_inputs({"layer": layer, "node_type": "attention_head", "id": "x"}, "multi")
    T = manifest()["model"]["n_tokens"]
    with pytest.raises(IndexError):
        ref.single_node_write("attention_head", (T, 0, 0), T, **inputs)
    neg = ref.single_node_write("attention_head", (-1, -2, -1), T, **inputs)
    pos = ref.single_node_write("attention_head", (T - 1, T - 2, inputs["p"].shape[2] - 1), T, **inputs)
    assert np.array_equal(neg, pos) and np.count_nonzero(neg[:-1]) == 0


# -------------------------------------------------- properties with dense random directions


def test_dense_direction_properties():
    """With a dense g (the fixture's is zero except its last row): layer sums, per-sequence-token
    sums, unit directions, and a (d_model,) direction broadcast to every token."""
    rng = np.random.default_rng(1)
    T, d_model = manifest()["model"]["n_tokens"], manifest()["model"]["d_model"]
    t = tensors()
    for layer in range(n_layers()):
        a, w = acts(layer), weights(layer)
        gd = rng.standard_normal((T, d_model))
        p, v, w_o, w_out = a["attn.qk_probs"], a["attn.v"], w["attn.to_residual"], w["mlp.to_residual"]
        bias_mlp = t.get(f"checkpoint.xf_layers.{layer}.mlp.out_layer.bias")
        # MLP neurons summed over neurons = the layer's projection minus the bias's
        mlp = ref.mlp_write_to_final_residual_grad(a["mlp.post_act"], w_out, gd).sum(axis=1)
        delta_mlp = a["resid.delta_mlp"].astype(np.float64)
        bias = delta_mlp - a["mlp.post_act"].astype(np.float64) @ w_out.astype(np.float64)
        assert np.abs(bias - bias[0]).max() < 1e-5  # one bias vector for every token
        if bias_mlp is not None:
            np.testing.assert_allclose(bias[0], bias_mlp, atol=1e-5)
        layer_proj = ref.layer_write_to_final_residual_grad(delta_mlp - bias[0], gd)[:, 0]
        np.testing.assert_allclose(mlp, layer_proj, rtol=1e-5, atol=1e-5)
        # attention summed over keys and heads = the layer's projection minus the bias's
        unflat = ref.unflattened_attn_write_to_final_residual_grad(p, v, w_o, gd)
        delta_attn = a["resid.delta_attn"].astype(np.float64)
        wsv = ref.weighted_sum_of_values(p, v)
        bias_a = delta_attn - np.einsum("qhd,hdm->qm", wsv, w_o.astype(np.float64))
        assert np.abs(bias_a - bias_a[0]).max() < 1e-5
        np.testing.assert_allclose(unflat.sum(axis=(1, 2)),
                                   ref.layer_write_to_final_residual_grad(delta_attn - bias_a[0], gd)[:, 0],
                                   rtol=1e-5, atol=1e-5)
        # per sequence token = sum over keys; flattened = the lower triangle; zeros above it
        np.testing.assert_allclose(unflat.sum(axis=1),
                                   ref.attn_write_to_final_residual_grad_per_sequence_token(wsv, w_o, gd),
                                   rtol=1e-10, atol=1e-10)
        assert np.all(unflat[np.triu_indices(T, 1)] == 0)
        flat = ref.attn_write_to_final_residual_grad(p, v, w_o, gd)
        q, k = 5, 3
        assert np.array_equal(flat[q * (q + 1) // 2 + k], unflat[q, k])
        # a unit direction e_j gives column j of the writes
        j = int(rng.integers(d_model))
        e = np.zeros(d_model)
        e[j] = 1.0
        np.testing.assert_allclose(ref.mlp_write_to_final_residual_grad(a["mlp.post_act"], w_out, e),
                                   a["mlp.post_act"].astype(np.float64) * w_out[:, j].astype(np.float64)[None, :],
                                   rtol=1e-12, atol=1e-12)
        head_write_j = np.einsum("khd,hd->kh", v.astype(np.float64), w_o[:, :, j].astype(np.float64))
        np.testing.assert_allclose(ref.unflattened_attn_write_to_final_residual_grad(p, v, w_o, e),
                                   p.astype(np.float64) * head_write_j[None], rtol=1e-12, atol=1e-12)
        # a (d_model,) direction is the same direction at every token
        g1 = gd[0]
        np.testing.assert_allclose(ref.unflattened_attn_write_to_final_residual_grad(p, v, w_o, g1),
                                   ref.unflattened_attn_write_to_final_residual_grad(p, v, w_o, np.tile(g1, (T, 1))),
                                   rtol=1e-12, atol=1e-12)
        # a node's projection = its write vector . g at its token, for a dense g too
        node = ref.single_node_write_to_final_residual_grad("attention_head", (4, 2, 1), T, gd, p=p, v=v, w_o=w_o)
        assert node[4, 0] == pytest.approx(unflat[4, 2, 1], rel=1e-12, abs=1e-12)
        assert np.count_nonzero(np.delete(node, 4, axis=0)) == 0
