"""nodewrite.tl against TransformerLens itself (issue 10), on seeded random-weight
HookedTransformers built offline from a HookedTransformerConfig (GPT-2-like: 2 layers, d_model 64,
4 heads of 16, d_mlp 256, d_vocab 100, gelu, LN), unfolded (random LN weights and biases) and
folded by TL's own process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True).

- per-(q, k, h) writes summed over keys == cache.stack_head_results();
- per-neuron writes == cache.get_neuron_results(), their projections == get_neuron_results(...,
  project_output_onto=p);
- per-head DLA == cache.logit_attrs(cache.stack_head_results(), ...) and ==
  stack_head_results(apply_ln=True) projected onto the logit-difference directions;
- per-(q, k, h) DLA summed over keys == per-head DLA; per-neuron DLA == TL's logit_attrs of the
  neuron results. Tolerance 1e-5 of the reference's largest magnitude.

Skipped (one reason) unless torch and transformer_lens import: `make test-ecosystem`.
"""

from __future__ import annotations

import numpy as np
import pytest

import eco_support as E

if E.torch is None:  # pragma: no cover
    pytest.skip("transformer_lens not importable (run `make test-ecosystem`)", allow_module_level=True)

import torch

import nodewrite as nw
import nodewrite.tl as ntl

B, T, BATCH = 3, 12, 1
H, D, D_MLP = E.CFG["n_heads"], E.CFG["d_model"], E.CFG["d_mlp"]


@pytest.fixture(scope="module", params=["unfolded", "folded"])
def setup(request):
    model = E.tl_model(folded=request.param == "folded")
    toks = E.tokens(B, T)
    with torch.no_grad():
        _, cache = model.run_with_cache(toks)
    return dict(kind=request.param, model=model, cache=cache, toks=toks,
                m=ntl.model_from(model), s=ntl.store_from(cache, batch=BATCH))


def all_qkh():
    q, k, h = np.meshgrid(np.arange(T), np.arange(T), np.arange(H), indexing="ij")
    return np.stack([q.ravel(), k.ravel(), h.ravel()], 1)


def all_neurons():
    t, n = np.meshgrid(np.arange(T), np.arange(D_MLP), indexing="ij")
    return np.stack([t.ravel(), n.ravel()], 1)


def answer_tokens(seed=1):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 100, (B, T), generator=g)
    b = torch.randint(0, 100, (B, T), generator=g)
    return a, b


# ------------------------------------------------------------------------------ the adapters


def test_model_from_borrows_the_parameters(setup):
    model, m = setup["model"], setup["m"]
    w = m.weights()
    for l in range(E.CFG["n_layers"]):
        assert w[("attn.to_residual", l)] == {"copied": False, "dtype": "float32", "shape": (H, 16, D)}
        assert w[("mlp.to_residual", l)] == {"copied": False, "dtype": "float32", "shape": (D_MLP, D)}
    assert w[("unembedding", None)]["copied"] is False and w[("unembedding", None)]["shape"] == (D, 100)
    gain = w[("layer_norm_gain.final", None)]
    if setup["kind"] == "folded":
        assert not hasattr(model.ln_final, "w") and gain["copied"] is True  # ones: folded into W_U
    else:
        assert gain["copied"] is False
    # borrowed: an in-place edit of the parameter is seen by the next derive
    node = nw.NodeIndex("mlp_neuron", 0, (3, 5))
    before = nw.node_write(m, setup["s"], node)
    with torch.no_grad():
        model.blocks[0].mlp.W_out.mul_(2.0)
    try:
        assert np.allclose(nw.node_write(m, setup["s"], node), 2.0 * before, rtol=1e-6, atol=0)
    finally:
        with torch.no_grad():
            model.blocks[0].mlp.W_out.mul_(0.5)


