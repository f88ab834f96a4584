"""Borrowed inputs that change under the library, and what a store records of its puts:
- a numpy array or torch tensor whose producer moved or freed its storage after it was put or set
  (numpy's resize(refcheck=False), torch's set_ / resize_) is refused with
  NodeWriteStaleInputError before anything reads it; writing into it in place is not a move;
- ActivationStore.batch is the batch element put(..., batch=) read, one per store;
- a model that is not causal refuses an attn.qk_probs whose T equals n_heads unless the put said
  its layout (the shape cannot tell (head, q, k) from (q, k, head))."""

import numpy as np
import pytest

import nodewrite as nw

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")

T, D, H, DH, F = 4, 8, 2, 4, 6


def model(**kw):
    m = nw.Model(n_layers=2, d_model=D, n_heads=H, d_head=DH, d_ff=F, **kw)
    m.set_weight("mlp.to_residual", 0, np.ones((F, D), np.float32))
    m.set_weight("attn.to_residual", 0, np.ones((H, DH, D), np.float32))
    return m


NODE = nw.NodeIndex("mlp_neuron", 0, (1, 2))
CALLS = [
    lambda m, s: nw.node_write(m, s, NODE),
    lambda m, s: nw.node_writes(m, s, "mlp_neuron", 0, [[1, 2]]),
    lambda m, s: nw.derive(m, s, "mlp_write_norm", 0),
    lambda m, s: nw.NodeWriteDeriver(m, NODE).write(s),
    lambda m, s: nw.NodeWriteDeriver(m, NODE).write_vector(s),
    lambda m, s: nw.node_write_vectors(m, s, [NODE]),
    lambda m, s: nw.node_write_to_direction(m, s, NODE, direction=np.ones(D, np.float32)),
]


@pytest.mark.parametrize("call", range(len(CALLS)))
def test_a_resized_numpy_activation_is_refused_not_read(call):
    m, s = model(), nw.ActivationStore()
    a = np.ones((T, F), np.float32)
    s.put("mlp.post_act", 0, a)
    CALLS[call](m, s)
    a[:] = 2.0  # in place: read as the current values, as always
    assert nw.node_write(m, s, NODE)[1, 0] == 2.0 * 1.0
    a.resize((T * 100, F), refcheck=False)  # numpy moves the data: the old memory is freed
    with pytest.raises(nw.NodeWriteStaleInputError, match="activation mlp.post_act at layer 0.*resize"):
        CALLS[call](m, s)
    s.put("mlp.post_act", 0, a[:T])  # handed over again: read again
    CALLS[call](m, s)


def test_a_resized_borrowed_weight_is_refused():
    m, s = model(), nw.ActivationStore()
    w = np.ones((F, D), np.float32)
    m.set_weight("mlp.to_residual", 0, w, copy=False)
    s.put("mlp.post_act", 0, np.ones((T, F), np.float32))
    d = nw.NodeWriteDeriver(m, NODE)
    w.resize((F * 50, D), refcheck=False)
    with pytest.raises(nw.NodeWriteStaleInputError, match="weight mlp.to_residual at layer 0"):
        nw.node_write(m, s, NODE)
    with pytest.raises(nw.NodeWriteStaleInputError):
        d.write(s)  # the deriver captured it too
    with pytest.raises(nw.NodeWriteError):  # a status, never a crash, for every error raised
        nw.derive(m, s, "mlp_write_to_final_residual_grad", 0, direction=np.ones(D, np.float32))


@needs_torch
@pytest.mark.parametrize("how", ["set_", "resize_", "resize_smaller"])
@pytest.mark.parametrize("call", range(len(CALLS)))
def test_a_torch_tensor_that_moved_is_refused(how, call):
    m, s = model(), nw.ActivationStore()
    t = torch.ones(T, F)
    s.put("mlp.post_act", 0, t)
    CALLS[call](m, s)
    t.mul_(3.0)  # in place (its version moves, nothing else): still read
    assert nw.node_write(m, s, NODE)[1, 0] == 3.0
    if how == "set_":
        t.set_(torch.zeros(T, F))
    elif how == "resize_":
        t.resize_(T * 1000, F)
    else:
        t.resize_(2, F)
    with pytest.raises(nw.NodeWriteStaleInputError, match="torch tensor"):
        CALLS[call](m, s)


def test_store_batch_is_recorded_one_per_store():
    s = nw.ActivationStore()
    assert s.batch is None
    x = np.zeros((3, T, F), np.float32)
    s.put("mlp.post_act", 0, x, layout="btn", batch=-1)
    assert s.batch == 2
    s.put("mlp.post_act", 1, x, layout="btn", batch=2)
    s.put("attn.v", 0, np.zeros((T, H, DH), np.float32))  # no batch dimension: fine
    with pytest.raises(nw.NodeWriteValueError, match="one batch element"):
        s.put("mlp.post_act", 1, x, layout="btn", batch=0)
    assert s.batch == 2 and len(s) == 3
    s.remove("mlp.post_act", 0)
    s.remove("mlp.post_act", 1)
    assert s.batch is None
    s.put("mlp.post_act", 0, x, layout="btn", batch=0)
    s.put("mlp.post_act", 0, x, layout="btn", batch=1)  # replacing the only batched entry
    assert s.batch == 1
    s.clear()
    assert s.batch is None


def test_a_non_causal_model_asks_for_the_layout_when_t_equals_n_heads():
    m = model(causal=False)
    rng = np.random.default_rng(0)
    p = rng.random((H, H, H), dtype=np.float32)  # T == n_heads
    v = rng.standard_normal((H, H, DH), dtype=np.float32)
    bare = nw.ActivationStore()
    bare.put("attn.qk_probs", 0, p)
    bare.put("attn.v", 0, v)
    idx = nw.heads_at(1, 1, m)
    for call in (lambda s: nw.node_writes(m, s, "attention_head", 0, idx),
                 lambda s: nw.derive(m, s, "attn_write_norm_per_sequence_token", 0),
                 lambda s: nw.node_write(m, s, nw.NodeIndex("attention_head", 0, (1, 0, 1)))):
        with pytest.raises(nw.NodeWriteValueError, match="layout="):
            call(bare)
        stated = nw.ActivationStore()
        stated.put("attn.qk_probs", 0, p, layout="qkh")
        stated.put("attn.v", 0, v)
        call(stated)
    # T != n_heads: the shape tells
    other = nw.ActivationStore()
    other.put("attn.qk_probs", 0, rng.random((3, 3, H), dtype=np.float32))
    other.put("attn.v", 0, rng.standard_normal((3, H, DH), dtype=np.float32))
    nw.node_writes(m, other, "attention_head", 0, idx)
