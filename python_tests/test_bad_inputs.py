"""Bad-input table: every argument of the Python API, at each limit, one past it, the
extremes, the wrong type, None and unknown names -> the documented exception, every time,
never a crash. Documented mapping (nodewrite.errors): IndexError for indices and layers out
of range, ValueError for shapes, dtypes, names and argument types, KeyError for a missing
weight, autoencoder or activation; all are nodewrite.NodeWriteError."""

import enum

import numpy as np
import pytest

import nodewrite as nw
import nw_fixtures as F

T = F.tensors()
D = F.dims()
NT = F.n_tokens()
BIG = [2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, -(10**30)]


class Duck:
    """A node that is not a nodewrite.NodeIndex (TDB's, or anything alike): no checks of its own."""

    def __init__(self, node_type, layer_index, tensor_indices):
        self.node_type, self.layer_index, self.tensor_indices = node_type, layer_index, tensor_indices


@pytest.fixture(scope="module")
def model():
    return F.make_model("multi")


@pytest.fixture(scope="module")
def store():
    return F.make_store()


def raises(exc, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, nw.NodeWriteError), type(info.value)
    assert str(info.value)
    return info.value


# ------------------------------------------------------------------ node indices

def index_cases():
    rows = []
    # (node_type, layer, indices, exception): each dimension at its limit + 1 and beyond.
    for idx, exc in [((NT, 0), IndexError), ((-NT - 1, 0), IndexError), ((0, D["d_ff"]), IndexError),
                     ((0, -D["d_ff"] - 1), IndexError), ((NT - 1, D["d_ff"] - 1), None),
                     ((-NT, -D["d_ff"]), None)]:
        rows.append(("mlp_neuron", 0, idx, exc))
    for idx, exc in [((NT, 0, 0), IndexError), ((0, NT, 0), IndexError), ((0, 0, D["n_heads"]), IndexError),
                     ((0, 0, -D["n_heads"] - 1), IndexError), ((-NT - 1, 0, 0), IndexError),
                     ((NT - 1, NT - 1, D["n_heads"] - 1), None)]:
        rows.append(("attention_head", 0, idx, exc))
    for idx, exc in [((0, 56), IndexError), ((0, -57), IndexError), ((NT, 0), IndexError), ((0, 55), None)]:
        rows.append(("attention_autoencoder_latent", 1, idx, exc))
    for big in BIG:
        rows.append(("mlp_neuron", 0, (big, 0), IndexError))
        rows.append(("mlp_neuron", 0, (0, big), IndexError))
        rows.append(("attention_head", 0, (0, 0, big), IndexError))
        rows.append(("mlp_neuron", big, (0, 0), IndexError))
        rows.append(("mlp_autoencoder_latent", 0, (0, big), IndexError))
    for layer in (D["n_layers"], -1, -D["n_layers"] - 1):
        rows.append(("mlp_neuron", layer, (0, 0), IndexError))
    # Wrong number of indices.
    for nt, idx in [("mlp_neuron", (0,)), ("mlp_neuron", (0, 0, 0)), ("attention_head", (0, 0)),
                    ("attention_head", ()), ("mlp_neuron", (0, 0, 0, 0)), ("mlp_neuron", (0,) * 5)]:
        rows.append((nt, 0, idx, ValueError))
    return rows


@pytest.mark.parametrize("node_type,layer,idx,exc", index_cases())
def test_node_indices(node_type, layer, idx, exc, model, store):
    if exc is ValueError:  # a wrong count: NodeIndex refuses it when made; the library too
        raises(ValueError, nw.NodeIndex, node_type, layer, idx)
        node = Duck(node_type, layer, idx)
    else:
        node = nw.NodeIndex(node_type, layer, idx)
    if exc is None:
        out = nw.node_write(model, store, node)
        assert out.shape == (NT, D["d_model"])
        return
    raises(exc, nw.node_write, model, store, node)
    raises(exc, nw.node_write_vectors, model, store, [node])
    with pytest.raises(exc):
        nw.NodeWriteDeriver(model, node).derive_vector(store)


@pytest.mark.parametrize("node_type,layer,idx", [
    ("neuron", 0, (0, 0)), ("", 0, (0, 0)), ("MLP_NEURON", 0, (0, 0)), (None, 0, (0, 0)),
    (3, 0, (0, 0)), ("mlp_neuron\x00", 0, (0, 0)), ("mlp_neuron", None, (0, 0)),
    ("mlp_neuron", 1.0, (0, 0)), ("mlp_neuron", "0", (0, 0)), ("mlp_neuron", 0, None),
    ("mlp_neuron", 0, "01"), ("mlp_neuron", 0, 5), ("mlp_neuron", 0, (0, 1.5)),
    ("mlp_neuron", 0, (0, None)), ("mlp_neuron", 0, (0, "1")), ("mlp_neuron", 0, (True, 0)),
])
def test_node_index_construction(node_type, layer, idx):
    raises(ValueError, nw.NodeIndex, node_type, layer, idx)


