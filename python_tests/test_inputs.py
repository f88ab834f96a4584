"""Inputs without copies: strided, transposed and negative-stride numpy views, float16/float64,
torch CPU tensors (float32/float16/bfloat16) when torch is installed, in-place reads (the
zero-copy test), and the lifetime of borrowed objects."""

import gc
import subprocess
import sys
import weakref

import numpy as np
import pytest

import nodewrite as nw
import nw_fixtures as F

CASES = [c for c in F.cases() if "error" not in c]
T = F.tensors()
D = F.dims()


def reference(case, get):
    """The node write in float64 from the inputs get(name) returns (for rounded inputs)."""
    layer, idx, kind = case["layer"], case["tensor_indices"], case["node_type"]
    aes = F.spec()["autoencoders"]
    w_mlp = get(f"weights.{layer}.mlp.to_residual")
    out = np.zeros((F.n_tokens(), D["d_model"]))
    if kind == "mlp_neuron":
        t, n = idx
        out[t] = get(f"activations.{layer}.mlp.post_act")[t, n] * w_mlp[n]
    elif kind == "attention_head":
        q, k, h = idx
        p = get(f"activations.{layer}.attn.qk_probs")[q, k, h]
        v = get(f"activations.{layer}.attn.v")[k, h]
        out[q] = p * v @ get(f"weights.{layer}.attn.to_residual")[h]
    else:
        t, i = idx
        which = {"autoencoder_latent": "mlp", "mlp_autoencoder_latent": "mlp",
                 "attention_autoencoder_latent": "attention"}[kind]
        latent_name = {"autoencoder_latent": "online_autoencoder_latent",
                       "mlp_autoencoder_latent": "online_mlp_autoencoder_latent",
                       "attention_autoencoder_latent": "online_attention_autoencoder_latent"}[kind]
        a = get(f"activations.{layer}.{latent_name}")[t, i]
        dec = get(f"autoencoders.{which}.{layer}.decoder_weight")[i]
        out[t] = a * (dec @ w_mlp if aes[which]["input"] == "mlp_post_act" else dec)
    return out


def run_all(model_for, store, rel=F.REL_TOL, expected_for=None):
    for c in CASES:
        expected = expected_for(c) if expected_for else T[c["expected"]]
        out = nw.node_write(model_for(c["autoencoders"]), store, F.node_of(c))
        F.assert_matches(out, expected, F.token_row(c), rel=rel)


# ------------------------------------------------------------------- numpy views


def test_reference_formulation_matches_fixture():
    # The float64 reference used below agrees with the original on every case.
    for c in CASES:
        ref = reference(c, lambda k: T[k].astype(np.float64))
        F.assert_matches(ref.astype(np.float32), T[c["expected"]], F.token_row(c))


@pytest.mark.parametrize("copy", [True, False])
def test_checkpoint_views_transposed(copy):
    """Weights given as views of the checkpoint tensors in TDB's layout: W.T and
    W.T.reshape(H, d_head, d_model), neither of which is contiguous."""
    models = {}
    for kind in ("none", "single", "multi"):
        model = F.make_model(kind)
        for layer in range(D["n_layers"]):
            mlp = T[f"checkpoint.xf_layers.{layer}.mlp.out_layer.weight"].T
            attn = T[f"checkpoint.xf_layers.{layer}.attn.out_proj.weight"].T.reshape(
                D["n_heads"], D["d_head"], D["d_model"])
            assert not mlp.flags.c_contiguous and not attn.flags.c_contiguous
            assert np.shares_memory(attn, T[f"checkpoint.xf_layers.{layer}.attn.out_proj.weight"])
            model.set_weight("mlp.to_residual", layer, mlp, copy=copy)
            model.set_weight("attn.to_residual", layer, attn, copy=copy)
        models[kind] = model
    run_all(models.__getitem__, F.make_store())


