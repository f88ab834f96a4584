"""TDB's write family (issue 11) through the Python API: nodewrite.derive,
node_write_to_direction, token_writes, and Model.set_weight(name, None, w).

- Every tensor of Tests/NodeWriteTests/Fixtures/tdb_family.* within 1e-5 * max(1, max|orig|),
  exact zeros where the original's are zero, errors where the original errors.
- Dense random directions (the fixture's gradient is zero except its last row) against the
  float64 reference (family_reference.py), (T, d_model) and (d_model,) directions.
- Sums over neurons / keys and heads equal the layer quantities minus the bias.
- A unit direction e_j gives column j of the writes.
- Thread counts 1, 2, 3 give identical bits.
- Hostile callers for derive / token_writes / node_write_to_direction.
"""

from __future__ import annotations

import numpy as np
import pytest

import family_reference as ref
import nodewrite as nw
from edge_inputs import EDGE_DSTS, WRITE_FAMILY, edge_args, edge_model_and_store
import test_family_reference as FR

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")
REL_TOL = 1e-5
M = FR.manifest()["model"]
T, D_MODEL = M["n_tokens"], M["d_model"]
ACTS = ("mlp.post_act", "attn.qk_probs", "attn.v", "online_autoencoder_latent", "online_mlp_autoencoder_latent",
        "online_attention_autoencoder_latent", "resid.delta_mlp", "resid.delta_attn")


def make_model(config: str) -> nw.Model:
    """config: "multi" (mlp_ and attention_autoencoder_latent), "all" (those and
    autoencoder_latent with the MLP autoencoder), "single" (autoencoder_latent only), "none"."""
    t = FR.tensors()
    model = nw.Model(n_layers=M["n_layers"], d_model=D_MODEL, n_heads=M["n_heads"], d_head=M["d_head"], d_ff=M["d_ff"])
    aes = FR.manifest()["autoencoders"]
    model.set_weight("unembedding", None, t["weights.unembedding"])
    model.set_weight("layer_norm_gain.final", None, t["weights.final_ln.gain"])
    for layer in range(M["n_layers"]):
        model.set_weight("mlp.to_residual", layer, t[f"weights.{layer}.mlp.to_residual"])
        model.set_weight("attn.to_residual", layer, t[f"weights.{layer}.attn.to_residual"])
        sets = {"multi": [("mlp_autoencoder_latent", "mlp"), ("attention_autoencoder_latent", "attention")],
                "single": [("autoencoder_latent", "mlp")], "none": []}
        sets["all"] = sets["multi"] + sets["single"]
        for node_type, kind in sets[config]:
            model.set_autoencoder(node_type, layer, t[f"autoencoders.{kind}.{layer}.decoder_weight"], input=aes[kind]["input"])
    return model


def make_store() -> nw.ActivationStore:
    store = nw.ActivationStore()
    for layer in range(M["n_layers"]):
        a = FR.acts(layer)
        for name in ACTS:
            store.put(name, layer, a[name])
    return store


@pytest.fixture(scope="module")
def models():
    return {c: make_model(c) for c in ("multi", "all", "single", "none")}


@pytest.fixture(scope="module")
def store():
    return make_store()


def g():
    return FR.g()


def assert_matches(actual, expected, what):
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert actual.dtype == np.float32, what
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max())
    assert err <= REL_TOL * scale, f"{what}: {err:.3e} > {REL_TOL * scale:.3e}"
    zeros = expected == 0
    assert np.all(actual[zeros] == 0), f"{what}: not exactly zero where the original is"


# --------------------------------------------------------------------------- the fixture

DST_CASES = list(enumerate(FR.manifest()["dsts"]))


@pytest.mark.parametrize("index,entry", DST_CASES, ids=[f"{e['dst']}-{e['autoencoders']}" for _, e in DST_CASES])
def test_fixture_dst(index, entry, models, store):
    dst = entry["dst"]
    direction = g() if "_to_final_residual_grad" in dst else None
    config = entry["autoencoders"]
    if "error" in entry:  # the generic autoencoder DSTs with both loaded: the original asserts
        for layer in range(M["n_layers"]):
            with pytest.raises(nw.NodeWriteKeyError):
                nw.derive(models["multi"], store, dst, layer, direction=direction)
        return
    model = models["all" if config in ("multi", "single") else config]
    for layer, name in enumerate(entry["tensors"]):
        out = nw.derive(model, store, dst, layer, direction=direction)
        assert_matches(out, FR.tensors()[name], name)
        assert out.flags.c_contiguous and out.flags.writeable


