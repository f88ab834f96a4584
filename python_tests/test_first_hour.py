"""Issue 8, "a new user's first hour": messages that name what the user passed, NodeIndex
checked when made and taking TDB's keywords, a discoverable API, and one source for every
constant (status names and codes, version, names, autoencoder inputs) tested against the
library."""

import importlib.metadata
import inspect
import os
import re

import numpy as np
import pytest

import nodewrite as nw
import nodewrite.errors as errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = open(os.path.join(ROOT, "include", "nodewrite.h")).read()


def gpt2():
    return nw.Model(n_layers=12, d_model=768, n_heads=12, d_head=64, d_ff=3072)


# ----------------------------------------------------------------------------- messages


def test_messages_name_the_activation_and_layer_not_c_parameters():
    s = nw.ActivationStore()
    with pytest.raises(nw.NodeWriteValueError) as info:
        s.put("mlp.post_act", 5, np.zeros(3, np.float32))
    assert str(info.value) == "activation mlp.post_act at layer 5: 1 dimension, expected 2 (T, d_ff)"
    with pytest.raises(nw.NodeWriteValueError) as info:
        s.put("attn.v", 2, np.zeros((3, 4), np.float32))
    assert str(info.value).startswith("activation attn.v at layer 2: 2 dimensions, expected 3 (T_k, n_heads, d_head)")
    m = gpt2()
    with pytest.raises(nw.NodeWriteValueError) as info:
        m.set_weight("mlp.to_residual", 1, np.zeros((2, 3, 4), np.float32))
    assert str(info.value).startswith("weight mlp.to_residual at layer 1: 3 dimensions, expected 2 (d_ff, d_model)")
    for text in (str(info.value),):
        assert not re.search(r"\b(t|w|view)\.(ndim|shape)", text)


def test_a_gpt2_c_proj_weight_is_told_how_to_view_it():
    m = gpt2()
    c_proj = np.zeros((768, 768), np.float32)  # GPT-2's attn.c_proj.weight (Conv1D: in, out)
    with pytest.raises(nw.NodeWriteValueError) as info:
        m.set_weight("attn.to_residual", 5, c_proj)
    text = str(info.value)
    assert text.startswith("weight attn.to_residual at layer 5: 2 dimensions, expected 3 (n_heads, d_head, d_model)")
    assert "reshape(12, 64, 768)" in text and "(heads, d_head, d_model)" in text
    m.set_weight("attn.to_residual", 5, c_proj.reshape(12, 64, 768))


def test_library_message_rewriting_keeps_shape_details():
    m = gpt2()
    with pytest.raises(nw.NodeWriteValueError) as info:
        m.set_weight("mlp.to_residual", 5, np.zeros((3072, 767), np.float32))
    assert "mlp.to_residual" in str(info.value) and "767" in str(info.value)


# ----------------------------------------------------------------------------- NodeIndex


def test_node_index_checks_its_index_count_when_made():
    for nt, idx in [("mlp_neuron", (0,)), ("mlp_neuron", (0, 0, 0)), ("attention_head", (0, 0)),
                    ("attention_autoencoder_latent", ()), ("autoencoder_latent", (1, 2, 3))]:
        with pytest.raises(nw.NodeWriteValueError, match="tensor_indices"):
            nw.NodeIndex(nt, 0, idx)


def test_node_index_count_table_agrees_with_the_library():
    """The binding's count per node type (for the early check) against the library's own
    check (a node that is not a nodewrite.NodeIndex goes to the library unchecked)."""

    class Node:
        def __init__(self, nt, n):
            self.node_type, self.layer_index, self.tensor_indices = nt, 0, (0,) * n

    m = nw.Model(n_layers=1, d_model=4, n_heads=2, d_head=2, d_ff=4)
    m.set_weight("mlp.to_residual", 0, np.ones((4, 4), np.float32))
    m.set_weight("attn.to_residual", 0, np.ones((2, 2, 4), np.float32))
    for nt in nw.NODE_TYPES:
        m.set_autoencoder(nt, 0, np.ones((2, 4), np.float32), input="resid_delta_mlp") if "latent" in nt else None
        accepted = []
        for n in range(5):
            try:
                nw.NodeWriteDeriver(m, Node(nt, n))
                accepted.append(n)
            except nw.NodeWriteValueError:
                pass
        assert accepted == [len(nw.node_type_info(nt).index_names)], (nt, accepted)