def test_store_from_borrows_the_cache(setup):
    s, cache = setup["s"], setup["cache"]
    for l in range(E.CFG["n_layers"]):
        assert s.get("attn.qk_probs", l) is cache[f"blocks.{l}.attn.hook_pattern"]
        assert s.get("attn.v", l) is cache[f"blocks.{l}.attn.hook_v"]
        assert s.get("mlp.post_act", l) is cache[f"blocks.{l}.mlp.hook_post"]
        assert s.get("attn.v_out", l) is cache[f"blocks.{l}.attn.hook_z"]
        assert s.get("resid.post_attn", l) is cache[f"blocks.{l}.hook_resid_mid"]
        assert s.get("resid.post_mlp", l) is cache[f"blocks.{l}.hook_resid_post"]
    assert s.get("resid.post_emb", None) is cache["blocks.0.hook_resid_pre"]
    per_layer = ("attn.qk_probs", "attn.v", "mlp.post_act", "attn.v_out", "resid.post_attn", "resid.post_mlp")
    assert sorted(s.keys(), key=str) == sorted([(n, l) for n in per_layer for l in range(2)] + [("resid.post_emb", None)], key=str)


def test_store_from_a_cache_without_batch_dim(setup):
    model = setup["model"]
    with torch.no_grad():
        _, cache1 = model.run_with_cache(setup["toks"][BATCH : BATCH + 1])
    s1 = ntl.store_from(cache1.remove_batch_dim())
    got = nw.node_writes(setup["m"], s1, "attention_head", 1, all_qkh())
    want = nw.node_writes(setup["m"], setup["s"], "attention_head", 1, all_qkh())
    assert E.rel_err(got, want) <= E.TOL


# ------------------------------------------------------------------------------ raw writes


@pytest.mark.parametrize("layer", [0, 1])
def test_qkh_writes_summed_over_keys_equal_stack_head_results(setup, layer):
    m, s, cache = setup["m"], setup["s"], setup["cache"]
    w = nw.node_writes(m, s, "attention_head", layer, all_qkh()).reshape(T, T, H, D)
    heads = cache.stack_head_results()[layer * H : (layer + 1) * H, BATCH]  # (H, T, D)
    assert E.rel_err(w.sum(axis=1).transpose(1, 0, 2), heads) <= E.TOL
    # and the causal mask: keys after the query write nothing
    assert not np.any(w[np.triu_indices(T, 1)])


@pytest.mark.parametrize("layer", [0, 1])
def test_neuron_writes_and_projections_equal_get_neuron_results(setup, layer):
    m, s, cache = setup["m"], setup["s"], setup["cache"]
    w = nw.node_writes(m, s, "mlp_neuron", layer, all_neurons()).reshape(T, D_MLP, D)
    assert E.rel_err(w, cache.get_neuron_results(layer)[BATCH]) <= E.TOL
    p = torch.randn(D, generator=torch.Generator().manual_seed(layer))
    proj = nw.derive(m, s, "mlp_write_to_final_residual_grad", layer, direction=p.expand(T, D))
    assert E.rel_err(proj, cache.get_neuron_results(layer, project_output_onto=p)[BATCH]) <= E.TOL


# ------------------------------------------------------------------------------ DLA


@pytest.mark.parametrize("layer", [0, 1])
def test_head_dla_equals_tl_logit_attrs(setup, layer):
    model, m, s, cache = setup["model"], setup["m"], setup["s"], setup["cache"]
    a, b = answer_tokens()
    g = ntl.logit_directions(model, cache, a, b, batch=BATCH)
    got = ntl.head_logit_attrs(m, s, layer, g)  # (T, H)
    stack = cache.stack_head_results()
    want = cache.logit_attrs(stack, a, b)[layer * H : (layer + 1) * H, BATCH]  # (H, T)
    assert E.rel_err(got, want.T) <= E.TOL
    # == stack_head_results(apply_ln=True) projected onto the same directions
    scaled = cache.stack_head_results(apply_ln=True)[layer * H : (layer + 1) * H, BATCH]  # (H, T, D)
    dirs = model.tokens_to_residual_directions(a) - model.tokens_to_residual_directions(b)  # (B, T, D)
    want2 = (scaled * dirs[BATCH]).sum(-1)
    assert E.rel_err(got, want2.T) <= E.TOL
    # one call
    assert E.rel_err(ntl.logit_attrs(model, cache, layer, a, b, batch=BATCH), want.T) <= E.TOL