class DuckNode:
    """Duck-typed nodes (e.g. TDB's own NodeIndex) are read through their attributes."""

    def __init__(self, node_type, layer_index, tensor_indices):
        self.node_type, self.layer_index, self.tensor_indices = node_type, layer_index, tensor_indices


class NodeType(str, enum.Enum):
    MLP_NEURON = "mlp_neuron"


def test_duck_typed_and_enum_nodes(model, store):
    good = nw.node_write(model, store, nw.NodeIndex("mlp_neuron", 0, (5, 8)))
    assert np.array_equal(nw.node_write(model, store, DuckNode(NodeType.MLP_NEURON, 0, [5, np.int64(8)])), good)
    assert np.array_equal(nw.node_write(model, store, nw.NodeIndex(NodeType.MLP_NEURON, np.int32(0), (5, 8))), good)
    for bad in [DuckNode("x", 0, (0, 0)), DuckNode("mlp_neuron", 0, (0, 0.5)), DuckNode("mlp_neuron", None, (0, 0)),
                DuckNode("mlp_neuron", 0, None), DuckNode("mlp_neuron", 0, "ab"), DuckNode(None, 0, (0, 0)),
                DuckNode("mlp_neuron", 0, (0, 2**70)), object(), None, 3, "mlp_neuron", (0, 0)]:
        exc = IndexError if isinstance(bad, DuckNode) and bad.tensor_indices == (0, 2**70) else ValueError
        raises(exc, nw.node_write, model, store, bad)
        raises(exc, nw.NodeWriteDeriver, model, bad)
        raises(exc, nw.node_write_vectors, model, store, [bad])


@pytest.mark.parametrize("bad", [None, 3, "abc", object()])
def test_node_write_vectors_nodes_argument(bad, model, store):
    raises(ValueError, nw.node_write_vectors, model, store, bad)


def test_wrong_object_kinds(model, store):
    node = nw.NodeIndex("mlp_neuron", 0, (0, 0))
    for bad in (None, 3, store, object()):
        raises(ValueError, nw.node_write, bad, store, node)
        raises(ValueError, nw.NodeWriteDeriver, bad, node)
        raises(ValueError, nw.node_write_vectors, bad, store, [node])
    for bad in (None, 3, model, object()):
        raises(ValueError, nw.node_write, model, bad, node)
        raises(ValueError, nw.NodeWriteDeriver(model, node).derive, bad)
        raises(ValueError, nw.NodeWriteDeriver(model, node).derive_vector, bad)
        raises(ValueError, nw.node_write_vectors, model, bad, [node])


# ------------------------------------------------------------------ models

@pytest.mark.parametrize("dims", [
    dict(n_layers=0), dict(d_model=0), dict(n_heads=-1), dict(d_head=-(2**63)), dict(d_ff=2**63),
    dict(d_ff=2**64), dict(n_layers=None), dict(d_model=1.0), dict(d_model="48"),
    dict(d_model=2**62, d_ff=2**62), dict(n_heads=2**40, d_head=2**40, d_model=2**40),
])
def test_model_dims(dims):
    args = dict(D)
    args.update(dims)
    raises(ValueError, nw.Model, **args)


def test_model_limits_are_accepted():
    m = nw.Model(n_layers=1, d_model=1, n_heads=1, d_head=1, d_ff=1)
    assert (m.n_layers, m.d_model, m.n_heads, m.d_head, m.d_ff) == (1, 1, 1, 1, 1)
    assert "Model" in repr(m)


def bad_arrays(shape):
    """Arrays of the right shape and the wrong element type, and things that are not arrays."""
    return [
        np.zeros(shape, np.int32), np.zeros(shape, np.int64), np.zeros(shape, np.bool_),
        np.zeros(shape, np.complex64), np.zeros(shape, np.uint8), np.zeros(shape, object),
        np.zeros(shape, ">f4"), np.zeros(shape, np.longdouble),
        np.zeros(shape, dtype=[("a", "<f4"), ("b", "i1")])["a"],  # stride not a multiple of 4
        np.zeros(shape, dtype=[("a", "<f4"), ("b", "<f4")]),
        np.zeros(shape, np.float32).tolist(), None, "abc", b"\x00" * 16, 3.0, object(),
    ]