NODES = FR.manifest()["nodes"]


@pytest.mark.parametrize("node", NODES, ids=[f"{n['id']}-{n['node_type']}" for n in NODES])
def test_fixture_node(node, models, store):
    t = FR.tensors()
    idx = tuple(node["tensor_indices"])
    n = nw.NodeIndex(node["node_type"], node["layer"], idx)
    model = models["all"]
    entry = node["single_node_write_to_final_residual_grad"]
    out = nw.node_write_to_direction(model, store, n, g())
    assert_matches(out, t[entry["expected"]], f"{node['id']} single_node_write_to_final_residual_grad")
    entry = node["single_node_write"]
    assert_matches(nw.node_write(model, store, n), t[entry["expected"]], f"{node['id']} single_node_write")
    entry = node["token_write"]
    tw = nw.token_writes(model, store, node["node_type"], node["layer"], [idx])
    assert tw.shape == (1, M["n_vocab"]) and tw.dtype == np.float32
    assert_matches(tw[0], t[entry["expected"]], f"{node['id']} token_write")


def test_token_writes_of_a_set_and_top_k(models, store):
    model = models["all"]
    idx = nw.keys_and_heads_at_query(T - 1, model)
    full = nw.token_writes(model, store, "attention_head", 1, idx)
    writes = nw.node_writes(model, store, "attention_head", 1, idx)
    want = ref.token_write(writes, FR.tensors()["weights.unembedding"], FR.tensors()["weights.final_ln.gain"])
    np.testing.assert_allclose(full, want, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want).max()))
    for largest in (True, False):
        values, ids = nw.token_writes(model, store, "attention_head", 1, idx, top_k=5, largest=largest)
        assert values.shape == ids.shape == (len(idx), 5)
        assert values.dtype == np.float32 and ids.dtype == np.int64
        assert np.array_equal(np.take_along_axis(full, ids, axis=1), values)
        order = np.argsort(-full if largest else full, axis=1, kind="stable")[:, :5]
        assert np.array_equal(np.take_along_axis(full, order, axis=1), values)
        assert np.all(np.diff(values, axis=1) <= 0) if largest else np.all(np.diff(values, axis=1) >= 0)
    for bad in (0, -1, M["n_vocab"] + 1):
        with pytest.raises(nw.NodeWriteValueError):
            nw.token_writes(model, store, "attention_head", 1, idx, top_k=bad)
    with pytest.raises(nw.NodeWriteKeyError):
        nw.token_writes(nw.Model(**{k: M[k] for k in ("n_layers", "d_model", "n_heads", "d_head", "d_ff")}),
                        store, "attention_head", 1, idx)


# ----------------------------------------------------------------------- layer-less weights


def test_layerless_weights(models):
    w = models["none"].weights()
    assert w[("unembedding", None)]["shape"] == (D_MODEL, M["n_vocab"])
    assert w[("layer_norm_gain.final", None)]["shape"] == (D_MODEL,)
    m = make_model("none")
    with pytest.raises(nw.NodeWriteValueError):
        m.set_weight("mlp.to_residual", None, FR.tensors()["weights.0.mlp.to_residual"])
    with pytest.raises(nw.NodeWriteIndexError):
        m.set_weight("unembedding", 0, FR.tensors()["weights.unembedding"])
    with pytest.raises(nw.NodeWriteValueError):
        m.set_weight("layer_norm_gain.final", None, np.ones(D_MODEL + 1, np.float32))


def test_unknown_dst_lists_the_supported_ones(models, store):
    with pytest.raises(ValueError) as info:
        nw.derive(models["all"], store, "attn_write", 0)
    assert isinstance(info.value, nw.NodeWriteValueError)
    for name in nw.DSTS:
        assert name in str(info.value)
    assert set(WRITE_FAMILY) == {e["dst"] for e in FR.manifest()["dsts"]}


