"""Explicit layouts: ActivationStore.put(name, layer, tensor, layout=..., batch=...) (issue 10).

Shape checks alone cannot tell (heads, q, k) from (q, k, heads) when T equals the head count: a
tensor put in the wrong layout then gives a silently wrong answer. layout= says which layout a
tensor has and nodewrite views it by strides (no copy); batch= picks one element of a batch.
"""

from __future__ import annotations

import numpy as np
import pytest

import nodewrite as nw

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

H, D_HEAD, D_MODEL, D_FF = 4, 3, 8, 5
T = H  # the ambiguous case


def make(seed=0, T=T, B=3):
    rng = np.random.default_rng(seed)
    model = nw.Model(n_layers=1, d_model=D_MODEL, n_heads=H, d_head=D_HEAD, d_ff=D_FF)
    w_o = rng.standard_normal((H, D_HEAD, D_MODEL)).astype(np.float32)
    w_out = rng.standard_normal((D_FF, D_MODEL)).astype(np.float32)
    model.set_weight("attn.to_residual", 0, w_o)
    model.set_weight("mlp.to_residual", 0, w_out)
    # TransformerLens's layouts: pattern (batch, head, q, k), v (batch, pos, head, d_head).
    pattern = rng.random((B, H, T, T)).astype(np.float32)
    pattern *= np.tril(np.ones((T, T), np.float32))
    pattern /= pattern.sum(-1, keepdims=True)
    v = rng.standard_normal((B, T, H, D_HEAD)).astype(np.float32)
    post = rng.standard_normal((B, T, D_FF)).astype(np.float32)
    return model, w_o, w_out, pattern, v, post


def all_heads(T):
    q, k, h = np.meshgrid(np.arange(T), np.arange(T), np.arange(H), indexing="ij")
    return np.stack([q.ravel(), k.ravel(), h.ravel()], 1).astype(np.int64)


def reference_writes(w_o, pattern_hqk, v_thd):
    """w(q,k,h) = pattern[h,q,k] * v[k,h] @ W_O[h], rows in all_heads order, float64."""
    idx = all_heads(pattern_hqk.shape[1])
    q, k, h = idx.T
    return (pattern_hqk[h, q, k][:, None] * np.einsum("nd,ndm->nm", v_thd[k, h].astype(np.float64), w_o[h].astype(np.float64)))


def close(a, b, tol=1e-5):
    return np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b)))


def test_shape_checks_alone_cannot_tell_the_layout_the_causal_model_refuses_and_layout_gives_the_right_one():
    model, w_o, _, pattern, v, _ = make()
    want = reference_writes(w_o, pattern[0], v[0])
    hqk = np.ascontiguousarray(pattern[0])  # (heads, q, k): T == heads, so the shape fits (q, k, heads) too
    assert hqk.shape == (T, T, H)

    wrong = nw.ActivationStore()
    wrong.put("attn.qk_probs", 0, hqk)  # accepted: the shape cannot tell
    wrong.put("attn.v", 0, v[0])
    # read as (q, k, h) it has mass above the diagonal: the causal model refuses it, naming the layout
    with pytest.raises(nw.NodeWriteValueError, match='layout="hqk"'):
        nw.node_writes(model, wrong, "attention_head", 0, all_heads(T))

    right = nw.ActivationStore()
    right.put("attn.qk_probs", 0, hqk, layout="hqk")
    right.put("attn.v", 0, v[0])
    assert close(nw.node_writes(model, right, "attention_head", 0, all_heads(T)), want)


@pytest.mark.parametrize("b", [0, 1, 2, -1])
def test_batched_tl_layouts_by_strides(b):
    model, w_o, w_out, pattern, v, post = make(seed=1, T=6)
    s = nw.ActivationStore()
    s.put("attn.qk_probs", 0, pattern, layout="bhqk", batch=b)
    s.put("attn.v", 0, v, layout="bthd", batch=b)
    s.put("mlp.post_act", 0, post, layout="btn", batch=b)
    assert s.get("attn.qk_probs", 0) is pattern  # the object as passed: no copy
    got = nw.node_writes(model, s, "attention_head", 0, all_heads(6))
    assert close(got, reference_writes(w_o, pattern[b], v[b]))
    t, n = np.meshgrid(np.arange(6), np.arange(D_FF), indexing="ij")
    idx = np.stack([t.ravel(), n.ravel()], 1)
    want = post[b][t.ravel(), n.ravel()][:, None] * w_out[n.ravel()]
    assert close(nw.node_writes(model, s, "mlp_neuron", 0, idx), want)
    # per-query head sums through derive, too
    per_head = nw.derive(model, s, "attn_write_norm_per_sequence_token", 0)
    ref = reference_writes(w_o, pattern[b], v[b]).reshape(6, 6, H, D_MODEL).sum(1)
    assert close(per_head, np.linalg.norm(ref, axis=-1))


