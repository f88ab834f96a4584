"""nodewrite.tdb's write-family drop-in (nodewrite.tdb.write_family, token_writes) inside transformer-debugger's own
pipeline: every patched derived scalar through ``make_scalar_deriver(dst, DstConfig(...))
.derive_from_raw(raw_store, PassType.FORWARD)``, single_node_write_to_final_residual_grad, and
TokenWriteConverter, each against the original (unpatched) on the same inputs; and
install()/uninstall() round-trips. Needs NODEWRITE_TDB_SRC (see test_tdb_dropin.py); without
TDB every test skips with one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tdb_support  # noqa: E402

REASON = tdb_support.tdb_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

import nodewrite as nw  # noqa: E402

N_LAYERS, D_MODEL, N_HEADS, D_HEAD, D_FF, N_VOCAB, T = 2, 16, 2, 8, 32, 23, 6
N_LAT = {"mlp": 20, "attention": 12}
LAYER = 1
SHAPE = dict(n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_ff=D_FF, n_vocab=N_VOCAB, T=T,
             n_lat=N_LAT)
# Another shape: odd sizes everywhere, heads * d_head != d_model, more latents than d_ff.
ODD_SHAPE = dict(n_layers=3, d_model=21, n_heads=3, d_head=5, d_ff=19, n_vocab=37, T=11,
                 n_lat={"mlp": 29, "attention": 7})


class World:
    """A tiny random model served by TDB's own classes: model context (output weights, the
    unembedding and the final gain, as StandardModelContext serves them), an MLP autoencoder
    (on mlp_post_act) and an attention one (on resid_delta_attn), and a RawActivationStore with
    every activation the family reads at every layer and the final residual grad."""

    def __init__(self, dense_grad: bool, seed: int = 0, shape: dict = SHAPE) -> None:
        import torch
        from neuron_explainer.models.model_component_registry import WeightLocationType

        N_LAYERS, D_MODEL, N_HEADS, D_HEAD, D_FF, N_VOCAB, T, N_LAT = (
            shape[k] for k in ("n_layers", "d_model", "n_heads", "d_head", "d_ff", "n_vocab", "T", "n_lat"))
        g = torch.Generator().manual_seed(seed)
        ckpt = {}
        for layer in range(N_LAYERS):
            ckpt[f"xf_layers.{layer}.attn.out_proj.weight"] = torch.randn(D_MODEL, N_HEADS * D_HEAD, generator=g)
            ckpt[f"xf_layers.{layer}.mlp.out_layer.weight"] = torch.randn(D_MODEL, D_FF, generator=g)
        ckpt["unembed.weight"] = torch.randn(N_VOCAB, D_MODEL, generator=g)
        ckpt["final_ln.weight"] = 1.0 + 0.1 * torch.randn(D_MODEL, generator=g)
        base = tdb_support.make_model_context(ckpt, n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS,
                                              d_head=D_HEAD, d_ff=D_FF, n_vocab=N_VOCAB)

        class WithUnembedding(type(base)):
            def _get_weight_helper(self, location_type, layer=None, device=None):
                if location_type == WeightLocationType.UNEMBEDDING:
                    return torch.einsum("vr->rv", self.pieces["unembed.weight"].to(device or self.device))
                if location_type == WeightLocationType.LAYER_NORM_GAIN_FINAL:
                    return self.pieces["final_ln.weight"].to(device or self.device)
                return super()._get_weight_helper(location_type, layer, device)

        self.model_context = WithUnembedding()
        self.model_context.pieces = base.pieces
        self.ae = {}
        for kind, d_in, dst in (("mlp", D_FF, "mlp_post_act"), ("attention", D_MODEL, "resid_delta_attn")):
            states = {
                layer: {"encoder.weight": torch.randn(N_LAT[kind], d_in, generator=g),
                        "decoder.weight": torch.randn(d_in, N_LAT[kind], generator=g)}
                for layer in range(N_LAYERS)
            }
            self.ae[kind] = tdb_support.make_autoencoder_context(dst, states)
        acts = {}
        for layer in range(N_LAYERS):
            logits = torch.randn(N_HEADS, T, T, generator=g)
            causal = torch.ones(T, T, dtype=torch.bool).tril()
            p = torch.softmax(logits.masked_fill(~causal, float("-inf")), dim=-1).permute(1, 2, 0).contiguous()
            v = torch.randn(T, N_HEADS, D_HEAD, generator=g)
            acts[("attn.qk_probs", layer)] = p
            acts[("attn.v", layer)] = v
            acts[("attn.v_out", layer)] = torch.einsum("qkh,khd->qhd", p, v)
            acts[("mlp.post_act", layer)] = torch.nn.functional.gelu(torch.randn(T, D_FF, generator=g))
            acts[("resid.delta_mlp", layer)] = torch.randn(T, D_MODEL, generator=g)
            acts[("resid.delta_attn", layer)] = torch.randn(T, D_MODEL, generator=g)
            acts[("online_autoencoder_latent", layer)] = torch.relu(torch.randn(T, N_LAT["mlp"], generator=g))
            acts[("online_mlp_autoencoder_latent", layer)] = torch.relu(torch.randn(T, N_LAT["mlp"], generator=g))
            acts[("online_attention_autoencoder_latent", layer)] = torch.relu(torch.randn(T, N_LAT["attention"], generator=g))
        grad = torch.randn(T, D_MODEL, generator=g)
        if not dense_grad:
            grad[:-1] = 0
        acts[("resid.post_mlp", N_LAYERS - 1, "backward")] = grad
        self.acts = acts
        self.raw_store = tdb_support.make_raw_store(acts)

    def config(self, autoencoders: str = "multi", layer_indices=None, node=None):
        from neuron_explainer.activations.derived_scalars.scalar_deriver import DstConfig
        from neuron_explainer.models.autoencoder_context import MultiAutoencoderContext

        kwargs = {}
        if autoencoders == "multi":
            kwargs["multi_autoencoder_context"] = MultiAutoencoderContext.from_autoencoder_context_list(
                [self.ae["mlp"], self.ae["attention"]])
        elif autoencoders in ("mlp", "attention"):
            kwargs["autoencoder_context"] = self.ae[autoencoders]
        if node is not None:
            kwargs["node_index_for_attribution"] = node
        return DstConfig(model_context=self.model_context, layer_indices=layer_indices, **kwargs)


@pytest.fixture(scope="module", params=["last_row", "dense"])
def world(request):
    return World(dense_grad=request.param == "dense")


@pytest.fixture(scope="module", autouse=True)
def _release_worlds():
    """Lets this module's model contexts go (and nodewrite.tdb's cache entries with them) before
    the next test module, whose cache tests count entries."""
    yield
    import gc

    import nodewrite.tdb as ntdb

    ntdb.uninstall()
    gc.collect()
    ntdb.clear_cache()


@pytest.fixture()
def ntdb():
    import nodewrite.tdb as ntdb

    ntdb.uninstall()
    yield ntdb
    ntdb.uninstall()


def _run(dst_value, cfg, store):
    """{layer: tensor} or the exception, through TDB's own pipeline."""
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.activations.derived_scalars.make_scalar_derivers import make_scalar_deriver
    from neuron_explainer.models.model_component_registry import PassType

    try:
        d = make_scalar_deriver(DerivedScalarType(dst_value), cfg)
        return dict(d.derive_from_raw(store, PassType.FORWARD).activations_by_layer_index), None
    except Exception as e:  # noqa: BLE001 - the type is compared
        return None, e


