"""One library call per Python call: every operation below crosses the C ABI exactly once once
its names are resolved (they are resolved at import, from the library's tables), counted with
the library's per-thread counter nw_thread_call_count() (nodewrite._core.thread_call_count)."""

import warnings

import numpy as np
import pytest

import nodewrite as nw
from edge_inputs import EDGE_DSTS, WRITE_FAMILY, edge_args, edge_model_and_store, shape_of
from nodewrite import _core

T, L, D, H, DH, F, V, NL = 5, 2, 8, 2, 4, 6, 11, 7


def calls(fn):
    """The number of library calls fn() makes on this thread (the counter's own call excepted)."""
    before = _core.thread_call_count()
    result = fn()
    return _core.thread_call_count() - before, result


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    m = nw.Model(n_layers=L, d_model=D, n_heads=H, d_head=DH, d_ff=F)
    s = nw.ActivationStore()
    for l in range(L):
        m.set_weight("mlp.to_residual", l, rng.standard_normal((F, D)).astype(np.float32))
        m.set_weight("attn.to_residual", l, rng.standard_normal((H, DH, D)).astype(np.float32))
        for nt in ("autoencoder_latent", "mlp_autoencoder_latent", "attention_autoencoder_latent"):
            m.set_autoencoder(nt, l, rng.standard_normal((NL, D)).astype(np.float32), input="resid_delta_mlp")
            s.put(nw.node_type_info(nt).activations[0], l, rng.standard_normal((T, NL)).astype(np.float32))
        p = np.tril(rng.random((T, T, H)).transpose(2, 0, 1)).transpose(1, 2, 0).astype(np.float32)
        s.put("attn.qk_probs", l, np.ascontiguousarray(p))
        s.put("attn.v", l, rng.standard_normal((T, H, DH)).astype(np.float32))
        s.put("mlp.post_act", l, rng.standard_normal((T, F)).astype(np.float32))
        s.put("resid.delta_mlp", l, rng.standard_normal((T, D)).astype(np.float32))
        s.put("resid.delta_attn", l, rng.standard_normal((T, D)).astype(np.float32))
    m.set_weight("unembedding", None, rng.standard_normal((D, V)).astype(np.float32))
    m.set_weight("layer_norm_gain.final", None, np.ones(D, np.float32))
    g = rng.standard_normal((T, D)).astype(np.float32)
    return m, s, g


def test_the_counter_counts_library_calls():
    n, _ = calls(lambda: None)
    assert n == 0
    n, _ = calls(lambda: nw.get_num_threads())
    assert n == 1


NODES = [
    nw.NodeIndex("mlp_neuron", 1, (3, 2)),
    nw.NodeIndex("attention_head", 0, (4, 1, 1)),
    nw.NodeIndex("mlp_autoencoder_latent", 1, (2, 5)),
]


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.node_type)
def test_node_write_is_one_call(setup, node):
    m, s, _ = setup
    n, out = calls(lambda: nw.node_write(m, s, node))
    assert n == 1 and out.shape == (T, D)


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.node_type)
def test_node_write_to_direction_is_one_call(setup, node):
    m, s, g = setup
    n, out = calls(lambda: nw.node_write_to_direction(m, s, node, direction=g))
    assert n == 1 and out.shape == (T, 1)


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.node_type)
def test_the_deriver_is_one_call_to_make_and_one_per_write(setup, node):
    m, s, _ = setup
    n, d = calls(lambda: nw.NodeWriteDeriver(m, node))
    assert n == 1
    assert d.requirements[0][0] == nw.node_type_info(node.node_type).activations[0]
    n, out = calls(lambda: d.write(s))
    assert n == 1 and out.shape == (T, D)
    n, (vec, row) = calls(lambda: d.write_vector(s))
    assert n == 1 and vec.shape == (D,) and row == node.tensor_indices[0]
    assert np.array_equal(out[row], vec)


def test_node_writes_is_one_call(setup):
    m, s, _ = setup
    idx = nw.keys_and_heads_at_query(3, m)
    n, out = calls(lambda: nw.node_writes(m, s, "attention_head", 1, idx))
    assert n == 1 and out.shape == (len(idx), D)
    rows = np.empty(len(idx), np.int64)
    buf = np.empty((len(idx), D), np.float32)
    n, got = calls(lambda: nw.node_writes(m, s, "attention_head", 1, idx, out=buf, token_rows=rows))
    assert n == 1 and got is buf and np.array_equal(buf, out) and (rows == 3).all()


