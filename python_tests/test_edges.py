"""Every case of the edge-attribution fixtures (tdb_edges.*: TDB's in-edges, out-edges,
act-times-grad, attention-to-latent and single-node writes) through the Python API: a Model with
the read-side weights and autoencoder encoders, an ActivationStore with both passes, one
``nodewrite.derive(..., node=...)`` per output. Within 1e-5 x max(1, max|TDB|), exact zeros where
TDB's are zero, TDB's AssertionErrors as NodeWriteError; from numpy arrays, from torch tensors, and
from weights given as strided (transposed-copy) views. Then the bad inputs the edge calls refuse,
each naming its argument."""

from __future__ import annotations

import numpy as np
import pytest

import nodewrite as nw
from edges_fixture import (
    AUTOENCODER_NODE_TYPES, CASES, MODEL, N_LAYERS, STORES, WEIGHTS, autoencoder_arrays, autoencoder_input,
    autoencoders_of, case_node, expected, store_activations, weight,
)
from edges_fixture import TENSORS
from nw_fixtures import REL_TOL

T, D, H, DH, F = MODEL["n_tokens"], MODEL["d_model"], MODEL["n_heads"], MODEL["d_head"], MODEL["d_ff"]
SUBNODES = {"q": "attn.q", "k": "attn.k", "v": "attn.v"}


def strided(a: np.ndarray) -> np.ndarray:
    """The same values as a non-contiguous view: the reversed-axes view of a copy, viewed back."""
    v = np.ascontiguousarray(a.T).T
    assert a.ndim < 2 or not v.flags.c_contiguous
    return v


def build(store: str, convert=np.asarray, weights=np.asarray, generic=False):
    """The model and store of one fixture store: every weight (read side included) and autoencoder
    (with its encoder) of every layer, and every activation of both passes. generic: the store's
    single autoencoder set under "autoencoder_latent" (TDB's generic latent type, whose node writes
    read it) instead of its specific latent type."""
    m = nw.Model(N_LAYERS, D, H, DH, F)
    for L in range(N_LAYERS):
        for fixture_name, name in WEIGHTS:
            m.set_weight(name, L, weights(weight(fixture_name, L)))
        for which in autoencoders_of(store):
            a = autoencoder_arrays(which, L)
            m.set_autoencoder("autoencoder_latent" if generic else AUTOENCODER_NODE_TYPES[which], L, convert(a["decoder_weight"]), autoencoder_input(which),
                              encoder=convert(a["encoder_weight"]), latent_bias=convert(a["latent_bias"]),
                              pre_bias=convert(a["pre_bias"]))
    s = nw.ActivationStore()
    keep = []
    for location, layer, pass_type, tensor in store_activations(store):
        arr = convert(TENSORS[tensor])
        keep.append(arr)
        s.put(location, layer, arr, pass_type=pass_type)
    return m, s


def torch_tensor(a: np.ndarray):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.array(a))


def torch_permuted(a: np.ndarray):
    """A torch view with the same values and reversed strides (as TDB's permuted get_weight views)."""
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(np.ascontiguousarray(np.array(a).T)).permute(*reversed(range(a.ndim)))
    assert a.ndim < 2 or not t.is_contiguous()
    return t


_BUILT: dict = {}


def setup_of(store: str, variant: str):
    key = (store, variant)
    if key not in _BUILT:
        if variant == "numpy":
            _BUILT[key] = build(store)
        elif variant == "generic":
            _BUILT[key] = build(store, generic=True)
        elif variant == "torch":
            _BUILT[key] = build(store, convert=torch_tensor, weights=torch_permuted)
        else:  # every weight and autoencoder array given as a strided view
            _BUILT[key] = build(store, convert=strided, weights=strided)
    return _BUILT[key]


def node_index(d: dict) -> nw.NodeIndex:
    sub = d.get("subnode")
    return nw.NodeIndex(d["node_type"], d["layer"], tuple(d["tensor_indices"]),
                        q_k_or_v=SUBNODES[sub] if sub else None)