def test_direction_rules(models, store):
    with pytest.raises(nw.NodeWriteValueError):
        nw.derive(models["all"], store, "mlp_write_norm", 0, direction=g())  # a norm takes none
    with pytest.raises(nw.NodeWriteValueError):
        nw.derive(models["all"], store, "mlp_write_to_final_residual_grad", 0)  # a projection needs one
    with pytest.raises(nw.NodeWriteValueError):
        nw.derive(models["all"], store, "mlp_write_to_final_residual_grad", 0, direction=np.zeros((T, D_MODEL + 1), np.float32))
    with pytest.raises(nw.NodeWriteIndexError):
        nw.derive(models["all"], store, "mlp_write_norm", 3)


# ------------------------------------------------------------------ dense random directions

GRAD_DSTS = [d for d in nw.DSTS if "_to_final_residual_grad" in d]


@pytest.mark.parametrize("dst", GRAD_DSTS)
def test_dense_directions_against_the_reference(dst, models, store):
    rng = np.random.default_rng(7)
    for layer in range(M["n_layers"]):
        autoencoders = FR.loaded_autoencoders("multi", layer)
        if dst.startswith("online_autoencoder"):
            autoencoders = FR.loaded_autoencoders("single", layer)
        for gd in (rng.standard_normal((T, D_MODEL)), rng.standard_normal(D_MODEL)):
            want = ref.derive(dst, FR.acts(layer), FR.weights(layer), g=gd, autoencoders=autoencoders)
            for direction in (gd.astype(np.float32), gd.astype(np.float64), gd.astype(np.float32)[..., ::-1][..., ::-1]):
                out = nw.derive(models["all"], store, dst, layer, direction=direction)
                assert out.shape == want.shape
                scale = max(1.0, float(np.abs(want).max()))
                assert np.abs(out - want).max() <= 1e-5 * scale, (dst, layer, gd.shape)
            if torch is not None:
                out = nw.derive(models["all"], store, dst, layer, direction=torch.from_numpy(gd.astype(np.float32)))
                assert np.abs(out - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max()))


def test_sums_equal_the_layer_quantities_minus_the_bias(models, store):
    rng = np.random.default_rng(3)
    for layer in range(M["n_layers"]):
        a, w = FR.acts(layer), FR.weights(layer)
        gd = rng.standard_normal((T, D_MODEL)).astype(np.float32)
        bias_mlp = a["resid.delta_mlp"].astype(np.float64) - a["mlp.post_act"].astype(np.float64) @ w["mlp.to_residual"].astype(np.float64)
        wsv = ref.weighted_sum_of_values(a["attn.qk_probs"], a["attn.v"])
        bias_attn = a["resid.delta_attn"].astype(np.float64) - np.einsum("qhd,hdm->qm", wsv, w["attn.to_residual"].astype(np.float64))
        bias_proj_mlp = (bias_mlp * gd).sum(axis=1)
        bias_proj_attn = (bias_attn * gd).sum(axis=1)
        mlp = nw.derive(models["all"], store, "mlp_write_to_final_residual_grad", layer, direction=gd).astype(np.float64)
        mlp_layer = nw.derive(models["all"], store, "mlp_layer_write_to_final_residual_grad", layer, direction=gd)[:, 0]
        np.testing.assert_allclose(mlp.sum(axis=1), mlp_layer - bias_proj_mlp, rtol=1e-4, atol=1e-4)
        attn = nw.derive(models["all"], store, "unflattened_attn_write_to_final_residual_grad", layer, direction=gd).astype(np.float64)
        attn_layer = nw.derive(models["all"], store, "attn_layer_write_to_final_residual_grad", layer, direction=gd)[:, 0]
        np.testing.assert_allclose(attn.sum(axis=(1, 2)), attn_layer - bias_proj_attn, rtol=1e-4, atol=1e-4)
        per_token = nw.derive(models["all"], store, "attn_write_to_final_residual_grad_per_sequence_token", layer, direction=gd)
        np.testing.assert_allclose(attn.sum(axis=1), per_token, rtol=1e-4, atol=1e-4)
        flat = nw.derive(models["all"], store, "attn_write_to_final_residual_grad", layer, direction=gd)
        q, k = np.tril_indices(T)
        assert np.array_equal(flat, attn.astype(np.float32)[q, k])
        assert np.all(attn[np.triu_indices(T, 1)] == 0)