def test_layout_reads_in_place():
    model, w_o, _, pattern, v, _ = make(seed=2)
    s = nw.ActivationStore()
    s.put("attn.qk_probs", 0, pattern, layout="bhqk", batch=1)
    s.put("attn.v", 0, v, layout="bthd", batch=1)
    before = nw.node_writes(model, s, "attention_head", 0, all_heads(T))
    pattern[1] *= 2.0  # seen by the next derive: the store reads the caller's memory
    after = nw.node_writes(model, s, "attention_head", 0, all_heads(T))
    assert close(after, 2.0 * before)


def test_every_permutation_of_qkh_and_case():
    import itertools

    model, w_o, _, pattern, v, _ = make(seed=3, T=5)
    want = reference_writes(w_o, pattern[0], v[0])
    qkh = np.ascontiguousarray(pattern[0].transpose(1, 2, 0))
    for perm in itertools.permutations(range(3)):
        lay = "".join("qkh"[i] for i in perm)
        s = nw.ActivationStore()
        s.put("attn.qk_probs", 0, np.ascontiguousarray(qkh.transpose(perm)), layout=lay.upper() if perm[0] == 2 else lay)
        s.put("attn.v", 0, np.ascontiguousarray(v[0].transpose(1, 0, 2)), layout="htd")
        assert close(nw.node_writes(model, s, "attention_head", 0, all_heads(5)), want), lay


def test_layout_none_is_the_canonical_layout():
    model, w_o, _, pattern, v, _ = make(seed=4)
    s = nw.ActivationStore()
    s.put("attn.qk_probs", 0, np.ascontiguousarray(pattern[0].transpose(1, 2, 0)), layout=None, batch=None)
    s.put("attn.v", 0, v[0], layout="thd")
    assert close(nw.node_writes(model, s, "attention_head", 0, all_heads(T)), reference_writes(w_o, pattern[0], v[0]))


@pytest.mark.parametrize(
    "name, tensor_shape, kwargs, exc, words",
    [
        ("attn.qk_probs", (4, 4, 4), {"layout": "qkx"}, nw.NodeWriteValueError, "not a permutation of 'qkh'"),
        ("attn.qk_probs", (4, 4, 4), {"layout": "qqh"}, nw.NodeWriteValueError, "not a permutation"),
        ("attn.qk_probs", (2, 4, 4, 4), {"layout": "bbqkh"[1:] + "b", "batch": 0}, nw.NodeWriteValueError, "permutation"),
        ("attn.qk_probs", (4, 4, 4), {"layout": "bhqk", "batch": 0}, nw.NodeWriteValueError, "has 4 letters, the tensor 3"),
        ("attn.qk_probs", (2, 4, 4, 4), {"layout": "bhqk"}, nw.NodeWriteValueError, "pass batch="),
        ("attn.qk_probs", (4, 4, 4), {"layout": "hqk", "batch": 0}, nw.NodeWriteValueError, "no batch dimension"),
        ("attn.qk_probs", (4, 4, 4), {"batch": 0}, nw.NodeWriteValueError, "no batch dimension"),
        ("attn.qk_probs", (2, 4, 4, 4), {"layout": "bhqk", "batch": 2}, nw.NodeWriteIndexError, "out of range"),
        ("attn.qk_probs", (2, 4, 4, 4), {"layout": "bhqk", "batch": -3}, nw.NodeWriteIndexError, "out of range"),
        ("attn.qk_probs", (2, 4, 4, 4), {"layout": "bhqk", "batch": 0.0}, nw.NodeWriteValueError, "integer"),
        ("attn.qk_probs", (4, 4, 4), {"layout": 3}, nw.NodeWriteValueError, "layout"),
        ("attn.v", (4, 4, 3), {"layout": "qkh"}, nw.NodeWriteValueError, "permutation of 'thd'"),
        ("mlp.post_act", (4, 5), {"layout": "nt"}, None, None),
        ("resid.delta_mlp", (2, 4, 8), {"layout": "btd", "batch": 1}, None, None),
    ],
)
def test_layout_refusals(name, tensor_shape, kwargs, exc, words):
    s = nw.ActivationStore()
    x = np.zeros(tensor_shape, np.float32)
    if exc is None:
        s.put(name, 0, x, **kwargs)
        assert (name, 0) in s
        return
    with pytest.raises(exc) as e:
        s.put(name, 0, x, **kwargs)
    assert words in str(e.value)
    assert len(s) == 0


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_torch_tensors_in_tl_layouts():
    model, w_o, _, pattern, v, _ = make(seed=5, T=7)
    pt, vt = torch.from_numpy(pattern), torch.from_numpy(v)
    s = nw.ActivationStore()
    s.put("attn.qk_probs", 0, pt, layout="bhqk", batch=2)
    s.put("attn.v", 0, vt, layout="bthd", batch=2)
    assert close(nw.node_writes(model, s, "attention_head", 0, all_heads(7)), reference_writes(w_o, pattern[2], v[2]))