def error_layer(case: dict):
    """The layer a raising case is asked at (TDB raises when the deriver is made, at any layer)."""
    if case["dst"] in ("token_out_edge_attribution", "token_attribution"):
        return None
    if "layer_indices" in case:
        return case["layer_indices"][0]
    node = case_node(case)
    return node["layer"] if node else 0


def check_close(got: np.ndarray, exp: np.ndarray, where: str) -> None:
    assert got.dtype == np.float32 and got.shape == exp.shape, (where, got.shape, exp.shape)
    tol = REL_TOL * max(1.0, float(np.abs(exp).max()) if exp.size else 0.0)
    err = float(np.abs(got.astype(np.float64) - exp).max()) if exp.size else 0.0
    assert err <= tol, f"{where}: max |nodewrite - TDB| = {err:.3g} > {tol:.3g}"
    zeros = exp == 0
    assert np.all(got[zeros] == 0), f"{where}: {int(np.sum(got[zeros] != 0))} entries not exactly 0 where TDB's are"


def run_case(case: dict, variant: str) -> None:
    nd = case_node(case)
    node = node_index(nd) if nd else None
    dst = case["dst"]
    # The node write of a generic autoencoder_latent reads the autoencoder set under that type
    # (the edges take the model's single autoencoder under its specific type: the other setups).
    generic = case["group"] == "single_node_write" and node.node_type == "autoencoder_latent"
    m, s = setup_of(case["store"], "generic" if generic else variant)
    if case["group"] == "single_node_write":
        for key, exp in expected(case).items():
            check_close(np.asarray(nw.node_write(m, s, node)), exp, f"{case['id']} layer {key}")
        return
    kw = dict(node=node, detach_layer_norm_scale=bool(case.get("detach", False)))
    if "error" in case:
        # TDB: AssertionError where it needs the single autoencoder and both are loaded.
        assert case["store"] == "both" and case["error"] == "AssertionError"
        with pytest.raises(nw.NodeWriteError, match="autoencoder"):
            nw.derive(m, s, dst, error_layer(case), **kw)
        return
    for key, exp in expected(case).items():
        layer = None if key == "none" else int(key)
        got = nw.derive(m, s, dst, layer, **kw)
        check_close(got, exp, f"{case['id']} {dst} layer {key}")
        if variant == "numpy":  # out= gives the same bits
            buf = np.full(exp.shape, np.nan, np.float32)
            assert nw.derive(m, s, dst, layer, out=buf, **kw) is buf
            assert np.array_equal(buf, got)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['dst']}" for c in CASES])
def test_case_numpy(case):
    run_case(case, "numpy")


# Every case again from torch tensors (weights as permuted views), and a third of them from strided
# numpy views of every weight, autoencoder array and activation.
@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['dst']}" for c in CASES])
def test_case_torch(case):
    run_case(case, "torch")


@pytest.mark.parametrize("case", CASES[::3], ids=[f"{c['id']}-{c['dst']}" for c in CASES[::3]])
def test_case_strided_weights(case):
    run_case(case, "strided")


# ------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def none_setup():
    return setup_of("none", "numpy")