def test_unit_direction_gives_column_j(models, store):
    rng = np.random.default_rng(5)
    model = models["all"]
    for layer in range(M["n_layers"]):
        j = int(rng.integers(D_MODEL))
        e = np.zeros(D_MODEL, np.float32)
        e[j] = 1.0
        mlp = nw.derive(model, store, "mlp_write_to_final_residual_grad", layer, direction=e)
        idx = np.concatenate([nw.neurons_at_token(t, model) for t in range(T)])
        col = nw.node_writes(model, store, "mlp_neuron", layer, idx)[:, j].reshape(T, -1)
        np.testing.assert_allclose(mlp, col, rtol=1e-5, atol=1e-6)
        attn = nw.derive(model, store, "unflattened_attn_write_to_final_residual_grad", layer, direction=e)
        for q in range(T):
            col = nw.node_writes(model, store, "attention_head", layer, nw.keys_and_heads_at_query(q, model))[:, j]
            np.testing.assert_allclose(attn[q, : q + 1, :], col.reshape(M["n_heads"], q + 1).T, rtol=1e-5, atol=1e-6)
        for node_type, dst in (("mlp_autoencoder_latent", "online_mlp_autoencoder_write_to_final_residual_grad"),
                               ("attention_autoencoder_latent", "online_attention_autoencoder_write_to_final_residual_grad")):
            out = nw.derive(model, store, dst, layer, direction=e)
            idx = np.concatenate([nw.latents_at_token(t, model, node_type, layer) for t in range(T)])
            col = nw.node_writes(model, store, node_type, layer, idx)[:, j].reshape(T, -1)
            np.testing.assert_allclose(out, col, rtol=1e-5, atol=1e-6)


def test_thread_counts_give_identical_bits(models, store):
    rng = np.random.default_rng(11)
    gd = rng.standard_normal((T, D_MODEL)).astype(np.float32)
    em, es, _keep = edge_model_and_store(T=9, n_layers=2, d_model=24, n_heads=3, d_head=8, d_ff=40, n_latents=11)
    try:
        runs = []
        for n in (1, 2, 3):
            nw.set_num_threads(n)
            runs.append([nw.derive(models["all"], store, d, 1, direction=gd if d in GRAD_DSTS else None) for d in WRITE_FAMILY]
                        + [nw.derive(em, es, d, *edge_args(d)[:1], **edge_args(d)[1]) for d in EDGE_DSTS]
                        + [nw.token_writes(models["all"], store, "mlp_neuron", 1, nw.neurons_at_token(2, 48))])
        for other in runs[1:]:
            assert all(np.array_equal(a, b) for a, b in zip(runs[0], other))
    finally:
        nw.set_num_threads(0)


# ------------------------------------------------------------------------------- out=


def test_derive_out(models, store):
    want = nw.derive(models["all"], store, "unflattened_attn_write_norm", 2)
    out = np.full(want.shape, 7.0, np.float32)
    assert nw.derive(models["all"], store, "unflattened_attn_write_norm", 2, out=out) is out
    assert np.array_equal(out, want)
    for bad in (np.full((T, T), 7.0, np.float32), np.full(want.shape, 7.0, np.float64), np.full(want.shape[::-1], 7.0, np.float32).T):
        before = bad.copy()
        with pytest.raises(nw.NodeWriteValueError):
            nw.derive(models["all"], store, "unflattened_attn_write_norm", 2, out=bad)
        assert np.array_equal(bad, before)
    with pytest.raises(TypeError):
        nw.derive(models["all"], store, "mlp_write_to_final_residual_grad", 0, g())  # keyword-only


# ----------------------------------------------------------------------- hostile callers


