"""Hostile pickles of Model and ActivationStore (nodewrite/pickling.py): crafted, truncated and
mismatched states, out-of-band buffers of the wrong size or dtype, read-only and writable buffers,
objects made with __new__. A pickle can run any code, so the contract is not safety against an
attacker: it is that a state that does not describe a valid object is refused with a
NodeWriteError naming what is wrong (or pickle's own error for a damaged stream), never a crash,
and never an object that derives numbers other than the ones its state holds. The top-k helpers of
nodewrite.topk (the reduction behind nodewrite.ray) are checked here too."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import nodewrite as nw
from nodewrite import pickling, topk

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

L, D, H, DH, FF, T = 2, 8, 2, 4, 16, 5


def model_and_store():
    r = np.random.default_rng(0)
    m = nw.Model(L, D, H, DH, FF, layer_norm_epsilon=1e-6, mlp_activation="relu")
    for layer in range(L):
        m.set_weight("mlp.to_residual", layer, r.standard_normal((FF, D)).astype(np.float32))
        m.set_weight("mlp.to_hidden", layer, r.standard_normal((D, FF)).astype(np.float32), copy=False)
    m.set_autoencoder("mlp_autoencoder_latent", 1, r.standard_normal((3, FF)).astype(np.float32), "mlp_post_act",
                      encoder=r.standard_normal((3, FF)).astype(np.float32))
    s = nw.ActivationStore()
    for layer in range(L):
        s.put("mlp.post_act", layer, r.standard_normal((T, FF)).astype(np.float32))
        s.put("mlp.post_act", layer, r.standard_normal((T, FF)).astype(np.float32), pass_type="backward")
    s.put("resid.post_emb", None, r.standard_normal((T, D)).astype(np.float32), pass_type="backward")
    return m, s


def derives(m, s):
    return [nw.derive(m, s, "mlp_write_norm", layer) for layer in range(L)]


def model_state(m):
    """The state restore_model receives (what __reduce_ex__ gives)."""
    fn, (state,) = m.__reduce_ex__(5)
    assert fn is pickling.restore_model
    return state


def test_crafted_model_states_are_refused_naming_what():
    m, _ = model_and_store()
    good = model_state(m)

    def with_(**kw):
        st = dict(good, weights=list(good["weights"]), autoencoders=list(good["autoencoders"]))
        st.update(kw)
        return st

    w0 = good["weights"][0]
    ae = good["autoencoders"][0]
    cases = [
        (with_(dims=(L, D, H, DH)), None),  # a tuple of the wrong length: Python's own unpacking error
        (with_(dims=(L, -D, H, DH, FF)), ["d_model"]),
        (with_(causal="yes"), ["causal"]),
        (with_(facts={"layer_norm_epsilon": -1.0, "mlp_activation": "relu"}), ["layer_norm_epsilon"]),
        (with_(facts={"layer_norm_epsilon": 1e-5, "mlp_activation": "swish"}), ["mlp_activation"]),
        (with_(weights=[(w0[0], w0[1], w0[2][:, :-1], w0[3], w0[4])]), ["mlp.to_residual"]),
        (with_(weights=[(w0[0], L + 3, w0[2], w0[3], w0[4])]), ["layer"]),
        (with_(weights=[("mlp.to_nowhere", 0, w0[2], w0[3], w0[4])]), ["mlp.to_nowhere"]),
        (with_(weights=[(w0[0], w0[1], w0[2].astype(np.int32), "float32", w0[4])]), ["mlp.to_residual"]),
        (with_(weights=[(w0[0], w0[1], "not an array", "float32", w0[4])]), ["mlp.to_residual"]),
        (with_(autoencoders=[(ae[0], ae[1], "mlp_post_act", ae[3][:, :-1]) + tuple(ae[4:])]), ["autoencoder"]),
        (with_(autoencoders=[("mlp_neuron",) + tuple(ae[1:])]), ["mlp_neuron"]),
        (with_(autoencoders=[ae[:2] + ("nowhere",) + tuple(ae[3:])]), ["nowhere"]),
        (with_(autoencoders=[ae[:6] + (((ae[6][0][0][:, :-1], "float32"),) + tuple(ae[6][1:]),)]), ["encoder"]),
        (with_(autoencoders=[ae[:6] + ((ae[6][0], ae[6][1], (np.zeros(FF + 1, np.float32), "float32")),)]), ["pre_bias"]),
    ]
    for st, words in cases:
        with pytest.raises(Exception) as info:
            pickling.restore_model(st)
        if words is None:
            assert isinstance(info.value, (TypeError, ValueError)), repr(info.value)
            continue
        assert isinstance(info.value, nw.NodeWriteError), repr(info.value)
        for w in words:
            assert w in str(info.value), (w, str(info.value))


def test_a_state_whose_dtype_label_lies_is_refused_not_converted():
    """A weight labelled "bfloat16" must hold uint16 bit patterns (numpy has no bfloat16): a
    float32 array under that label is refused, never cast to uint16 (which would truncate every
    value and read the truncated integers' bits as bfloat16 numbers)."""
    pytest.importorskip("torch")
    m, _ = model_and_store()
    st = model_state(m)
    name, layer, a, dtype, copied = st["weights"][0]
    assert dtype == "float32"
    st["weights"] = [(name, layer, a, "bfloat16", copied)] + st["weights"][1:]
    with pytest.raises(nw.NodeWriteValueError, match="bfloat16"):
        pickling.restore_model(st)
    with pytest.raises(nw.NodeWriteValueError, match="bfloat16"):
        pickling.restore_store([("mlp.post_act", 0, np.ones((T, FF), np.float32), "bfloat16", "forward")])


def test_crafted_store_states_are_refused_naming_what():
    good = np.ones((T, FF), np.float32)
    cases = [
        ([("mlp.post_act", 0, good, "float32", "sideways")], ["pass_type"]),
        ([("mlp.post_act", None, good, "float32", "forward")], ["layer"]),
        ([("resid.post_emb", 0, np.ones((T, D), np.float32), "float32", "backward")], ["layer"]),
        ([("mlp.nowhere", 0, good, "float32", "forward")], ["mlp.nowhere"]),
        ([("mlp.post_act", 0, good.astype(np.int16), "float32", "forward")], ["mlp.post_act"]),
        ([("mlp.post_act", 0, "abc", "float32", "forward")], ["mlp.post_act"]),
    ]
    for entries, words in cases:
        with pytest.raises(nw.NodeWriteError) as info:
            pickling.restore_store(entries)
        for w in words:
            assert w in str(info.value), (w, str(info.value))
    # old states (no pass) are forward entries
    s = pickling.restore_store([("mlp.post_act", 0, good, "float32")])
    assert s.keys() == [("mlp.post_act", 0)] and s.keys(pass_type="backward") == []


def test_truncated_and_damaged_pickles_raise_and_never_crash():
    m, s = model_and_store()
    for obj in (m, s):
        for protocol in (2, 4, 5):
            data = pickle.dumps(obj, protocol=protocol)
            for cut in (1, len(data) // 3, len(data) // 2, len(data) - 1):
                with pytest.raises(Exception) as info:
                    pickle.loads(data[:cut])
                assert not isinstance(info.value, (SystemError, MemoryError)), repr(info.value)


def test_out_of_band_buffers_of_the_wrong_size_or_dtype():
    m, s = model_and_store()
    want = derives(m, s)
    for obj in (m, s):
        buffers = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        assert buffers
        raws = [bytes(b.raw()) for b in buffers]
        # one buffer short, one byte short, one too long, missing buffers: an error, never a crash
        for bad in ([raws[0][:-4]] + raws[1:], [raws[0][:-1]] + raws[1:], [raws[0] + b"\0" * 4] + raws[1:], raws[:-1], []):
            with pytest.raises(Exception) as info:
                pickle.loads(data, buffers=bad)
            assert not isinstance(info.value, (SystemError, MemoryError)), repr(info.value)
    # read-only buffers (bytes) are borrowed as they are; writable ones (bytearray) too, and the
    # model reads what the buffer holds now (it borrows them: the documented contract)
    for kind in (bytes, bytearray):
        mb, sb = [], []
        dm = pickle.dumps(m, protocol=5, buffer_callback=mb.append)
        ds = pickle.dumps(s, protocol=5, buffer_callback=sb.append)
        m2 = pickle.loads(dm, buffers=[kind(b.raw()) for b in mb])
        s2 = pickle.loads(ds, buffers=[kind(b.raw()) for b in sb])
        assert all(a.tobytes() == b.tobytes() for a, b in zip(derives(m2, s2), want))
        assert m2.layer_norm_epsilon == 1e-6 and m2.mlp_activation == "relu"
    # a buffer that is another dtype's bytes of the same size is read as the pickle's dtype says
    # (the bytes are the values): the same size in bytes gives an object, and the model borrows it
    mb = []
    dm = pickle.dumps(m, protocol=5, buffer_callback=mb.append)
    swapped = [np.frombuffer(b.raw(), np.uint8)[::-1].copy() for b in mb]
    m3 = pickle.loads(dm, buffers=swapped)
    assert isinstance(m3, nw.Model)


def test_objects_made_with_new_refuse_every_pickling_path():
    for cls in (nw.Model, nw.ActivationStore, type("Sub", (nw.Model,), {})):
        bare = cls.__new__(cls)
        for fn in (lambda: pickle.dumps(bare, protocol=5), lambda: pickle.dumps(bare, protocol=2),
                   lambda: bare.__reduce_ex__(5), lambda: bare.__reduce__(), lambda: __import__("copy").deepcopy(bare)):
            with pytest.raises(nw.NodeWriteValueError, match="not initialised"):
                fn()
    # __setstate__ is not how these objects restore (restore_model / restore_store build new
    # ones): a half-built object given a state stays refused, never half-initialised
    bare = nw.Model.__new__(nw.Model)
    try:
        bare.__setstate__(model_state(model_and_store()[0]))
    except (AttributeError, TypeError, nw.NodeWriteError):
        pass
    with pytest.raises(nw.NodeWriteValueError, match="not initialised"):
        bare.d_model


def test_pickling_while_the_model_changes_is_consistent():
    """A model whose borrowed weight is replaced (the same values, a new array; the old one
    dropped, which is what freeing it is in Python) while other threads pickle it: every unpickled
    model derives the one answer, never a torn read. (A pickle holds a view of the array it
    captured, keeping it alive: unlike a derive, a pickle begun before the replacement sees what
    the caller writes into the old array until it is done; that is the borrow contract.)"""
    from test_hostile_edges import race

    m, s = model_and_store()
    want = derives(m, s)
    w = np.array(model_state(m)["weights"][0][2])
    cur = [w.copy()]
    m.set_weight("mlp.to_residual", 0, cur[0], copy=False)

    def write():
        cur[0] = w.copy()
        m.set_weight("mlp.to_residual", 0, cur[0], copy=False)

    def read():
        m2 = pickle.loads(pickle.dumps(m, protocol=5))
        return all(a.tobytes() == b.tobytes() for a, b in zip(derives(m2, s), want))

    bad = race(read, write, seconds=2.0, readers=2)
    assert not bad, bad[:3]


# ----------------------------------------------------------------------------- nodewrite.topk


def test_topk_requests_are_checked_naming_the_argument():
    for k in (0, -1, True, 1.5, "3", None, np.float64(2)):
        with pytest.raises(nw.NodeWriteValueError, match="k = "):
            topk.check_request(4, 5, "nodes", k)
    with pytest.raises(nw.NodeWriteValueError, match="k <= 20"):
        topk.check_request(4, 5, "nodes", 21)
    topk.check_request(4, 5, "nodes", np.int64(20))
    for tokens, words in (([[1, 2], [3]], "unequal"), (np.ones((2, 3), np.float32), "integer"),
                          (np.ones((2, 3, 4), np.int64), "integer"), (np.zeros((0, 3), np.int64), "no prompts"),
                          ([], "no prompts"), ("abc", None)):
        with pytest.raises(Exception) as info:
            topk.as_token_array(tokens)
        assert isinstance(info.value, nw.NodeWriteValueError), repr(info.value)
        if words:
            assert words in str(info.value)
    for layers, words in (([], "no layer"), ([True], "not a layer"), (["1"], "not a layer"), ([3], "out of range"),
                          (-1, "out of range"), ([0.0], "not a layer")):
        with pytest.raises(nw.NodeWriteValueError, match=words):
            topk.layer_list(layers, 3)
    with pytest.raises(nw.NodeWriteValueError, match="layout"):
        topk.node_view("sideways", np.zeros((3, 2), np.float32))
    with pytest.raises(nw.NodeWriteValueError, match=r"\(T, n\)"):
        topk.node_view("nodes", np.zeros((3, 2, 1), np.float32))


def test_topk_order_is_total_with_nan_ties_and_any_grouping():
    """NaN after every number, ties broken by prompt then position; merging in any grouping gives
    the bits of one select over everything, largest and smallest."""
    r = np.random.default_rng(3)
    n, m, k = 4, 60, 7
    values = r.integers(-3, 3, (n, m)).astype(np.float32)  # many ties
    values[r.random((n, m)) < 0.2] = np.nan
    values[0] = np.nan  # a node whose values are all NaN
    prompt = r.integers(0, 5, m)
    position = r.integers(0, 4, (m, 2))
    for largest in (True, False):
        whole = topk.select(values, prompt, position, k, largest)
        assert whole.values.shape == (n, k) and whole.position.shape == (n, k, 2)
        for row in range(n):
            v = whole.values[row]
            finite = v[~np.isnan(v)]
            assert np.all(np.isnan(v[len(finite):]))  # NaN last
            assert np.all(np.diff(finite) <= 0) if largest else np.all(np.diff(finite) >= 0)
        for cuts in ([20, 40], [5], [1, 2, 3, 59], list(range(1, 60, 7))):
            parts = np.split(np.arange(m), cuts)
            part = [topk.select(values[:, p], prompt[p], position[p], k, largest) for p in parts]
            for order in (part, part[::-1]):
                acc = order[0]
                for p in order[1:]:
                    acc = topk.merge(acc, p, k, largest)
                for a, b in zip(acc, whole):
                    assert a.tobytes() == b.tobytes()


def test_a_copied_encoder_pickles_as_the_copy_a_borrowed_one_as_it_is_now():
    """set_autoencoder(encoder=, copy=True) keeps a copy: changing the caller's arrays afterwards
    changes neither the model's derives nor its pickle; with copy=False both read the arrays as
    they are now (the borrow contract), the pickle included."""
    from edges_fixture import MODEL, autoencoder_arrays, autoencoder_input
    from test_edges import setup_of
    from test_hostile_edges import ref_weight

    _, s = setup_of("mlp", "numpy")
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    dst = "online_autoencoder_in_edge_attribution"
    for copy in (True, False):
        arrs = {k: np.array(v) for k, v in autoencoder_arrays("mlp", 1).items()}
        m = nw.Model(MODEL["n_layers"], MODEL["d_model"], MODEL["n_heads"], MODEL["d_head"], MODEL["d_ff"])
        ref, _ = setup_of("mlp", "numpy")
        for (name, layer) in ref.weights():
            m.set_weight(name, layer, ref_weight(name, layer))
        m.set_autoencoder("mlp_autoencoder_latent", 1, arrs["decoder_weight"], autoencoder_input("mlp"), copy=copy,
                          encoder=arrs["encoder_weight"], latent_bias=arrs["latent_bias"], pre_bias=arrs["pre_bias"])
        before = nw.derive(m, s, dst, 1, node=node)
        arrs["encoder_weight"] *= -1.0
        arrs["latent_bias"] += 1.0
        now = nw.derive(m, s, dst, 1, node=node)
        assert (now.tobytes() == before.tobytes()) == copy
        for protocol in (2, 5):
            m2 = pickle.loads(pickle.dumps(m, protocol=protocol))
            assert nw.derive(m2, s, dst, 1, node=node).tobytes() == now.tobytes(), (copy, protocol)


def test_a_pickle_taken_while_the_autoencoder_changes_is_never_a_mix():
    """One thread switches the autoencoder between A (decoder and encoder) and B (another decoder,
    no encoder) while others pickle the model: every unpickled model is A or B whole (A's
    latent node write and in-edge; or B's node write and no encoder), never A's encoder on B's
    decoder."""
    body = """
    import pickle, numpy as np, nodewrite as nw
    from test_edges import setup_of
    from test_hostile_edges import race, ref_weight
    from edges_fixture import MODEL, autoencoder_arrays, autoencoder_input
    ref, s = setup_of("mlp", "numpy")
    m = nw.Model(MODEL["n_layers"], MODEL["d_model"], MODEL["n_heads"], MODEL["d_head"], MODEL["d_ff"])
    for (name, layer) in ref.weights():
        m.set_weight(name, layer, ref_weight(name, layer))
    a = {k: np.array(v) for k, v in autoencoder_arrays("mlp", 1).items()}
    dec_b = a["decoder_weight"][::-1].copy()
    inp = autoencoder_input("mlp")
    def set_a():
        m.set_autoencoder("mlp_autoencoder_latent", 1, a["decoder_weight"], inp, replace=True, copy=False,
                          encoder=a["encoder_weight"], latent_bias=a["latent_bias"], pre_bias=a["pre_bias"])
    def set_b():
        m.set_autoencoder("mlp_autoencoder_latent", 1, dec_b, inp, replace=True)
    latent = nw.NodeIndex("mlp_autoencoder_latent", 1, (2, 1))
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    set_a()
    want_a = (nw.node_write(m, s, latent).tobytes(), nw.derive(m, s, "online_autoencoder_in_edge_attribution", 1, node=node).tobytes())
    set_b()
    want_b = nw.node_write(m, s, latent).tobytes()
    flip = [0]
    def write():
        flip[0] += 1
        set_a() if flip[0] % 2 else set_b()
    def read():
        m2 = pickle.loads(pickle.dumps(m, protocol=5))
        w = nw.node_write(m2, s, latent).tobytes()
        try:
            e = nw.derive(m2, s, "online_autoencoder_in_edge_attribution", 1, node=node).tobytes()
        except nw.NodeWriteKeyError:
            return w == want_b
        return (w, e) == want_a
    bad = race(read, write, seconds=3.0, readers=3)
    assert not bad, bad[:3]
    print("ok")
    """
    from nw_child import run_in_child

    assert run_in_child(body, timeout=180).strip() == "ok"
