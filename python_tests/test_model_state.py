"""What a model holds is the library's to tell: Model.weights() and Model.autoencoders() ask it
(nw_model_weight_get / nw_model_autoencoder_get), so they agree with it after every way of
setting a weight: set_weight, a checkpoint loaded natively, an SAELens directory."""

import json
from pathlib import Path

import numpy as np
import pytest

import nodewrite as nw

CKPT = Path(__file__).resolve().parent.parent / "Tests" / "NodeWriteTests" / "Fixtures" / "checkpoints"


@pytest.mark.parametrize("name, dtype", [("gpt2", "float32"), ("gpt2_f16", "float16"), ("tl", "float32")])
def test_a_loaded_checkpoint_lists_every_weight_with_its_dtype(name, dtype):
    m = nw.Model.from_safetensors(CKPT / name / "model.safetensors")
    w = m.weights()
    # every weight the file has, the layer-less ones included (layer_norm_gain.final was missing)
    assert ("layer_norm_gain.final", None) in w and ("unembedding", None) in w
    for layer in range(m.n_layers):
        assert w[("mlp.to_residual", layer)]["shape"] == (m.d_ff, m.d_model)
        assert w[("attn.to_residual", layer)]["shape"] == (m.n_heads, m.d_head, m.d_model)
    assert w[("layer_norm_gain.final", None)]["shape"] == (m.d_model,)
    for state in w.values():
        assert state["dtype"] == dtype  # as stored in the file, never '?'
        assert state["copied"] is False  # mapped
    assert "layer_norm_gain.final@-1 (borrowed)" in repr(m)


@pytest.mark.parametrize("directory, node_type", [("sae_resid", "autoencoder_latent"), ("sae_mlp", "mlp_autoencoder_latent")])
def test_a_loaded_autoencoder_has_its_dtype_shape_and_input(directory, node_type):
    cfg = json.loads((CKPT / directory / "cfg.json").read_text())
    hook = cfg.get("hook_name") or cfg["metadata"]["hook_name"]
    layer = nw.saelens_hook(hook).layer
    m = nw.Model.from_safetensors(CKPT / "tl" / "model.safetensors")
    m.load_autoencoder(CKPT / directory, node_type, layer)
    state = m.autoencoders()[(node_type, layer)]
    assert state["dtype"] != "?" and state["dtype"] in nw.DTYPES
    n_latents, n_inputs = state["shape"]
    assert n_latents == cfg["d_sae"] and n_inputs == cfg["d_in"]
    assert state["input"] == nw.saelens_hook(hook).input
    assert state["copied"] is False
    # latents_at_token reads the count from the library (it raised a bare IndexError before)
    idx = nw.latents_at_token(0, m, node_type, layer)
    assert idx.shape == (n_latents, 2) and (idx[:, 0] == 0).all()


def test_weights_follow_the_library_after_replacing_and_borrowing():
    m = nw.Model(n_layers=2, d_model=4, n_heads=2, d_head=2, d_ff=3)
    w16 = np.ones((3, 4), np.float16)
    m.set_weight("mlp.to_residual", 0, w16, copy=False)
    assert m.weights()[("mlp.to_residual", 0)] == {"copied": False, "dtype": "float16", "shape": (3, 4)}
    m.set_weight("mlp.to_residual", 0, w16)  # copied: the library holds float32
    assert m.weights()[("mlp.to_residual", 0)] == {"copied": True, "dtype": "float32", "shape": (3, 4)}
    m.set_weight("unembedding", None, np.ones((4, 7), np.float64), copy=False)
    assert m.weights()[("unembedding", None)] == {"copied": False, "dtype": "float64", "shape": (4, 7)}
    with pytest.raises(nw.NodeWriteValueError):
        m.set_weight("mlp.to_residual", 1, np.ones((2, 4), np.float32))
    assert ("mlp.to_residual", 1) not in m.weights()  # a refusal sets nothing


def test_latents_at_token_names_what_is_missing():
    m = nw.Model(n_layers=2, d_model=4, n_heads=2, d_head=2, d_ff=3)
    with pytest.raises(nw.NodeWriteKeyError, match="mlp_autoencoder_latent"):
        nw.latents_at_token(0, m, "mlp_autoencoder_latent", 0)


def test_causality_is_the_models_and_the_binding_passes_it():
    assert nw.Model(1, 4, 1, 2, 3).causal is True  # as TDB's and TransformerLens's models
    m = nw.Model(1, 4, 1, 2, 3, causal=False)
    assert m.causal is False
    with pytest.raises(TypeError):
        nw.Model(1, 4, 1, 2, 3, False)  # keyword-only
    with pytest.raises(nw.NodeWriteValueError, match="causal"):
        nw.Model(1, 4, 1, 2, 3, causal=1)


def test_one_autoencoder_per_slot_replace_and_remove():
    m = nw.Model(n_layers=2, d_model=4, n_heads=2, d_head=2, d_ff=3)
    first = np.ones((5, 4), np.float32)
    m.set_autoencoder("autoencoder_latent", 1, first, input="resid_delta_mlp", copy=False)
    with pytest.raises(nw.NodeWriteValueError, match="remove_autoencoder"):
        m.set_autoencoder("autoencoder_latent", 1, np.ones((6, 4), np.float32), input="resid_delta_mlp")
    assert m.autoencoders()[("autoencoder_latent", 1)]["shape"] == (5, 4)
    # replace=True with a decoder the library would refuse leaves the slot as it was
    with pytest.raises(nw.NodeWriteValueError, match="d_ff"):
        m.set_autoencoder("autoencoder_latent", 1, np.ones((6, 4), np.float32), input="mlp_post_act", replace=True)
    assert m.autoencoders()[("autoencoder_latent", 1)] == {"copied": False, "dtype": "float32", "shape": (5, 4), "input": "residual"}
    m.set_autoencoder("autoencoder_latent", 1, np.ones((6, 3), np.float16), input="mlp_post_act", replace=True, copy=False)
    assert m.autoencoders()[("autoencoder_latent", 1)] == {"copied": False, "dtype": "float16", "shape": (6, 3), "input": "mlp_post_act"}
    m.remove_autoencoder("autoencoder_latent", 1)
    m.remove_autoencoder("autoencoder_latent", 1)  # empty already: not an error
    assert m.autoencoders() == {}
    with pytest.raises(nw.NodeWriteIndexError):
        m.remove_autoencoder("autoencoder_latent", 2)
    with pytest.raises(nw.NodeWriteValueError):
        m.remove_autoencoder("mlp_neuron", 0)
