"""Model.from_safetensors reads the read side of the blocks (what the edge DSTs read) and, for
Hugging Face GPT-2, config.json's layer_norm_epsilon and activation_function.

Each weight is compared with the file's tensor as numpy reads it (a small safetensors reader
here, independent of the library): GPT-2's fused c_attn split into the query, key and value
weights and biases per head, ln_1 / ln_2, c_fc, the biases; a TransformerLens state dict's W_Q
... b_out, ln1 / ln2. A config.json whose activation nodewrite does not differentiate, or whose
attention is not scaled by 1 / sqrt(d_head), leaves the read side unset (the edge DSTs then
refuse); a malformed value is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import nodewrite as nw
from nodewrite import _core

CKPT = Path(__file__).resolve().parent.parent / "Tests" / "NodeWriteTests" / "Fixtures" / "checkpoints"
DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def tensors(path):
    b = Path(path).read_bytes()
    n = int.from_bytes(b[:8], "little")
    header = json.loads(b[8 : 8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__" or v["dtype"] not in DT:
            continue
        s, e = v["data_offsets"]
        out[name] = np.frombuffer(b[8 + n + s : 8 + n + e], dtype=DT[v["dtype"]]).reshape(v["shape"]).astype(np.float32)
    return out


def weights(m):
    return {(n, l): a for n, l, a, *_ in _core._model_state(m)["weights"]}


READ_SIDE = ["layer_norm_gain.pre_attn", "layer_norm_bias.pre_attn", "layer_norm_gain.pre_mlp", "layer_norm_bias.pre_mlp",
             "attn.to_query", "attn.to_key", "attn.to_value", "attn.query_bias", "attn.key_bias", "attn.value_bias",
             "attn.out_bias", "mlp.to_hidden", "mlp.in_bias", "mlp.out_bias"]


@pytest.mark.parametrize("name", ["gpt2", "gpt2_f16"])
def test_gpt2_read_side(name):
    path = CKPT / name / "model.safetensors"
    t = tensors(path)
    p = "transformer." if "transformer.h.0.attn.c_attn.weight" in t else ""
    m = nw.Model.from_safetensors(path)
    w = weights(m)
    H, dh, D = m.n_heads, m.d_head, m.d_model
    for l in range(m.n_layers):
        b = f"{p}h.{l}."
        qkv, bias = t[b + "attn.c_attn.weight"], t[b + "attn.c_attn.bias"]
        for i, (wn, bn) in enumerate((("attn.to_query", "attn.query_bias"), ("attn.to_key", "attn.key_bias"),
                                      ("attn.to_value", "attn.value_bias"))):
            part = qkv[:, i * H * dh : (i + 1) * H * dh]  # (d_model, heads * d_head), head-major
            assert np.array_equal(w[(wn, l)], part.reshape(D, H, dh).transpose(1, 0, 2)), (wn, l)
            assert np.array_equal(w[(bn, l)], bias[i * H * dh : (i + 1) * H * dh].reshape(H, dh)), (bn, l)
        for wn, tn in (("layer_norm_gain.pre_attn", "ln_1.weight"), ("layer_norm_bias.pre_attn", "ln_1.bias"),
                       ("layer_norm_gain.pre_mlp", "ln_2.weight"), ("layer_norm_bias.pre_mlp", "ln_2.bias"),
                       ("attn.out_bias", "attn.c_proj.bias"), ("mlp.to_hidden", "mlp.c_fc.weight"),
                       ("mlp.in_bias", "mlp.c_fc.bias"), ("mlp.out_bias", "mlp.c_proj.bias")):
            assert np.array_equal(w[(wn, l)], t[b + tn]), (wn, l)
    assert m.layer_norm_epsilon == 1e-5 and m.mlp_activation == "gelu_tanh"  # the fixture's config.json


def test_transformer_lens_read_side():
    path = CKPT / "tl" / "model.safetensors"
    t = tensors(path)
    m = nw.Model.from_safetensors(path)
    w = weights(m)
    for l in range(m.n_layers):
        for wn, tn in (("layer_norm_gain.pre_attn", "ln1.w"), ("layer_norm_bias.pre_attn", "ln1.b"),
                       ("layer_norm_gain.pre_mlp", "ln2.w"), ("layer_norm_bias.pre_mlp", "ln2.b"),
                       ("attn.to_query", "attn.W_Q"), ("attn.to_key", "attn.W_K"), ("attn.to_value", "attn.W_V"),
                       ("attn.query_bias", "attn.b_Q"), ("attn.key_bias", "attn.b_K"), ("attn.value_bias", "attn.b_V"),
                       ("attn.out_bias", "attn.b_O"), ("mlp.to_hidden", "mlp.W_in"), ("mlp.in_bias", "mlp.b_in"),
                       ("mlp.out_bias", "mlp.b_out")):
            assert np.array_equal(w[(wn, l)], t[f"blocks.{l}.{tn}"]), (wn, l)


def with_config(tmp_path, **changes):
    d = tmp_path / "gpt2"
    shutil.copytree(CKPT / "gpt2", d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(changes)
    (d / "config.json").write_text(json.dumps(cfg))
    return d / "model.safetensors"


@pytest.mark.parametrize("act, name", [("gelu_new", "gelu_tanh"), ("gelu_fast", "gelu_tanh"),
                                       ("gelu_pytorch_tanh", "gelu_tanh"), ("gelu", "gelu_erf"), ("relu", "relu")])
def test_gpt2_config_activation_and_epsilon(tmp_path, act, name):
    m = nw.Model.from_safetensors(with_config(tmp_path, activation_function=act, layer_norm_epsilon=1e-3))
    assert m.mlp_activation == name and m.layer_norm_epsilon == 1e-3
    assert ("attn.to_query", 0) in m.weights()


@pytest.mark.parametrize("changes", [{"activation_function": "silu"}, {"scale_attn_by_inverse_layer_idx": True},
                                     {"scale_attn_weights": False}])
def test_gpt2_read_side_left_unset_when_edges_would_compute_another_model(tmp_path, changes):
    m = nw.Model.from_safetensors(with_config(tmp_path, **changes))
    held = m.weights()
    assert not any((n, 0) in held for n in READ_SIDE)
    assert ("mlp.to_residual", 0) in held and ("attn.to_residual", 1) in held  # the write side as before


@pytest.mark.parametrize("changes, what", [({"layer_norm_epsilon": "1e-5"}, "layer_norm_epsilon"),
                                           ({"layer_norm_epsilon": 0}, "layer_norm_epsilon"),
                                           ({"activation_function": 3}, "activation_function")])
def test_gpt2_config_bad_values_are_refused(tmp_path, changes, what):
    with pytest.raises(nw.NodeWriteValueError, match=what):
        nw.Model.from_safetensors(with_config(tmp_path, **changes))


def test_transformer_lens_model_from_agrees():
    """The same weights through nodewrite.tl.model_from (a HookedTransformer holding the state
    dict) and through from_safetensors: every read-side weight equal."""
    torch = pytest.importorskip("torch")
    tl = pytest.importorskip("transformer_lens")
    import nodewrite.tl  # noqa: F401

    path = CKPT / "tl" / "model.safetensors"
    t = tensors(path)
    m = nw.Model.from_safetensors(path)
    cfg = tl.HookedTransformerConfig(n_layers=m.n_layers, d_model=m.d_model, n_heads=m.n_heads, d_head=m.d_head,
                                     d_mlp=m.d_ff, d_vocab=t["embed.W_E"].shape[0], n_ctx=t["pos_embed.W_pos"].shape[0],
                                     act_fn="gelu_new", normalization_type="LN", device="cpu")
    model = tl.HookedTransformer(cfg)
    sd = model.state_dict()
    model.load_state_dict({k: torch.tensor(v).reshape(sd[k].shape) for k, v in t.items() if k in sd}, strict=False)
    a, b = weights(nw.tl.model_from(model)), weights(m)
    for l in range(m.n_layers):
        for name in READ_SIDE:
            assert np.array_equal(a[(name, l)], b[(name, l)]), (name, l)
