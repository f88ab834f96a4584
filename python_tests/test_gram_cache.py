"""The attention write norms keep each attn.to_residual weight's Gram matrices between calls. A
borrowed weight is compared byte for byte with the values its Grams came from, so any change
between calls — one element, in a contiguous view, in TDB's transposed layout, in a strided view
that is never cached — gives the norms of the new values, bit for bit a fresh model's; a copied
weight is the library's own and does not change; threads share the cache.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import nodewrite as nw

NORMS = ["unflattened_attn_write_norm", "attn_write_norm", "attn_write_norm_per_sequence_token"]
T, H, DH, D = 40, 3, 8, 24


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random((T, T, H), dtype=np.float32) * np.tril(np.ones((T, T), np.float32))[:, :, None]
    v = rng.standard_normal((T, H, DH), dtype=np.float32)
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, p)
    store.put("attn.v", 0, v)
    return rng, store


def model_with(w, copy):
    model = nw.Model(n_layers=1, d_model=D, n_heads=H, d_head=DH, d_ff=4)
    model.set_weight("attn.to_residual", 0, w, copy=copy)
    return model


def weight_views(rng):
    """(name, the view handed to set_weight) — each writable, each reading its own memory."""
    contiguous = rng.standard_normal((H, DH, D), dtype=np.float32)
    tdb = rng.standard_normal((D, H * DH), dtype=np.float32).T.reshape(H, DH, D)  # TDB's W_O: out_proj.weight.T
    assert tdb.strides == (DH * 4, 4, H * DH * 4)
    strided = rng.standard_normal((H, DH, 2 * D), dtype=np.float32)[:, :, ::2]  # gaps: never cached
    return [("contiguous", contiguous), ("tdb-transposed", tdb), ("strided", strided)]


@pytest.mark.parametrize("dst", NORMS)
def test_a_change_to_a_borrowed_weight_is_seen(dst):
    rng, store = inputs()
    for name, w in weight_views(rng):
        model = model_with(w, copy=False)
        before = nw.derive(model, store, dst, 0)
        assert np.array_equal(nw.derive(model, store, dst, 0), before), name  # reused: same bits
        for h, d, m in [(H - 1, DH - 1, D - 1), (0, 0, 0), (1, 3, 5)]:
            old = w[h, d, m]
            w[h, d, m] = old * 3 + 1  # one element
            got = nw.derive(model, store, dst, 0)
            want = nw.derive(model_with(w.copy(), copy=True), store, dst, 0)
            assert np.array_equal(got, want), (name, h, d, m)
            assert not np.array_equal(got, before), (name, h, d, m)
            w[h, d, m] = old  # and back
            assert np.array_equal(nw.derive(model, store, dst, 0), before), (name, h, d, m)


def test_a_copied_weight_is_the_library_s_own():
    rng, store = inputs(1)
    w = rng.standard_normal((H, DH, D), dtype=np.float32)
    model = model_with(w, copy=True)
    before = nw.derive(model, store, NORMS[0], 0)
    w *= 2  # the caller's array, not the model's copy
    assert np.array_equal(nw.derive(model, store, NORMS[0], 0), before)


def test_setting_the_weight_again_replaces_its_grams():
    rng, store = inputs(2)
    a, b = (rng.standard_normal((H, DH, D), dtype=np.float32) for _ in range(2))
    for copy in (False, True):
        model = model_with(a, copy=copy)
        nw.derive(model, store, NORMS[0], 0)
        model.set_weight("attn.to_residual", 0, b, copy=copy)
        want = nw.derive(model_with(b.copy(), copy=True), store, NORMS[0], 0)
        assert np.array_equal(nw.derive(model, store, NORMS[0], 0), want)


def test_threads_share_one_model():
    rng, store = inputs(3)
    results, errors = {}, []
    for name, w in weight_views(rng):
        model = model_with(w, copy=False)
        want = {dst: nw.derive(model_with(w.copy(), copy=True), store, dst, 0) for dst in NORMS}

        def work(i, model=model, want=want):
            try:
                for r in range(20):
                    dst = NORMS[(i + r) % len(NORMS)]
                    if not np.array_equal(nw.derive(model, store, dst, 0), want[dst]):
                        errors.append((name, i, r, dst))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((name, i, repr(e)))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results[name] = not errors
    assert not errors, errors[:5]