def _same(orig, port, what):
    import torch

    assert port.shape == orig.shape, what
    assert port.dtype == orig.dtype and port.device == orig.device, what
    o = orig.detach().double()
    scale = max(1.0, float(o.abs().max()))
    assert float((port.detach().double() - o).abs().max()) <= 1e-5 * scale, what
    assert torch.all(port[orig == 0] == 0), f"{what}: not exactly zero where the original is"


#: The write family: the values of nodewrite.DSTS with a quantity (norm or projection); the edge
#: DSTs it also lists are tested by test_tdb_edges.py.
WRITE_FAMILY = tuple(d for d in nw.DSTS if nw.dst_info(d).quantity in ("norm", "projection"))


def _autoencoders_for(dst):
    return "mlp" if dst.startswith("online_autoencoder") else "multi"


@pytest.mark.parametrize("dst", WRITE_FAMILY)
@pytest.mark.parametrize("layers", [None, [LAYER]])
def test_dst_in_tdb_pipeline_matches_original(dst, layers, world, ntdb):
    cfg = world.config(_autoencoders_for(dst), layer_indices=layers)
    want, want_exc = _run(dst, cfg, world.raw_store)
    ntdb.install()
    before = dict(ntdb.stats)
    got, got_exc = _run(dst, cfg, world.raw_store)
    if want_exc is not None:
        assert type(got_exc) is type(want_exc), (want_exc, got_exc)
        return
    assert got_exc is None, got_exc
    assert set(got) == set(want)
    for layer in want:
        _same(want[layer], got[layer], f"{dst} layer {layer}")
    served = {k: ntdb.stats[k] - before[k] for k in before}
    if dst.endswith("per_sequence_token"):
        assert served["torch"] >= 1
    else:
        assert served["native"] >= 1 and served["torch"] == 0, served


