"""Edges on a TransformerLens model: nodewrite.derive(..., node=) against TL's own blocks.

The model and the store come from ``nodewrite.tl.model_from`` / ``store_from`` (a cache made with
``run_with_cache(..., incl_bwd=True)``); every expected value is computed through TL's blocks with
hooks: in-edges as forward-mode tangents (``torch.autograd.forward_ad``) of the downstream hook
(``attn.hook_pattern``, ``attn.hook_v``, ``mlp.hook_post``) along the upstream node's write added at
``hook_q_input`` / ``hook_k_input`` / ``hook_v_input`` (``use_split_qkv_input``: only Q, K or V
live) or ``hook_resid_mid``; subnode gradients by ``torch.autograd.grad`` of the same hooks; the
detached LayerNorm scale by a hook on the LayerNorm's ``hook_scale`` that drops its derivative.
Random weights (python_tests/eco_support.py), LN models, act_fn gelu (erf) / gelu_new (tanh) / relu.
"""

from __future__ import annotations

import numpy as np
import pytest

from eco_support import tl_model, tokens

torch = pytest.importorskip("torch")
pytest.importorskip("transformer_lens")

import torch.autograd.forward_ad as fwAD  # noqa: E402

import nodewrite as nw  # noqa: E402
import nodewrite.saelens  # noqa: E402,F401
import nodewrite.tl  # noqa: E402,F401

B = 1  # the batch element the store holds
TOL = 1e-5


def close(got, want, what: str, terms=None) -> None:
    """Within TOL x the largest |TL value| (relative: the loss gradients here are ~1e-3 .. 1e-5), or
    for a dot product (out-edges) TOL x the largest sum of |terms| (its condition: the terms of
    emb[t] . G[t] cancel to far below their size)."""
    got = np.asarray(got, dtype=np.float64)
    want = want.detach().double().numpy() if hasattr(want, "detach") else np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    scale = float(np.max(np.abs(want)))
    assert scale > 0, f"{what}: TL's values are all zero (a test that cannot fail)"
    if terms is not None:
        scale = max(scale, float(terms.max()))
    err = float(np.max(np.abs(got - want)))
    assert err <= TOL * scale, f"{what}: max |nodewrite - TL| = {err:.3g} > {TOL} x {scale:.3g}"
    # exact zeros (above the diagonal, rows the write does not reach) stay exact
    assert np.all(got[want == 0] == 0), f"{what}: non-zero where TL's is exactly 0"


@pytest.fixture(scope="module", params=["gelu", "gelu_new", "relu", "gelu_new-gqa"])
def setup(request):
    act_fn, _, gqa = request.param.partition("-")
    model = tl_model(act_fn=act_fn, use_split_qkv_input=True, **({"n_key_value_heads": 2} if gqa else {}))
    toks = tokens()
    with torch.enable_grad():
        _, cache = model.run_with_cache(toks, return_type="loss", incl_bwd=True)
    m = nw.tl.model_from(model, edges=True)
    s = nw.tl.store_from(cache, batch=B)
    return model, toks[B : B + 1], cache, m, s


def c(cache, key):
    return cache[key][B].detach()