def test_node_index_takes_tdbs_keywords():
    a = nw.NodeIndex("attention_head", 3, (1, 0, 2))
    assert nw.NodeIndex("attention_head", layer_index=3, tensor_indices=(1, 0, 2)) == a
    assert nw.NodeIndex(node_type="attention_head", tensor_indices=[1, 0, 2], layer_index=3) == a
    assert nw.NodeIndex("attention_head", layer=3, tensor_indices=(1, 0, 2)) == a
    import enum

    class PassType(enum.Enum):
        FORWARD = "forward"
        BACKWARD = "backward"

    assert nw.NodeIndex("attention_head", 3, (1, 0, 2), pass_type=PassType.FORWARD) == a
    with pytest.raises(nw.NodeWriteValueError, match="forward"):
        nw.NodeIndex("attention_head", 3, (1, 0, 2), pass_type=PassType.BACKWARD)
    with pytest.raises(TypeError):
        nw.NodeIndex("attention_head", 3, (1, 0, 2), layer_index=3)
    with pytest.raises(TypeError):
        nw.NodeIndex("attention_head", tensor_indices=(1, 0, 2))


# ------------------------------------------------------------------------ discoverable API


def test_dir_lists_the_api_only():
    names = dir(nw)
    for stray in ("Any", "Iterable", "Tuple", "operator", "annotations", "_core", "_index"):
        assert stray not in names
    for name in nw.__all__:
        assert name in names and hasattr(nw, name)


def test_help_shows_real_parameter_types():
    docs = [
        (nw.Model.set_weight, "set_weight(self, name: str, layer: int | None, weight: numpy.ndarray | torch.Tensor, copy: bool = True)"),
        (nw.Model.set_autoencoder, "input: str, copy: bool = True"),
        (nw.ActivationStore.put, "put(self, name: str, layer: int | None, tensor: numpy.ndarray | torch.Tensor, layout: str | None = None, batch: int | None = None, pass_type: str = \"forward\")"),
        (nw.node_write, "node_write(model: Model, store: ActivationStore, node: NodeIndex)"),
        (nw.node_write_vectors, "nodes: Sequence[NodeIndex]"),
        (nw.NodeWriteDeriver.derive, "derive(self, store: ActivationStore)"),
    ]
    for fn, sig in docs:
        assert sig in fn.__doc__
        assert ": object" not in fn.__doc__
    assert "n_layers: int" in nw.Model.__doc__ and "n_layers: int" in nw.Model.__init__.__doc__


def test_model_repr_and_methods_tell_what_is_set():
    m = nw.Model(n_layers=2, d_model=4, n_heads=2, d_head=2, d_ff=3)
    assert m.weights() == {} and m.autoencoders() == {}
    m.set_weight("mlp.to_residual", 1, np.ones((3, 4), np.float16))
    m.set_weight("attn.to_residual", 0, np.ones((2, 2, 4), np.float32), copy=False)
    m.set_autoencoder("attention_autoencoder_latent", 0, np.ones((5, 4), np.float32), input="resid_delta_attn")
    assert m.weights() == {  # as the library holds them: a copy is float32
        ("mlp.to_residual", 1): {"copied": True, "dtype": "float32", "shape": (3, 4)},
        ("attn.to_residual", 0): {"copied": False, "dtype": "float32", "shape": (2, 2, 4)},
    }
    assert m.autoencoders() == {
        ("attention_autoencoder_latent", 0): {"copied": True, "dtype": "float32", "shape": (5, 4), "input": "residual"}
    }
    r = repr(m)
    assert "mlp.to_residual@1" in r and "attn.to_residual@0 (borrowed)" in r and "attention_autoencoder_latent@0" in r