@pytest.mark.parametrize("copy", [True, False])
def test_set_weight_table(copy):
    m = nw.Model(**D)
    good_mlp = np.zeros((D["d_ff"], D["d_model"]), np.float32)
    good_attn = np.zeros((D["n_heads"], D["d_head"], D["d_model"]), np.float32)
    for bad in bad_arrays(good_mlp.shape):
        raises(ValueError, m.set_weight, "mlp.to_residual", 0, bad, copy=copy)
    for shape in [(D["d_ff"] + 1, D["d_model"]), (D["d_ff"], D["d_model"] - 1), (D["d_model"], D["d_ff"]),
                  (D["d_ff"],), (1, D["d_ff"], D["d_model"]), (), (0, D["d_model"])]:
        raises(ValueError, m.set_weight, "mlp.to_residual", 0, np.zeros(shape, np.float32), copy=copy)
    for shape in [(D["n_heads"] + 1, D["d_head"], D["d_model"]), (D["n_heads"] * D["d_head"], D["d_model"])]:
        raises(ValueError, m.set_weight, "attn.to_residual", 0, np.zeros(shape, np.float32), copy=copy)
    for name in ["mlp.to_resid", "", "MLP.TO_RESIDUAL", None, 0, "attn.v"]:
        raises(ValueError, m.set_weight, name, 0, good_mlp, copy=copy)
    for layer in [D["n_layers"], -1] + BIG:
        raises(IndexError, m.set_weight, "mlp.to_residual", layer, good_mlp, copy=copy)
    for layer in [None, 0.0, "0"]:
        raises(ValueError, m.set_weight, "mlp.to_residual", layer, good_mlp, copy=copy)
    m.set_weight("mlp.to_residual", D["n_layers"] - 1, good_mlp, copy=copy)
    m.set_weight("attn.to_residual", 0, good_attn, copy=copy)


def test_set_autoencoder_table():
    m = nw.Model(**D)
    m.set_weight("mlp.to_residual", 0, np.zeros((D["d_ff"], D["d_model"]), np.float32))
    dec_mlp = np.zeros((80, D["d_ff"]), np.float32)
    dec_res = np.zeros((56, D["d_model"]), np.float32)
    m.set_autoencoder("mlp_autoencoder_latent", 0, dec_mlp, input="mlp_post_act")
    m.set_autoencoder("attention_autoencoder_latent", 0, dec_res, input="resid_delta_attn")
    for name in ["resid_delta_mlp", "resid_post_mlp", "resid_post_attn", "resid_post_embedding"]:
        m.set_autoencoder("autoencoder_latent", 0, dec_res, input=name, replace=True)  # one per slot
    for inp in ["mlp_post", "", "attn.v", None, 3, "MLP_POST_ACT"]:
        raises(ValueError, m.set_autoencoder, "mlp_autoencoder_latent", 0, dec_mlp, input=inp)
    for nt in ["mlp_neuron", "attention_head", "latent", None]:
        raises(ValueError, m.set_autoencoder, nt, 0, dec_mlp, input="mlp_post_act")
    raises(ValueError, m.set_autoencoder, "mlp_autoencoder_latent", 0, dec_res, input="mlp_post_act")
    raises(ValueError, m.set_autoencoder, "attention_autoencoder_latent", 0, dec_mlp, input="resid_delta_attn")
    for bad in bad_arrays(dec_mlp.shape):
        raises(ValueError, m.set_autoencoder, "mlp_autoencoder_latent", 0, bad, input="mlp_post_act")
    for layer in [D["n_layers"], -1] + BIG:
        raises(IndexError, m.set_autoencoder, "mlp_autoencoder_latent", layer, dec_mlp, input="mlp_post_act")


def test_missing_weights_and_autoencoders_are_key_errors(store):
    m = nw.Model(**D)
    for node in [nw.NodeIndex("mlp_neuron", 0, (0, 0)), nw.NodeIndex("attention_head", 0, (0, 0, 0)),
                 nw.NodeIndex("autoencoder_latent", 0, (0, 0)), nw.NodeIndex("mlp_autoencoder_latent", 0, (0, 0)),
                 nw.NodeIndex("attention_autoencoder_latent", 0, (0, 0))]:
        raises(KeyError, nw.NodeWriteDeriver, m, node)
        raises(KeyError, nw.node_write, m, store, node)
    # An MLP autoencoder needs mlp.to_residual too.
    m.set_autoencoder("mlp_autoencoder_latent", 0, np.zeros((80, D["d_ff"]), np.float32), input="mlp_post_act")
    raises(KeyError, nw.NodeWriteDeriver, m, nw.NodeIndex("mlp_autoencoder_latent", 0, (0, 0)))


# ------------------------------------------------------------------ store