def test_negative_and_step_strides():
    def negative(a):
        rev = np.ascontiguousarray(a[::-1, ..., ::-1])
        view = rev[::-1, ..., ::-1]
        assert view.strides[0] < 0 and np.array_equal(view, a)
        return view

    def stepped(a):
        big = np.zeros((a.shape[0] * 2,) + a.shape[1:-1] + (a.shape[-1] + 5,), a.dtype)
        big[::2, ..., 3:3 + a.shape[-1]] = a
        view = big[::2, ..., 3:3 + a.shape[-1]]
        assert np.shares_memory(view, big) and not view.flags.c_contiguous
        return view

    for conv in (negative, stepped, np.asfortranarray):
        models = {k: F.make_model(k, convert=conv, copy=False) for k in ("none", "single", "multi")}
        run_all(models.__getitem__, F.make_store(convert=conv))


def test_float64_inputs():
    conv = lambda a: a.astype(np.float64)
    models = {k: F.make_model(k, convert=conv) for k in ("none", "single", "multi")}
    run_all(models.__getitem__, F.make_store(convert=conv))


# float16 / bfloat16 inputs: the port must equal the float64 reference computed from the same
# rounded values to the float32 tolerance. Against the original (float32 inputs) the stated looser
# tolerance comes from rounding each factor: relative 2**-11 (float16) or 2**-8 (bfloat16) per
# factor, up to three factors per term: 3 * 2**-11 ~ 1.5e-3 and 3 * 2**-8 ~ 1.2e-2, of
# max(1, max|orig|). Measured on the fixtures: 5.0e-4 (float16), 4.8e-3 (bfloat16).
F16_TOL_VS_ORIGINAL = 2e-3
BF16_TOL_VS_ORIGINAL = 1.6e-2


def test_float16_inputs():
    conv = lambda a: a.astype(np.float16)
    models = {k: F.make_model(k, convert=conv, copy=False) for k in ("none", "single", "multi")}
    store = F.make_store(convert=conv)
    rounded = lambda k: T[k].astype(np.float16).astype(np.float64)
    run_all(models.__getitem__, store, rel=F.REL_TOL,
            expected_for=lambda c: reference(c, rounded).astype(np.float32))
    run_all(models.__getitem__, store, rel=F16_TOL_VS_ORIGINAL)


def test_read_only_arrays_are_accepted():
    a = T["activations.0.mlp.post_act"]
    assert not a.flags.writeable
    store = nw.ActivationStore()
    store.put("mlp.post_act", 0, a)
    assert store.get("mlp.post_act", 0) is a


# ------------------------------------------------------------------ zero copy


def test_store_reads_in_place():
    model = F.make_model()
    store = F.make_store()
    act = np.array(T["activations.1.mlp.post_act"])  # writable copy owned by the test
    store.put("mlp.post_act", 1, act)
    assert store.get("mlp.post_act", 1) is act
    node = nw.NodeIndex("mlp_neuron", 1, (3, 105))
    deriver = nw.NodeWriteDeriver(model, node)
    before = deriver.derive(store)
    act[3, 105] *= 2.0  # change the array after put: the next derive must see it
    after = deriver.derive(store)
    assert np.array_equal(after, 2.0 * before) and np.any(before != 0)
    act[3, 105] = 0.0
    assert not np.any(nw.node_write(model, store, node))


def test_borrowed_weight_is_read_in_place_and_copied_one_is_not():
    store = F.make_store()
    node = nw.NodeIndex("attention_head", 0, (4, 1, 2))
    w = np.array(T["weights.0.attn.to_residual"])
    for copy in (False, True):
        model = F.make_model()
        model.set_weight("attn.to_residual", 0, w, copy=copy)
        before = nw.node_write(model, store, node)
        w *= 2.0
        after = nw.node_write(model, store, node)
        w /= 2.0
        if copy:
            assert np.array_equal(after, before)
        else:
            assert np.array_equal(after, 2.0 * before)