def test_head_dla_with_one_token_and_a_str_free_int(setup):
    model, m, s, cache = setup["model"], setup["m"], setup["s"], setup["cache"]
    g = ntl.logit_directions(model, cache, 7, 42, batch=BATCH)
    assert g.shape == (T, D) and g.dtype == torch.float32
    want = cache.logit_attrs(cache.stack_head_results(), 7, 42)[H : 2 * H, BATCH]
    assert E.rel_err(ntl.head_logit_attrs(m, s, 1, g), want.T) <= E.TOL
    # correct token only (no incorrect_tokens)
    g1 = ntl.logit_directions(model, cache, torch.tensor(7), batch=BATCH)
    want1 = cache.logit_attrs(cache.stack_head_results(), torch.tensor(7))[H : 2 * H, BATCH]
    assert E.rel_err(ntl.head_logit_attrs(m, s, 1, g1), want1.T) <= E.TOL


@pytest.mark.parametrize("layer", [0, 1])
def test_qkh_dla_sums_to_head_dla(setup, layer):
    model, m, s, cache = setup["model"], setup["m"], setup["s"], setup["cache"]
    a, b = answer_tokens(2)
    g = ntl.logit_directions(model, cache, a, b, batch=BATCH)
    qkh = ntl.qkh_logit_attrs(m, s, layer, g)
    assert qkh.shape == (T, T, H)
    want = cache.logit_attrs(cache.stack_head_results(), a, b)[layer * H : (layer + 1) * H, BATCH]
    assert E.rel_err(qkh.sum(axis=1), want.T) <= E.TOL
    assert not np.any(qkh[np.triu_indices(T, 1)])
    # each (q, k, h) value is its node write projected onto g[q]
    w = nw.node_writes(m, s, "attention_head", layer, all_qkh()).reshape(T, T, H, D)
    assert E.rel_err(qkh, np.einsum("qkhd,qd->qkh", w.astype(np.float64), g.double().numpy())) <= E.TOL
    assert E.rel_err(ntl.logit_attrs(model, cache, layer, a, b, kind="qkh", batch=BATCH), qkh) <= E.TOL


@pytest.mark.parametrize("layer", [0, 1])
def test_neuron_dla_equals_tl_logit_attrs(setup, layer):
    model, m, s, cache = setup["model"], setup["m"], setup["s"], setup["cache"]
    a, b = answer_tokens(3)
    g = ntl.logit_directions(model, cache, a, b, batch=BATCH)
    got = ntl.neuron_logit_attrs(m, s, layer, g)  # (T, d_mlp)
    stack = cache.get_neuron_results(layer).permute(2, 0, 1, 3)  # (d_mlp, B, T, D)
    want = cache.logit_attrs(stack, a, b)[:, BATCH]  # (d_mlp, T)
    assert E.rel_err(got, want.T) <= E.TOL
    assert E.rel_err(ntl.logit_attrs(model, cache, layer, a, b, kind="neurons", batch=BATCH), want.T) <= E.TOL


