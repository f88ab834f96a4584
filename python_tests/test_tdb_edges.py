"""The edge drop-in (nodewrite.tdb.edges) inside TDB: for every in-edge, gradient, out-edge and
attention-to-latent case of tdb_edges.* whose DST the drop-in replaces, TDB's own ``make_scalar_deriver(dst, DstConfig(...)).derive_from_raw(store,
FORWARD)`` with the drop-in installed equals TDB's result without it (run live, on a TDB
Transformer holding the fixture's weights) and the fixture's recorded output, within 1e-5 *
max(1, max|original|), exact zeros where the original's are; where the original raises, the
drop-in raises the same exception. Both paths: "native" (the library first, as installed; every
output layer served by it, per ``stats``) and "torch" (nodewrite.tdb.edges.force_torch; TDB's own
function for edges.LIBRARY_ONLY_DSTS, which have no torch path)."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest

from tdb_support import make_autoencoder_context, make_raw_store, read_safetensors, tdb_unavailable_reason

_reason = tdb_unavailable_reason()
if _reason:
    pytest.skip(_reason, allow_module_level=True)

import torch  # noqa: E402

import nodewrite.tdb  # noqa: E402
from nodewrite.tdb import edges  # noqa: E402
from nw_fixtures import FIXTURES, REL_TOL  # noqa: E402

MANIFEST = json.load(open(os.path.join(FIXTURES, "tdb_edges.json")))
TENSORS = read_safetensors(os.path.join(FIXTURES, "tdb_edges.safetensors"))
MODEL = MANIFEST["model"]
CASES = [c for c in MANIFEST["cases"] if c["dst"] in edges.FACTORIES]
#: The DSTs the native path serves (nodewrite.derive from TDB's raw store).
NATIVE_DSTS = edges.FACTORIES


def _t(name):
    return torch.from_numpy(np.array(TENSORS[name]))


class World:
    """TDB objects holding the fixture: a StandardModelContext on a checkpoint written by TDB's
    own Transformer with the fixture's weights, the two autoencoder contexts, one
    RawActivationStore (forward and backward) per fixture store."""

    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def __init__(self):
        from neuron_explainer.models.transformer import Transformer, TransformerConfig

        from nodewrite.tdb.local import BYTE_ENCODING, LocalModelContext, register_byte_encoding

        register_byte_encoding()
        L, D, H = MODEL["n_layers"], MODEL["d_model"], MODEL["n_heads"]
        cfg = TransformerConfig(enc=BYTE_ENCODING, ctx_window=32, d_model=D, n_layers=L, n_heads=H)
        tr = Transformer(cfg, device=torch.device("cpu"))
        with torch.no_grad():
            for p in tr.parameters():
                p.zero_()
            for l in range(L):
                b, w = tr.xf_layers[l], (lambda n, l=l: _t(f"weights.{l}.{n}"))
                b.ln_1.weight.copy_(w("ln_1.gain")); b.ln_1.bias.copy_(w("ln_1.bias"))
                b.ln_2.weight.copy_(w("ln_2.gain")); b.ln_2.bias.copy_(w("ln_2.bias"))
                for proj, name, bias in ((b.attn.q_proj, "to_query", "query_bias"), (b.attn.k_proj, "to_key", "key_bias"),
                                         (b.attn.v_proj, "to_value", "value_bias")):
                    proj.weight.copy_(w(f"attn.{name}").permute(0, 2, 1).reshape(-1, D))  # (H*dh, D)
                    proj.bias.copy_(w(f"attn.{bias}").reshape(-1))
                b.attn.out_proj.weight.copy_(w("attn.to_residual").reshape(-1, D).T)
                b.attn.out_proj.bias.copy_(w("attn.out_bias"))
                b.mlp.in_layer.weight.copy_(w("mlp.to_hidden").T); b.mlp.in_layer.bias.copy_(w("mlp.in_bias"))
                b.mlp.out_layer.weight.copy_(w("mlp.to_residual").T); b.mlp.out_layer.bias.copy_(w("mlp.out_bias"))
        self.dir = tempfile.mkdtemp(prefix="nodewrite-tdb-edges-")
        tr.save_checkpoint(self.dir)
        self.model_context = LocalModelContext(self.dir)
        self.ae = {}
        for which in ("mlp", "attention"):
            spec = MANIFEST["autoencoders"][which]
            states = {}
            for l in range(L):
                a = f"autoencoders.{which}.{l}"
                states[l] = {"encoder.weight": _t(f"{a}.encoder_weight"), "decoder.weight": _t(f"{a}.decoder_weight").T.contiguous(),
                             "pre_bias": _t(f"{a}.pre_bias"), "latent_bias": _t(f"{a}.latent_bias")}
            self.ae[which] = make_autoencoder_context(spec["input"], states)
        self.stores, self.acts = {}, {}
        for store in ("none", "mlp", "attn", "both"):
            acts = {}
            prefix = f"activations.{store}."
            for k in TENSORS:
                if k.startswith(prefix):
                    parts = k[len(prefix):].split(".")
                    layer = int(parts.pop()) if parts[-1].isdigit() else None
                    pass_ = parts.pop()
                    acts[(".".join(parts), layer, pass_)] = _t(k)
            self.stores[store] = make_raw_store(acts)
            self.acts[store] = acts

    def dst_config(self, case):
        from neuron_explainer.activations.derived_scalars.indexing import AttnSubNodeIndex, NodeIndex
        from neuron_explainer.activations.derived_scalars.scalar_deriver import DstConfig
        from neuron_explainer.models.autoencoder_context import MultiAutoencoderContext
        from neuron_explainer.models.model_component_registry import ActivationLocationType, NodeType, PassType

        if case["group"] == "to_latent":
            return self._to_latent_config(case)
        if case["group"] == "act_times_grad":
            which = {"none": [], "mlp": ["mlp"], "attn": ["attention"], "both": ["mlp", "attention"]}[case["store"]]
            multi = MultiAutoencoderContext.from_autoencoder_context_list([self.ae[w] for w in which]) if which else None
            return DstConfig(model_context=self.model_context, multi_autoencoder_context=multi)
        n = case["node"]
        kw = dict(node_type=NodeType(n["node_type"]), layer_index=n["layer"], tensor_indices=tuple(n["tensor_indices"]),
                  pass_type=PassType.FORWARD)
        if "subnode" in n:
            node = AttnSubNodeIndex(**kw, q_k_or_v=ActivationLocationType(f"attn.{n['subnode']}"))
        else:
            node = NodeIndex(**kw)
        ctx = {}
        own = case.get("own")
        if own:
            ctx["autoencoder_context"] = self.ae["mlp" if own == "mlp" else "attention"]
        elif case["store"] != "none":
            which = {"mlp": ["mlp"], "attn": ["attention"], "both": ["mlp", "attention"]}[case["store"]]
            ctx["multi_autoencoder_context"] = MultiAutoencoderContext.from_autoencoder_context_list([self.ae[w] for w in which])
        return DstConfig(model_context=self.model_context, node_index_for_attribution=node,
                         detach_layer_norm_scale_for_attribution=case.get("detach", False), **ctx)


def _to_latent_config(self, case):
    from neuron_explainer.activations.derived_scalars.indexing import NodeIndex, PreOrPostAct, TraceConfig
    from neuron_explainer.activations.derived_scalars.scalar_deriver import DstConfig
    from neuron_explainer.models.autoencoder_context import MultiAutoencoderContext
    from neuron_explainer.models.model_component_registry import NodeType, PassType

    kw = {}
    if "trace_latent" in case:
        n = case["trace_latent"]
        node = NodeIndex(node_type=NodeType(n["node_type"]), layer_index=n["layer"],
                         tensor_indices=tuple(n["tensor_indices"]), pass_type=PassType.FORWARD)
        kw["trace_config"] = TraceConfig(node_index=node, pre_or_post_act=PreOrPostAct.POST, detach_layer_norm_scale=False)
    which = {"attn": ["attention"], "both": ["mlp", "attention"]}[case["store"]]
    return DstConfig(model_context=self.model_context, layer_indices=case["layer_indices"],
                     multi_autoencoder_context=MultiAutoencoderContext.from_autoencoder_context_list([self.ae[w] for w in which]),
                     **kw)


World._to_latent_config = _to_latent_config


def _derive(case):
    """{layer: numpy} or the exception TDB's pipeline raised."""
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.activations.derived_scalars.make_scalar_derivers import make_scalar_deriver
    from neuron_explainer.models.model_component_registry import PassType

    world = World.get()
    try:
        deriver = make_scalar_deriver(DerivedScalarType(case["dst"]), world.dst_config(case))
        out = deriver.derive_from_raw(world.stores[case["store"]], PassType.FORWARD)
    except Exception as e:  # noqa: BLE001 - compared with the original's
        return e
    return {("none" if k is None else str(k)): v.detach().numpy() for k, v in out.activations_by_layer_index.items()}