def test_borrowed_objects_live_as_long_as_they_are_used():
    node = nw.NodeIndex("mlp_neuron", 0, (5, 8))
    expected = T["expected.c000"]
    model = F.make_model()
    model.set_weight("mlp.to_residual", 0, np.array(T["weights.0.mlp.to_residual"]), copy=False)
    store = nw.ActivationStore()
    store.put("mlp.post_act", 0, np.array(T["activations.0.mlp.post_act"]))
    deriver = nw.NodeWriteDeriver(model, node)
    # Replace the model's weight: the deriver captured the old one and must keep it alive.
    model.set_weight("mlp.to_residual", 0, np.zeros((D["d_ff"], D["d_model"]), np.float32), copy=False)
    gc.collect()
    np.zeros(10**6, np.float32)  # reuse freed memory, if any was freed
    F.assert_matches(deriver.derive(store), expected, 5)
    assert not np.any(nw.node_write(model, store, node)), "the model uses the new weight"
    # The store and the model release what they borrowed when they go away.
    act = np.array(T["activations.0.mlp.post_act"])
    ref = weakref.ref(act)
    store.put("mlp.post_act", 0, act)
    del act
    gc.collect()
    assert ref() is not None
    del store
    gc.collect()
    assert ref() is None


def test_borrowed_numpy_array_cannot_be_resized_while_borrowed():
    # numpy refuses to reallocate an array others hold (refcheck, its default).
    act = np.array(T["activations.0.mlp.post_act"])
    store = nw.ActivationStore()
    store.put("mlp.post_act", 0, act)
    with pytest.raises(ValueError):
        act.resize((1,))
    store.clear()
    assert len(store) == 0
    gc.collect()
    act.resize((1,))  # released


# ------------------------------------------------------------------------ torch


