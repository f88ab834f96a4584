"""Pickling Model and ActivationStore (nodewrite/pickling.py): round trips bit for bit.

- every weight kind the library has (write side, read side, of no layer), copied and borrowed,
  float32 / float16 / float64 numpy, torch float32 / float16 / bfloat16, strided views;
- autoencoders of every latent node type and input kind; causal and non-causal models;
- stores with layout= and batch= entries and torch tensors;
- protocol 5 with out-of-band buffers: the unpickled model borrows them (no copy); protocols
  2 and 4: in-band copies;
- every derive of the unpickled objects gives the same bits as the original;
- an object made with __new__ refuses to pickle with NodeWriteValueError.

Ray's object store (ray.put, a task reading them) is tested in test_eco_ray.py.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import nodewrite as nw
from nodewrite import _core

try:
    import torch
except ImportError:  # pragma: no cover (the numpy kinds still run)
    torch = None

L, D, H, DH, FF, V, T = 2, 12, 3, 4, 20, 9, 5
N_LATENTS = 7
SIZES = {"d_model": D, "d_ff": FF, "heads": H, "d_head": DH, "vocab": V, "head_channels": H * DH, "one": 1}


def rng(seed=0):
    return np.random.default_rng(seed)


def weight_shape(name):
    return tuple(SIZES[d] for d in nw.weight_info(name).dims)


def as_kind(a: np.ndarray, kind: str):
    """a (float64 values) as the object handed to the binding."""
    if kind == "f32":
        return a.astype(np.float32)
    if kind == "f16":
        return a.astype(np.float16)
    if kind == "f64":
        return a.astype(np.float64)
    if kind == "strided":  # a transposed view of a contiguous array (not contiguous itself)
        return np.ascontiguousarray(a.astype(np.float32).T).T
    if kind == "neg":  # negative strides
        return np.ascontiguousarray(a.astype(np.float32)[::-1])[::-1]
    if kind == "t32":
        return torch.tensor(a, dtype=torch.float32)
    if kind == "t16":
        return torch.tensor(a, dtype=torch.float16)
    if kind == "bf16":
        return torch.tensor(a, dtype=torch.bfloat16)
    raise AssertionError(kind)


KINDS = ["f32", "f16", "f64", "strided", "neg"] + (["t32", "t16", "bf16"] if torch is not None else [])


def full_model(causal=True, seed=0, borrow_every_other=True):
    """Every weight of every layer (kinds and copy/borrow cycling), and autoencoders."""
    r = rng(seed)
    m = nw.Model(L, D, H, DH, FF, causal=causal)
    keep = []
    i = 0
    for name in nw.WEIGHTS:
        layers = range(L) if nw.weight_info(name).has_layer else [None]
        for layer in layers:
            kind = KINDS[i % len(KINDS)]
            copy_ = (i % 2 == 0) if borrow_every_other else True
            w = as_kind(r.standard_normal(weight_shape(name)) * 0.3, kind)
            keep.append(w)
            m.set_weight(name, layer, w, copy=copy_)
            i += 1
    # one autoencoder per latent node type, each input kind, at layer 1 / 0
    aes = [("autoencoder_latent", 0, "resid_delta_mlp", D), ("mlp_autoencoder_latent", 1, "mlp_post_act", FF),
           ("attention_autoencoder_latent", 1, "attn_weighted_sum_of_values", H * DH)]
    for j, (nt, layer, src, n_in) in enumerate(aes):
        dec = as_kind(r.standard_normal((N_LATENTS, n_in)) * 0.3, KINDS[(j + 1) % len(KINDS)])
        keep.append(dec)
        m.set_autoencoder(nt, layer, dec, src, copy=(j == 1))
    return m, keep


def full_store(seed=1, odd=True):
    """The forward activations the write family reads, some with layout= / batch=."""
    r = rng(seed)
    s = nw.ActivationStore()
    for layer in range(L):
        post = r.standard_normal((T, FF)).astype(np.float32)
        logits = r.standard_normal((T, T, H))
        logits = np.where(np.tril(np.ones((T, T)))[:, :, None] > 0, logits, -np.inf)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs = (probs / probs.sum(1, keepdims=True)).astype(np.float32)
        v = r.standard_normal((T, H, DH)).astype(np.float32)
        if odd and layer == 1:
            s.put("mlp.post_act", layer, np.stack([post * 0, post, post * 2]), layout="btn", batch=1)  # (B, T, d_ff)
            s.put("attn.qk_probs", layer, np.ascontiguousarray(probs.transpose(2, 0, 1)), layout="hqk")
            s.put("attn.v", layer, as_kind(v, "t16") if torch is not None else v.astype(np.float16))
        else:
            s.put("mlp.post_act", layer, post)
            s.put("attn.qk_probs", layer, probs)
            s.put("attn.v", layer, v)
        for act in ("online_autoencoder_latent", "online_mlp_autoencoder_latent", "online_attention_autoencoder_latent"):
            s.put(act, layer, np.maximum(r.standard_normal((T, N_LATENTS)), 0).astype(np.float32))
    return s


def derive_all(m, s):
    """Every write-family derive the pair supports, as {(dst, layer): array} (errors as text)."""
    d = rng(5).standard_normal(D).astype(np.float32)
    out = {}
    for info in map(nw.dst_info, nw.DSTS):
        if not info.has_layer:
            continue
        for layer in range(L):
            try:
                kw = {"direction": d} if info.needs_direction else {}
                out[(info.name, layer)] = nw.derive(m, s, info.name, layer, **kw)
            except nw.NodeWriteError as e:
                out[(info.name, layer)] = f"{type(e).__name__}"
    return out


def same_derives(a, b):
    assert a.keys() == b.keys()
    n_arrays = 0
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, str):
            assert x == y, key
            continue
        n_arrays += 1
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert x.tobytes() == y.tobytes(), key  # bit for bit (NaN included)
    assert n_arrays >= 10  # the comparison covered real outputs


def held_bits(m):
    """What the model holds, slot by slot, as (dtype, shape, bytes)."""
    st = _core._model_state(m)
    w = {(n, l): (dt, a.shape, np.ascontiguousarray(a).tobytes()) for n, l, a, dt, _ in st["weights"]}
    ae = {(t, l): (src, dt, a.shape, np.ascontiguousarray(a).tobytes(),
                   None if enc is None else [(xd, x.shape, np.ascontiguousarray(x).tobytes()) for x, xd in enc])
          for t, l, src, a, dt, _, enc in st["autoencoders"]}
    return st["dims"], st["causal"], w, ae


def dumps5(obj):
    buffers = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return data, buffers


@pytest.fixture(scope="module")
def pair():
    m, keep = full_model()
    return m, full_store(), keep


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_model_and_store_round_trip_bit_for_bit(pair, protocol):
    m, s, _ = pair
    if protocol == 5:
        data, bufs = dumps5((m, s))
        assert len(bufs) > 0
        m2, s2 = pickle.loads(data, buffers=bufs)
    else:
        m2, s2 = pickle.loads(pickle.dumps((m, s), protocol=protocol))
    assert isinstance(m2, nw.Model) and isinstance(s2, nw.ActivationStore)
    dims, causal, w, ae = held_bits(m)
    dims2, causal2, w2, ae2 = held_bits(m2)
    assert (dims, causal) == (dims2, causal2)
    assert w.keys() == w2.keys() and len(w) == len(nw.WEIGHTS) * L - 2 * (L - 1)  # every slot
    for k in w:  # a borrowed tensor keeps its dtype and bits; a copy travels as float32
        assert w[k] == w2[k], k
    assert ae == ae2 and len(ae) == 3
    assert {k: v["shape"] for k, v in m.weights().items()} == {k: v["shape"] for k, v in m2.weights().items()}
    assert not any(v["copied"] for v in m2.weights().values())  # the unpickled model borrows
    assert sorted(s.keys()) == sorted(s2.keys())
    same_derives(derive_all(m, s), derive_all(m2, s2))


def test_protocol5_buffers_are_borrowed_in_place():
    w = rng(2).standard_normal((FF, D)).astype(np.float32)
    m = nw.Model(L, D, H, DH, FF)
    m.set_weight("mlp.to_residual", 0, w, copy=False)
    m.set_weight("mlp.to_residual", 1, w, copy=True)
    data, bufs = dumps5(m)
    assert len(bufs) == 2 and len(data) < w.nbytes  # the weights are not in the pickle
    m2 = pickle.loads(data, buffers=bufs)
    st = {(n, l): a for n, l, a, *_ in _core._model_state(m2)["weights"]}
    assert np.shares_memory(st[("mlp.to_residual", 0)], w)  # in one process: the caller's memory itself
    # the copy travels as a new buffer, and the unpickled model reads that buffer in place
    raw = np.frombuffer(bufs[1].raw(), dtype=np.float32)
    assert np.shares_memory(st[("mlp.to_residual", 1)], raw)
    assert not st[("mlp.to_residual", 1)].flags.writeable
    in_band = pickle.dumps(m, protocol=4)
    assert len(in_band) > 2 * w.nbytes


def test_read_only_buffers_from_bytes():
    """Buffers that arrive as read-only bytes (another process, Ray's object store)."""
    m, _ = full_model(seed=3)
    s = full_store(seed=4)
    data, bufs = dumps5((m, s))
    frozen = [bytes(b.raw()) for b in bufs]  # read-only, not the original memory
    m2, s2 = pickle.loads(data, buffers=frozen)
    same_derives(derive_all(m, s), derive_all(m2, s2))


def test_non_causal_and_empty_objects():
    m = nw.Model(1, 4, 2, 2, 8, causal=False, layer_norm_epsilon=3e-6, mlp_activation="relu")
    m2 = pickle.loads(pickle.dumps(m, protocol=5))
    assert m2.causal is False and m2.weights() == {} and m2.autoencoders() == {}
    assert m2.layer_norm_epsilon == 3e-6 and m2.mlp_activation == "relu"
    assert (m2.n_layers, m2.d_model, m2.n_heads, m2.d_head, m2.d_ff) == (1, 4, 2, 2, 8)
    s2 = pickle.loads(pickle.dumps(nw.ActivationStore(), protocol=5))
    assert len(s2) == 0


def test_non_causal_model_derives_bit_for_bit():
    m, _ = full_model(causal=False, seed=6)
    s = full_store(seed=7, odd=False)
    m2 = pickle.loads(pickle.dumps(m, protocol=5))
    assert m2.causal is False
    same_derives(derive_all(m, s), derive_all(m2, s))


def test_copy_and_deepcopy():
    m, _ = full_model(seed=8)
    s = full_store(seed=9)
    ref = derive_all(m, s)
    same_derives(ref, derive_all(copy.deepcopy(m), copy.deepcopy(s)))
    same_derives(ref, derive_all(copy.copy(m), copy.copy(s)))


def test_an_uninitialised_object_refuses_to_pickle():
    for cls in (nw.Model, nw.ActivationStore):
        obj = cls.__new__(cls)
        with pytest.raises(nw.NodeWriteValueError, match="not initialised"):
            pickle.dumps(obj, protocol=5)
        with pytest.raises(nw.NodeWriteValueError, match="not initialised"):
            pickle.dumps(obj, protocol=2)


def test_a_borrowed_array_that_moved_refuses_to_pickle():
    w = rng(4).standard_normal((FF, D)).astype(np.float32)
    m = nw.Model(L, D, H, DH, FF)
    m.set_weight("mlp.to_residual", 0, w, copy=False)
    w.resize((FF + 1, D), refcheck=False)
    with pytest.raises(nw.NodeWriteStaleInputError):
        pickle.dumps(m, protocol=5)


def test_the_library_gives_back_a_copied_weight_as_float32():
    """A float16 / float64 weight set with copy=True is read back as the float32 copy derives read."""
    w16 = rng(5).standard_normal((FF, D)).astype(np.float16)
    w64 = rng(6).standard_normal((FF, D))
    m = nw.Model(L, D, H, DH, FF)
    m.set_weight("mlp.to_residual", 0, w16)
    m.set_weight("mlp.to_residual", 1, w64.T.copy().T)  # strided float64
    st = {(n, l): (a, dt) for n, l, a, dt, _ in _core._model_state(m)["weights"]}
    assert st[("mlp.to_residual", 0)][1] == "float32"
    assert np.array_equal(st[("mlp.to_residual", 0)][0], w16.astype(np.float32))
    assert np.array_equal(st[("mlp.to_residual", 1)][0], w64.astype(np.float32))


def test_the_read_exports_contract():
    """nw_model_weight_read / nw_model_autoencoder_read through ctypes: values, an empty slot, a
    buffer too small (nothing written), NULL model, a layer out of range, a node type that is
    not a latent type."""
    import ctypes
    import os

    lib = ctypes.CDLL(os.path.join(os.path.dirname(nw.__file__), "libnodewrite.so"))
    S = nw.STATUSES

    class Dims(ctypes.Structure):
        _fields_ = [(n, ctypes.c_int64) for n in ("n_layers", "d_model", "n_heads", "d_head", "d_ff")]

    class View(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("ndim", ctypes.c_int32),
                    ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64))]

    fp = ctypes.POINTER(ctypes.c_float)
    lib.nw_model_weight_read.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, fp, ctypes.c_size_t]
    lib.nw_model_autoencoder_read.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, fp, ctypes.c_size_t]
    lib.nw_model_create.argtypes = [ctypes.POINTER(Dims), ctypes.POINTER(ctypes.c_void_p)]
    lib.nw_model_set_weight.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(View), ctypes.c_int32]
    lib.nw_model_destroy.argtypes = [ctypes.c_void_p]
    m = ctypes.c_void_p()
    assert lib.nw_model_create(ctypes.byref(Dims(L, D, H, DH, FF)), ctypes.byref(m)) == 0
    try:
        w = rng(7).standard_normal((D, FF)).astype(np.float16).T  # (d_ff, d_model), strided float16
        shape = (ctypes.c_int64 * 2)(FF, D)
        strides = (ctypes.c_int64 * 2)(*(s // 2 for s in w.strides))
        v = View(w.ctypes.data, nw.DTYPES.index("float16"), 2, shape, strides)
        mlp = nw.WEIGHTS.index("mlp.to_residual")
        assert lib.nw_model_set_weight(m, mlp, 0, ctypes.byref(v), 0) == 0  # NW_COPY = 0
        out = np.full(FF * D, 7.0, np.float32)
        ptr = out.ctypes.data_as(fp)
        assert lib.nw_model_weight_read(m, mlp, 0, ptr, FF * D - 1) == S["NW_ERR_BUFFER_TOO_SMALL"]
        assert (out == 7.0).all()  # nothing written on failure
        assert lib.nw_model_weight_read(m, mlp, 0, ptr, FF * D) == 0
        assert np.array_equal(out.reshape(FF, D), w.astype(np.float32))
        assert lib.nw_model_weight_read(m, mlp, 1, ptr, FF * D) == S["NW_ERR_MISSING_INPUT"]
        assert lib.nw_model_weight_read(m, mlp, L, ptr, FF * D) == S["NW_ERR_INDEX_OUT_OF_RANGE"]
        assert lib.nw_model_weight_read(None, mlp, 0, ptr, FF * D) == S["NW_ERR_INVALID_ARGUMENT"]
        assert lib.nw_model_weight_read(m, 999, 0, ptr, FF * D) == S["NW_ERR_INVALID_ARGUMENT"]
        assert lib.nw_model_weight_read(m, mlp, 0, None, FF * D) == S["NW_ERR_INVALID_ARGUMENT"]
        ae = nw.NODE_TYPES.index("mlp_autoencoder_latent")
        assert lib.nw_model_autoencoder_read(m, ae, 0, ptr, FF * D) == S["NW_ERR_MISSING_INPUT"]
        assert lib.nw_model_autoencoder_read(m, nw.NODE_TYPES.index("mlp_neuron"), 0, ptr, FF * D) == S["NW_ERR_INVALID_ARGUMENT"]
    finally:
        lib.nw_model_destroy(m)


# -- what the edges added: encoders, the backward pass, entries of no layer ----------------------


def store_bits(s):
    """Every entry of a store, both passes, as {(name, layer, pass): (dtype, shape, bytes, batch element)}."""
    return {(n, l, p): (dt, a.shape, np.ascontiguousarray(a).tobytes(), b) for n, l, a, dt, p, b in _core._store_state(s)}


def edge_pair(copy_encoder):
    import edge_inputs as E

    m, s, keep = E.edge_model_and_store()
    z = np.abs(rng(3).standard_normal((5, 7))).astype(np.float32) + 0.1  # the trace latent active
    keep.append(z)
    s.put("online_attention_autoencoder_latent", 1, z)
    if copy_encoder:  # the same autoencoders set again with copy=True (the binding keeps its copy)
        r = rng(11)
        for layer in range(m.n_layers):
            dec, enc = (r.standard_normal((7, m.d_model)).astype(np.float32) for _ in range(2))
            lb, pb = r.standard_normal(7).astype(np.float32), r.standard_normal(m.d_model).astype(np.float32)
            m.set_autoencoder("attention_autoencoder_latent", layer, dec, "resid_delta_attn", copy=True,
                              replace=True, encoder=enc, latent_bias=lb, pre_bias=pb)
            for a in (enc, lb, pb):  # a later change of the caller's arrays is not what was set
                a[...] = 0
    return E, m, s, keep


def edge_derives(E, m, s):
    out = {}
    for dst in E.EDGE_DSTS:  # every edge DST (gradients, in-edges, out-edges, to-latent, ...)
        layer, kw = E.edge_args(dst)
        try:
            out[dst] = nw.derive(m, s, dst, layer, **kw)
        except nw.NodeWriteError as e:
            out[dst] = type(e).__name__
    return out


def round_trip(obj, protocol):
    if protocol == 5:
        data, buffers = dumps5(obj)
        return pickle.loads(data, buffers=buffers)
    return pickle.loads(pickle.dumps(obj, protocol=protocol))


@pytest.mark.parametrize("copy_encoder", [False, True])
@pytest.mark.parametrize("protocol", [4, 5])
def test_edge_inputs_round_trip_bit_for_bit(protocol, copy_encoder):
    E, m, s, _keep = edge_pair(copy_encoder)
    m2, s2 = round_trip(m, protocol), round_trip(s, protocol)
    assert held_bits(m2) == held_bits(m)
    ae = held_bits(m)[3]
    assert ae and all(v[4] is not None for v in ae.values())  # every encoder travelled
    assert store_bits(s2) == store_bits(s)
    keys = store_bits(s).keys()
    assert any(p == "backward" for _, _, p in keys) and ("resid.post_emb", None, "forward") in keys
    a, b = edge_derives(E, m, s), edge_derives(E, m2, s2)
    assert a.keys() == b.keys()
    assert sum(isinstance(v, np.ndarray) and v.any() for v in a.values()) >= 20, a  # real outputs compared
    assert a["autoencoder_latent_grad_wrt_residual_input"].any()  # reads the encoder
    for dst in a:
        if isinstance(a[dst], str):
            assert a[dst] == b[dst], dst
        else:
            assert a[dst].dtype == b[dst].dtype and a[dst].tobytes() == b[dst].tobytes(), dst


def test_an_unpickled_edge_pair_without_the_backward_pass_would_differ():
    """The comparison above can fail: a store without its backward entries answers a gradient DST
    differently (an error or other bits)."""
    E, m, s, _keep = edge_pair(False)
    s2 = round_trip(s, 4)
    for name, layer in s2.keys(pass_type="backward"):
        s2.remove(name, layer, pass_type="backward")
    a, b = edge_derives(E, m, s), edge_derives(E, m, s2)
    dst = "grad_of_single_subnode_attribution"
    assert isinstance(a[dst], np.ndarray) and (isinstance(b[dst], str) or a[dst].tobytes() != b[dst].tobytes())


def test_an_encoder_goes_with_its_autoencoder():
    """Replacing an autoencoder without encoder= (or removing it) drops the kept encoder, so a
    pickle carries no stale one."""
    E, m, s, _keep = edge_pair(True)
    dec = rng(12).standard_normal((7, m.d_model)).astype(np.float32)
    m.set_autoencoder("attention_autoencoder_latent", 1, dec, "resid_delta_attn", replace=True)
    ae = held_bits(m)[3]
    assert ae[("attention_autoencoder_latent", 1)][4] is None and ae[("attention_autoencoder_latent", 0)][4] is not None
    assert held_bits(round_trip(m, 4)) == held_bits(m)
    m.remove_autoencoder("attention_autoencoder_latent", 0)
    assert ("attention_autoencoder_latent", 0) not in held_bits(round_trip(m, 5))


def test_a_store_keeps_its_batch_element():
    """An entry put with batch= arrives as that element's tensor, marked as put with it:
    ActivationStore.batch is the same, and a put with another batch= is refused as before."""
    r = rng(12)
    post = r.standard_normal((3, T, FF)).astype(np.float32)
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, post, layout="btn", batch=2)
    s.put("mlp.post_act", 1, post[0])  # no batch=
    for s2 in (pickle.loads(pickle.dumps(s, protocol=5)), pickle.loads(pickle.dumps(s, protocol=2)), copy.deepcopy(s)):
        assert s2.batch == s.batch == 2
        assert np.array_equal(np.asarray(s2.get("mlp.post_act", 0)), post[2])
        with pytest.raises(nw.NodeWriteValueError, match="batch element 2"):
            s2.put("mlp.post_act", 1, post, layout="btn", batch=0)
        s2.remove("mlp.post_act", 0)  # the only batched entry: the store holds no batch element any more
        assert s2.batch is None
    plain = nw.ActivationStore()
    plain.put("mlp.post_act", 0, post[1])
    assert pickle.loads(pickle.dumps(plain, protocol=5)).batch is None


def test_after_unpickling_by_value_every_weight_is_borrowed():
    """What weights() reports is true: the unpickled model borrows the unpickled arrays (copied
    False), a library copy arriving as float32."""
    w16 = rng(13).standard_normal((FF, D)).astype(np.float16)
    m = nw.Model(L, D, H, DH, FF)
    m.set_weight("mlp.to_residual", 0, w16, copy=True)
    m.set_weight("mlp.to_residual", 1, w16, copy=False)
    assert m.weights()[("mlp.to_residual", 0)] == {"copied": True, "dtype": "float32", "shape": (FF, D)}  # the library's copy
    for protocol in (2, 5):
        m2 = pickle.loads(pickle.dumps(m, protocol=protocol))
        assert m2.weights()[("mlp.to_residual", 0)] == {"copied": False, "dtype": "float32", "shape": (FF, D)}
        assert m2.weights()[("mlp.to_residual", 1)] == {"copied": False, "dtype": "float16", "shape": (FF, D)}