@pytest.fixture(scope="module", params=["last_row", "dense"])
def odd_world(request):
    return World(dense_grad=request.param == "dense", seed=3, shape=ODD_SHAPE)


@pytest.mark.parametrize("dst", WRITE_FAMILY)
def test_dst_in_tdb_pipeline_matches_original_at_another_shape(dst, odd_world, ntdb):
    cfg = odd_world.config(_autoencoders_for(dst))
    want, want_exc = _run(dst, cfg, odd_world.raw_store)
    ntdb.install()
    got, got_exc = _run(dst, cfg, odd_world.raw_store)
    if want_exc is not None:
        assert type(got_exc) is type(want_exc), (want_exc, got_exc)
        return
    assert got_exc is None, got_exc
    assert want and set(got) == set(want)
    for layer in want:
        _same(want[layer], got[layer], f"{dst} layer {layer}")


@pytest.mark.parametrize("dst", ["online_autoencoder_write_norm", "online_autoencoder_write_to_final_residual_grad"])
def test_generic_autoencoder_dsts_raise_like_the_original_with_both(dst, world, ntdb):
    cfg = world.config("multi")
    _, want = _run(dst, cfg, world.raw_store)
    ntdb.install()
    _, got = _run(dst, cfg, world.raw_store)
    assert want is not None and type(got) is type(want)


def test_fallback_float64_gives_the_original(world, ntdb):
    import torch

    acts = {k: (v.double() if k[0] != "resid.post_mlp" else v.double()) for k, v in world.acts.items()}
    store = tdb_support.make_raw_store(acts)
    for dst in ("mlp_write_to_final_residual_grad", "unflattened_attn_write_norm", "attn_write_to_final_residual_grad",
                "attn_layer_write_norm"):
        cfg = world.config("multi")
        want, want_exc = _run(dst, cfg, store)
        ntdb.install()
        got, got_exc = _run(dst, cfg, store)
        ntdb.uninstall()
        if want_exc is not None:
            assert type(got_exc) is type(want_exc)
            continue
        for layer in want:
            assert got[layer].shape == want[layer].shape
            torch.testing.assert_close(got[layer].double(), want[layer].double(), rtol=1e-6, atol=1e-6)


def _node(node_type, layer, indices):
    from neuron_explainer.activations.derived_scalars.indexing import NodeIndex
    from neuron_explainer.models.model_component_registry import NodeType, PassType

    return NodeIndex(node_type=NodeType(node_type), tensor_indices=indices, layer_index=layer, pass_type=PassType.FORWARD)


NODES = [("mlp_neuron", (T - 1, 3)), ("attention_head", (T - 1, 2, 1)), ("attention_head", (2, 2, 0)),
         ("mlp_autoencoder_latent", (T - 1, 4)), ("attention_autoencoder_latent", (1, 5))]


