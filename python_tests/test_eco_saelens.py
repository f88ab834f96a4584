"""nodewrite.saelens against SAELens itself (issue 10): SAEs (standard, JumpReLU, TopK) and a
transcoder built offline from their configs with seeded random weights (random b_dec too), on a
seeded random-weight HookedSAETransformer; latents from run_with_cache_with_saes.

For every latent at every token, nodewrite's write equals SAELens' own decode of that latent alone
minus b_dec, pushed through the TL weights by hand (W_out for mlp.hook_post SAEs, W_O for hook_z
SAEs, nothing for residual-stream SAEs and transcoders writing to hook_mlp_out); summed over
latents it is decode(acts) - b_dec. Tolerance 1e-5 of the reference's largest magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest

import eco_support as E

if E.torch is None or E.sae_lens is None:  # pragma: no cover
    pytest.skip("transformer_lens / sae_lens not importable (run `make test-ecosystem`)", allow_module_level=True)

import torch
from sae_lens import (
    HookedSAETransformer,
    JumpReLUSAE,
    JumpReLUSAEConfig,
    StandardSAE,
    StandardSAEConfig,
    TopKSAE,
    TopKSAEConfig,
    Transcoder,
    TranscoderConfig,
)
from sae_lens.saes.sae import SAEMetadata

import nodewrite as nw
import nodewrite.saelens as nsae
import nodewrite.tl as ntl

B, T, BATCH = 2, 10, 1
H, D_HEAD, D, D_MLP = E.CFG["n_heads"], E.CFG["d_head"], E.CFG["d_model"], E.CFG["d_mlp"]
D_SAE = 96


def make_sae(arch: str, hook: str, seed: int = 0, **extra):
    """An SAE from its config, seeded random weights, a random b_dec (and JumpReLU threshold)."""
    torch.manual_seed(seed)
    d_in = {"mlp.hook_post": D_MLP, "attn.hook_z": H * D_HEAD}.get(hook.split(".", 2)[2], D)
    meta = SAEMetadata(hook_name=hook, **extra.pop("meta", {}))
    z = {"reshape_activations": "hook_z"} if hook.endswith("hook_z") else {}
    if arch == "standard":
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=D_SAE, metadata=meta, **z, **extra))
    elif arch == "jumprelu":
        sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=d_in, d_sae=D_SAE, metadata=meta, **z, **extra))
    elif arch == "topk":
        sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=D_SAE, k=8, metadata=meta, **z, **extra))
    else:
        raise ValueError(arch)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        sae.W_dec.copy_(torch.randn(sae.W_dec.shape, generator=g) / np.sqrt(d_in))
        sae.W_enc.copy_(torch.randn(sae.W_enc.shape, generator=g) / np.sqrt(d_in))
        sae.b_dec.copy_(0.1 * torch.randn(sae.b_dec.shape, generator=g))
        if arch == "jumprelu":
            sae.threshold.fill_(0.05)
    return sae


def make_transcoder(seed: int = 0):
    torch.manual_seed(seed)
    tc = Transcoder(TranscoderConfig(d_in=D, d_sae=D_SAE, d_out=D, apply_b_dec_to_input=False,
                                     metadata=SAEMetadata(hook_name="blocks.1.ln2.hook_normalized",
                                                          hook_name_out="blocks.1.hook_mlp_out")))
    g = torch.Generator().manual_seed(seed + 200)
    with torch.no_grad():
        tc.W_dec.copy_(torch.randn(tc.W_dec.shape, generator=g) / np.sqrt(D))
        tc.b_dec.copy_(0.1 * torch.randn(tc.b_dec.shape, generator=g))
    return tc


@pytest.fixture(scope="module")
def model():
    return E.tl_model(cls=HookedSAETransformer)


def per_latent_reference(model, sae, acts, hook):
    """(T, d_sae, d_model) float64: SAELens' decode of each latent alone, minus b_dec, pushed through
    the TL weights by hand."""
    n = acts.shape[-1]
    eye = torch.eye(n)
    X = acts[:, :, None] * eye  # (T, d_sae, d_sae): latent i alone at row i
    with torch.no_grad():
        out = sae.decode(X)
        b = sae.b_dec
        if hook.endswith("hook_z"):
            out = out - b.reshape(H, D_HEAD)  # decode reshaped to (..., n_heads, d_head)
            layer = int(hook.split(".")[1])
            return torch.einsum("tihd,hdm->tim", out.double(), model.blocks[layer].attn.W_O.double())
        out = out - b
        if hook.endswith("mlp.hook_post"):
            layer = int(hook.split(".")[1])
            return out.double() @ model.blocks[layer].mlp.W_out.double()
        return out.double()


def all_latents(n):
    t, i = np.meshgrid(np.arange(T), np.arange(n), indexing="ij")
    return np.stack([t.ravel(), i.ravel()], 1)


CASES = [
    ("standard", "blocks.0.hook_mlp_out", "mlp_autoencoder_latent", "resid_delta_mlp"),
    ("jumprelu", "blocks.1.hook_mlp_out", "mlp_autoencoder_latent", "resid_delta_mlp"),
    ("topk", "blocks.1.hook_mlp_out", "mlp_autoencoder_latent", "resid_delta_mlp"),
    ("standard", "blocks.1.mlp.hook_post", "mlp_autoencoder_latent", "mlp_post_act"),
    ("topk", "blocks.0.mlp.hook_post", "mlp_autoencoder_latent", "mlp_post_act"),
    ("standard", "blocks.1.attn.hook_z", "attention_autoencoder_latent", "attn_weighted_sum_of_values"),
    ("jumprelu", "blocks.0.attn.hook_z", "attention_autoencoder_latent", "attn_weighted_sum_of_values"),
    ("topk", "blocks.1.attn.hook_z", "attention_autoencoder_latent", "attn_weighted_sum_of_values"),
    ("standard", "blocks.0.hook_attn_out", "attention_autoencoder_latent", "resid_delta_attn"),
    ("jumprelu", "blocks.0.hook_resid_pre", "autoencoder_latent", "resid_post_embedding"),
    ("standard", "blocks.1.hook_resid_pre", "autoencoder_latent", "resid_post_mlp"),
    ("topk", "blocks.1.hook_resid_mid", "autoencoder_latent", "resid_post_attn"),
    ("standard", "blocks.1.hook_resid_post", "autoencoder_latent", "resid_post_mlp"),
]


def check_sae(model, sae, hook, node_type, kind, layer):
    m = ntl.model_from(model)
    nt, l = nsae.attach(m, sae)
    assert (nt, l) == (node_type, layer)
    assert m.autoencoders()[(nt, l)]["input"] == kind
    with torch.no_grad():
        _, cache = model.run_with_cache_with_saes(E.tokens(B, T), saes=[sae])
    s = ntl.store_from(cache, batch=BATCH)
    key = f"{hook}.hook_sae_acts_post"
    acts = cache[key][BATCH]
    assert s.get(nsae.LATENT_ACTIVATION[nt], l) is cache[key]  # borrowed
    assert (acts != 0).any()
    ref = per_latent_reference(model, sae, acts, hook)  # (T, d_sae, D)
    got = nw.node_writes(m, s, nt, l, all_latents(acts.shape[-1])).reshape(T, -1, D)
    assert E.rel_err(got, ref) <= E.TOL
    # summed over latents: decode(acts) - b_dec, pushed through
    with torch.no_grad():
        whole = sae.decode(acts[None])[0]
    if hook.endswith("hook_z"):
        whole = torch.einsum("thd,hdm->tm", (whole - sae.b_dec.reshape(H, D_HEAD)).double(), model.blocks[l].attn.W_O.double())
    elif hook.endswith("mlp.hook_post"):
        whole = (whole - sae.b_dec).double() @ model.blocks[l].mlp.W_out.double()
    else:
        whole = (whole - sae.b_dec).double()
    assert E.rel_err(got.astype(np.float64).sum(1), whole) <= E.TOL
    # latent DLA: the writes projected onto TL's logit-difference directions
    g = ntl.logit_directions(model, cache, 3, 9, batch=BATCH)
    dla = ntl.latent_logit_attrs(m, s, nt, l, g)
    assert E.rel_err(dla, np.einsum("tim,tm->ti", ref.numpy(), g.double().numpy())) <= E.TOL


@pytest.mark.parametrize("arch, hook, node_type, kind", CASES, ids=[f"{a}-{h}" for a, h, _, _ in CASES])
def test_sae_latent_writes_equal_saelens_decode(model, arch, hook, node_type, kind):
    sae = make_sae(arch, hook, seed=len(hook) + len(arch))
    check_sae(model, sae, hook, node_type, kind, int(hook.split(".")[1]))


def test_topk_rescaled_by_decoder_norm(model):
    sae = make_sae("topk", "blocks.1.hook_mlp_out", seed=7, rescale_acts_by_decoder_norm=True)
    check_sae(model, sae, "blocks.1.hook_mlp_out", "mlp_autoencoder_latent", "resid_delta_mlp", 1)


def test_transcoder_writes_its_decoder_into_its_output_hook(model):
    tc = make_transcoder()
    m = ntl.model_from(model)
    nt, l = nsae.attach(m, tc)
    assert (nt, l) == ("mlp_autoencoder_latent", 1)
    with torch.no_grad():
        _, cache = model.run_with_cache_with_saes(E.tokens(B, T), saes=[tc])
    s = ntl.store_from(cache, batch=BATCH)
    acts = cache["blocks.1.hook_mlp_out.hook_sae_acts_post"][BATCH]
    ref = per_latent_reference(model, tc, acts, "blocks.1.hook_mlp_out")
    got = nw.node_writes(m, s, nt, l, all_latents(D_SAE)).reshape(T, D_SAE, D)
    assert E.rel_err(got, ref) <= E.TOL


def test_an_mlp_an_attention_and_a_residual_sae_together(model):
    saes = [make_sae("standard", "blocks.1.hook_mlp_out", 1), make_sae("topk", "blocks.1.attn.hook_z", 2),
            make_sae("jumprelu", "blocks.0.hook_resid_post", 3)]
    m = ntl.model_from(model)
    placed = [nsae.attach(m, sae) for sae in saes]
    assert placed == [("mlp_autoencoder_latent", 1), ("attention_autoencoder_latent", 1), ("autoencoder_latent", 0)]
    with torch.no_grad():
        _, cache = model.run_with_cache_with_saes(E.tokens(B, T), saes=saes)
    s = ntl.store_from(cache, batch=BATCH)
    for sae, (nt, l) in zip(saes, placed):
        hook = nsae.hook_name(sae)
        acts = cache[f"{hook}.hook_sae_acts_post"][BATCH]
        got = nw.node_writes(m, s, nt, l, all_latents(D_SAE)).reshape(T, D_SAE, D)
        assert E.rel_err(got, per_latent_reference(model, sae, acts, hook)) <= E.TOL
    # put_latents: the same from sae.encode directly
    s2 = nw.ActivationStore()
    hook_in = cache["blocks.1.hook_mlp_out.hook_sae_input"]
    with torch.no_grad():
        acts = saes[0].encode(hook_in)
    assert nsae.put_latents(s2, saes[0], acts, batch=BATCH) == ("mlp_autoencoder_latent", 1)
    assert np.array_equal(nw.node_writes(m, s2, "mlp_autoencoder_latent", 1, all_latents(D_SAE)),
                          nw.node_writes(m, s, "mlp_autoencoder_latent", 1, all_latents(D_SAE)))


def test_refusals():
    with pytest.raises(nw.NodeWriteError, match="ln1.hook_normalized"):  # the library's table says which hooks
        nsae.node_type_for_hook("blocks.0.ln1.hook_normalized")
    with pytest.raises(nw.NodeWriteValueError, match="normalize_activations"):
        nsae.attach(nw.Model(n_layers=2, d_model=D, n_heads=H, d_head=D_HEAD, d_ff=D_MLP),
                    make_sae("standard", "blocks.0.hook_mlp_out", normalize_activations="expected_average_only_in"))
    assert nsae.node_type_for_hook("blocks.11.attn.hook_z") == ("attention_autoencoder_latent", "attn_weighted_sum_of_values", 11)


# ------------------------------------------------------------------------------ one SAE per slot (issue 19)


def latent_writes(m, s, nt, l):
    return nw.node_writes(m, s, nt, l, all_latents(D_SAE)).reshape(T, D_SAE, D)


def test_a_second_sae_for_an_occupied_slot_is_refused(model):
    """hook_mlp_out and mlp.hook_post SAEs of one layer (same width) both map to
    (mlp_autoencoder_latent, 1). The second attach replaced the first decoder without a word, and the
    node writes were one SAE's latents times the other's decoder; now it is refused, the first SAE
    stays, and the message's two ways of keeping both work."""
    out, post = make_sae("standard", "blocks.1.hook_mlp_out", 11), make_sae("standard", "blocks.1.mlp.hook_post", 12)
    m = ntl.model_from(model)
    assert nsae.attach(m, out) == ("mlp_autoencoder_latent", 1)
    with pytest.raises(nw.NodeWriteValueError) as e:
        nsae.attach(m, post)
    msg = str(e.value)
    assert "(mlp_autoencoder_latent, layer 1) already holds" in msg and "'blocks.1.mlp.hook_post'" in msg
    assert "second model" in msg and "node_type='autoencoder_latent'" in msg and "replace=True" in msg
    with torch.no_grad():
        _, cache = model.run_with_cache_with_saes(E.tokens(B, T), saes=[out, post])
    acts_out = cache["blocks.1.hook_mlp_out.hook_sae_acts_post"][BATCH]
    acts_post = cache["blocks.1.mlp.hook_post.hook_sae_acts_post"][BATCH]
    # both latents would go to one store slot too: refused, with the put_latents route
    with pytest.raises(nw.NodeWriteValueError, match=r"store_from\(cache, latents=False\).*put_latents"):
        ntl.store_from(cache, batch=BATCH)
    # way 1: the generic node type, in the model and in the store
    assert nsae.attach(m, post, node_type="autoencoder_latent") == ("autoencoder_latent", 1)
    s = ntl.store_from(cache, batch=BATCH, latents=False)
    assert nsae.put_latents(s, out, cache["blocks.1.hook_mlp_out.hook_sae_acts_post"]) == ("mlp_autoencoder_latent", 1)
    assert nsae.put_latents(s, post, cache["blocks.1.mlp.hook_post.hook_sae_acts_post"],
                            node_type="autoencoder_latent") == ("autoencoder_latent", 1)
    ref_out = per_latent_reference(model, out, acts_out, "blocks.1.hook_mlp_out")
    ref_post = per_latent_reference(model, post, acts_post, "blocks.1.mlp.hook_post")
    assert E.rel_err(latent_writes(m, s, "mlp_autoencoder_latent", 1), ref_out) <= E.TOL
    assert E.rel_err(latent_writes(m, s, "autoencoder_latent", 1), ref_post) <= E.TOL
    # way 2: two models
    m2 = ntl.model_from(model)
    nsae.attach(m2, post)
    s2 = nw.ActivationStore()
    nsae.put_latents(s2, post, cache["blocks.1.mlp.hook_post.hook_sae_acts_post"], batch=BATCH)
    assert E.rel_err(latent_writes(m2, s2, "mlp_autoencoder_latent", 1), ref_post) <= E.TOL
    # replace=True replaces
    nsae.attach(m, post, replace=True)
    s3 = nw.ActivationStore()
    nsae.put_latents(s3, post, cache["blocks.1.mlp.hook_post.hook_sae_acts_post"], batch=BATCH)
    assert E.rel_err(latent_writes(m, s3, "mlp_autoencoder_latent", 1), ref_post) <= E.TOL


