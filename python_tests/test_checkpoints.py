"""Checkpoints on disk from Python: Model.from_safetensors and Model.load_autoencoder read the
files the real producers wrote (transformers' save_pretrained, TransformerLens, SAELens; the
fixtures under Tests/NodeWriteTests/Fixtures/checkpoints and their generator
tools/make_checkpoint_fixtures.py), and give the same node writes, bit for bit, as a model built
from the expected TDB-layout views of the same weights."""

import os
from pathlib import Path

import numpy as np
import pytest

import nodewrite as nw
from nw_fixtures import read_safetensors

CKPT = Path(__file__).resolve().parent.parent / "Tests" / "NodeWriteTests" / "Fixtures" / "checkpoints"
EXPECTED = read_safetensors(str(CKPT / "expected.safetensors"))
FILES = {"gpt2": CKPT / "gpt2" / "model.safetensors", "gpt2_f16": CKPT / "gpt2_f16" / "model.safetensors",
         "tl": CKPT / "tl" / "model.safetensors"}


def reference(prefix: str, dims) -> "nw.Model":
    m = nw.Model(*dims)
    for layer in range(dims[0]):
        m.set_weight("mlp.to_residual", layer, EXPECTED[f"{prefix}.mlp.{layer}"])
        m.set_weight("attn.to_residual", layer, EXPECTED[f"{prefix}.attn.{layer}"])
    return m


def store(rng, T, model) -> "nw.ActivationStore":
    s = nw.ActivationStore()
    for layer in range(model.n_layers):
        p = np.tril(rng.random((model.n_heads, T, T), dtype=np.float32)).transpose(1, 2, 0).copy()
        s.put("attn.qk_probs", layer, p)
        s.put("attn.v", layer, rng.standard_normal((T, model.n_heads, model.d_head), dtype=np.float32))
        s.put("mlp.post_act", layer, rng.standard_normal((T, model.d_ff), dtype=np.float32))
    return s


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_checkpoint_gives_the_writes_of_its_weights(name):
    m = nw.Model.from_safetensors(FILES[name])
    dims = (m.n_layers, m.d_model, m.n_heads, m.d_head, m.d_ff)
    assert dims == (2, 32, 4, 8, 64)
    assert "loaded from" in repr(m) and any(name == "unembedding" for name, _ in m.weights())
    ref = reference(name, dims)
    s = store(np.random.default_rng(1), 9, m)
    for layer in range(2):
        for node_type, nodes in (("attention_head", nw.keys_and_heads_at_query(8, m)), ("mlp_neuron", nw.neurons_at_token(4, m))):
            got = nw.node_writes(m, s, node_type, layer, nodes)
            want = nw.node_writes(ref, s, node_type, layer, nodes)
            assert np.array_equal(got, want), (name, layer, node_type)


def test_an_saelens_directory_gives_its_decoder():
    m = nw.Model.from_safetensors(os.fspath(FILES["tl"]))
    m.load_autoencoder(CKPT / "sae_resid", "autoencoder_latent", 1)
    ref = reference("tl", (2, 32, 4, 8, 64))
    ref.set_autoencoder("autoencoder_latent", 1, EXPECTED["sae_resid.decoder"], input="resid_post_mlp")
    rng = np.random.default_rng(2)
    s = nw.ActivationStore()
    s.put("online_autoencoder_latent", 1, rng.random((5, 48), dtype=np.float32))
    nodes = nw.latents_at_token(3, 48)
    assert np.array_equal(nw.node_writes(m, s, "autoencoder_latent", 1, nodes),
                          nw.node_writes(ref, s, "autoencoder_latent", 1, nodes))
    assert ("autoencoder_latent", 1) in m.autoencoders()


@pytest.mark.parametrize("bad, error", [
    ("/nonexistent/model.safetensors", nw.NodeWriteValueError),
    (3, nw.NodeWriteValueError),
    (None, nw.NodeWriteValueError),
])
def test_bad_paths_are_refused(bad, error):
    with pytest.raises(error):
        nw.Model.from_safetensors(bad)


def test_a_hostile_file_is_refused(tmp_path):
    f = tmp_path / "x.safetensors"
    f.write_bytes((2**63).to_bytes(8, "little", signed=False) + b"{}")
    with pytest.raises(nw.NodeWriteError):
        nw.Model.from_safetensors(f)


def test_load_autoencoder_on_an_object_made_by_new_raises():
    m = nw.Model.__new__(nw.Model)
    with pytest.raises(nw.NodeWriteValueError):
        m.load_autoencoder(CKPT / "sae_resid", "autoencoder_latent", 1)
    with pytest.raises(nw.NodeWriteValueError):
        repr(m)


def test_keyboard_interrupt_in_a_path_passes_through():
    class Path:
        def __fspath__(self):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        nw.Model.from_safetensors(Path())
    m = nw.Model.from_safetensors(FILES["tl"])
    with pytest.raises(KeyboardInterrupt):
        m.load_autoencoder(Path(), "autoencoder_latent", 1)


def test_loads_from_fresh_threads_at_once():
    import threading
    results, barrier = [], threading.Barrier(6)

    def load():
        barrier.wait()
        m = nw.Model.from_safetensors(FILES["tl"])
        m.load_autoencoder(CKPT / "sae_resid", "autoencoder_latent", 1)
        results.append((m.n_layers, m.d_model))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [(2, 32)] * 6


def test_loading_by_path_adds_no_library_call():
    """The content check of pickle_by="path" is Python's (hashlib); the library calls are the
    loader's own: the load, then the dimensions, vocabulary and causality the binding caches."""
    from nodewrite import _core

    counts = []
    for pickle_by in ("value", "path"):
        before = _core.thread_call_count()
        nw.Model.from_safetensors(FILES["tl"], pickle_by=pickle_by)
        counts.append(_core.thread_call_count() - before)
    assert counts[0] == counts[1] == 4


@pytest.mark.parametrize("bad", ["file", "", None, ["path"], b"path"])
def test_an_unknown_pickle_by_is_refused_naming_it(bad):
    with pytest.raises(nw.NodeWriteValueError, match="pickle_by"):
        nw.Model.from_safetensors(FILES["tl"], pickle_by=bad)


def test_loads_by_path_and_pickles_from_fresh_threads_at_once():
    import pickle
    import threading

    want = pickle.loads(pickle.dumps(nw.Model.from_safetensors(FILES["tl"], pickle_by="value"))).weights()
    results, barrier = [], threading.Barrier(4)

    def load_and_round_trip():
        barrier.wait()
        m = nw.Model.from_safetensors(FILES["tl"])
        back = pickle.loads(pickle.dumps(m, protocol=5))
        results.append((m.pickle_by, back.weights().keys() == want.keys()))

    threads = [threading.Thread(target=load_and_round_trip) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [("path", True)] * 4
