"""The per-sequence-token attention DSTs read attn.v_out (z = sum_k p v, TransformerLens's hook_z)
when the store holds it: the same numbers as the p . v route within 1e-5 x max(1, max |value|)
(float32 sums in another order, not bit for bit), a float64 reference, and a refused shape."""

from __future__ import annotations

import numpy as np
import pytest

import nodewrite as nw

T, D, H, DH = 9, 40, 3, 8
DSTS = ("attn_write_norm_per_sequence_token", "attn_write_to_final_residual_grad_per_sequence_token")


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((T, T, H))
    logits[np.triu_indices(T, 1)] = -np.inf
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    v = rng.standard_normal((T, H, DH)).astype(np.float32)
    w_o = (rng.standard_normal((H, DH, D)) * 0.2).astype(np.float32)
    model = nw.Model(1, D, H, DH, 4 * D)
    model.set_weight("attn.to_residual", 0, w_o)
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, p)
    store.put("attn.v", 0, v)
    z = np.einsum("qkh,khe->qhe", p.astype(np.float64), v.astype(np.float64))
    return rng, model, store, p, v, w_o, z


def _directions(rng):
    dense = rng.standard_normal((T, D)).astype(np.float32)
    dense[[2, 5]] = 0
    return {"dense": dense, "shared": rng.standard_normal(D).astype(np.float32)}


def _close(got, want):
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got.astype(np.float64) - want).max() <= 1e-5 * scale


def test_both_routes_and_a_float64_reference_agree():
    rng, model, store, p, v, w_o, z = _setup()
    gs = _directions(rng)
    before = {("norm", None): nw.derive(model, store, DSTS[0], 0)}
    for name, g in gs.items():
        before[("proj", name)] = nw.derive(model, store, DSTS[1], 0, direction=g)
    store.put("attn.v_out", 0, z.astype(np.float32))
    heads = np.einsum("qhe,hed->qhd", z, w_o.astype(np.float64))  # (T, H, d_model) in float64
    got = nw.derive(model, store, DSTS[0], 0)
    _close(got, before[("norm", None)])
    _close(got, np.linalg.norm(heads, axis=-1))
    for name, g in gs.items():
        got = nw.derive(model, store, DSTS[1], 0, direction=g)
        _close(got, before[("proj", name)])
        g64 = np.broadcast_to(g.astype(np.float64), (T, D))
        _close(got, np.einsum("qhd,qd->qh", heads, g64))
        if name == "dense":
            assert not got[[2, 5]].any(), "zero rows of the direction give exact zeros"


def test_v_out_is_what_is_read():
    rng, model, store, p, v, w_o, z = _setup(1)
    g = _directions(rng)["dense"]
    base = nw.derive(model, store, DSTS[1], 0, direction=g)
    store.put("attn.v_out", 0, (2 * z).astype(np.float32))
    _close(nw.derive(model, store, DSTS[1], 0, direction=g), 2 * base.astype(np.float64))


def test_a_v_out_of_the_wrong_shape_is_refused_naming_it():
    _, model, store, p, v, w_o, z = _setup(2)
    store.put("attn.v_out", 0, z[:-1].astype(np.float32))
    out = np.full((T, H), 7.0, np.float32)
    with pytest.raises(nw.NodeWriteError, match="attn.v_out"):
        nw.derive(model, store, DSTS[0], 0, out=out)
    assert (out == 7.0).all(), "bad input writes nothing"