def per_head(model, v):
    """(T, n_kv_heads, d_head) -> (T, n_heads, d_head): head h reads key-value head h // (n_heads /
    n_kv_heads) under grouped-query attention, as TL repeats them."""
    return v.repeat_interleave(model.cfg.n_heads // v.shape[1], dim=1)


# -- upstream writes, from the cache ------------------------------------------------------------


def neuron_write(model, cache, layer, u, n):
    T = cache["hook_embed"].shape[1]
    w = torch.zeros(T, model.cfg.d_model)
    w[u] = c(cache, f"blocks.{layer}.mlp.hook_post")[u, n] * model.blocks[layer].mlp.W_out[n].detach()
    return w


def head_write(model, cache, layer, q, k, h):
    T = cache["hook_embed"].shape[1]
    w = torch.zeros(T, model.cfg.d_model)
    p = c(cache, f"blocks.{layer}.attn.hook_pattern")[h, q, k]
    v = per_head(model, c(cache, f"blocks.{layer}.attn.hook_v"))[k, h]
    w[q] = p * (v @ model.blocks[layer].attn.W_O[h].detach())
    return w


# -- TL's blocks, through hooks -----------------------------------------------------------------

WHERE = {"q": "hook_q_input", "k": "hook_k_input", "v": "hook_v_input", "mlp": "hook_resid_mid"}
READS = {"q": "attn.hook_pattern", "k": "attn.hook_pattern", "v": "attn.hook_v", "mlp": "mlp.hook_post"}
LN = {"q": "ln1", "k": "ln1", "v": "ln1", "mlp": "ln2"}


def tangent(model, toks, layer, part, w, detach):
    """The tangent of blocks.layer's READS[part] hook along w added at its WHERE[part] hook."""
    got = {}

    def add(x, hook):
        d = w[None] if x.ndim == 3 else w[None, :, None, :].expand_as(x)
        return x + fwAD.make_dual(torch.zeros_like(x), d.contiguous())

    def read(x, hook):
        t = fwAD.unpack_dual(x).tangent
        got["t"] = torch.zeros_like(x) if t is None else t.detach().clone()
        return x

    hooks = [(f"blocks.{layer}.{WHERE[part]}", add), (f"blocks.{layer}.{READS[part]}", read)]
    if detach:
        hooks.append((f"blocks.{layer}.{LN[part]}.hook_scale", lambda x, hook: fwAD.unpack_dual(x).primal))
    with torch.no_grad(), fwAD.dual_level():
        model.run_with_hooks(toks, return_type=None, fwd_hooks=hooks)
    return got["t"][0]


def in_edge_want(model, toks, cache, layer, part, w, detach):
    t = tangent(model, toks, layer, part, w, detach)
    if part in ("q", "k"):  # (h, q, k) -> (q, k, h), times dLoss/dp
        return (t * c(cache, f"blocks.{layer}.attn.hook_pattern_grad")).permute(1, 2, 0)
    if part == "v":  # p[q, k, h] (dv[k, h] . dLoss/dz[q, h])
        p = c(cache, f"blocks.{layer}.attn.hook_pattern").permute(1, 2, 0)
        return p * torch.einsum("khd,qhd->qkh", per_head(model, t), c(cache, f"blocks.{layer}.attn.hook_z_grad"))
    return t * c(cache, f"blocks.{layer}.mlp.hook_post_grad")


def subnode_gradient(model, toks, cache, layer, part, index, detach):
    """d/d resid of the subnode's activation times its (fixed) loss gradient, by autograd through
    blocks.layer (Q, K or V live alone; the MLP from resid.post_attn)."""
    T = toks.shape[1]
    e = torch.zeros(T, model.cfg.d_model, requires_grad=True)
    got = {}

    def add(x, hook):
        return x + (e[None] if x.ndim == 3 else e[None, :, None, :])

    def read(x, hook):
        got["a"] = x
        return x

    hooks = [(f"blocks.{layer}.{WHERE[part]}", add), (f"blocks.{layer}.{READS[part]}", read)]
    if detach:
        hooks.append((f"blocks.{layer}.{LN[part]}.hook_scale", lambda x, hook: x.detach()))
    with torch.enable_grad():
        model.run_with_hooks(toks, return_type=None, fwd_hooks=hooks)
        a = got["a"][0]
        if part in ("q", "k"):
            q, k, h = index
            scalar = a[h, q, k] * c(cache, f"blocks.{layer}.attn.hook_pattern_grad")[h, q, k]
        elif part == "v":
            q, k, h = index
            p = c(cache, f"blocks.{layer}.attn.hook_pattern")[h, q, k]
            scalar = p * (per_head(model, a)[k, h] @ c(cache, f"blocks.{layer}.attn.hook_z_grad")[q, h])
        else:
            t, n = index
            scalar = a[t, n] * c(cache, f"blocks.{layer}.mlp.hook_post_grad")[t, n]
        (g,) = torch.autograd.grad(scalar, e)
    return g


IN_DST = {"q": "attn_query_in_edge_attribution", "k": "attn_key_in_edge_attribution",
          "v": "attn_value_in_edge_attribution", "mlp": "mlp_in_edge_attribution"}


# -- the model's read side and the store's passes -------------------------------------------------


def test_model_from_reads_the_read_side(setup):
    model, _, _, m, _ = setup
    want = {"gelu": "gelu_erf", "gelu_new": "gelu_tanh", "relu": "relu"}[model.cfg.act_fn]
    gqa = bool(getattr(model.cfg, "n_key_value_heads", None))
    assert m.mlp_activation == want
    assert m.layer_norm_epsilon == model.cfg.eps
    held = m.weights()
    for name in ("layer_norm_gain.pre_attn", "layer_norm_bias.pre_attn", "layer_norm_gain.pre_mlp",
                 "layer_norm_bias.pre_mlp", "attn.to_query", "attn.to_key", "attn.to_value", "attn.query_bias",
                 "attn.key_bias", "attn.value_bias", "attn.out_bias", "mlp.to_hidden", "mlp.in_bias", "mlp.out_bias"):
        for layer in range(model.cfg.n_layers):
            assert (name, layer) in held, (name, layer)
            # views of TL's parameters; with grouped-query attention TL's W_K / W_V / b_K / b_V repeat
            # the key-value heads (copies)
            assert held[name, layer]["copied"] == (gqa and name in ("attn.to_key", "attn.to_value", "attn.key_bias", "attn.value_bias")), (name, layer)
    assert held["attn.to_query", 1]["shape"] == (4, 64, 16)


def test_store_from_puts_the_gradients(setup):
    _, _, cache, _, s = setup
    for l in range(2):
        for name, hook in [("attn.qk_probs", "attn.hook_pattern"), ("attn.v_out", "attn.hook_z"),
                           ("mlp.post_act", "mlp.hook_post"), ("resid.post_attn", "hook_resid_mid"),
                           ("resid.post_mlp", "hook_resid_post")]:
            assert s.get(name, l, pass_type="backward") is cache[f"blocks.{l}.{hook}_grad"], (name, l)
    assert s.get("resid.post_emb", None, pass_type="backward") is cache["blocks.0.hook_resid_pre_grad"]
    per_layer = ("attn.qk_probs", "attn.v_out", "mlp.post_act", "resid.post_attn", "resid.post_mlp")
    want = [(n, l) for n in per_layer for l in range(2)] + [("resid.post_emb", None)]
    assert sorted(s.keys(pass_type="backward"), key=str) == sorted(want, key=str)  # no attn.v gradient, no others


@pytest.mark.parametrize("act_fn", ["gelu_fast", "gelu_pytorch_tanh"])
def test_tanh_gelu_variants_are_one_activation(act_fn):
    assert nw.tl.model_from(tl_model(act_fn=act_fn), edges=True).mlp_activation == "gelu_tanh"


def test_models_the_edges_do_not_fit_are_refused_with_the_reason():
    for overrides, words in [
        (dict(normalization_type="RMS"), "normalization_type"),
        (dict(act_fn="silu"), "act_fn"),
        (dict(act_fn="solu_ln"), "act_fn"),
        (dict(use_attn_scale=False), "attn_scale"),
        (dict(scale_attn_by_inverse_layer_idx=True), "attn_scale"),
        (dict(positional_embedding_type="rotary", rotary_dim=16), "positional_embedding_type"),
    ]:
        model = tl_model(**overrides)
        with pytest.raises(nw.NodeWriteValueError, match=words):
            nw.tl.model_from(model, edges=True)
        m = nw.tl.model_from(model)  # the write family still works; the read side is not set
        assert ("attn.to_query", 0) not in m.weights()


def test_lnpre_model_has_unit_gain_and_zero_bias():
    model = tl_model(folded=True)
    assert model.cfg.normalization_type == "LNPre"
    m = nw.tl.model_from(model, edges=True)
    held = m.weights()
    assert held["layer_norm_gain.pre_attn", 0]["copied"] and held["layer_norm_bias.pre_mlp", 1]["copied"]


# -- in-edges -------------------------------------------------------------------------------------

UPSTREAM = [
    ("mlp_neuron", 0, (3, 17), 1),          # a layer-0 neuron into layer 1
    ("attention_head", 0, (6, 2, 1), 1),    # a layer-0 head (q, k, h) into layer 1
    ("attention_head", 1, (9, 9, 3), 1),    # a layer-1 head into layer 1's MLP (its only downstream in layer 1)
]
IN_CASES = [(part, up) for up in UPSTREAM for part in ("q", "k", "v", "mlp") if part == "mlp" or up[1] < up[3]]


@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("part,up", IN_CASES, ids=lambda x: x if isinstance(x, str) else f"{x[0]}{x[1]}")
def test_in_edges_equal_tl_jvp(setup, part, up, detach):
    model, toks, cache, m, s = setup
    node_type, ul, idx, layer = up
    w = neuron_write(model, cache, ul, *idx) if node_type == "mlp_neuron" else head_write(model, cache, ul, *idx)
    want = in_edge_want(model, toks, cache, layer, part, w, detach)
    got = nw.derive(m, s, IN_DST[part], layer, node=nw.NodeIndex(node_type, ul, idx), detach_layer_norm_scale=detach)
    close(got, want, f"{IN_DST[part]} at layer {layer} from {node_type} {ul} {idx}, detach {detach}")
    assert float(np.max(np.abs(got))) > 0


# -- subnode gradients and out-edges --------------------------------------------------------------

SUBNODES = [("q", 1, (8, 3, 2)), ("k", 1, (10, 4, 0)), ("v", 1, (7, 5, 3)), ("mlp", 1, (6, 100)), ("q", 0, (5, 5, 1))]


@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("sub", SUBNODES, ids=lambda s: f"{s[0]}{s[1]}")
def test_subnode_gradient_and_out_edges_equal_tl_autograd(setup, sub, detach):
    model, toks, cache, m, s = setup
    part, layer, index = sub
    G = subnode_gradient(model, toks, cache, layer, part, index, detach)
    if part == "mlp":
        node = nw.NodeIndex("mlp_neuron", layer, index)
    else:
        node = nw.NodeIndex("attention_head", layer, index, q_k_or_v="attn." + part)
    got = nw.derive(m, s, "grad_of_single_subnode_attribution", layer, node=node, detach_layer_norm_scale=detach)
    close(got, G, f"grad_of_single_subnode_attribution {part} {layer} {index} detach {detach}")
    assert float(np.max(np.abs(got))) > 0
    # the embedding's direct effect, then out-edges from every upstream layer: each upstream
    # node's write projected onto G
    emb = c(cache, "blocks.0.hook_resid_pre")
    got = nw.derive(m, s, "token_out_edge_attribution", None, node=node, detach_layer_norm_scale=detach)
    close(got, (emb * G).sum(-1, keepdim=True), f"token_out_edge_attribution into {part} {layer}",
          terms=(emb * G).abs().sum(-1))
    for ul in range(layer + (part == "mlp")):
        post = c(cache, f"blocks.{ul}.mlp.hook_post")
        if ul < layer:
            want = post * (G @ model.blocks[ul].mlp.W_out.detach().T)
            got = nw.derive(m, s, "mlp_out_edge_attribution", ul, node=node, detach_layer_norm_scale=detach)
            W = model.blocks[ul].mlp.W_out.detach()
            close(got, want, f"mlp_out_edge_attribution at {ul} into {part} {layer}", terms=post.abs() * (G.abs() @ W.abs().T))
        p = c(cache, f"blocks.{ul}.attn.hook_pattern").permute(1, 2, 0)  # (q, k, h)
        vo = torch.einsum("khd,hdm->khm", per_head(model, c(cache, f"blocks.{ul}.attn.hook_v")), model.blocks[ul].attn.W_O.detach())
        want = p * torch.einsum("khm,qm->qkh", vo, G)
        got = nw.derive(m, s, "attn_out_edge_attribution", ul, node=node, detach_layer_norm_scale=detach)
        close(got, want, f"attn_out_edge_attribution at {ul} into {part} {layer}",
              terms=p * torch.einsum("khm,qm->qkh", vo.abs(), G.abs()))


def test_store_from_puts_sae_latent_gradients():
    pytest.importorskip("sae_lens")
    from sae_lens import HookedSAETransformer, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    tl = tl_model(cls=HookedSAETransformer)
    sae = TopKSAE(TopKSAEConfig(d_in=64, d_sae=96, k=8, metadata=SAEMetadata(hook_name="blocks.1.hook_resid_mid")))
    with torch.enable_grad():
        _, cache = tl.run_with_cache_with_saes(tokens(), saes=[sae], return_type="loss", incl_bwd=True)
    s = nw.tl.store_from(cache, batch=B)
    key = "blocks.1.hook_resid_mid.hook_sae_acts_post"
    _, layer = nw.saelens.attach(nw.tl.model_from(tl), sae)
    names = {n for n, l in s.keys(pass_type="backward") if l == layer}
    fwd = {n for n, l in s.keys() if l == layer}
    latent = [n for n in fwd if "autoencoder_latent" in n]
    assert len(latent) == 1 and latent[0] in names, (latent, names)
    assert s.get(latent[0], layer, pass_type="backward") is cache[key + "_grad"]
    assert s.get(latent[0], layer) is cache[key]
