"""Models from Model.from_safetensors pickle by file path plus a content check (the default,
pickle_by="path"), or by value (pickle_by="value"); nodewrite/pickling.py.

- by path: a small pickle (no tensor in it); unpickling loads the file again, bit for bit the
  same model; a file that is missing, of another size, of the same size with other bytes, or
  whose config.json changed, appeared or went is refused with NodeWriteStaleInputError naming
  the path and the fix;
- by value: the file is not needed to unpickle;
- a model changed after loading (even by a refused change) pickles by value (Model.pickle_by);
- copy.copy / copy.deepcopy copy by value (the file is not read again);
- a bad pickle_by is refused.
"""

from __future__ import annotations

import copy
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import nodewrite as nw
from nodewrite import _core

CKPT = Path(__file__).resolve().parent.parent / "Tests" / "NodeWriteTests" / "Fixtures" / "checkpoints"


def held(m):
    """Every weight the model holds, as the float32 values derives read, and its facts."""
    st = _core._model_state(m)
    return ({(n, l): (dt, a.tobytes()) for n, l, a, dt, _ in st["weights"]}, st["dims"], st["causal"],
            m.layer_norm_epsilon, m.mlp_activation)


@pytest.fixture
def ckpt(tmp_path):
    """A private copy of a fixture checkpoint directory (GPT-2: config.json beside the weights)."""
    def make(name):
        d = tmp_path / name
        shutil.copytree(CKPT / name, d)
        return d / "model.safetensors"
    return make


@pytest.mark.parametrize("name", ["gpt2", "gpt2_f16", "tl"])
@pytest.mark.parametrize("protocol", [2, 5])
def test_by_path_round_trips_bit_for_bit(ckpt, name, protocol):
    path = ckpt(name)
    m = nw.Model.from_safetensors(path)
    assert m.pickle_by == "path"
    data = pickle.dumps(m, protocol=protocol)
    assert len(data) < 1024 < path.stat().st_size  # the path and the check, no tensor
    m2 = pickle.loads(data)
    assert held(m2) == held(m)
    assert m2.weights() == m.weights()  # the file's again: copied, its dtypes
    assert m2.pickle_by == "path"
    assert held(pickle.loads(pickle.dumps(m2, protocol=protocol))) == held(m)


def test_copies_are_by_value_and_need_no_file(ckpt):
    path = ckpt("gpt2")
    m = nw.Model.from_safetensors(path)
    change_bytes(path)  # the model keeps its numbers; a copy in this process does not read the file
    for c in (copy.copy(m), copy.deepcopy(m)):
        assert held(c) == held(m) and c.pickle_by == "value"
    with pytest.raises(nw.NodeWriteStaleInputError):
        pickle.loads(pickle.dumps(m, protocol=5))


def test_by_path_from_another_working_directory(ckpt, tmp_path, monkeypatch):
    path = ckpt("tl")
    monkeypatch.chdir(path.parent)
    m = nw.Model.from_safetensors("model.safetensors")  # a relative path is made absolute at load
    data = pickle.dumps(m, protocol=5)
    monkeypatch.chdir(tmp_path)
    assert held(pickle.loads(data)) == held(m)


def change_size(path):
    with open(path, "ab") as f:
        f.write(b" ")


def change_bytes(path):
    """The same size, one byte of a tensor the model uses flipped (after the header)."""
    b = bytearray(path.read_bytes())
    b[-5] ^= 0x40
    path.write_bytes(bytes(b))


@pytest.mark.parametrize("change, what", [
    (lambda p: p.unlink(), "no such file"),
    (change_size, "bytes on this machine"),
    (change_bytes, "content"),
    (lambda p: (p.parent / "config.json").write_text((p.parent / "config.json").read_text().replace('"n_head": 4', '"n_head": 4, "x": 1')),
     "config.json differs"),
    (lambda p: (p.parent / "config.json").unlink(), "config.json is missing"),
])
def test_a_changed_or_missing_file_is_refused(ckpt, change, what):
    path = ckpt("gpt2")
    m = nw.Model.from_safetensors(path)
    data = pickle.dumps(m, protocol=5)
    change(path)
    with pytest.raises(nw.NodeWriteStaleInputError, match=what) as e:
        pickle.loads(data)
    assert str(path.resolve()) in str(e.value) or os.path.abspath(path) in str(e.value)
    assert "pickle_by='value'" in str(e.value)


def test_a_config_json_that_appeared_is_refused(ckpt):
    path = ckpt("tl")
    m = nw.Model.from_safetensors(path)
    data = pickle.dumps(m, protocol=5)
    (path.parent / "config.json").write_text("{}")
    with pytest.raises(nw.NodeWriteStaleInputError, match="config.json appeared"):
        pickle.loads(data)


def test_by_value_needs_no_file(ckpt):
    path = ckpt("gpt2_f16")
    m = nw.Model.from_safetensors(path, pickle_by="value")
    assert m.pickle_by == "value"
    data = pickle.dumps(m, protocol=5)
    shutil.rmtree(path.parent)
    m2 = pickle.loads(data)
    ref = nw.Model.from_safetensors(CKPT / "gpt2_f16" / "model.safetensors")
    weights, *facts = held(m2)
    weights_ref, *facts_ref = held(ref)
    assert facts == facts_ref
    assert {k: v[1] for k, v in weights.items()} == {k: v[1] for k, v in weights_ref.items()}  # the same float32 values


@pytest.mark.parametrize("change", [
    lambda m: m.set_weight("mlp.to_residual", 0, np.zeros((m.d_ff, m.d_model), np.float32)),
    lambda m: m.set_autoencoder("autoencoder_latent", 0, np.ones((3, m.d_model), np.float32), "resid_delta_mlp"),
    lambda m: m.load_autoencoder(CKPT / "sae_mlp", "mlp_autoencoder_latent", 0),
])
def test_a_model_changed_after_loading_pickles_by_value(ckpt, change):
    path = ckpt("tl")
    m = nw.Model.from_safetensors(path)
    change(m)
    assert m.pickle_by == "value"
    data = pickle.dumps(m, protocol=5)
    path.unlink()  # not needed
    m2 = pickle.loads(data)
    assert held(m2)[0] == held(m)[0]
    assert m2.pickle_by == "value"


def test_a_refused_change_counts_as_a_change(ckpt):
    m = nw.Model.from_safetensors(ckpt("tl"))
    with pytest.raises(nw.NodeWriteError):
        m.set_weight("mlp.to_residual", 0, np.zeros((1, 1), np.float32))
    assert m.pickle_by == "value"


def test_bad_pickle_by_and_paths(ckpt):
    path = ckpt("tl")
    for bad in ("file", None, "PATH"):
        with pytest.raises(nw.NodeWriteValueError, match="pickle_by"):
            nw.Model.from_safetensors(path, pickle_by=bad)
    with pytest.raises(nw.NodeWriteError):
        nw.Model.from_safetensors(path.parent / "missing.safetensors")
    with pytest.raises(nw.NodeWriteError):
        nw.Model.from_safetensors(12)
    assert nw.Model(1, 4, 1, 4, 4).pickle_by == "value"
