"""Threads: 8 Python threads x many calls on a shared model and store give exactly the serial
results (the GIL is released around the C calls, so they really run at once); a writer
replacing store entries and weights while readers derive never crashes and never yields
anything but an old or a new answer."""

import sys
import threading
import time

import numpy as np
import pytest

import nodewrite as nw
import nw_fixtures as F

N_THREADS = 8
ROUNDS = 100

CASES = [c for c in F.cases() if "error" not in c]


def run_threads(target, n=N_THREADS):
    errors = []
    barrier = threading.Barrier(n)

    def wrap(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_eight_threads_equal_serial():
    models = {k: F.make_model(k) for k in ("none", "single", "multi")}
    store = F.make_store()
    nodes = [(c["autoencoders"], F.node_of(c)) for c in CASES]
    derivers = [nw.NodeWriteDeriver(models[k], n) for k, n in nodes]
    serial_full = [nw.node_write(models[k], store, n) for k, n in nodes]
    serial_vec = [d.derive_vector(store) for d in derivers]
    by_kind = {k: [n for kk, n in nodes if kk == k] for k in models}
    serial_batch = {k: nw.node_write_vectors(models[k], store, by_kind[k]) for k in models}
    mismatches = []

    def work(i):
        rng = np.random.default_rng(i)
        for _ in range(ROUNDS):
            j = int(rng.integers(len(nodes)))
            k, n = nodes[j]
            if not np.array_equal(nw.node_write(models[k], store, n), serial_full[j]):
                mismatches.append(("node_write", j))
            vec, tok = derivers[j].derive_vector(store)
            if tok != serial_vec[j][1] or not np.array_equal(vec, serial_vec[j][0]):
                mismatches.append(("derive_vector", j))
            if not np.array_equal(derivers[j].derive(store), serial_full[j]):
                mismatches.append(("derive", j))
            kind = ("none", "single", "multi")[int(rng.integers(3))]
            v, r = nw.node_write_vectors(models[kind], store, by_kind[kind])
            if not (np.array_equal(v, serial_batch[kind][0]) and np.array_equal(r, serial_batch[kind][1])):
                mismatches.append(("node_write_vectors", kind))
            # Errors from several threads: each thread sees its own message.
            with pytest.raises(IndexError, match=str(F.n_tokens() + i)):
                nw.node_write(models["none"], store, nw.NodeIndex("mlp_neuron", 0, (F.n_tokens() + i, 0)))

    run_threads(work)
    assert mismatches == []


def ticks_during(call):
    """How often a pure-Python counter thread ran during call(). The switch interval is made
    longer than the call, so a call that holds the GIL lets the counter run 0 times (checked
    with sum(range(...)), which holds it); a call that releases the GIL lets it run all along."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.2)
    go, stop = threading.Event(), threading.Event()
    ticks = [0]

    def counter():
        go.wait()
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=counter)
    t.start()
    try:
        go.set()
        time.sleep(0.02)  # the counter runs, then this thread takes the GIL back
        before = ticks[0]
        call()
        after = ticks[0]
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    return after - before


def test_gil_is_released_during_the_computation():
    d_model, n_heads, d_head, T = 768, 12, 64, 48
    rng = np.random.default_rng(0)
    model = nw.Model(n_layers=1, d_model=d_model, n_heads=n_heads, d_head=d_head, d_ff=4, causal=False)  # a full pattern
    model.set_weight("attn.to_residual", 0, rng.standard_normal((n_heads, d_head, d_model), dtype=np.float32))
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, rng.random((T, T, n_heads), dtype=np.float32))
    store.put("attn.v", 0, rng.standard_normal((T, n_heads, d_head), dtype=np.float32))
    nodes = [nw.NodeIndex("attention_head", 0, (q, k, h)) for q in range(T) for k in range(q + 1) for h in range(n_heads)]
    assert ticks_during(lambda: sum(range(10**6))) == 0, "the measurement cannot tell"
    result = []
    during = ticks_during(lambda: result.append(nw.node_write_vectors(model, store, nodes)))
    assert result[0][0].shape == (len(nodes), d_model)
    assert during > 100, f"the counter thread ran only {during} times during the call"


def test_writer_and_readers_never_crash():
    """Store entries and borrowed weights replaced while 6 threads derive: every result is the
    answer for the old or the new values (or the documented 'modified during the call'
    ValueError); never a crash or a mix."""
    model = F.make_model()
    store = F.make_store()
    act_a = np.array(F.tensors()["activations.0.mlp.post_act"])
    act_b = 2.0 * act_a
    node = nw.NodeIndex("mlp_neuron", 0, (5, 8))
    deriver = nw.NodeWriteDeriver(model, node)
    store.put("mlp.post_act", 0, act_a)
    ans_a = deriver.derive(store)
    store.put("mlp.post_act", 0, act_b)
    ans_b = deriver.derive(store)
    w_attn = np.array(F.tensors()["weights.0.attn.to_residual"])
    bad = []
    stop = threading.Event()

    def work(i):
        if i == 0:
            for r in range(300):
                store.put("mlp.post_act", 0, act_a if r % 2 else act_b)
                model.set_weight("attn.to_residual", 0, np.array(w_attn), copy=False)
            stop.set()
            return
        while not stop.is_set():
            for fn in (deriver.derive, lambda s: nw.node_write(model, s, node)):
                try:
                    out = fn(store)
                except ValueError as e:
                    assert "changing" in str(e)
                    continue
                if not (np.array_equal(out, ans_a) or np.array_equal(out, ans_b)):
                    bad.append(out)
            out = nw.node_write(model, store, nw.NodeIndex("attention_head", 0, (4, 1, 2)))
            F.assert_matches(out, F.tensors()["expected.c005"], 4)

    run_threads(work, n=6)
    assert bad == []


def test_kept_threads_survive_fork():
    """The library keeps its helper threads between calls; a forked child has none and must make
    its own (and a parent's calls after the fork must still work), with the same bits."""
    from nw_child import run_in_child

    out = run_in_child("""
    import os, numpy as np, nodewrite as nw
    rng = np.random.default_rng(0)
    T, D, F = 256, 64, 4096  # both calls above the kernels' thread thresholds
    m = nw.Model(n_layers=1, d_model=D, n_heads=2, d_head=8, d_ff=F)
    m.set_weight("mlp.to_residual", 0, rng.standard_normal((F, D), dtype=np.float32))
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, rng.standard_normal((T, F), dtype=np.float32))
    g = rng.standard_normal((T, D), dtype=np.float32)
    nw.set_num_threads(2)
    want = nw.derive(m, s, "mlp_write_to_final_residual_grad", 0, direction=g)
    idx = np.stack([np.full(F, 7), np.arange(F)], 1)
    want_rows = nw.node_writes(m, s, "mlp_neuron", 0, idx)
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            ok = all(np.array_equal(nw.derive(m, s, "mlp_write_to_final_residual_grad", 0, direction=g), want)
                     and np.array_equal(nw.node_writes(m, s, "mlp_neuron", 0, idx), want_rows) for _ in range(5))
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert np.array_equal(nw.derive(m, s, "mlp_write_to_final_residual_grad", 0, direction=g), want)
    print("ok")
    """)
    assert out.strip().endswith("ok")
