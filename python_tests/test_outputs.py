"""Output memory of the Python binding: large results live in huge-page mappings that are kept
after release for the next result of the same size (set_output_cache_bytes).

What is checked: a recycled mapping's old contents never show in a new result (the library
writes every element of it, zeros included, when it is not fresh); every derived scalar and
node write equals the same call into a caller's zeroed array, with the cache on and off, from
many threads at once; the limit is validated, applied at once, and 0 keeps nothing.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import nodewrite as nw

T, D_MODEL, HEADS, D_HEAD, D_FF = 600, 32, 4, 8, 2048  # (T, T, heads) floats: 5.8 MB; (T, d_ff): 4.9 MB


def layer():
    rng = np.random.default_rng(5)
    model = nw.Model(n_layers=1, d_model=D_MODEL, n_heads=HEADS, d_head=D_HEAD, d_ff=D_FF)
    model.set_weight("attn.to_residual", 0, rng.standard_normal((HEADS, D_HEAD, D_MODEL), dtype=np.float32))
    model.set_weight("mlp.to_residual", 0, rng.standard_normal((D_FF, D_MODEL), dtype=np.float32))
    p = rng.random((T, T, HEADS), dtype=np.float32) * np.tril(np.ones((T, T), np.float32))[:, :, None]
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, p)
    store.put("attn.v", 0, rng.standard_normal((T, HEADS, D_HEAD), dtype=np.float32))
    store.put("mlp.post_act", 0, rng.standard_normal((T, D_FF), dtype=np.float32))
    g = np.zeros((T, D_MODEL), np.float32)
    g[-1] = rng.standard_normal(D_MODEL)
    return model, store, g


MODEL, STORE, G = layer()
CASES = [
    ("unflattened_attn_write_norm", None),
    ("unflattened_attn_write_to_final_residual_grad", G),
    ("mlp_write_to_final_residual_grad", G),
    ("mlp_write_norm", None),
]


def expected(dst, g):
    shape = nw.derive(MODEL, STORE, dst, 0, direction=g).shape
    out = np.zeros(shape, np.float32)
    return nw.derive(MODEL, STORE, dst, 0, direction=g, out=out)


@pytest.fixture(autouse=True)
def restore_limit():
    limit = nw.get_output_cache_bytes()
    yield
    nw.set_output_cache_bytes(limit)


@pytest.mark.parametrize("dst,g", CASES, ids=[c[0] for c in CASES])
def test_recycled_memory_never_shows(dst, g):
    want = expected(dst, g)
    assert want.nbytes >= 4 << 20
    nw.set_output_cache_bytes(256 << 20)
    for fill in (np.nan, 7.0, -0.0):
        first = nw.derive(MODEL, STORE, dst, 0, direction=g)
        first.fill(fill)  # the caller owns it: any contents
        del first  # its mapping goes back to the cache
        again = nw.derive(MODEL, STORE, dst, 0, direction=g)
        np.testing.assert_array_equal(again, want)
        assert again.ctypes.data % 64 == 0


def test_node_write_from_recycled_memory():
    # (T, d_model) of 4.7 MB: d_model 4096, 300 tokens.
    t2, d_model = 300, 4096
    rng = np.random.default_rng(1)
    model = nw.Model(n_layers=1, d_model=d_model, n_heads=2, d_head=4, d_ff=8, causal=False)  # a full pattern
    model.set_weight("attn.to_residual", 0, rng.standard_normal((2, 4, d_model), dtype=np.float32))
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, rng.random((t2, t2, 2), dtype=np.float32))
    store.put("attn.v", 0, rng.standard_normal((t2, 2, 4), dtype=np.float32))
    node = nw.NodeIndex("attention_head", 0, (t2 - 1, 3, 1))
    want = nw.node_write(model, store, node)
    assert want.nbytes >= 4 << 20 and np.count_nonzero(want[:-1]) == 0
    for _ in range(3):
        first = nw.node_write(model, store, node)
        first.fill(np.nan)
        del first
        np.testing.assert_array_equal(nw.node_write(model, store, node), want)


def test_cache_off_gives_the_same():
    nw.set_output_cache_bytes(0)
    assert nw.get_output_cache_bytes() == 0
    for dst, g in CASES:
        a = nw.derive(MODEL, STORE, dst, 0, direction=g)
        a.fill(3.0)
        del a
        np.testing.assert_array_equal(nw.derive(MODEL, STORE, dst, 0, direction=g), expected(dst, g))


def test_limit_is_validated():
    for bad in (-1, 1.5, "1", None, True):
        with pytest.raises((nw.NodeWriteValueError, TypeError)):
            nw.set_output_cache_bytes(bad)
    nw.set_output_cache_bytes(12345)
    assert nw.get_output_cache_bytes() == 12345
    nw.set_output_cache_bytes(0)
    assert nw.get_output_cache_bytes() == 0


def test_threads_share_the_cache():
    nw.set_output_cache_bytes(64 << 20)  # a few mappings: threads compete for them
    wants = {dst: expected(dst, g) for dst, g in CASES}
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(12):
                dst, g = CASES[rng.integers(len(CASES))]
                out = nw.derive(MODEL, STORE, dst, 0, direction=g)
                if not np.array_equal(out, wants[dst]):
                    errors.append(dst)
                out.fill(rng.standard_normal())
                if rng.integers(2):
                    nw.set_output_cache_bytes(int(rng.integers(0, 64 << 20)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_first_calls_from_fresh_threads_in_a_fresh_process():
    """The cache's first use, and derive's, from 8 threads at once behind a barrier, with no
    warm-up call (a hang or crash fails in the child)."""
    from nw_child import run_in_child

    body = """
    import threading, numpy as np, nodewrite as nw
    T = 600
    m = nw.Model(n_layers=1, d_model=8, n_heads=4, d_head=2, d_ff=4)
    m.set_weight("attn.to_residual", 0, np.ones((4, 2, 8), np.float32))
    s = nw.ActivationStore()
    s.put("attn.qk_probs", 0, np.tril(np.ones((T, T), np.float32))[:, :, None].repeat(4, 2).copy())
    s.put("attn.v", 0, np.ones((T, 4, 2), np.float32))
    barrier = threading.Barrier(8)
    sums = []
    def work(i):
        barrier.wait()
        if i % 2:
            nw.set_output_cache_bytes(i << 20)
        else:
            nw.get_output_cache_bytes()
        for _ in range(3):
            a = nw.derive(m, s, "unflattened_attn_write_norm", 0)  # (T, T, 4): 5.8 MB, a cached mapping
            sums.append(float(a.sum()))
            a.fill(np.nan)
            del a
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert len(sums) == 24 and len(set(sums)) == 1, sums
    print("ok")
    """
    assert run_in_child(body, timeout=120).strip() == "ok"


def test_interrupts_and_odd_counts():
    class Interrupting:
        def __index__(self):
            raise KeyboardInterrupt

    class Exiting:
        def __index__(self):
            raise SystemExit(3)

    with pytest.raises(KeyboardInterrupt):
        nw.set_output_cache_bytes(Interrupting())
    with pytest.raises(SystemExit):
        nw.set_output_cache_bytes(Exiting())
    assert nw.get_output_cache_bytes() >= 0
    np_int = np.int64(1 << 20)
    nw.set_output_cache_bytes(np_int)
    assert nw.get_output_cache_bytes() == 1 << 20
    with pytest.raises((nw.NodeWriteValueError, TypeError)):
        nw.set_output_cache_bytes(1 << 70)
    with pytest.raises(TypeError):
        nw.set_output_cache_bytes()
    with pytest.raises(TypeError):
        nw.get_output_cache_bytes(1)


def test_torch_counts_and_torch_outputs():
    torch = pytest.importorskip("torch", reason="torch not installed")
    nw.set_output_cache_bytes(torch.tensor(8 << 20))
    assert nw.get_output_cache_bytes() == 8 << 20
    for bad in (torch.tensor(-1), torch.tensor([1, 2]), torch.tensor(1.5)):
        with pytest.raises((nw.NodeWriteValueError, TypeError)):
            nw.set_output_cache_bytes(bad)
    # Results handed to torch and released there go back to the cache, and are exact next time.
    want = expected(*CASES[0])
    for _ in range(3):
        t = torch.from_numpy(nw.derive(MODEL, STORE, CASES[0][0], 0))
        t.neg_()
        del t
        np.testing.assert_array_equal(nw.derive(MODEL, STORE, CASES[0][0], 0), want)