def _close(got, want, what):
    assert got.shape == want.shape, (what, got.shape, want.shape)
    tol = REL_TOL * max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    err = float(np.abs(got - want).max()) if want.size else 0.0
    assert err <= tol, f"{what}: max |drop-in - TDB| = {err:.3g} > {tol:.3g}"
    zeros = want == 0
    assert np.all(got[zeros] == 0), f"{what}: {int(np.sum(got[zeros] != 0))} entries not exactly 0 where TDB's are"


@pytest.fixture(params=["native", "torch"])
def path(request, monkeypatch):
    monkeypatch.setattr(edges, "force_torch", request.param == "torch")
    return request.param


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['dst']}" for c in CASES])
def test_installed_equals_original(case, path):
    nodewrite.tdb.uninstall()
    original = _derive(case)
    nodewrite.tdb.install()
    try:
        before = dict(nodewrite.tdb.stats)
        got = _derive(case)
        after = dict(nodewrite.tdb.stats)
    finally:
        nodewrite.tdb.uninstall()
    if "error" in case:
        assert isinstance(original, Exception) and type(original).__name__ == case["error"], original
        assert type(got) is type(original), (got, original)
        return
    assert not isinstance(original, Exception), original
    assert not isinstance(got, Exception), got
    assert set(got) == set(original) == set(case["expected"])
    for layer, name in case["expected"].items():
        recorded = np.array(TENSORS[name])
        _close(original[layer], recorded, f"layer {layer}: TDB live vs recorded")  # the world is the fixture's
        _close(got[layer], original[layer], f"layer {layer}")
    # the drop-in computed it (no jvp / backward of TDB's ran): the library (nodewrite.derive) on
    # the native path for the in-edges, gradients and out-edges; torch only on the forced path
    if path == "torch" and case["dst"] in edges.LIBRARY_ONLY_DSTS:  # no torch path: TDB's own function
        assert after["original"] > before["original"], (before, after)
        return
    assert after["torch"] + after["native"] > before["torch"] + before["native"]
    assert after["original"] == before["original"]
    if path == "torch":  # (the write source of an in-edge, a single-node write, may still be native)
        assert after["torch"] > before["torch"]
    elif case["dst"] in NATIVE_DSTS:
        # every output layer by the library, read from TDB's raw store: nothing in torch (not
        # even an out-edge's direction or an in-edge's write source, which are not derived)
        assert after["native"] - before["native"] == len(case["expected"]), (before, after)
        assert after["torch"] == before["torch"], (before, after)