def test_new_objects_refused(store, models):
    m = nw.Model.__new__(nw.Model)
    s = nw.ActivationStore.__new__(nw.ActivationStore)
    for call in (lambda: nw.derive(m, store, "mlp_write_norm", 0),
                 lambda: nw.derive(models["all"], s, "mlp_write_norm", 0),
                 lambda: nw.token_writes(m, store, "mlp_neuron", 0, [[0, 0]]),
                 lambda: nw.node_write_to_direction(models["all"], s, nw.NodeIndex("mlp_neuron", 0, (0, 0)), g())):
        with pytest.raises(nw.NodeWriteValueError, match="not initialised"):
            call()


@needs_torch
def test_torch_neg_conj_directions_refused(models, store):
    gt = torch.from_numpy(g().copy())
    with pytest.raises(nw.NodeWriteValueError, match="negative bit"):
        nw.derive(models["all"], store, "mlp_write_to_final_residual_grad", 0, direction=torch._neg_view(gt))
    with pytest.raises(nw.NodeWriteValueError, match="negative bit"):
        nw.node_write_to_direction(models["all"], store, nw.NodeIndex("mlp_neuron", 0, (0, 0)), torch._neg_view(gt))
    with pytest.raises(nw.NodeWriteValueError):
        nw.derive(models["all"], store, "mlp_write_to_final_residual_grad", 0, direction=gt.to(torch.complex64).conj())
    out = torch.full((T, M["d_ff"]), 7.0)
    with pytest.raises(nw.NodeWriteValueError, match="negative bit"):
        nw.derive(models["all"], store, "mlp_write_norm", 0, out=torch._neg_view(out))
    assert torch.all(out == 7.0)
    # a resolved view is fine
    want = nw.derive(models["all"], store, "mlp_write_to_final_residual_grad", 0, direction=-gt)
    got = nw.derive(models["all"], store, "mlp_write_to_final_residual_grad", 0, direction=torch._neg_view(gt).resolve_neg())
    assert np.array_equal(want, got)


def test_keyboard_interrupt_in_dst_name_enum(models, store):
    class Bad:
        @property
        def value(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nw.derive(models["all"], store, Bad(), 0)


def test_few_direction_rows_into_a_used_out():
    """A direction with at most 4 consecutive non-zero rows (TDB's last-row gradient) into an
    `out=` that holds old values: the product's column blocks and the other rows' zeros run as
    one set of tasks. Same bits as a fresh output (zeroed by the binding, a different path),
    on 1, 2 and 3 threads, and the float64 reference; 5 rows and scattered rows take the other
    paths and must agree too."""
    rng = np.random.default_rng(21)
    T_, d_model, d_ff = 100, 40, 300  # two product tasks (256 columns each), four zero tasks (32 rows)
    model = nw.Model(n_layers=1, d_model=d_model, n_heads=1, d_head=1, d_ff=d_ff)
    w_out = rng.standard_normal((d_ff, d_model), dtype=np.float32)
    model.set_weight("mlp.to_residual", 0, w_out)
    post = rng.standard_normal((T_, d_ff), dtype=np.float32)
    st = nw.ActivationStore()
    st.put("mlp.post_act", 0, post)
    dense = rng.standard_normal((T_, d_model), dtype=np.float32)
    before = nw.get_num_threads()
    try:
        for rows in ([T_ - 1], [0], [40, 41], [96, 97, 98, 99], [10, 11, 12, 13, 14], [3, 50]):
            g = np.zeros_like(dense)
            g[rows] = dense[rows]
            want = post.astype(np.float64) * (g.astype(np.float64) @ w_out.astype(np.float64).T)
            fresh = nw.derive(model, st, "mlp_write_to_final_residual_grad", 0, direction=g)
            np.testing.assert_allclose(fresh, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
            for threads in (1, 2, 3):
                nw.set_num_threads(threads)
                out = np.full((T_, d_ff), np.nan, np.float32)
                nw.derive(model, st, "mlp_write_to_final_residual_grad", 0, direction=g, out=out)
                np.testing.assert_array_equal(out, fresh, err_msg=f"rows {rows}, {threads} threads")
    finally:
        nw.set_num_threads(before)
