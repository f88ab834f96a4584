"""The attention members of the write family read p in place when it is float32 with (key, head)
contiguous rows, and through a per-row reader otherwise (other dtypes, strides, TDB's layouts):
both must give the same bits. Shapes around the kernel's blocks (24 queries, 192 keys), head
counts that do not fill a vector (1, 3, 17), d_head 1, directions dense, one row, scattered rows,
shared; NaN and Inf in p and in the direction.
"""

from __future__ import annotations

import numpy as np
import pytest

import nodewrite as nw
from edge_inputs import EDGE_DSTS, WRITE_FAMILY, edge_args, edge_model_and_store

# The write family's attention members (the edge DSTs read p through the node path: test_edges).
ATTN = [d for d in WRITE_FAMILY if "attn_write" in d and "layer" not in d]


def layer(T, heads, d_head, d_model, seed):
    rng = np.random.default_rng(seed)
    model = nw.Model(n_layers=1, d_model=d_model, n_heads=heads, d_head=d_head, d_ff=4)
    model.set_weight("attn.to_residual", 0, rng.standard_normal((heads, d_head, d_model), dtype=np.float32))
    p = (rng.random((T, T, heads), dtype=np.float32) * np.tril(np.ones((T, T), np.float32))[:, :, None])
    v = rng.standard_normal((T, heads, d_head), dtype=np.float32)
    return model, p, v, rng


def derive_with(model, p, v, dst, g):
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, p)
    store.put("attn.v", 0, v)
    return nw.derive(model, store, dst, 0, direction=g)


def directions(rng, T, d_model):
    dense = rng.standard_normal((T, d_model), dtype=np.float32)
    last = np.zeros((T, d_model), np.float32)
    last[-1] = dense[-1]
    scattered = np.zeros((T, d_model), np.float32)
    scattered[::3] = dense[::3]
    return [None, dense, last, scattered, dense[0].copy()]


def p_variants(p):
    """Same values, other layouts: a strided view, float64, and p as TDB's [head, q, k] layout view."""
    strided = np.ascontiguousarray(p.transpose(2, 0, 1)).transpose(1, 2, 0)
    padded = np.zeros((p.shape[0], p.shape[1], p.shape[2] + 1), np.float32)
    padded[:, :, : p.shape[2]] = p
    return {"strided": strided, "float64": p.astype(np.float64), "padded heads": padded[:, :, : p.shape[2]]}


@pytest.mark.parametrize("T,heads,d_head", [(1, 1, 1), (5, 3, 2), (30, 17, 3), (50, 2, 9), (230, 3, 8)])
def test_reader_path_gives_the_same_bits(T, heads, d_head):
    model, p, v, rng = layer(T, heads, d_head, 16, T * 31 + heads)
    for g in directions(rng, T, 16):
        for dst in ATTN:
            if ("_grad" in dst) != (g is not None):
                continue
            want = derive_with(model, p, v, dst, g)
            for name, q in p_variants(p).items():
                got = derive_with(model, q, v, dst, g)
                np.testing.assert_array_equal(got, want, err_msg=f"{dst} with p {name}")


def test_float16_p_equals_its_float32_values():
    model, p, v, rng = layer(40, 3, 4, 16, 7)
    p16 = p.astype(np.float16)
    g = rng.standard_normal((40, 16), dtype=np.float32)
    for dst in ATTN:
        gg = g if "_grad" in dst else None
        np.testing.assert_array_equal(derive_with(model, p16, v, dst, gg), derive_with(model, p16.astype(np.float32), v, dst, gg))


def test_nan_and_inf_propagate_like_the_product():
    T, heads = 26, 3
    model, p, v, rng = layer(T, heads, 4, 16, 11)
    p[20, 3, 1] = np.nan
    p[25, 0, 2] = np.inf
    g = rng.standard_normal((T, 16), dtype=np.float32)
    g[7, 5] = np.nan
    out = derive_with(model, p, v, "unflattened_attn_write_to_final_residual_grad", g)
    assert np.isnan(out[20, 3, 1]) and not np.isnan(out[20, 2, 1])
    assert np.isinf(out[25, 0, 2]) or np.isnan(out[25, 0, 2])
    assert np.isnan(out[7, :8]).all() and not np.isnan(out[8]).any()
    assert not out[7, 8:].any()  # above the diagonal: exact zeros even in a NaN row
    sums = derive_with(model, p, v, "attn_write_to_final_residual_grad_per_sequence_token", g)
    assert np.isnan(sums[20, 1]) and np.isnan(sums[7]).all() and np.isfinite(sums[8]).all()


def test_large_outputs_streamed_give_the_same_bits():
    """Norm outputs of 16 MiB and more (NWK_STREAM_MIN_BYTES) read float32 p rows in place and are written with
    non-temporal stores (zeros above the diagonal included): same bits as the per-row reader,
    into fresh outputs, recycled outputs left full of NaN, and `out=` arrays full of NaN."""
    T, heads = 600, 12  # unflattened 17 MB (streamed), flattened 8.7 MB (cached stores)
    model, p, v, _ = layer(T, heads, 4, 8, 5)
    strided = p_variants(p)["strided"]
    for dst in ("unflattened_attn_write_norm", "attn_write_norm"):
        want = derive_with(model, strided, v, dst, None)
        for _ in range(3):
            got = derive_with(model, p, v, dst, None)
            np.testing.assert_array_equal(got, want, err_msg=dst)
            got.fill(np.nan)  # released below: the next output may be this mapping
            del got
        store = nw.ActivationStore()
        store.put("attn.qk_probs", 0, p)
        store.put("attn.v", 0, v)
        out = np.full(want.shape, np.nan, np.float32)
        nw.derive(model, store, dst, 0, out=out)
        np.testing.assert_array_equal(out, want, err_msg=f"{dst} out=")


def test_edge_dsts_read_p_and_v_in_any_layout_with_the_same_bits():
    """The edge DSTs (derive's node path) that read attn.qk_probs / attn.v: the same bits from p and v
    as strided views, float64 and padded-head views as from contiguous float32."""
    m, s, _keep = edge_model_and_store(T=9, n_layers=2, d_model=16, n_heads=3, d_head=4, d_ff=10, n_latents=5)
    reads = [d for d in EDGE_DSTS if {"attn.qk_probs", "attn.v"} & set(nw.dst_info(d).activations)]
    assert reads
    want = {d: nw.derive(m, s, d, edge_args(d)[0], **edge_args(d)[1]) for d in reads}
    for L in range(2):
        p, v = s.get("attn.qk_probs", L), s.get("attn.v", L)
        for name, (q, w) in {"strided": (p_variants(p)["strided"], np.ascontiguousarray(v.transpose(1, 0, 2)).transpose(1, 0, 2)),
                             "float64": (p.astype(np.float64), v.astype(np.float64)),
                             "padded heads": (p_variants(p)["padded heads"], v)}.items():
            s.put("attn.qk_probs", L, q)
            s.put("attn.v", L, w)
            for d in reads:
                np.testing.assert_array_equal(nw.derive(m, s, d, edge_args(d)[0], **edge_args(d)[1]), want[d],
                                              err_msg=f"{d} with p and v {name} at layer {L}")
        s.put("attn.qk_probs", L, p)
        s.put("attn.v", L, v)