def test_which_ln_weight_tl_applies():
    """TL's logit_attrs leaves ln_final.w out (an unfolded model's DLA ignores it); folding puts it
    into W_U. So the unfolded model's DLA with ln_weight=True equals the folded copy's TL DLA
    (center_unembed and center_writing_weights cancel in a logit difference after centring),
    and without it differs. b_V and ln1.b are zeroed: TL's weight processing folds ln1.b into b_V
    and then the value biases into b_O (fold_value_biases), which moves b_V @ W_O out of the
    per-head results."""
    model = E.tl_model()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.b_V.zero_()
            block.ln1.b.zero_()
    folded = E.folded_copy(model)
    toks = E.tokens(B, T)
    a, b = answer_tokens(4)
    with torch.no_grad():
        _, cache = model.run_with_cache(toks)
        _, fcache = folded.run_with_cache(toks)
    m, s = ntl.model_from(model), ntl.store_from(cache, batch=BATCH)
    want = fcache.logit_attrs(fcache.stack_head_results(), a, b)[H : 2 * H, BATCH].T
    with_w = ntl.head_logit_attrs(m, s, 1, ntl.logit_directions(model, cache, a, b, batch=BATCH, ln_weight=True))
    without = ntl.head_logit_attrs(m, s, 1, ntl.logit_directions(model, cache, a, b, batch=BATCH))
    assert E.rel_err(with_w, want) <= 1e-4  # two models: the forward passes differ by rounding
    assert E.rel_err(without, want) > 1e-2
    # and `without` is exactly TL's own answer on the unfolded model
    assert E.rel_err(without, cache.logit_attrs(cache.stack_head_results(), a, b)[H : 2 * H, BATCH].T) <= E.TOL


def test_rms_model_is_not_centred():
    model = E.tl_model(normalization_type="RMS")
    toks = E.tokens(B, T)
    with torch.no_grad():
        _, cache = model.run_with_cache(toks)
    a, b = answer_tokens(5)
    got = ntl.logit_attrs(model, cache, 1, a, b, batch=BATCH)
    want = cache.logit_attrs(cache.stack_head_results(), a, b)[H : 2 * H, BATCH].T
    assert E.rel_err(got, want) <= E.TOL


# ------------------------------------------------------------------------------ the rest of nodewrite


def test_token_writes_on_a_tl_model(setup):
    model, m, s = setup["model"], setup["m"], setup["s"]
    idx = nw.heads_at(5, 2, H)
    tw = nw.token_writes(m, s, "attention_head", 1, idx)
    w = nw.node_writes(m, s, "attention_head", 1, idx).astype(np.float64)
    W_U = model.unembed.W_U.detach().double().numpy()
    gain = model.ln_final.w.detach().double().numpy() if hasattr(model.ln_final, "w") else np.ones(D)
    u = w @ (W_U * gain[:, None])
    assert E.rel_err(tw, u - u.mean(-1, keepdims=True)) <= E.TOL


def test_tl_pattern_when_t_equals_n_heads():
    """T == n_heads: hook_pattern (head, q, k) has the shape (q, k, head) would have. store_from
    says the layout; a bare put of the same tensor is refused by the causal model (mass above the
    diagonal), naming layout="hqk"."""
    model = E.tl_model()
    toks = E.tokens(1, H)
    with torch.no_grad():
        _, cache = model.run_with_cache(toks)
    m = ntl.model_from(model)
    q, k, h = np.meshgrid(np.arange(H), np.arange(H), np.arange(H), indexing="ij")
    idx = np.stack([q.ravel(), k.ravel(), h.ravel()], 1)
    want = cache.stack_head_results()[H : 2 * H, 0].transpose(0, 1)  # (T, H, D)
    good = nw.node_writes(m, ntl.store_from(cache), "attention_head", 1, idx).reshape(H, H, H, D).sum(1)
    assert E.rel_err(good, want) <= E.TOL
    bare = nw.ActivationStore()
    bare.put("attn.qk_probs", 1, cache["blocks.1.attn.hook_pattern"][0])  # (H, T, T) read as (T, T, H)
    bare.put("attn.v", 1, cache["blocks.1.attn.hook_v"][0])
    with pytest.raises(nw.NodeWriteValueError, match='layout="hqk"'):
        nw.node_writes(m, bare, "attention_head", 1, idx)