def test_factories_replaced_and_restored():
    from neuron_explainer.activations.derived_scalars import make_scalar_derivers as msd
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType

    keys = [DerivedScalarType(d) for d in edges.FACTORIES]
    before = {k: msd._DERIVED_SCALAR_TYPE_REGISTRY[k] for k in keys}
    nodewrite.tdb.install()
    try:
        for k in keys:
            assert getattr(msd._DERIVED_SCALAR_TYPE_REGISTRY[k], "_nodewrite_dropin", False), k
    finally:
        nodewrite.tdb.uninstall()
    assert all(msd._DERIVED_SCALAR_TYPE_REGISTRY[k] is before[k] for k in keys)


def test_in_edge_of_a_dense_write_is_the_sum_over_rows():
    """The drop-in's in-edge is linear in the write: a write on two rows gives the sum of the
    one-row in-edges (TDB's jvp agrees: checked against the original on the same inputs)."""
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.activations.derived_scalars.make_scalar_derivers import make_scalar_deriver
    from neuron_explainer.models.model_component_registry import PassType

    world = World.get()
    case = next(c for c in CASES if c["dst"] == "attn_key_in_edge_attribution" and c["store"] == "none" and "error" not in c)
    store = world.stores["none"]
    g = torch.Generator().manual_seed(0)
    write = torch.zeros(MODEL["n_tokens"], MODEL["d_model"])
    write[1] = torch.randn(MODEL["d_model"], generator=g)
    write[4] = torch.randn(MODEL["d_model"], generator=g)
    outs = []
    for installed in (False, True):
        (nodewrite.tdb.install if installed else nodewrite.tdb.uninstall)()
        try:
            d = make_scalar_deriver(DerivedScalarType(case["dst"]), world.dst_config(case))
            resid_src, grad_src, _ = d.sub_scalar_sources
            layer = 2
            resid = resid_src.derive_from_raw(store, [layer]).activations_by_layer_index[layer]
            grad = grad_src.derive_from_raw(store, [layer]).activations_by_layer_index[layer]
            outs.append(d.tensor_calculate_derived_scalar_fn((resid, grad, write), layer, PassType.FORWARD).detach().numpy())
        finally:
            nodewrite.tdb.uninstall()
    _close(outs[1], outs[0], "dense write")


