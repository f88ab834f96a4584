"""Hostile callers of the entry points added with the edges (nodewrite.derive(..., node=,
detach_layer_norm_scale=, out=), ActivationStore.put(..., pass_type=), Model.set_autoencoder(...,
encoder=, latent_bias=, pre_bias=), Model(layer_norm_epsilon=, mlp_activation=),
NodeIndex(q_k_or_v=)), through the patterns of test_hostile.py: every refusal is a NodeWriteError
naming the argument and writes nothing (out= filled with a sentinel stays as it was; a refused put
or set_autoencoder leaves the store or model as it was); torch's negative bit is read as the true
value or refused; objects made with __new__; KeyboardInterrupt passes through unchanged; many
threads on one shared model and store give the single-thread bits. Threaded and crash-prone bodies
run in a child process with a timeout (nw_child.run_in_child)."""

from __future__ import annotations

import numpy as np
import pytest

import nodewrite as nw
from edges_fixture import CASES, MODEL, TENSORS, autoencoder_arrays, autoencoder_input, case_node, store_activations
from nw_child import run_in_child
from test_edges import _store_without, node_index, setup_of
from test_hostile import Interrupting

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
T, D, H, DH, F = MODEL["n_tokens"], MODEL["d_model"], MODEL["n_heads"], MODEL["d_head"], MODEL["d_ff"]
SENTINEL = np.float32(-1234.5)


def one_call_per_dst():
    """(store, dst, layer, node, detach) of the first fixture case of every edge DST that derives."""
    seen, calls = set(), []
    for c in CASES:
        if c["group"] == "single_node_write" or "expected" not in c or c["dst"] in seen:
            continue
        seen.add(c["dst"])
        key = next(iter(c["expected"]))
        nd = case_node(c)
        calls.append((c["store"], c["dst"], None if key == "none" else int(key), node_index(nd) if nd else None,
                      bool(c.get("detach"))))
    return calls


CALLS = one_call_per_dst()
IDS = [c[1] for c in CALLS]


def sentinel_out(shape, dtype=np.float32):
    return np.full(shape, SENTINEL, dtype)