def test_grouped_query_attention():
    """n_key_value_heads = 2 < n_heads = 4: hook_v holds 2 heads; store_from expands them as TL's
    attention does, and the per-head writes still equal stack_head_results()."""
    model = E.tl_model(n_key_value_heads=2)
    toks = E.tokens(B, T)
    with torch.no_grad():
        _, cache = model.run_with_cache(toks)
    assert cache["blocks.1.attn.hook_v"].shape[-2] == 2
    m, s = ntl.model_from(model), ntl.store_from(cache, batch=BATCH)
    w = nw.node_writes(m, s, "attention_head", 1, all_qkh()).reshape(T, T, H, D)
    assert E.rel_err(w.sum(1).transpose(1, 0, 2), cache.stack_head_results()[H : 2 * H, BATCH]) <= E.TOL
    a, b = answer_tokens(6)
    want = cache.logit_attrs(cache.stack_head_results(), a, b)[H : 2 * H, BATCH].T
    assert E.rel_err(ntl.logit_attrs(model, cache, 1, a, b, batch=BATCH), want) <= E.TOL


# ------------------------------------------------------------------------------ no silent wrong answers (issue 19)


def bidirectional_setup():
    model = E.tl_model(attention_dir="bidirectional")
    toks = E.tokens(B, T)
    with torch.no_grad():
        _, cache = model.run_with_cache(toks)
    return model, cache


def test_model_from_reads_attention_dir():
    assert ntl.model_from(E.tl_model()).causal is True
    model, cache = bidirectional_setup()
    assert cache["blocks.1.attn.hook_pattern"][BATCH].triu(1).abs().max() > 0.01  # keys after the query are attended
    assert ntl.model_from(model).causal is False
    model.cfg.attention_dir = "sideways"
    with pytest.raises(nw.NodeWriteValueError, match="attention_dir"):
        ntl.model_from(model)


@pytest.mark.parametrize("layer", [0, 1])
def test_bidirectional_head_dla_equals_tl(layer):
    """A bidirectional TL model: every key of every query writes. The per-head DLA equals TL's
    logit_attrs of stack_head_results (1e-5 of its largest value), the (q, k, h) DLA sums to it
    and has values above the diagonal, and the node writes summed over all keys equal
    stack_head_results."""
    model, cache = bidirectional_setup()
    m, s = ntl.model_from(model), ntl.store_from(cache, batch=BATCH)
    a, b = answer_tokens(7)
    g = ntl.logit_directions(model, cache, a, b, batch=BATCH)
    want = cache.logit_attrs(cache.stack_head_results(), a, b)[layer * H : (layer + 1) * H, BATCH].T  # (T, H)
    got = ntl.head_logit_attrs(m, s, layer, g)
    assert E.rel_err(got, want) <= E.TOL
    qkh = ntl.qkh_logit_attrs(m, s, layer, g)
    assert E.rel_err(qkh.sum(axis=1), want) <= E.TOL
    assert np.abs(qkh[np.triu_indices(T, 1)]).max() > 1e-3
    w = nw.node_writes(m, s, "attention_head", layer, all_qkh()).reshape(T, T, H, D)
    heads = cache.stack_head_results()[layer * H : (layer + 1) * H, BATCH]  # (H, T, D)
    assert E.rel_err(w.sum(axis=1).transpose(1, 0, 2), heads) <= E.TOL
    assert E.rel_err(ntl.logit_attrs(model, cache, layer, a, b, batch=BATCH), want) <= E.TOL