# ------------------------------------------------------------------ one source per constant


def test_status_codes_and_names_come_from_the_library_and_match_the_header():
    header = dict((name, int(code)) for name, code in re.findall(r"^\s*(NW_(?:OK|ERR_[A-Z_]+)) = (-?\d+)", HEADER, re.M))
    assert nw.STATUSES == header
    for name, code in header.items():
        assert nw._core.status_string(code) == name
        assert errors._STATUS_NAMES[code] == name
        short = name.replace("NW_ERR_", "").replace("NW_", "")
        assert getattr(errors, short) == code
        if code != 0:
            exc = errors.exception_for(code, "x")
            assert exc.status == code and exc.status_name == name


def test_the_version_comes_from_one_place():
    header = re.search(r'^#define NW_VERSION_STRING "([^"]+)"', HEADER, re.M).group(1)
    assert nw.__version__ == nw.library_version() == nw._core.HEADER_VERSION == header
    assert importlib.metadata.version("nodewrite") == header


def test_names_and_autoencoder_inputs_come_from_the_library():
    header_ae = re.search(r'The autoencoder input kind for.*?\*/', HEADER, re.S).group(0)
    listed = re.findall(r'"([a-z_]+)"', header_ae)
    assert listed[0] == "mlp_post_act" and len(listed) >= 6
    assert nw.autoencoder_input_kind("mlp_post_act") == "mlp_post_act"
    assert nw.autoencoder_input_kind("attn_weighted_sum_of_values") == "attn_z"
    for name in listed[1:]:
        if name != "attn_weighted_sum_of_values":
            assert nw.autoencoder_input_kind(name) == "residual", name
    assert tuple(listed) == nw._core.autoencoder_inputs()
    assert nw.autoencoder_input_kind("resid_post_nothing") is None
    # the docstring's list is the header's
    doc = nw.Model.set_autoencoder.__doc__
    for name in listed:
        assert f'"{name}"' in doc
    for names, fn in ((nw.NODE_TYPES, "node_type"), (nw.ACTIVATIONS, "activation"), (nw.WEIGHTS, "weight")):
        for i, n in enumerate(names):
            assert n in HEADER


def test_tdb_serve_installs_the_drop_in_then_runs_tdbs_server(monkeypatch):
    """python -m nodewrite.tdb ...: install() first, then TDB's activation server main with the
    same arguments (TDB and fire are faked here: CI has no TDB)."""
    import sys
    import types

    import nodewrite.tdb as tdb

    calls = []
    server = types.ModuleType("neuron_explainer.activation_server.main")
    server.__file__ = "/tdb/neuron_explainer/activation_server/main.py"
    server.main = lambda **kw: None
    fire = types.ModuleType("fire")
    fire.Fire = lambda fn: calls.append(("fire", fn, list(sys.argv)))
    pkg = types.ModuleType("neuron_explainer.activation_server")
    pkg.main = server
    monkeypatch.setitem(sys.modules, "fire", fire)
    monkeypatch.setitem(sys.modules, "neuron_explainer", types.ModuleType("neuron_explainer"))
    monkeypatch.setitem(sys.modules, "neuron_explainer.activation_server", pkg)
    monkeypatch.setitem(sys.modules, "neuron_explainer.activation_server.main", server)
    monkeypatch.setattr(tdb, "install", lambda: calls.append(("install",)))
    monkeypatch.setattr(sys, "argv", ["x"])
    tdb.serve(["--port", "8000"])
    assert calls == [("install",), ("fire", server.main, [server.__file__, "--port", "8000"])]