def raises_naming(exc, words, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    return info.value


def test_a_subnode_without_q_k_or_v_is_refused(none_setup):
    m, s = none_setup
    head = nw.NodeIndex("attention_head", 1, (5, 2, 1))
    for dst, layer in (("grad_of_single_subnode_attribution", 1), ("attn_out_edge_attribution", 0)):
        raises_naming(nw.NodeWriteValueError, ["q_k_or_v", dst], nw.derive, m, s, dst, layer, node=head)
    # an upstream head of an in-edge is a whole head: a subnode is refused there
    sub = nw.NodeIndex("attention_head", 0, (5, 2, 1), q_k_or_v="attn.v")
    raises_naming(nw.NodeWriteValueError, ["q_k_or_v"], nw.derive, m, s, "mlp_in_edge_attribution", 1, node=sub)
    raises_naming(nw.NodeWriteValueError, ["q_k_or_v", "'attn.q'"], nw.NodeIndex, "attention_head", 1, (5, 2, 1), q_k_or_v="q")
    raises_naming(nw.NodeWriteValueError, ["q_k_or_v", "mlp_neuron"], nw.NodeIndex, "mlp_neuron", 1, (5, 2), q_k_or_v="attn.q")


def test_a_node_where_none_is_taken_and_none_where_one_is_needed(none_setup):
    m, s = none_setup
    neuron = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    for dst in ("mlp_act_times_grad", "token_attribution"):
        layer = None if dst == "token_attribution" else 1
        raises_naming(nw.NodeWriteValueError, ["node", dst], nw.derive, m, s, dst, layer, node=neuron)
    raises_naming(nw.NodeWriteValueError, ["node", "mlp_write_norm"], nw.derive, m, s, "mlp_write_norm", 1, node=neuron)
    for dst in ("mlp_in_edge_attribution", "grad_of_single_subnode_attribution", "mlp_out_edge_attribution"):
        raises_naming(nw.NodeWriteValueError, ["node is None", dst], nw.derive, m, s, dst, 1)
    # a trace latent's token must be None; the gradient is asked at its subnode's layer
    raises_naming(nw.NodeWriteValueError, ["tensor_indices", "None"], nw.derive, m, s, "attn_write_to_latent", 1,
                  node=nw.NodeIndex("attention_autoencoder_latent", 1, (3, 2)))
    raises_naming(nw.NodeWriteValueError, ["layer", "subnode"], nw.derive, m, s, "grad_of_single_subnode_attribution", 2,
                  node=nw.NodeIndex("mlp_neuron", 1, (5, 2)))
    # None is a latent's token only; a node write does not take a trace latent
    raises_naming(nw.NodeWriteValueError, ["tensor_indices[1]"], nw.NodeIndex, "mlp_neuron", 0, (0, None))
    raises_naming(nw.NodeWriteValueError, ["tensor_indices[0]"], nw.node_write, m, s,
                  nw.NodeIndex("attention_autoencoder_latent", 0, (None, 2)))


def test_layer_none_direction_and_detach_are_checked(none_setup):
    m, s = none_setup
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    raises_naming(nw.NodeWriteValueError, ["layer", "layer=None"], nw.derive, m, s, "token_attribution", 0)
    raises_naming(nw.NodeWriteValueError, ["layer", "int layer"], nw.derive, m, s, "mlp_act_times_grad", None)
    raises_naming(nw.NodeWriteValueError, ["direction", "backward"], nw.derive, m, s, "mlp_in_edge_attribution", 1,
                  node=node, direction=np.zeros(D, np.float32))
    raises_naming(nw.NodeWriteValueError, ["detach_layer_norm_scale"], nw.derive, m, s, "mlp_write_norm", 1,
                  detach_layer_norm_scale=True)
    raises_naming(nw.NodeWriteValueError, ["detach_layer_norm_scale"], nw.derive, m, s, "mlp_in_edge_attribution", 1,
                  node=node, detach_layer_norm_scale="yes")


def _store_without(store: str, location: str, layer, pass_type: str, replacement=None):
    s = nw.ActivationStore()
    for loc, l, p, tensor in store_activations(store):
        a = TENSORS[tensor]
        if (loc, l, p) == (location, layer, pass_type):
            if replacement is None:
                continue
            a = replacement
        s.put(loc, l, a, pass_type=p)
    return s


def test_a_gradient_of_the_wrong_shape_or_missing_is_refused_and_nothing_is_written(none_setup):
    m, _ = none_setup
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    bad = _store_without("none", "mlp.post_act", 1, "backward", np.zeros((T, F + 1), np.float32))
    out = np.full((T, F), 7.0, np.float32)
    raises_naming(nw.NodeWriteValueError, ["loss gradient", "mlp.post_act", "layer 1"], nw.derive, m, bad,
                  "mlp_in_edge_attribution", 1, node=node, out=out)
    assert (out == 7.0).all()
    missing = _store_without("none", "mlp.post_act", 1, "backward")
    raises_naming(nw.NodeWriteKeyError, ["mlp.post_act", "layer 1", 'pass_type="backward"'], nw.derive, m, missing,
                  "mlp_in_edge_attribution", 1, node=node)
    no_emb = _store_without("none", "resid.post_emb", None, "backward")
    raises_naming(nw.NodeWriteKeyError, ["resid.post_emb"], nw.derive, m, no_emb, "token_attribution", None)


def test_a_missing_read_side_weight_or_encoder_is_named():
    node = nw.NodeIndex("mlp_neuron", 0, (5, 2))
    for fixture_name, name in WEIGHTS[2:]:
        m = nw.Model(N_LAYERS, D, H, DH, F)
        for L in range(N_LAYERS):
            for f2, n2 in WEIGHTS:
                if (n2, L) != (name, 1):
                    m.set_weight(n2, L, weight(f2, L))
        _, s = setup_of("none", "numpy")
        if name in ("attn.out_bias", "mlp.out_bias", "attn.value_bias"):
            continue  # the layer's write, and a constant of v: no in-edge's derivative depends on them
        # each in-edge reads the weights of its own path (the query in-edge needs the keys' bias, ...):
        # some in-edge needs each read-side weight and names it
        named = []
        for dst in ("attn_query_in_edge_attribution", "attn_key_in_edge_attribution",
                    "attn_value_in_edge_attribution", "mlp_in_edge_attribution"):
            try:
                nw.derive(m, s, dst, 1, node=node)
            except nw.NodeWriteKeyError as e:
                assert name in str(e) and "layer 1" in str(e) and "Model.set_weight" in str(e), str(e)
                named.append(dst)
        assert named, name
    # an autoencoder without its encoder
    m = nw.Model(N_LAYERS, D, H, DH, F)
    for L in range(N_LAYERS):
        for f2, n2 in WEIGHTS:
            m.set_weight(n2, L, weight(f2, L))
        a = autoencoder_arrays("mlp", L)
        m.set_autoencoder("mlp_autoencoder_latent", L, a["decoder_weight"], autoencoder_input("mlp"))
    _, s = setup_of("mlp", "numpy")
    raises_naming(nw.NodeWriteError, ["encoder", "Model.set_autoencoder"], nw.derive, m, s,
                  "online_autoencoder_in_edge_attribution", 1, node=node)


def test_set_autoencoder_checks_the_encoder_before_setting_anything():
    m = nw.Model(N_LAYERS, D, H, DH, F)
    a = autoencoder_arrays("mlp", 0)
    dec, enc = a["decoder_weight"], a["encoder_weight"]
    n_latents = dec.shape[0]
    for kw, words in (
        (dict(encoder=enc[:, :-1]), ["encoder", "shape"]),
        (dict(encoder=enc.astype(np.int32)), ["encoder", "element type"]),
        (dict(encoder=enc, latent_bias=np.zeros(n_latents + 1, np.float32)), ["latent_bias", "n_latents"]),
        (dict(encoder=enc, pre_bias=np.zeros(3, np.float32)), ["pre_bias", "n_inputs"]),
        (dict(latent_bias=a["latent_bias"]), ["latent_bias", "encoder="]),
        (dict(pre_bias=a["pre_bias"]), ["pre_bias", "encoder="]),
    ):
        raises_naming(nw.NodeWriteValueError, words, m.set_autoencoder, "mlp_autoencoder_latent", 0, dec, "mlp_post_act", **kw)
        assert m.autoencoders() == {}
    # biases default to zeros: the same as passing zeros
    m.set_autoencoder("mlp_autoencoder_latent", 0, dec, "mlp_post_act", encoder=enc)
    assert m.autoencoders()[("mlp_autoencoder_latent", 0)]["shape"] == dec.shape
    # borrowed (copy=False) arrays of an autoencoder are kept, and dropped with it
    m.set_autoencoder("mlp_autoencoder_latent", 0, dec, "mlp_post_act", encoder=strided(enc), replace=True, copy=False,
                      latent_bias=a["latent_bias"], pre_bias=a["pre_bias"])
    assert m.autoencoders()[("mlp_autoencoder_latent", 0)]["copied"] is False
    m.remove_autoencoder("mlp_autoencoder_latent", 0)
    assert m.autoencoders() == {}


def test_encoder_biases_default_to_zeros():
    """set_autoencoder(encoder=) without biases equals passing zero biases (an in-edge into latents)."""
    store = "mlp"
    outs = []
    for zeros in (False, True):
        m = nw.Model(N_LAYERS, D, H, DH, F)
        for L in range(N_LAYERS):
            for f2, n2 in WEIGHTS:
                m.set_weight(n2, L, weight(f2, L))
            a = autoencoder_arrays("mlp", L)
            kw = dict(latent_bias=np.zeros_like(a["latent_bias"]), pre_bias=np.zeros_like(a["pre_bias"])) if zeros else {}
            m.set_autoencoder("mlp_autoencoder_latent", L, a["decoder_weight"], "mlp_post_act", encoder=a["encoder_weight"], **kw)
        _, s = setup_of(store, "numpy")
        outs.append(nw.derive(m, s, "online_autoencoder_in_edge_attribution", 1, node=nw.NodeIndex("mlp_neuron", 0, (5, 2))))
    assert np.array_equal(outs[0], outs[1])


def test_the_store_keeps_the_passes_apart():
    s = nw.ActivationStore()
    fwd, bwd = np.ones((T, D), np.float32), np.zeros((T, D), np.float32)
    s.put("resid.post_emb", None, fwd)
    s.put("resid.post_emb", None, bwd, pass_type="backward")
    assert s.get("resid.post_emb", None) is fwd and s.get("resid.post_emb", None, pass_type="backward") is bwd
    assert ("resid.post_emb", None) in s and ("resid.post_emb", None, "backward") in s and len(s) == 2
    assert s.keys() == [("resid.post_emb", None)] and s.keys(pass_type="backward") == [("resid.post_emb", None)]
    s.remove("resid.post_emb", None, pass_type="backward")
    assert ("resid.post_emb", None, "backward") not in s and ("resid.post_emb", None) in s
    raises_naming(nw.NodeWriteKeyError, ["resid.post_emb", "backward"], s.get, "resid.post_emb", None, pass_type="backward")
    raises_naming(nw.NodeWriteValueError, ["layer", "layer=None"], s.put, "resid.post_emb", 0, fwd)
    raises_naming(nw.NodeWriteValueError, ["layer", "int layer"], s.put, "resid.post_attn", None, fwd)
    raises_naming(nw.NodeWriteValueError, ["pass_type", "'backward'"], s.put, "resid.post_attn", 0, fwd, pass_type="grad")
    s.clear()
    assert len(s) == 0


def test_tdb_style_nodes_and_enums_are_read():
    """A duck-typed AttnSubNodeIndex (q_k_or_v an Enum whose value is "attn.k") and a PassType enum."""
    import enum

    class Loc(str, enum.Enum):
        ATTN_KEY = "attn.k"

    class Pass(str, enum.Enum):
        BACKWARD = "backward"

    class Sub:
        node_type, layer_index, tensor_indices, q_k_or_v = "attention_head", 1, (5, 2, 1), Loc.ATTN_KEY

    m, s = setup_of("none", "numpy")
    want = nw.derive(m, s, "grad_of_single_subnode_attribution", 1,
                     node=nw.NodeIndex("attention_head", 1, (5, 2, 1), q_k_or_v="attn.k"))
    assert np.array_equal(nw.derive(m, s, "grad_of_single_subnode_attribution", 1, node=Sub()), want)
    s2 = nw.ActivationStore()
    s2.put("resid.post_emb", None, np.zeros((T, D), np.float32), pass_type=Pass.BACKWARD)
    assert ("resid.post_emb", None, "backward") in s2


def test_thread_counts_give_identical_bits():
    try:
        runs = []
        for n in (1, 2):
            nw.set_num_threads(n)
            runs.append([nw.derive(*setup_of(c["store"], "numpy"), c["dst"], None if k == "none" else int(k),
                                   node=node_index(case_node(c)) if case_node(c) else None,
                                   detach_layer_norm_scale=bool(c.get("detach")))
                         for c in CASES[::7] if "expected" in c and c["group"] != "single_node_write"
                         for k in c["expected"]])
        assert all(np.array_equal(a, b) for a, b in zip(*runs))
    finally:
        nw.set_num_threads(0)


def test_node_index_with_a_subnode_is_a_value():
    import pickle

    a = nw.NodeIndex("attention_head", 1, (5, 2, 1), q_k_or_v="attn.v")
    assert a == nw.NodeIndex("attention_head", 1, (5, 2, 1), q_k_or_v="attn.v")
    assert a != nw.NodeIndex("attention_head", 1, (5, 2, 1)) and "q_k_or_v='attn.v'" in repr(a)
    assert pickle.loads(pickle.dumps(a)) == a and hash(pickle.loads(pickle.dumps(a))) == hash(a)
    t = nw.NodeIndex("attention_autoencoder_latent", 0, (None, 3))
    assert t.tensor_indices == (None, 3) and pickle.loads(pickle.dumps(t)) == t


# --------------------------------------------------------------------------------- stubs


def test_stub_signatures_are_the_docstrings():
    """_core.pyi's parameters of the calls this change touched are the docstrings' signatures."""
    import ast
    import os

    tree = ast.parse(open(os.path.join(os.path.dirname(nw.__file__), "_core.pyi")).read())
    stubs = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            stubs[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for f in node.body:
                if isinstance(f, ast.FunctionDef):
                    stubs[f"{node.name}.{f.name}"] = f

    def params(f):
        a = f.args
        return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]

    for name, fn in (("derive", nw.derive), ("ActivationStore.put", nw.ActivationStore.put),
                     ("ActivationStore.remove", nw.ActivationStore.remove), ("ActivationStore.get", nw.ActivationStore.get),
                     ("ActivationStore.keys", nw.ActivationStore.keys), ("Model.set_autoencoder", nw.Model.set_autoencoder),
                     ("Model.set_weight", nw.Model.set_weight)):
        first = fn.__doc__.split("\n", 1)[0]
        inside = first[first.index("(") + 1 : first.rindex(")")]
        documented = [p.split(":")[0].strip() for p in inside.replace("*, ", "").split(", ") if ":" in p or p == "self"]
        assert params(stubs[name]) == documented, (name, params(stubs[name]), documented)


def _letters(location: str) -> str:
    """The canonical layout letters of an activation (ActivationStore.put's layout=)."""
    if location == "attn.qk_probs":
        return "qkh"
    word = {"tokens": "t", "heads": "h", "d_head": "d", "d_model": "d", "d_ff": "n", "latents": "n"}
    return "".join(word[d] for d in nw.activation_info(location).dims)


def test_both_passes_put_with_a_batch_dimension_give_the_same_edges():
    """Every activation and gradient of a store put as element 1 of a batch (layout="b...", batch=1,
    as TransformerLens's caches hold them): the same outputs, bit for bit."""
    store = "mlp"
    m, s = setup_of(store, "numpy")
    b = nw.ActivationStore()
    keep = []
    for location, layer, pass_type, tensor in store_activations(store):
        x = np.array(TENSORS[tensor])
        batched = np.stack([np.full_like(x, np.nan), x])
        keep.append(batched)
        b.put(location, layer, batched, layout="b" + _letters(location), batch=1, pass_type=pass_type)
    assert b.batch == 1
    n = 0
    for c in CASES:
        if c["store"] != store or "expected" not in c or c["group"] == "single_node_write":
            continue
        nd = case_node(c)
        kw = dict(node=node_index(nd) if nd else None, detach_layer_norm_scale=bool(c.get("detach")))
        for key in c["expected"]:
            layer = None if key == "none" else int(key)
            assert np.array_equal(nw.derive(m, b, c["dst"], layer, **kw), nw.derive(m, s, c["dst"], layer, **kw)), c["id"]
            n += 1
    assert n > 100