def test_a_second_residual_sae_in_one_slot_says_two_models(model):
    """hook_resid_pre and hook_resid_mid of layer 1 are both (autoencoder_latent, 1): no other node
    type is offered for a residual-stream SAE, only a second model."""
    m = ntl.model_from(model)
    nsae.attach(m, make_sae("standard", "blocks.1.hook_resid_pre", 13))
    with pytest.raises(nw.NodeWriteValueError, match="second model") as e:
        nsae.attach(m, make_sae("standard", "blocks.1.hook_resid_mid", 14))
    assert "node_type=" not in str(e.value)


def test_put_latents_takes_the_store_batch(model):
    sae = make_sae("standard", "blocks.0.hook_mlp_out", 15)
    with torch.no_grad():
        _, cache = model.run_with_cache_with_saes(E.tokens(B, T), saes=[sae])
    s = ntl.store_from(cache, batch=BATCH, latents=False)
    latents = cache["blocks.0.hook_mlp_out.hook_sae_acts_post"]
    nsae.put_latents(s, sae, latents)  # batch from the store
    assert np.array_equal(nw.node_writes(ntl.model_from(model), s, "mlp_neuron", 0, [[0, 0]]),
                          nw.node_writes(ntl.model_from(model), ntl.store_from(cache, batch=BATCH), "mlp_neuron", 0, [[0, 0]]))
    m = ntl.model_from(model)
    nsae.attach(m, sae)
    assert E.rel_err(latent_writes(m, s, "mlp_autoencoder_latent", 0),
                     per_latent_reference(model, sae, latents[BATCH], "blocks.0.hook_mlp_out")) <= E.TOL
    with pytest.raises(nw.NodeWriteValueError, match="holds batch element 1"):
        nsae.put_latents(s, sae, latents, batch=0)


def test_nw_model_keyword_of_attach_still_works_with_a_warning(model):
    m = ntl.model_from(model)
    with pytest.warns(DeprecationWarning, match="nw_model= is now model="):
        assert nsae.attach(nw_model=m, sae=make_sae("standard", "blocks.0.hook_attn_out", 16)) == ("attention_autoencoder_latent", 0)