def test_torch_is_not_imported():
    code = ("import sys, numpy as np, nodewrite as nw; m = nw.Model(1, 4, 1, 4, 4); "
            "m.set_weight('mlp.to_residual', 0, np.zeros((4, 4), np.float32)); "
            "s = nw.ActivationStore(); s.put('mlp.post_act', 0, np.ones((2, 4), np.float32)); "
            "nw.node_write(m, s, nw.NodeIndex('mlp_neuron', 0, (1, 1))); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_torch_tensors(dtype):
    torch = _torch()
    tdtype = getattr(torch, dtype)
    conv = lambda a: torch.from_numpy(np.array(a)).to(tdtype)
    models = {k: F.make_model(k, convert=conv, copy=False) for k in ("none", "single", "multi")}
    store = F.make_store(convert=conv)
    if dtype == "float32":
        run_all(models.__getitem__, store)
        return
    rounded = lambda k: conv(T[k]).to(torch.float64).numpy()
    run_all(models.__getitem__, store, rel=F.REL_TOL,
            expected_for=lambda c: reference(c, rounded).astype(np.float32))
    run_all(models.__getitem__, store,
            rel=F16_TOL_VS_ORIGINAL if dtype == "float16" else BF16_TOL_VS_ORIGINAL)


def test_torch_transposed_views_and_requires_grad():
    torch = _torch()
    models = {}
    for kind in ("none", "single", "multi"):
        model = F.make_model(kind)
        for layer in range(D["n_layers"]):
            mlp = torch.from_numpy(np.array(T[f"checkpoint.xf_layers.{layer}.mlp.out_layer.weight"]))
            attn = torch.from_numpy(np.array(T[f"checkpoint.xf_layers.{layer}.attn.out_proj.weight"]))
            mlp.requires_grad_(True)
            attn_view = attn.T.unflatten(0, (D["n_heads"], D["d_head"]))
            assert not attn_view.is_contiguous() and attn_view.data_ptr() == attn.data_ptr()
            model.set_weight("mlp.to_residual", layer, mlp.T, copy=False)
            model.set_weight("attn.to_residual", layer, attn_view, copy=False)
        models[kind] = model
    run_all(models.__getitem__, F.make_store(convert=lambda a: torch.from_numpy(np.array(a))))


def test_torch_zero_copy():
    torch = _torch()
    model = F.make_model()
    store = F.make_store()
    probs = torch.from_numpy(np.array(T["activations.2.attn.qk_probs"]))
    store.put("attn.qk_probs", 2, probs)
    node = nw.NodeIndex("attention_head", 2, (5, 4, 0))
    before = nw.node_write(model, store, node)
    probs.mul_(2.0)
    after = nw.node_write(model, store, node)
    assert np.array_equal(after, 2.0 * before) and np.any(before != 0)


def test_torch_non_cpu_and_unsupported_dtypes_are_value_errors():
    torch = _torch()
    store = nw.ActivationStore()
    meta = torch.empty((7, 192), device="meta")
    with pytest.raises(ValueError) as info:
        store.put("mlp.post_act", 0, meta)
    assert isinstance(info.value, nw.NodeWriteError)
    for dt in (torch.int32, torch.int64, torch.bool, torch.complex64, torch.uint8):
        with pytest.raises(ValueError):
            store.put("mlp.post_act", 0, torch.zeros((7, 192), dtype=dt))
    assert len(store) == 0


def test_no_reference_leaks():
    """Every path that takes an array (success, failure, replace, remove, copy) gives back
    every reference it took: sys.getrefcount of the array is unchanged afterwards."""
    w = np.array(T["weights.0.mlp.to_residual"])
    act = np.array(T["activations.0.mlp.post_act"])
    bad = np.zeros((3,), np.float32)
    node = nw.NodeIndex("mlp_neuron", 0, (5, 8))
    counts = (sys.getrefcount(w), sys.getrefcount(act), sys.getrefcount(bad), sys.getrefcount(node))
    for _ in range(50):
        model = nw.Model(**D)
        model.set_weight("mlp.to_residual", 0, w)             # copy
        model.set_weight("mlp.to_residual", 0, w, copy=False)  # borrow
        model.set_weight("mlp.to_residual", 0, w, copy=False)  # replace
        with pytest.raises(ValueError):
            model.set_weight("mlp.to_residual", 0, bad, copy=False)
        with pytest.raises(IndexError):
            model.set_weight("mlp.to_residual", 99, w, copy=False)
        store = nw.ActivationStore()
        store.put("mlp.post_act", 0, act)
        store.put("mlp.post_act", 0, act)
        with pytest.raises(ValueError):
            store.put("mlp.post_act", 0, bad)
        deriver = nw.NodeWriteDeriver(model, node)
        deriver.derive(store)
        deriver.derive_vector(store)
        nw.node_write(model, store, node)
        nw.node_write_vectors(model, store, [node, node])
        with pytest.raises(IndexError):
            nw.node_write(model, store, nw.NodeIndex("mlp_neuron", 0, (99, 8)))
        store.remove("mlp.post_act", 0)
        with pytest.raises(KeyError):
            deriver.derive(store)
        del deriver, store, model
    gc.collect()
    assert (sys.getrefcount(w), sys.getrefcount(act), sys.getrefcount(bad), sys.getrefcount(node)) == counts


def test_torch_borrow_released():
    torch = _torch()
    t = torch.from_numpy(np.array(T["activations.0.mlp.post_act"]))
    t.requires_grad_(True)  # exported through a detached view
    ref = weakref.ref(t)
    base = t.untyped_storage().data_ptr()
    store = nw.ActivationStore()
    store.put("mlp.post_act", 0, t)
    assert store.get("mlp.post_act", 0) is t
    before = nw.node_write(F.make_model(), store, nw.NodeIndex("mlp_neuron", 0, (5, 8)))
    F.assert_matches(before, T["expected.c000"], 5)
    del t
    gc.collect()
    assert ref() is not None
    del store
    gc.collect()
    assert ref() is None and base != 0