def test_a_direction_for_another_batch_element_is_refused(setup):
    """store_from(cache, batch=1) with logit_directions at its default batch 0 was off by 0.087
    without a word; now the pair is refused, and logit_attrs takes the batch from its store."""
    model, m, s, cache = setup["model"], setup["m"], setup["s"], setup["cache"]
    assert s.batch == BATCH
    a, b = answer_tokens(8)
    g0 = ntl.logit_directions(model, cache, a, b)  # batch 0
    for fn in (ntl.head_logit_attrs, ntl.qkh_logit_attrs, ntl.neuron_logit_attrs):
        with pytest.raises(nw.NodeWriteValueError, match=r"batch element 0 .*batch element 1.*batch=1"):
            fn(m, s, 1, g0)
    # the direction can take its batch from the store
    g1 = ntl.logit_directions(model, cache, a, b, store=s)
    want = cache.logit_attrs(cache.stack_head_results(), a, b)[H : 2 * H, BATCH].T
    assert E.rel_err(ntl.head_logit_attrs(m, s, 1, g1), want) <= E.TOL
    # logit_attrs: the store's batch unless told otherwise, and a different one is refused
    assert E.rel_err(ntl.logit_attrs(model, cache, 1, a, b, store=s, model=m), want) <= E.TOL
    with pytest.raises(nw.NodeWriteValueError, match="batch"):
        ntl.logit_attrs(model, cache, 1, a, b, batch=0, store=s)
    with pytest.raises(nw.NodeWriteValueError, match="batch"):
        ntl.logit_directions(model, cache, a, b, batch=2, store=s)
    # one store, one batch element; negative batch counts from the end
    with pytest.raises(nw.NodeWriteValueError, match="one store holds one batch element"):
        ntl.store_from(cache, batch=0, store=s)
    assert ntl.store_from(cache, batch=-1).batch == B - 1
    with pytest.raises(nw.NodeWriteIndexError, match="batch"):
        ntl.store_from(cache, batch=B)


def test_token_ids_outside_the_vocabulary():
    """d_vocab 20: logit_directions(model, cache, 999, 0) was torch's bare IndexError."""
    model = E.tl_model(d_vocab=20)
    with torch.no_grad():
        _, cache = model.run_with_cache(E.tokens(1, 6, d_vocab=20))
    with pytest.raises(nw.NodeWriteIndexError, match=r"tokens: token id 999 is outside the vocabulary \(d_vocab = 20"):
        ntl.logit_directions(model, cache, 999, 0)
    with pytest.raises(nw.NodeWriteIndexError, match="incorrect_tokens: token id -1"):
        ntl.logit_directions(model, cache, 3, -1)
    with pytest.raises(nw.NodeWriteIndexError, match="tokens: token id 20 "):
        ntl.logit_directions(model, cache, torch.tensor([1, 2, 3, 20, 4, 5]), 0)
    assert ntl.logit_directions(model, cache, 19, 0).shape == (6, D)


def test_a_bad_layer_in_logit_attrs_is_a_layer_error(setup):
    model, cache = setup["model"], setup["cache"]
    a, b = answer_tokens(9)
    for layer in (2, -1, 99):
        with pytest.raises(nw.NodeWriteIndexError, match=rf"^layer: {layer} is out of range for a model of 2 layers"):
            ntl.logit_attrs(model, cache, layer, a, b, batch=BATCH)
    with pytest.raises(nw.NodeWriteValueError, match="^layer: expected an integer"):
        ntl.logit_attrs(model, cache, 1.0, a, b, batch=BATCH)


def test_nw_model_keyword_still_works_with_a_warning(setup):
    model, m, s, cache = setup["model"], setup["m"], setup["s"], setup["cache"]
    a, b = answer_tokens(10)
    g = ntl.logit_directions(model, cache, a, b, batch=BATCH)
    want = ntl.head_logit_attrs(m, s, 1, g)
    assert np.array_equal(ntl.head_logit_attrs(model=m, store=s, layer=1, direction=g), want)
    with pytest.warns(DeprecationWarning, match="nw_model= is now model="):
        assert np.array_equal(ntl.head_logit_attrs(nw_model=m, store=s, layer=1, direction=g), want)
    with pytest.warns(DeprecationWarning, match="nw_model="):
        assert np.array_equal(ntl.logit_attrs(model, cache, 1, a, b, nw_model=m, store=s), want)
    with pytest.raises(TypeError, match="both"):
        ntl.neuron_logit_attrs(model=m, nw_model=m, store=s, layer=1, direction=g)