@pytest.mark.parametrize("dst", WRITE_FAMILY)
def test_derive_is_one_call_with_and_without_out(setup, dst):
    m, s, g = setup
    info = nw.dst_info(dst)
    kw = {"direction": g} if info.needs_direction else {}
    n, out = calls(lambda: nw.derive(m, s, dst, 1, **kw))
    assert n == 1, dst
    assert out.ndim == len(info.dims)
    buf = np.full(out.shape, np.nan, np.float32)
    n, got = calls(lambda: nw.derive(m, s, dst, 1, out=buf, **kw))
    assert n == 1 and got is buf
    assert np.array_equal(buf, out)


@pytest.fixture(scope="module")
def edge_setup():
    return edge_model_and_store(T=T, n_layers=L, d_model=D, n_heads=H, d_head=DH, d_ff=F, n_latents=NL)


@pytest.mark.parametrize("dst", EDGE_DSTS)
def test_derive_with_a_node_is_one_call_with_and_without_out(edge_setup, dst):
    """The edge DSTs (nw_derive_node): one call, sized from the store and the tables, also with out=
    and with detach_layer_norm_scale=."""
    m, s, _ = edge_setup
    layer, kw = edge_args(dst)
    n, out = calls(lambda: nw.derive(m, s, dst, layer, **kw))
    assert n == 1, dst
    assert out.shape == shape_of(m, dst, T, NL)
    buf = np.full(out.shape, np.nan, np.float32)
    n, got = calls(lambda: nw.derive(m, s, dst, layer, out=buf, **kw))
    assert n == 1 and got is buf and np.array_equal(buf, out)
    if nw.dst_info(dst).quantity in ("in_edge", "out_edge", "gradient"):
        n, _ = calls(lambda: nw.derive(m, s, dst, layer, detach_layer_norm_scale=True, **kw))
        assert n == 1


def test_a_backward_put_is_one_call():
    s = nw.ActivationStore()
    g = np.zeros((T, F), np.float32)
    n, _ = calls(lambda: s.put("mlp.post_act", 0, g, pass_type="backward"))
    assert n == 1 and ("mlp.post_act", 0, "backward") in s and ("mlp.post_act", 0) not in s
    n, _ = calls(lambda: s.put("resid.post_emb", None, np.zeros((T, D), np.float32)))
    assert n == 1 and s.keys() == [("resid.post_emb", None)]


def test_token_writes_and_top_k_are_one_call(setup):
    m, s, _ = setup
    idx = nw.neurons_at_token(2, m)
    n, out = calls(lambda: nw.token_writes(m, s, "mlp_neuron", 0, idx))
    assert n == 1 and out.shape == (F, V)
    n, top = calls(lambda: nw.top_token_writes(m, s, "mlp_neuron", 0, idx, 3))
    assert n == 1 and isinstance(top, nw.TopTokenWrites) and top.values.shape == (F, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        n, old = calls(lambda: nw.token_writes(m, s, "mlp_neuron", 0, idx, top_k=3))
    assert n == 1 and np.array_equal(old.values, top.values) and np.array_equal(old.token_ids, top.token_ids)


def test_a_refusal_is_the_call_and_its_message(setup):
    """A failing call makes the call and reads its message (nw_last_error_message): two."""
    m, _, _ = setup
    node = nw.NodeIndex("mlp_neuron", 0, (1, 1))
    empty = nw.ActivationStore()
    n, _ = calls(lambda: pytest.raises(nw.NodeWriteKeyError, nw.node_write, m, empty, node))
    assert n == 2


def test_a_store_put_with_layout_and_batch_is_still_one_call(setup):
    """The output is sized from the shape the library was given (after layout= and batch=), not
    from the caller's tensor: TransformerLens-shaped entries cost one call too, also with out=."""
    m, s, g = setup
    rng = np.random.default_rng(3)
    b = nw.ActivationStore()
    pattern = np.tril(rng.random((2, H, T, T))).astype(np.float32)  # (batch, head, q, k)
    b.put("attn.qk_probs", 1, pattern, layout="bhqk", batch=1)
    b.put("attn.v", 1, rng.standard_normal((2, T, H, DH)).astype(np.float32), layout="bthd", batch=1)
    b.put("mlp.post_act", 1, rng.standard_normal((2, T, F)).astype(np.float32), layout="btn", batch=1)
    assert b.batch == 1
    for dst in ("unflattened_attn_write_norm", "attn_write_norm", "mlp_write_norm"):
        n, out = calls(lambda: nw.derive(m, b, dst, 1))
        assert n == 1, dst
        buf = np.empty_like(out)
        n, _ = calls(lambda: nw.derive(m, b, dst, 1, out=buf))
        assert n == 1 and np.array_equal(buf, out)
    n, out = calls(lambda: nw.node_write(m, b, nw.NodeIndex("attention_head", 1, (4, 2, 1))))
    assert n == 1 and out.shape == (T, D)