def _derive_on(case, store, installed):
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.activations.derived_scalars.make_scalar_derivers import make_scalar_deriver
    from neuron_explainer.models.model_component_registry import PassType

    (nodewrite.tdb.install if installed else nodewrite.tdb.uninstall)()
    try:
        d = make_scalar_deriver(DerivedScalarType(case["dst"]), World.get().dst_config(case))
        out = d.derive_from_raw(store, PassType.FORWARD).activations_by_layer_index
    finally:
        nodewrite.tdb.uninstall()
    return {k: v.detach().numpy().copy() for k, v in out.items()}


def _case(dst, store="none"):
    """The first plain case of dst with a non-zero layer."""
    return next(c for c in CASES if c["dst"] == dst and c["store"] == store and "error" not in c
                and not c.get("detach") and c["nonzero_layers"])


def _fresh_store(store="none"):
    """A RawActivationStore of its own (cloned tensors), and its tensors by key."""
    acts = {k: v.clone() for k, v in World.get().acts[store].items()}
    return make_raw_store(acts), acts


@pytest.mark.parametrize("dst, name, pass_", [
    ("attn_value_in_edge_attribution", "attn.v_out", "backward"),  # a loss gradient
    ("mlp_in_edge_attribution", "resid.post_attn", "forward"),  # the residual stream
    ("attn_out_edge_attribution", "attn.v", "forward"),  # an upstream activation
])
def test_cached_store_sees_in_place_changes(dst, name, pass_):
    """The nodewrite store kept per RawActivationStore serves a tensor changed in place (add_)
    between two calls with the new values (TDB's answer on the changed store), never the old ones;
    an unchanged store is not put again."""
    from nodewrite.tdb import native_store

    case = _case(dst)
    key = (name, int(case["nonzero_layers"][-1]), pass_)
    raw, acts = _fresh_store()
    first = _derive_on(case, raw, True)
    puts = native_store.puts
    again = _derive_on(case, raw, True)
    assert native_store.puts == puts, "an unchanged store was put again"
    for layer in first:
        np.testing.assert_array_equal(again[layer], first[layer])
    with torch.no_grad():
        acts[key].add_(0.25 * torch.randn(acts[key].shape, generator=torch.Generator().manual_seed(1)))
    before = dict(nodewrite.tdb.stats)
    got = _derive_on(case, raw, True)
    assert nodewrite.tdb.stats["native"] > before["native"] and nodewrite.tdb.stats["torch"] == before["torch"]
    assert native_store.puts == puts + 1, "only the changed entry is put again"
    want = _derive_on(case, raw, False)
    assert any(not np.array_equal(want[layer], first[layer]) for layer in want), "the change moved nothing"
    for layer in want:
        _close(got[layer], want[layer], f"layer {layer} after add_")


def test_cached_store_rescans_a_changed_pattern():
    """attn.qk_probs changed in place to put probability above the diagonal: the store puts it
    again (a new causality scan), the library refuses it, and the call falls back to torch
    (TDB's formula) instead of trusting the old scan."""
    case = _case("attn_out_edge_attribution")
    raw, acts = _fresh_store()
    _derive_on(case, raw, True)
    with torch.no_grad():
        acts[("attn.qk_probs", int(case["nonzero_layers"][0]), "forward")][0, 1, 0] += 0.5
    before = dict(nodewrite.tdb.stats)
    got = _derive_on(case, raw, True)
    assert nodewrite.tdb.stats["torch"] > before["torch"], "served natively from a stale scan"
    want = _derive_on(case, raw, False)
    for layer in want:
        _close(got[layer], want[layer], f"layer {layer}")


def test_cached_store_goes_with_its_raw_store():
    import gc

    from nodewrite.tdb import native_store

    raw, _ = _fresh_store()
    _derive_on(_case("mlp_in_edge_attribution"), raw, True)
    key = id(raw)
    assert native_store._stores.get(raw) is not None
    del raw
    gc.collect()
    assert key not in native_store._stores._d