@pytest.mark.parametrize("node_type,indices", NODES)
def test_single_node_write_to_final_residual_grad(node_type, indices, world, ntdb):
    own = {"mlp_autoencoder_latent": "mlp", "attention_autoencoder_latent": "attention"}.get(node_type, "none")
    node = _node(node_type, LAYER, indices)
    want, want_exc = _run("single_node_write_to_final_residual_grad", world.config(own, node=node), world.raw_store)
    assert want_exc is None, want_exc
    _, multi_exc = _run("single_node_write_to_final_residual_grad", world.config("multi", node=node), world.raw_store)
    ntdb.install()
    got, got_exc = _run("single_node_write_to_final_residual_grad", world.config(own, node=node), world.raw_store)
    assert got_exc is None, got_exc
    _same(want[LAYER], got[LAYER], f"{node_type} {indices}")
    got, got_exc = _run("single_node_write_to_final_residual_grad", world.config("multi", node=node), world.raw_store)
    assert got_exc is None, (got_exc, "the original's exception with both loaded:", multi_exc)
    _same(want[LAYER], got[LAYER], f"{node_type} {indices} with both autoencoders")
    bad = _node(node_type, LAYER, (T,) + tuple(indices[1:]))
    _, want_exc = _run("single_node_write_to_final_residual_grad", world.config(own, node=bad), world.raw_store)
    _, got_exc = _run("single_node_write_to_final_residual_grad", world.config(own, node=bad), world.raw_store)
    assert type(got_exc) is type(want_exc)


def test_token_write_converter(world, ntdb):
    import torch
    from neuron_explainer.activations.derived_scalars import postprocessing

    original_cls = postprocessing.TokenWriteConverter
    cfg_multi = world.config("multi")
    orig = original_cls(world.model_context, cfg_multi.multi_autoencoder_context)
    ntdb.install()
    patched_cls = postprocessing.TokenWriteConverter
    assert patched_cls is not original_cls and issubclass(patched_cls, original_cls)
    port = patched_cls(world.model_context, cfg_multi.multi_autoencoder_context)
    assert "_unemb_with_ln_gain" not in vars(port)  # no (d_model, n_vocab) copy made
    cases = [("mlp_neuron", (T - 1, 3), ("mlp.post_act", LAYER)),
             ("mlp_autoencoder_latent", (2, 4), ("online_mlp_autoencoder_latent", LAYER)),
             ("attention_autoencoder_latent", (1, 5), ("online_attention_autoencoder_latent", LAYER))]
    for node_type, idx, key in cases:
        node = _node(node_type, LAYER, idx)
        ds_index = orig.convert_node_index_to_ds_index(node)
        assert port.convert_node_index_to_ds_index(node) == ds_index
        want = orig.postprocess_tensor(ds_index, world.acts[key][idx])
        got = port.postprocess_tensor(ds_index, world.acts[key][idx])
        assert got.shape == want.shape == (N_VOCAB,) and got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * max(1.0, float(want.abs().max())))
    torch.testing.assert_close(port._unemb_with_ln_gain, orig._unemb_with_ln_gain)
    ntdb.uninstall()
    assert postprocessing.TokenWriteConverter is original_cls


def test_install_uninstall_round_trip(ntdb):
    import importlib

    from neuron_explainer.activations.derived_scalars import make_scalar_derivers as msd
    from neuron_explainer.activations.derived_scalars import postprocessing

    ea = importlib.import_module("neuron_explainer.activations.derived_scalars.edge_attribution")
    registry = msd._DERIVED_SCALAR_TYPE_REGISTRY
    before = dict(registry)
    names = {m: dict(vars(sys.modules[m])) for m in sys.modules if m.startswith("neuron_explainer") and sys.modules[m]}
    ntdb.install()
    ntdb.install()  # idempotent
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType

    from nodewrite.tdb import edges

    for value in list(WRITE_FAMILY) + ["single_node_write_to_final_residual_grad", *edges.FACTORIES]:
        assert getattr(registry[DerivedScalarType(value)], "_nodewrite_dropin", False), value
    assert getattr(postprocessing.TokenWriteConverter, "_nodewrite_dropin", False)
    assert getattr(ea.make_node_write_to_final_residual_grad_scalar_deriver, "_nodewrite_dropin", False)
    ntdb.uninstall()
    assert registry == before and all(registry[k] is before[k] for k in before)
    for m, d in names.items():
        now = vars(sys.modules[m])
        for attr, value in d.items():
            assert now.get(attr) is value, (m, attr)