def test_store_put_table():
    s = nw.ActivationStore()
    good = np.zeros((NT, D["d_ff"]), np.float32)
    for bad in bad_arrays(good.shape):
        raises(ValueError, s.put, "mlp.post_act", 0, bad)
    for name in ["mlp.post", "", None, 3, "mlp.to_residual", "attn.qk_probs\x00"]:
        raises(ValueError, s.put, name, 0, good)
    # ndim checked at put; negative layers are invalid arguments (nw_store_put).
    raises(ValueError, s.put, "mlp.post_act", 0, np.zeros((NT,), np.float32))
    raises(ValueError, s.put, "attn.qk_probs", 0, np.zeros((NT, NT), np.float32))
    raises(ValueError, s.put, "mlp.post_act", -1, good)
    for layer in [None, 1.5]:
        raises(ValueError, s.put, "mlp.post_act", layer, good)
    for layer in [2**31, 2**63, -(2**63) - 1, 2**64]:
        raises((IndexError, ValueError), s.put, "mlp.post_act", layer, good)
    assert len(s) == 0 and s.keys() == []
    s.put("mlp.post_act", 0, good)
    assert ("mlp.post_act", 0) in s and ("mlp.post_act", 1) not in s and "x" not in s
    raises(KeyError, s.get, "mlp.post_act", 1)
    s.remove("mlp.post_act", 0)
    s.remove("mlp.post_act", 0)  # absent: no error
    raises(ValueError, s.remove, "nope", 0)
    assert len(s) == 0


def test_activation_shapes_checked_at_derive(model):
    node = nw.NodeIndex("attention_head", 0, (0, 0, 0))
    s = nw.ActivationStore()
    raises(KeyError, nw.node_write, model, s, node)
    s.put("attn.qk_probs", 0, T["activations.0.attn.qk_probs"])
    raises(KeyError, nw.node_write, model, s, node)  # attn.v missing
    for shape in [(NT, D["n_heads"] + 1, D["d_head"]), (NT, D["n_heads"], D["d_head"] - 1), (NT - 1, D["n_heads"], D["d_head"])]:
        s.put("attn.v", 0, np.zeros(shape, np.float32))
        raises(ValueError, nw.node_write, model, s, node)
    s.put("attn.v", 0, T["activations.0.attn.v"])
    nw.node_write(model, s, node)
    s.put("attn.qk_probs", 0, np.zeros((NT, NT, D["n_heads"] + 1), np.float32))
    raises(ValueError, nw.node_write, model, s, node)
    # Zero tokens: every token index is out of range.
    s2 = nw.ActivationStore()
    s2.put("mlp.post_act", 0, np.zeros((0, D["d_ff"]), np.float32))
    raises(IndexError, nw.node_write, model, s2, nw.NodeIndex("mlp_neuron", 0, (0, 0)))
    s2.put("mlp.post_act", 0, np.zeros((NT, D["d_ff"] + 1), np.float32))
    raises(ValueError, nw.node_write, model, s2, nw.NodeIndex("mlp_neuron", 0, (0, 0)))


def test_huge_broadcast_activation_is_an_error_not_a_crash(model):
    # A zero-stride view claiming 2**40 tokens: the output cannot be allocated.
    s = nw.ActivationStore()
    huge = np.lib.stride_tricks.as_strided(np.zeros(D["d_ff"], np.float32), (2**40, D["d_ff"]), (0, 4))
    s.put("mlp.post_act", 0, huge)
    node = nw.NodeIndex("mlp_neuron", 0, (2**40 - 1, 3))
    vec, row = nw.NodeWriteDeriver(model, node).derive_vector(s)  # the vector alone is fine
    assert row == 2**40 - 1 and not np.any(vec)
    with pytest.raises(MemoryError) as info:
        nw.node_write(model, s, node)
    assert isinstance(info.value, nw.NodeWriteError)


def test_check_maps_every_status():
    from nodewrite import errors
    assert errors.check(0) is None
    table = {-1: ValueError, -2: IndexError, -3: ValueError, -4: ValueError, -5: KeyError,
             -6: ValueError, -7: MemoryError, -8: ValueError}
    for status, exc in table.items():
        with pytest.raises(exc) as info:
            errors.check(status, "message")
        assert isinstance(info.value, nw.NodeWriteError) and info.value.status == status
        assert str(info.value) == "message"
    with pytest.raises(nw.NodeWriteError, match="NW_ERR_UNKNOWN"):
        errors.check(-99, "x")


def test_node_index_value_semantics():
    import pickle
    a = nw.NodeIndex("attention_head", 1, [4, 1, 2])
    b = nw.NodeIndex(NodeType.MLP_NEURON, 1, (4, 1))
    assert a.tensor_indices == (4, 1, 2) and a.layer == a.layer_index == 1 and a.node_type == "attention_head"
    assert b.node_type == "mlp_neuron" and type(b.node_type) is str
    assert a == nw.NodeIndex("attention_head", 1, (4, 1, 2)) and a != b and len({a, nw.NodeIndex("attention_head", 1, (4, 1, 2))}) == 1
    assert pickle.loads(pickle.dumps(a)) == a
    assert repr(a) == "NodeIndex('attention_head', 1, (4, 1, 2))"
    with pytest.raises(AttributeError):
        a.layer_index = 2