def refused(exc, words, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    text = str(info.value)
    for w in words:
        assert w in text, (w, text)
    assert "\n" not in text and "Traceback" not in text, text
    return info.value


def test_every_edge_dst_is_covered():
    edge = {d for d in nw.DSTS if nw.dst_info(d).quantity not in ("norm", "projection")}
    assert edge == set(IDS), sorted(edge ^ set(IDS))


# ------------------------------------------------ refusals write nothing into out=


@pytest.mark.parametrize("call", CALLS, ids=IDS)
def test_refusals_name_the_argument_and_leave_out_untouched(call):
    store, dst, layer, node, detach = call
    m, s = setup_of(store, "numpy")
    good = nw.derive(m, s, dst, layer, node=node, detach_layer_norm_scale=detach)
    kw = dict(node=node, detach_layer_norm_scale=detach)
    out = sentinel_out(good.shape)
    bad_layer = 0 if layer is None else None
    cases = [
        (nw.NodeWriteValueError, ["dst"], (m, s, dst + "_x", layer), kw),
        (nw.NodeWriteValueError, ["dst"], (m, s, 7, layer), kw),
        (nw.NodeWriteValueError, ["layer"], (m, s, dst, bad_layer), kw),
        (nw.NodeWriteError, ["layer"], (m, s, dst, "1" if layer is not None else "0"), kw),
        (nw.NodeWriteValueError, ["detach_layer_norm_scale"], (m, s, dst, layer), dict(kw, detach_layer_norm_scale="yes")),
        (nw.NodeWriteValueError, ["detach_layer_norm_scale"], (m, s, dst, layer), dict(kw, detach_layer_norm_scale=1)),
        (nw.NodeWriteValueError, ["direction"], (m, s, dst, layer), dict(kw, direction=np.zeros(D, np.float32))),
        (nw.NodeWriteValueError, ["model"], (s, s, dst, layer), kw),
        (nw.NodeWriteValueError, ["store"], (m, m, dst, layer), kw),
        (nw.NodeWriteValueError, ["node"], (m, s, dst, layer), dict(kw, node=object() if node is not None else nw.NodeIndex("mlp_neuron", 0, (0, 0)))),
    ]
    if layer is not None:
        cases.append((nw.NodeWriteIndexError, ["layer"], (m, s, dst, MODEL["n_layers"]), kw))
        cases.append((nw.NodeWriteIndexError, ["layer"], (m, s, dst, -MODEL["n_layers"] - 1), kw))
    if node is not None:
        cases.append((nw.NodeWriteValueError, ["node is None"], (m, s, dst, layer), dict(kw, node=None)))
        idx = list(node.tensor_indices)
        i = len(idx) - 1  # the last index (neuron, head, latent) one past its range
        big = nw.NodeIndex(node.node_type, node.layer_index, tuple(idx[:i]) + (10**6,), q_k_or_v=node.q_k_or_v)
        cases.append((nw.NodeWriteIndexError, [], (m, s, dst, layer), dict(kw, node=big)))
    for exc, words, args, kwargs in cases:
        refused(exc, words, nw.derive, *args, out=out, **kwargs)
        assert (out == SENTINEL).all(), (dst, words)
    # out= itself: wrong shape, dtype, layout, read-only; nothing written into any of them
    outs = [
        (sentinel_out(good.shape[:-1] + (good.shape[-1] + 1,)), ["out", "shape"]),
        (sentinel_out(good.shape, np.float64), ["out"]),
        (sentinel_out(good.shape[::-1]).T, ["out"]),
        (sentinel_out((1,) + good.shape), ["out"]),
    ]
    ro = sentinel_out(good.shape)
    ro.setflags(write=False)
    outs.append((ro, ["out"]))
    if good.ndim >= 2 and good.shape[0] > 1:
        base = sentinel_out((good.shape[0] * 2,) + good.shape[1:])
        outs.append((base[::2], ["out"]))
        outs.append((base[::-1][: good.shape[0]], ["out"]))
    for o, words in outs:
        if o.flags.c_contiguous and o.flags.writeable and o.dtype == np.float32 and o.shape == good.shape:
            continue  # a (T, 1) array transposed from (1, T) is C-contiguous: a valid out
        before = o.copy()
        refused(nw.NodeWriteValueError, words, nw.derive, m, s, dst, layer, out=o, **kw)
        assert np.array_equal(o, before, equal_nan=True), dst
    # and the right out= gets the same bits as the call without one
    assert np.array_equal(nw.derive(m, s, dst, layer, out=out, **kw), good)


def test_a_refused_input_in_the_store_writes_nothing_into_out():
    """A gradient of the wrong shape, one missing, a missing read-side weight: out= untouched."""
    m, s = setup_of("none", "numpy")
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    good = nw.derive(m, s, "mlp_in_edge_attribution", 1, node=node)
    bad = _store_without("none", "resid.post_attn", 1, "forward", np.zeros((T + 1, D), np.float32))
    # without out= the refusal names both entries and their row counts: the one the library took T
    # from (resid.post_attn at layer 1, the odd one here) and the first that disagrees with it
    # (mlp.post_act at layer 0, whose T rows are right), since either may be the one to fix; with
    # out= it is refused too, and out is untouched
    refused(nw.NodeWriteValueError, [f"activation mlp.post_act at layer 0 has {T} rows",
                                     f"activation resid.post_attn at layer 1 has {T + 1}", "same T"],
            nw.derive, m, bad, "mlp_in_edge_attribution", 1, node=node)
    out = sentinel_out(good.shape)
    refused(nw.NodeWriteValueError, ["same T"], nw.derive, m, bad, "mlp_in_edge_attribution", 1, node=node, out=out)
    assert (out == SENTINEL).all()
    wrong = sentinel_out((T + 1, F))  # an out= the first entry's T would fit: the entries are still at fault
    refused(nw.NodeWriteValueError, ["same T"], nw.derive, m, bad, "mlp_in_edge_attribution", 1, node=node, out=wrong)
    assert (wrong == SENTINEL).all()
    no_w = nw.Model(MODEL["n_layers"], D, H, DH, F)
    for name, layer, _ in [(n, l, None) for (n, l) in m.weights() if (n, l) != ("mlp.to_hidden", 1)]:
        no_w.set_weight(name, layer, np.zeros(m.weights()[(name, layer)]["shape"], np.float32))
    refused(nw.NodeWriteKeyError, ["mlp.to_hidden", "layer 1", "Model.set_weight"], nw.derive, no_w, s,
            "mlp_in_edge_attribution", 1, node=node, out=out)
    assert (out == SENTINEL).all()


# ------------------------------------------- out= over the memory of what the call reads


def arena_setup(store):
    """The fixture's model and store with every weight, autoencoder array and activation (both
    passes) borrowed from one float32 arena: returns (model, store, arena, [(what, offset, size)])."""
    from edges_fixture import AUTOENCODER_NODE_TYPES, N_LAYERS, WEIGHTS, autoencoders_of, weight

    parts = []  # (what, array)
    for L in range(N_LAYERS):
        for fixture_name, name in WEIGHTS:
            parts.append(((name, L), weight(fixture_name, L)))
        for which in autoencoders_of(store):
            for k, v in autoencoder_arrays(which, L).items():
                parts.append(((which, k, L), v))
    for location, layer, pass_type, tensor in store_activations(store):
        parts.append(((location, layer, pass_type), TENSORS[tensor]))
    total = sum(np.asarray(a).size for _, a in parts)
    arena = np.empty(total + 4096, np.float32)
    arena[total:] = 0.25
    views, spans, at = {}, [], 0
    for what, a in parts:
        a = np.asarray(a, np.float32)
        arena[at: at + a.size] = a.reshape(-1)
        views[what] = arena[at: at + a.size].reshape(a.shape)
        spans.append((what, at, a.size))
        at += a.size
    m = nw.Model(N_LAYERS, D, H, DH, F)
    s = nw.ActivationStore()
    for L in range(N_LAYERS):
        for _, name in WEIGHTS:
            m.set_weight(name, L, views[(name, L)], copy=False)
        for which in autoencoders_of(store):
            v = {k: views[(which, k, L)] for k in ("decoder_weight", "encoder_weight", "latent_bias", "pre_bias")}
            m.set_autoencoder(AUTOENCODER_NODE_TYPES[which], L, v["decoder_weight"], autoencoder_input(which), copy=False,
                              encoder=v["encoder_weight"], latent_bias=v["latent_bias"], pre_bias=v["pre_bias"])
    for location, layer, pass_type, _ in store_activations(store):
        s.put(location, layer, views[(location, layer, pass_type)], pass_type=pass_type)
    return m, s, arena, spans


@pytest.mark.parametrize("call", CALLS, ids=IDS)
def test_out_over_an_input_is_refused_or_right(call):
    """out= placed over each input in turn (a weight, an encoder, an activation or gradient of
    either pass): refused with nothing written, or (an input the call does not read) the answer of
    the call without the overlap. Never a silently wrong number."""
    store, dst, layer, node, detach = call
    m, s, arena, spans = arena_setup(store)
    kw = dict(node=node, detach_layer_norm_scale=detach)
    want = nw.derive(m, s, dst, layer, **kw)
    pristine = arena.copy()
    n = want.size
    refusals = 0
    for what, at, size in spans:
        if at + n > arena.size:
            continue
        out = arena[at: at + n].reshape(want.shape)
        try:
            got = nw.derive(m, s, dst, layer, out=out, **kw)
        except nw.NodeWriteValueError as e:
            assert "out" in str(e), (what, str(e))
            assert np.array_equal(arena, pristine, equal_nan=True), f"{dst}: a refusal over {what} wrote"
            refusals += 1
            continue
        assert got.tobytes() == want.tobytes(), f"{dst}: out over {what} gave other numbers"
        arena[:] = pristine
    assert refusals > 0, dst  # every call reads something


# --------------------------------------------------------- nodes: q_k_or_v and friends


def test_node_arguments_that_lie_are_refused_naming_what():
    m, s = setup_of("none", "numpy")
    grad = "grad_of_single_subnode_attribution"
    out = sentinel_out((T, D))

    class Sub:
        def __init__(self, **kw):
            self.node_type, self.layer_index, self.tensor_indices = "attention_head", 1, (5, 2, 1)
            self.__dict__.update(kw)

    class NoIndices:
        node_type, layer_index = "attention_head", 1

    bad = [
        (Sub(), nw.NodeWriteValueError, ["q_k_or_v"]),  # a head without a subnode
        (Sub(q_k_or_v="q"), nw.NodeWriteValueError, ["q_k_or_v", "'q'"]),
        (Sub(q_k_or_v="attn.qk_probs"), nw.NodeWriteValueError, ["q_k_or_v"]),
        (Sub(q_k_or_v=3), nw.NodeWriteValueError, ["q_k_or_v"]),
        (Sub(q_k_or_v=b"attn.q"), nw.NodeWriteValueError, ["q_k_or_v"]),
        (Sub(q_k_or_v="attn.q", node_type="mlp_neuron", tensor_indices=(5, 2)), nw.NodeWriteValueError, ["q_k_or_v"]),
        (Sub(q_k_or_v="attn.q", tensor_indices=(5, 2)), nw.NodeWriteValueError, ["tensor_indices"]),
        (Sub(q_k_or_v="attn.q", tensor_indices=(5, None, 1)), nw.NodeWriteValueError, ["tensor_indices"]),
        (Sub(q_k_or_v="attn.q", tensor_indices=(5.0, 2, 1)), nw.NodeWriteValueError, ["tensor_indices[0]"]),
        (Sub(q_k_or_v="attn.q", tensor_indices="521"), nw.NodeWriteValueError, ["tensor_indices"]),
        (Sub(q_k_or_v="attn.q", tensor_indices=(5, 2, 1, 0, 0)), nw.NodeWriteValueError, ["tensor_indices"]),
        (Sub(q_k_or_v="attn.q", tensor_indices=(2**63, 2, 1)), nw.NodeWriteError, ["tensor_indices[0]"]),
        (Sub(q_k_or_v="attn.q", tensor_indices=(T, 2, 1)), nw.NodeWriteIndexError, []),
        (Sub(q_k_or_v="attn.q", tensor_indices=(5, 2, H)), nw.NodeWriteIndexError, []),
        (Sub(q_k_or_v="attn.q", layer_index=True), nw.NodeWriteValueError, ["layer"]),
        (Sub(q_k_or_v="attn.q", node_type="attention"), nw.NodeWriteValueError, ["node_type"]),
        (NoIndices(), nw.NodeWriteValueError, ["node"]),
        (nw.NodeIndex.__new__(nw.NodeIndex), nw.NodeWriteValueError, ["node"]),  # never initialised
    ]
    for node, exc, words in bad:
        refused(exc, words, nw.derive, m, s, grad, 1, node=node, out=out)
        assert (out == SENTINEL).all(), words
    # NodeIndex itself refuses them when it is built
    for kw in ({"q_k_or_v": "q"}, {"q_k_or_v": 3}, {"q_k_or_v": ""}):
        refused(nw.NodeWriteValueError, ["q_k_or_v"], nw.NodeIndex, "attention_head", 1, (5, 2, 1), **kw)
    refused(nw.NodeWriteValueError, ["q_k_or_v"], nw.NodeIndex, "autoencoder_latent", 1, (5, 2), q_k_or_v="attn.k")
    with pytest.raises(AttributeError):
        nw.NodeIndex("attention_head", 1, (5, 2, 1)).q_k_or_v = "attn.q"
    # index types numpy and torch give are read as the ints they are
    want = nw.derive(m, s, grad, 1, node=nw.NodeIndex("attention_head", 1, (5, 2, 1), q_k_or_v="attn.v"))
    got = nw.derive(m, s, grad, 1, node=Sub(q_k_or_v="attn.v", tensor_indices=np.array([5, 2, 1]), layer_index=np.int64(1)))
    assert np.array_equal(got, want)


# ------------------------------------------------------------- torch's negative bit


@needs_torch
def test_negative_bit_views_are_read_as_their_values_or_refused():
    """A torch._neg_view of a gradient, an encoder, a bias or out=: the library never reads (or
    writes) the raw memory as the value; refused with what to do, and the resolved tensor gives
    the answer of the true values."""
    m, s = setup_of("none", "numpy")
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    s2 = _store_without("none", "", None, "")  # a store of its own, every entry
    grad = np.asarray(s.get("mlp.post_act", 1, pass_type="backward"))
    neg = torch._neg_view(torch.from_numpy(-grad.copy()))
    assert neg.is_neg()
    refused(nw.NodeWriteValueError, ["negative bit", "resolve_neg", "mlp.post_act"], s2.put, "mlp.post_act", 1, neg,
            pass_type="backward")
    # the refused put did not replace the entry
    assert s2.get("mlp.post_act", 1, pass_type="backward") is not neg
    want = nw.derive(m, s, "mlp_in_edge_attribution", 1, node=node)
    assert np.array_equal(nw.derive(m, s2, "mlp_in_edge_attribution", 1, node=node), want)
    s2.put("mlp.post_act", 1, neg.resolve_neg(), pass_type="backward")
    assert np.array_equal(nw.derive(m, s2, "mlp_in_edge_attribution", 1, node=node), want)
    # out=: a negative-bit view of the output would read back negated
    out = torch._neg_view(torch.full(tuple(want.shape), float(SENTINEL)))
    refused(nw.NodeWriteValueError, ["out", "negative bit"], nw.derive, m, s, "mlp_in_edge_attribution", 1, node=node, out=out)
    assert torch.all(out.resolve_neg() == -float(SENTINEL))
    # an encoder and its biases
    a = autoencoder_arrays("mlp", 0)
    mm = nw.Model(MODEL["n_layers"], D, H, DH, F)
    for key in ("encoder", "latent_bias", "pre_bias"):
        kw = dict(encoder=torch.from_numpy(a["encoder_weight"].copy()), latent_bias=torch.from_numpy(a["latent_bias"].copy()),
                  pre_bias=torch.from_numpy(a["pre_bias"].copy()))
        kw[key] = torch._neg_view(-kw[key])
        for copy in (True, False):
            refused(nw.NodeWriteValueError, ["negative bit", key], mm.set_autoencoder, "mlp_autoencoder_latent", 0,
                    a["decoder_weight"], autoencoder_input("mlp"), copy=copy, **kw)
            assert mm.autoencoders() == {}
    # a read-side weight
    refused(nw.NodeWriteValueError, ["negative bit"], mm.set_weight, "layer_norm_gain.pre_mlp", 0, torch._neg_view(torch.ones(D)))
    assert mm.weights() == {}


@needs_torch
def test_negative_strides_and_torch_views_give_the_contiguous_answer():
    """Gradients, encoders and read-side weights given as negative-stride numpy views, torch
    flipped/transposed views and float16/float64: the same bits as the contiguous float32 input
    where the values are the same (float16 inputs: as their float32 values)."""
    m, s = setup_of("mlp", "numpy")
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    dsts = ("mlp_in_edge_attribution", "online_autoencoder_in_edge_attribution", "attn_value_in_edge_attribution")
    want = {d: nw.derive(m, s, d, 1, node=node) for d in dsts}

    def reversed_view(a):
        return np.ascontiguousarray(np.array(a)[::-1])[::-1]

    def flipped_torch(a):
        return torch.from_numpy(np.ascontiguousarray(np.array(a)[::-1])).flip(0)

    for conv in (reversed_view, flipped_torch):
        s2 = nw.ActivationStore()
        keep = []
        for loc, l, p, tensor in store_activations("mlp"):
            x = conv(TENSORS[tensor])
            keep.append(x)
            s2.put(loc, l, x, pass_type=p)
        m2 = nw.Model(MODEL["n_layers"], D, H, DH, F)
        for (name, layer) in m.weights():
            x = conv(ref_weight(name, layer))
            keep.append(x)
            m2.set_weight(name, layer, x, copy=False)
        for L in range(MODEL["n_layers"]):
            a = autoencoder_arrays("mlp", L)
            m2.set_autoencoder("mlp_autoencoder_latent", L, conv(a["decoder_weight"]), autoencoder_input("mlp"), copy=False,
                               encoder=conv(a["encoder_weight"]), latent_bias=conv(a["latent_bias"]), pre_bias=conv(a["pre_bias"]))
        for d in dsts:
            assert np.array_equal(nw.derive(m2, s2, d, 1, node=node), want[d]), (conv.__name__, d)


# ---------------------------------------------------- set_autoencoder(encoder=...) and put(pass_type=)


def test_set_autoencoder_encoder_refusals_leave_the_model_unchanged():
    a = autoencoder_arrays("mlp", 0)
    dec, enc, lb, pb = a["decoder_weight"], a["encoder_weight"], a["latent_bias"], a["pre_bias"]
    m = nw.Model(MODEL["n_layers"], D, H, DH, F)
    m.set_autoencoder("mlp_autoencoder_latent", 1, dec, autoencoder_input("mlp"), encoder=enc)
    before = m.autoencoders()
    masked = np.ma.masked_array(enc, mask=np.zeros_like(enc, bool))
    cases = [
        (dict(encoder=enc.T), ["encoder", "shape"]),
        (dict(encoder=enc[None]), ["encoder"]),
        (dict(encoder=enc.astype(np.int64)), ["encoder"]),
        (dict(encoder=enc.astype(">f4")), ["encoder"]),
        (dict(encoder=enc.astype(np.complex64)), ["encoder"]),
        (dict(encoder=masked), ["encoder", "masked array"]),
        (dict(encoder="enc"), ["encoder"]),
        (dict(encoder=[[1.0]]), ["encoder"]),
        (dict(encoder=enc, latent_bias=lb[:, None]), ["latent_bias"]),
        (dict(encoder=enc, latent_bias=lb.astype(np.int32)), ["latent_bias"]),
        (dict(encoder=enc, pre_bias=pb[:-1]), ["pre_bias"]),
        (dict(encoder=enc, pre_bias=3.0), ["pre_bias"]),
        (dict(latent_bias=lb, pre_bias=pb), ["encoder="]),
    ]
    for kw, words in cases:
        for copy in (True, False):
            # into the empty slot (layer 0) and replacing the set one (layer 1): neither changes
            refused(nw.NodeWriteError, words, m.set_autoencoder, "mlp_autoencoder_latent", 0, dec, autoencoder_input("mlp"),
                    copy=copy, **kw)
            refused(nw.NodeWriteError, words, m.set_autoencoder, "mlp_autoencoder_latent", 1, dec, autoencoder_input("mlp"),
                    copy=copy, replace=True, **kw)
            assert m.autoencoders() == before, words
    # the encoder set before is still the one derives read (the same bits as a model that never saw a refusal)
    fresh = nw.Model(MODEL["n_layers"], D, H, DH, F)
    fresh.set_autoencoder("mlp_autoencoder_latent", 1, dec, autoencoder_input("mlp"), encoder=enc)
    ref, s = setup_of("mlp", "numpy")
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    outs = []
    for model in (m, fresh):
        for (name, layer), _st in ref.weights().items():
            model.set_weight(name, layer, np.asarray(ref_weight(name, layer)))
        outs.append(nw.derive(model, s, "online_autoencoder_in_edge_attribution", 1, node=node))
    assert np.array_equal(outs[0], outs[1])


def ref_weight(name, layer):
    from edges_fixture import WEIGHTS, weight

    return weight(dict((n, f) for f, n in WEIGHTS)[name], layer)


def test_put_pass_type_refusals_leave_the_store_unchanged():
    s = nw.ActivationStore()
    g = np.ones((T, D), np.float32)
    s.put("resid.post_attn", 0, g, pass_type="backward")
    for kw, exc, words in (
        (dict(pass_type="grad"), nw.NodeWriteValueError, ["pass_type", "'grad'"]),
        (dict(pass_type=1), nw.NodeWriteValueError, ["pass_type"]),
        (dict(pass_type=b"backward"), nw.NodeWriteValueError, ["pass_type"]),
        (dict(pass_type="BACKWARD"), nw.NodeWriteValueError, ["pass_type"]),
        (dict(pass_type="backward", layout="xy"), nw.NodeWriteValueError, ["layout"]),
        (dict(pass_type="backward", batch=-1), nw.NodeWriteError, ["batch"]),
    ):
        refused(exc, words, s.put, "resid.post_attn", 0, np.zeros((T, D), np.float32), **kw)
        assert s.get("resid.post_attn", 0, pass_type="backward") is g and len(s) == 1
    # the tensor's dtype, kind and ndim are checked at put, the message naming the gradient and
    # its layer (the extents when a derive reads it, against the others)
    for bad in (np.zeros((T, D), np.int32), np.zeros((T, D, 1), np.float32), np.zeros(D, np.float32), "x"):
        refused(nw.NodeWriteValueError, ["resid.post_attn", "layer 0"], s.put, "resid.post_attn", 0, bad, pass_type="backward")
        assert s.get("resid.post_attn", 0, pass_type="backward") is g and len(s) == 1
    for fn in (lambda: s.get("resid.post_attn", 0, pass_type="sideways"), lambda: s.remove("resid.post_attn", 0, pass_type=0),
               lambda: s.keys(pass_type="up"), lambda: ("resid.post_attn", 0, "up") in s):
        try:
            r = fn()
        except nw.NodeWriteValueError as e:
            assert "pass_type" in str(e), str(e)
        else:
            assert r is False  # `in` answers False for a key that cannot be there
    assert s.get("resid.post_attn", 0, pass_type="backward") is g


# -------------------------------------------------------------- model facts


def test_model_facts_are_read_only_and_checked_at_construction():
    m = nw.Model(2, 8, 2, 4, 16, layer_norm_epsilon=1e-6, mlp_activation="relu")
    for name, value in (("layer_norm_epsilon", 1.0), ("mlp_activation", "gelu_erf")):
        with pytest.raises(AttributeError):
            setattr(m, name, value)
    assert (m.layer_norm_epsilon, m.mlp_activation) == (1e-6, "relu")

    class NotANumber:
        def __float__(self):
            raise KeyboardInterrupt

    # an object that is not a number is refused by its type: its __float__ is never called
    refused(nw.NodeWriteValueError, ["layer_norm_epsilon"], nw.Model, 2, 8, 2, 4, 16, layer_norm_epsilon=NotANumber())
    for bad in (np.float32("nan"), np.float64(-0.0), np.array([1e-5]), float.fromhex("0x1p-200")):
        refused(nw.NodeWriteValueError, ["layer_norm_epsilon"], nw.Model, 2, 8, 2, 4, 16, layer_norm_epsilon=bad)
    import enum

    class Act(str, enum.Enum):
        RELU = "relu"
        SILU = "silu"

    assert nw.Model(2, 8, 2, 4, 16, mlp_activation=Act.RELU).mlp_activation == "relu"
    refused(nw.NodeWriteValueError, ["mlp_activation", "silu"], nw.Model, 2, 8, 2, 4, 16, mlp_activation=Act.SILU)


# ------------------------------------------------------------- objects made with __new__


def test_objects_made_without_init_refuse_the_edge_calls():
    body = """
    import numpy as np, nodewrite as nw
    from test_edges import setup_of
    m, s = setup_of("mlp", "numpy")
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    a = np.ones((3, 3), np.float32)
    n = 0
    for cls in (nw.Model, type("SubModel", (nw.Model,), {})):
        bare = cls.__new__(cls)
        for fn in (lambda: nw.derive(bare, s, "mlp_in_edge_attribution", 1, node=node),
                   lambda: bare.layer_norm_epsilon, lambda: bare.mlp_activation,
                   lambda: bare.set_autoencoder("mlp_autoencoder_latent", 0, a, "mlp_post_act", encoder=a),
                   lambda: bare.remove_autoencoder("mlp_autoencoder_latent", 0)):
            try:
                fn()
            except nw.NodeWriteValueError as e:
                assert "not initialised" in str(e), str(e)
                n += 1
    for cls in (nw.ActivationStore, type("SubStore", (nw.ActivationStore,), {})):
        bare = cls.__new__(cls)
        for fn in (lambda: nw.derive(m, bare, "mlp_in_edge_attribution", 1, node=node),
                   lambda: bare.put("resid.post_emb", None, a, pass_type="backward"),
                   lambda: bare.get("resid.post_emb", None, pass_type="backward"),
                   lambda: bare.remove("resid.post_emb", None, pass_type="backward"),
                   lambda: bare.keys(pass_type="backward")):
            try:
                fn()
            except nw.NodeWriteValueError as e:
                assert "not initialised" in str(e), str(e)
                n += 1
    print(n)
    """
    assert int(run_in_child(body, timeout=120).strip()) == 2 * 5 + 2 * 5


# ------------------------------------------------------------------- KeyboardInterrupt


def test_keyboard_interrupt_passes_through_and_nothing_is_written():
    m, s = setup_of("mlp", "numpy")
    k = Interrupting()
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    good = nw.derive(m, s, "mlp_in_edge_attribution", 1, node=node)
    out = sentinel_out(good.shape)

    class Node:
        node_type, layer_index, tensor_indices, q_k_or_v = "attention_head", 1, (5, 2, 1), "attn.q"

        def __init__(self, **kw):
            for key, v in kw.items():
                setattr(self, key, v)

    class LoudNode:
        node_type, layer_index, tensor_indices = "attention_head", 1, (5, 2, 1)

        @property
        def q_k_or_v(self):
            raise KeyboardInterrupt

    a = autoencoder_arrays("mlp", 0)
    m2 = nw.Model(MODEL["n_layers"], D, H, DH, F)
    s2 = nw.ActivationStore()
    grad = "grad_of_single_subnode_attribution"
    cases = [
        lambda: nw.derive(m, s, grad, 1, node=Node(tensor_indices=k), out=sentinel_out((T, D))),
        lambda: nw.derive(m, s, grad, 1, node=Node(tensor_indices=(k, 2, 1)), out=sentinel_out((T, D))),
        lambda: nw.derive(m, s, grad, 1, node=Node(q_k_or_v=k), out=sentinel_out((T, D))),
        lambda: nw.derive(m, s, grad, 1, node=LoudNode(), out=sentinel_out((T, D))),
        lambda: nw.derive(m, s, grad, k, node=Node()),
        lambda: nw.derive(m, s, k, 1, node=Node()),
        lambda: nw.derive(m, s, "mlp_in_edge_attribution", 1, node=node, out=k),
        lambda: nw.NodeIndex("attention_head", 1, (5, 2, 1), q_k_or_v=k),
        lambda: s2.put("resid.post_emb", None, k, pass_type="backward"),
        lambda: s2.put("resid.post_emb", None, np.ones((T, D), np.float32), pass_type=k),
        lambda: m2.set_autoencoder("mlp_autoencoder_latent", 0, a["decoder_weight"], "mlp_post_act", encoder=k),
        lambda: m2.set_autoencoder("mlp_autoencoder_latent", 0, a["decoder_weight"], "mlp_post_act",
                                   encoder=a["encoder_weight"], latent_bias=k),
        lambda: m2.set_autoencoder("mlp_autoencoder_latent", 0, a["decoder_weight"], "mlp_post_act",
                                   encoder=a["encoder_weight"], pre_bias=k),
        lambda: nw.Model(2, 8, 2, 4, 16, mlp_activation=k),
    ]
    for i, fn in enumerate(cases):
        with pytest.raises(KeyboardInterrupt):
            fn()
        assert (out == SENTINEL).all(), i
        assert len(s2) == 0 and s2.keys(pass_type="backward") == [] and m2.autoencoders() == {}, i
    # detach_layer_norm_scale takes True or False only: another object is refused by its type (its
    # __bool__ never runs), out untouched
    refused(nw.NodeWriteValueError, ["detach_layer_norm_scale"], nw.derive, m, s, "mlp_in_edge_attribution", 1, node=node,
            detach_layer_norm_scale=k, out=out)
    assert (out == SENTINEL).all()


# ----------------------------------------------------------------------------- threads


def test_many_threads_on_one_model_and_store_give_the_single_thread_bits():
    """8 threads, each deriving every edge DST (with and without out=, detached or not) on the
    same model and store, while two more pickle the model and the store: every result equals
    the single-thread answer, bit for bit (a hang or crash fails in the child)."""
    body = """
    import pickle, threading, numpy as np, nodewrite as nw
    from test_hostile_edges import CALLS
    from test_edges import setup_of
    stores = sorted({c[0] for c in CALLS})
    setups = {st: setup_of(st, "numpy") for st in stores}
    want = [nw.derive(*setups[st], dst, layer, node=node, detach_layer_norm_scale=det)
            for st, dst, layer, node, det in CALLS]
    barrier = threading.Barrier(10)
    bad, done = [], []
    def work(i):
        barrier.wait()
        for rep in range(3):
            for j in range(len(CALLS)):
                j2 = (j + i) % len(CALLS)
                st, dst, layer, node, det = CALLS[j2]
                if (rep + i) % 2:
                    out = np.full(want[j2].shape, np.nan, np.float32)
                    got = nw.derive(*setups[st], dst, layer, node=node, detach_layer_norm_scale=det, out=out)
                else:
                    got = nw.derive(*setups[st], dst, layer, node=node, detach_layer_norm_scale=det)
                if got.tobytes() != want[j2].tobytes():
                    bad.append((i, dst))
        done.append(i)
    def pickler():
        barrier.wait()
        for rep in range(5):
            for st in stores:
                m, s = setups[st]
                m2, s2 = pickle.loads(pickle.dumps((m, s), protocol=5))
                for (st3, dst, layer, node, det), w in zip(CALLS, want):
                    if st3 == st and nw.derive(m2, s2, dst, layer, node=node, detach_layer_norm_scale=det).tobytes() != w.tobytes():
                        bad.append(("pickled", dst))
        done.append("pickler")
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)] + [threading.Thread(target=pickler) for _ in range(2)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not bad and len(done) == 10, (bad[:5], done)
    print("ok")
    """
    assert run_in_child(body, timeout=300).strip().endswith("ok")


def race(read, write, seconds=3.0, readers=6):
    """Runs `readers` threads calling read() (False: a wrong result) and one calling write()
    for `seconds`; returns the wrong reads and the exceptions either raised (empty: all right)."""
    import threading
    import time

    stop = time.monotonic() + seconds
    bad = []

    def loop(fn, check):
        try:
            while time.monotonic() < stop:
                if not fn() and check:
                    bad.append("a wrong result")
        except Exception as e:  # noqa: BLE001 (reported, so the test fails with it)
            bad.append(repr(e))

    def reader():
        loop(read, True)

    def writer():
        loop(write, False)

    ts = [threading.Thread(target=reader) for _ in range(readers)] + [threading.Thread(target=writer)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return bad


def test_threads_putting_gradients_while_others_derive_never_crash():
    """Writers replacing the backward pass (same values, new arrays; the old ones poisoned once
    put returns) while readers derive: every result is the one answer."""
    body = """
    import numpy as np, nodewrite as nw
    from test_edges import setup_of
    from test_hostile_edges import race
    m, s = setup_of("none", "numpy")
    node = nw.NodeIndex("attention_head", 1, (5, 2, 1), q_k_or_v="attn.k")
    dst = "grad_of_single_subnode_attribution"
    want = nw.derive(m, s, dst, 1, node=node)
    keys = [k for k in s.keys(pass_type="backward") if k[1] == 1]
    assert keys
    grads = {k: np.array(s.get(*k, pass_type="backward")) for k in keys}
    cur = {k: grads[k].copy() for k in keys}
    for k in keys:
        s.put(*k, cur[k], pass_type="backward")
    i = [0]
    def write():
        k = keys[i[0] % len(keys)]
        i[0] += 1
        old, new = cur[k], grads[k].copy()
        s.put(*k, new, pass_type="backward")
        old.fill(np.nan)
        cur[k] = new
    bad = race(lambda: nw.derive(m, s, dst, 1, node=node).tobytes() == want.tobytes(), write)
    assert not bad, bad[:3]
    print("ok")
    """
    assert run_in_child(body, timeout=120).strip() == "ok"


def test_threads_replacing_an_encoder_while_others_derive_never_read_it_freed():
    """A writer replacing the borrowed autoencoder (decoder, encoder and biases: the same values,
    new arrays, copy=False, replace=True) and poisoning the old arrays once set_autoencoder has
    returned, while readers derive the latent in-edge: every result is the one answer (the
    encoder analogue of test_hostile's test_2 for weights)."""
    body = """
    import numpy as np, nodewrite as nw
    from test_edges import setup_of
    from test_hostile_edges import race
    from edges_fixture import autoencoder_arrays, autoencoder_input
    m, s = setup_of("mlp", "numpy")
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    dst = "online_autoencoder_in_edge_attribution"
    a = {k: np.array(v) for k, v in autoencoder_arrays("mlp", 1).items()}
    def fresh():
        return {k: v.copy() for k, v in a.items()}
    cur = [fresh()]
    def put(arrs):
        m.set_autoencoder("mlp_autoencoder_latent", 1, arrs["decoder_weight"], autoencoder_input("mlp"), copy=False,
                          replace=True, encoder=arrs["encoder_weight"], latent_bias=arrs["latent_bias"],
                          pre_bias=arrs["pre_bias"])
    put(cur[0])
    want = nw.derive(m, s, dst, 1, node=node)
    def write():
        old, new = cur[0], fresh()
        put(new)
        for v in old.values():
            v.fill(np.nan)
        cur[0] = new
    bad = race(lambda: nw.derive(m, s, dst, 1, node=node).tobytes() == want.tobytes(), write)
    assert not bad, bad[:3]
    print("ok")
    """
    assert run_in_child(body, timeout=120).strip() == "ok"


@needs_torch
def test_torch_outputs_and_inputs_with_flags_outside_memory():
    """What torch keeps beside the memory: an expanded (stride 0) or transposed out=, one that
    requires grad or is float16, are refused with nothing written; an inference-mode out=, a
    gradient or encoder that requires grad (nn.Parameter) and a stride-0 broadcast gradient are
    read as the values they hold."""
    m, s = setup_of("none", "numpy")
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    dst = "mlp_in_edge_attribution"
    want = nw.derive(m, s, dst, 1, node=node)
    T_, F_ = want.shape
    base = torch.full((1, F_), float(SENTINEL))
    rg = torch.full((T_, F_), float(SENTINEL), requires_grad=True)
    for out, words in ((base.expand(T_, F_), ["out", "contiguous"]), (torch.full((F_, T_), float(SENTINEL)).t(), ["out", "contiguous"]),
                       (rg, ["out", "requires grad"]), (torch.full((T_, F_), float(SENTINEL), dtype=torch.float16), ["out", "float16"])):
        before = out.detach().clone()
        refused(nw.NodeWriteValueError, words, nw.derive, m, s, dst, 1, node=node, out=out)
        assert torch.equal(out.detach(), before)
    with torch.inference_mode():
        inf = torch.zeros(T_, F_)
    assert np.array_equal(nw.derive(m, s, dst, 1, node=node, out=inf).numpy(), want)
    s2 = _store_without("none", "", None, "")  # a store of its own, every entry
    g = torch.tensor(np.array(s.get("mlp.post_act", 1, pass_type="backward")), requires_grad=True)
    s2.put("mlp.post_act", 1, g, pass_type="backward")
    assert np.array_equal(nw.derive(m, s2, dst, 1, node=node), want)
    s2.put("mlp.post_act", 1, np.broadcast_to(np.float32(0.5), (T_, F_)), pass_type="backward")
    s2b = _store_without("none", "mlp.post_act", 1, "backward", np.full((T_, F_), 0.5, np.float32))
    assert np.array_equal(nw.derive(m, s2, dst, 1, node=node), nw.derive(m, s2b, dst, 1, node=node))
    a = autoencoder_arrays("mlp", 1)
    ms = []
    for enc in (a["encoder_weight"], torch.nn.Parameter(torch.from_numpy(np.array(a["encoder_weight"])))):
        mm = nw.Model(MODEL["n_layers"], D, H, DH, F)
        for (name, layer) in m.weights():
            mm.set_weight(name, layer, ref_weight(name, layer))
        mm.set_autoencoder("mlp_autoencoder_latent", 1, a["decoder_weight"], autoencoder_input("mlp"), encoder=enc)
        ms.append(mm)
    _, s_mlp = setup_of("mlp", "numpy")
    outs = [nw.derive(mm, s_mlp, "online_autoencoder_in_edge_attribution", 1, node=node) for mm in ms]
    assert np.array_equal(outs[0], outs[1])
