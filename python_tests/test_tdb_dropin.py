"""nodewrite.tdb against transformer-debugger (TDB) itself, inside TDB's own pipeline.

These tests need a TDB checkout: ``NODEWRITE_TDB_SRC=/path/to/transformer-debugger`` (the
directory holding ``neuron_explainer/``) with torch and TDB's few imports (numpy, tiktoken,
aiohttp, pydantic<2) installed. Without it they skip with that reason; CI runs without TDB, where
the fixture-based tests of the binding are the guard. Only ``test_imports_without_tdb`` runs
everywhere.

For every parity fixture case and several autoencoder configurations, TDB's original
``make_node_write_scalar_deriver`` and the drop-in are each built from a ``DstConfig`` and run
with ``ScalarDeriver.derive_from_raw`` on TDB's ``RawActivationStore``, and must agree:

- same shape, dtype and device; exactly zero off the node's token row;
- values: exactly equal where the original's arithmetic is a single product per element (MLP
  neurons, residual-stream autoencoders); elsewhere (attention heads, MLP-post-activation
  autoencoders: a sum over d_head or d_ff whose order differs) within the parity fixtures' own
  tolerance, 1e-5 * max(1, max |original|);
- or the same exception type, except where the original fails its single-autoencoder assertion
  with both autoencoders loaded: there the drop-in must give the fixture's expected output (or
  the ``IndexError`` of an out-of-range index).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tdb_support  # noqa: E402

META = json.loads((tdb_support.FIXTURES_DIR / "tdb_tiny.json").read_text())
CASES = META["cases"]
# Without TDB, each parametrized test collapses to one skipped item that says why.
TDB_REASON = tdb_support.tdb_unavailable_reason()


def case_params(cases):
    if TDB_REASON is not None:
        return [pytest.param(None, id="no-tdb", marks=pytest.mark.skip(reason=TDB_REASON))]
    return [pytest.param(c, id=c["id"]) for c in cases]


ALL_CASES = case_params(CASES)
ANSWERED_CASES = case_params([c for c in CASES if "error" not in c and c["autoencoders"] != "multi"])
# "own": the case's setting; "single": the MLP autoencoder as DstConfig.autoencoder_context;
# "multi": both autoencoders in multi_autoencoder_context; "single_attention": the attention
# autoencoder alone; "multi_one": a multi context holding only the node's own autoencoder
CONFIGS = ["own", "none", "single", "multi", "single_attention", "multi_one"]
EXACT_NODE_TYPES = {"mlp_neuron", "attention_autoencoder_latent"}


@pytest.fixture(scope="module")
def world():
    reason = tdb_support.tdb_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    return tdb_support.FixtureWorld()


@pytest.fixture(scope="module")
def ntdb(world):
    import nodewrite.tdb as ntdb

    return ntdb


def _original(name="make_node_write_scalar_deriver"):
    """TDB's own factory, whatever install() did (nodewrite.tdb's lazy TDB namespace)."""
    from nodewrite.tdb.namespace import tdb

    return tdb().original[name]


def _torch():
    import torch  # only once TDB (and so torch) is known to be importable

    return torch


def _derive(make, world, case, config):
    """(output tensor at the node's layer, None) or (None, exception)."""
    from neuron_explainer.models.model_component_registry import PassType

    cfg = world.dst_config(case, None if config == "own" else config)
    try:
        deriver = make(cfg)
        result = deriver.derive_from_raw(world.raw_store, PassType.FORWARD)
        return result.activations_by_layer_index[case["layer"]], None
    except Exception as e:  # compared by type below
        return None, e


def _check_same_output(case, original, dropin):
    import torch

    assert isinstance(dropin, torch.Tensor)
    assert dropin.shape == original.shape
    assert dropin.dtype == original.dtype
    assert dropin.device == original.device
    a = original.detach().cpu().double().numpy()
    b = dropin.detach().cpu().double().numpy()
    row = case["tensor_indices"][0] % a.shape[0]
    off = np.ones(a.shape[0], dtype=bool)
    off[row] = False
    assert (b[off] == 0).all(), "non-zero values off the node's token row"
    if case["node_type"] in EXACT_NODE_TYPES:
        np.testing.assert_array_equal(b, a)
    else:
        tol = 1e-5 * max(1.0, float(np.abs(a).max()))
        assert float(np.abs(a - b).max()) <= tol


def _check_case(world, ntdb, make_dropin, case, config):
    original_make = _original()
    original, original_error = _derive(original_make, world, case, config)
    dropin, dropin_error = _derive(make_dropin, world, case, config)
    both_autoencoders = (config == "multi") or (config == "own" and case["autoencoders"] == "multi")
    if original_error is None:
        assert dropin_error is None, f"drop-in raised {dropin_error!r}; the original did not"
        _check_same_output(case, original, dropin)
        return "same-output"
    if (
        both_autoencoders
        and isinstance(original_error, AssertionError)
        and case["node_type"] != "autoencoder_latent"
    ):
        # the original cannot resolve one autoencoder among two; the drop-in answers as the
        # original does with only the node's own autoencoder (none for neurons and heads)
        own = "none" if case["node_type"] in ("mlp_neuron", "attention_head") else "multi_one"
        reference, reference_error = _derive(original_make, world, case, own)
        if reference_error is not None:
            assert isinstance(dropin_error, type(reference_error)), (reference_error, dropin_error)
            return "fixed-error"
        assert dropin_error is None, repr(dropin_error)
        _check_same_output(case, reference, dropin)
        expected = world.expected(case)
        if expected is not None:
            _check_same_output(case, _torch().from_numpy(expected), dropin)
        return "fixed-answer"
    assert dropin_error is not None, f"the original raised {original_error!r}; the drop-in did not"
    assert type(dropin_error) is type(original_error) or isinstance(
        dropin_error, type(original_error)
    ), f"original {original_error!r}, drop-in {dropin_error!r}"
    return "same-error"


# ----------------------------------------------------------------------------------- tests


def test_imports_without_tdb():
    """nodewrite.tdb imports, and exposes its API, without importing TDB (or torch)."""
    code = (
        "import sys, nodewrite.tdb as t; "
        "assert callable(t.make_node_write_scalar_deriver) and callable(t.install); "
        "bad = [m for m in sys.modules if m.startswith(('neuron_explainer', 'torch'))]; "
        "assert not bad, bad"
    )
    env = {k: v for k, v in os.environ.items() if k != tdb_support.TDB_ENV}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("case", ALL_CASES)
def test_dropin_matches_original(world, ntdb, case, config):
    _check_case(world, ntdb, ntdb.make_node_write_scalar_deriver, case, config)


@pytest.mark.parametrize("config", ["own", "multi"])
@pytest.mark.parametrize("case", ALL_CASES)
def test_installed_through_tdb_entry_points(world, ntdb, case, config):
    """After install(), TDB's own entry points (the DST registry, node_write's functions) build
    the drop-in, and it matches the original."""
    from neuron_explainer.activations.derived_scalars import make_scalar_derivers, node_write
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import (
        DerivedScalarType,
    )

    def via_registry(cfg):
        return make_scalar_derivers.make_scalar_deriver(DerivedScalarType.SINGLE_NODE_WRITE, cfg)

    class ViaSource:
        """make_node_write_scalar_source(cfg).derive_from_raw(store, None) as a 'deriver'."""

        def __init__(self, cfg):
            self.source = node_write.make_node_write_scalar_source(cfg)

        def derive_from_raw(self, store, _pass_type):
            return self.source.derive_from_raw(store, None)

    ntdb.install()
    try:
        for make in (via_registry, ViaSource):
            _check_case(world, ntdb, make, case, config)
    finally:
        ntdb.uninstall()


def test_install_patches_importers_and_uninstall_restores(world, ntdb):
    from neuron_explainer.activations.derived_scalars import (
        edge_activation,
        edge_attribution,
        make_scalar_derivers,
        node_write,
    )
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import (
        DerivedScalarType,
    )

    from nodewrite.tdb.namespace import tdb

    original = tdb().original
    registry = make_scalar_derivers._DERIVED_SCALAR_TYPE_REGISTRY
    places = [
        (node_write, "make_node_write_scalar_deriver"),
        (node_write, "make_node_write_scalar_source"),
        (edge_attribution, "make_node_write_scalar_deriver"),
        (edge_attribution, "make_node_write_scalar_source"),
        (edge_activation, "make_node_write_scalar_source"),
        (make_scalar_derivers, "make_node_write_scalar_deriver"),
    ]
    for mod, name in places:
        assert getattr(mod, name) is original[name]
    assert registry[DerivedScalarType.SINGLE_NODE_WRITE] is original["make_node_write_scalar_deriver"]

    import types

    ntdb.install()
    ntdb.install()  # idempotent
    late = types.ModuleType("neuron_explainer._nodewrite_test_late_import")
    try:
        assert ntdb.is_installed()
        for mod, name in places:
            assert getattr(mod, name) is getattr(ntdb, name), (mod.__name__, name)
        assert registry[DerivedScalarType.SINGLE_NODE_WRITE] is ntdb.make_node_write_scalar_deriver
        # a TDB module imported while installed gets the drop-in by name ...
        late.make_node_write_scalar_source = node_write.make_node_write_scalar_source
        sys.modules[late.__name__] = late
        assert late.make_node_write_scalar_source is ntdb.make_node_write_scalar_source
    finally:
        ntdb.uninstall()
        sys.modules.pop(late.__name__, None)
    # ... and uninstall() gives it back the original
    assert late.make_node_write_scalar_source is original["make_node_write_scalar_source"]
    assert not ntdb.is_installed()
    for mod, name in places:
        assert getattr(mod, name) is original[name]
    assert registry[DerivedScalarType.SINGLE_NODE_WRITE] is original["make_node_write_scalar_deriver"]


@pytest.mark.parametrize("case", ANSWERED_CASES)
def test_deriver_is_a_tdb_scalar_deriver_like_the_original(world, ntdb, case):
    """Same class, dst, dst_config, location within layer and raw requirements as the original;
    for attention the inputs are the raw qk_probs and v, not the weighted-value deriver."""
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import (
        DerivedScalarType,
    )
    from neuron_explainer.activations.derived_scalars.scalar_deriver import (
        DerivedScalarSource,
        RawScalarSource,
        ScalarDeriver,
    )

    cfg = world.dst_config(case)
    original = _original()(cfg)
    dropin = ntdb.make_node_write_scalar_deriver(cfg)
    assert type(dropin) is ScalarDeriver
    assert dropin.dst == original.dst == DerivedScalarType.SINGLE_NODE_WRITE
    assert dropin.dst_config == original.dst_config
    assert dropin.dst_config.layer_indices == [case["layer"]]
    assert dropin.location_within_layer == original.location_within_layer
    assert dropin.derivable_pass_types == original.derivable_pass_types
    assert (
        dropin.get_sub_activation_location_type_and_pass_types()
        == original.get_sub_activation_location_type_and_pass_types()
    )
    assert all(isinstance(s, RawScalarSource) for s in dropin.sub_scalar_sources)
    names = [s.activation_location_type.value for s in dropin.sub_scalar_sources]
    assert names == case["sub_activations"]
    assert all(s.pass_type.value == "forward" for s in dropin.sub_scalar_sources)

    source = ntdb.make_node_write_scalar_source(cfg)
    original_source = _original("make_node_write_scalar_source")(cfg)
    assert type(source) is DerivedScalarSource
    assert source.dst == original_source.dst
    assert source.layer_index == original_source.layer_index == case["layer"]
    assert source.pass_type == original_source.pass_type


def test_attention_uses_native_library_without_weighted_value(world, ntdb, monkeypatch):
    """Attention nodes are computed by the native library, and torch never builds the
    (T, T, heads, d_head) weighted-value tensor."""
    import torch
    from neuron_explainer.models.model_component_registry import PassType

    equations = []
    real_einsum = torch.einsum

    def spy_einsum(equation, *operands):
        equations.append(equation)
        return real_einsum(equation, *operands)

    monkeypatch.setattr(torch, "einsum", spy_einsum)
    cases = [c for c in CASES if c["node_type"] == "attention_head" and "error" not in c]
    before = dict(ntdb.stats)
    for case in cases:
        deriver = ntdb.make_node_write_scalar_deriver(world.dst_config(case))
        deriver.derive_from_raw(world.raw_store, PassType.FORWARD)
    assert ntdb.stats["native"] - before["native"] == len(cases)
    assert ntdb.stats["torch"] == before["torch"]
    assert "fth,thd->fthd" not in equations
    assert equations == [], equations  # the native path calls no torch einsum at all


def test_weights_handed_over_once_and_borrowed(ntdb):
    """One nodewrite.Model per (model context, layer, node kind): get_weight is called once for
    many derivers and calls, and the weights are borrowed (an in-place edit is seen)."""
    reason = tdb_support.tdb_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    from neuron_explainer.models.model_component_registry import PassType

    world = tdb_support.FixtureWorld()  # a fresh model context: its own counters and weights
    mc = world.model_context
    cases = [c for c in CASES if c["node_type"] == "attention_head" and c["layer"] == 1 and "error" not in c]
    assert len(cases) >= 3
    built = ntdb.stats["models_built"]
    outputs = []
    for _ in range(3):
        for case in cases:
            deriver = ntdb.make_node_write_scalar_deriver(world.dst_config(case))
            outputs.append(deriver.derive_from_raw(world.raw_store, PassType.FORWARD))
    assert mc.get_weight_calls == 1
    assert ntdb.stats["models_built"] == built + 1

    case = cases[0]
    deriver = ntdb.make_node_write_scalar_deriver(world.dst_config(case))
    before = deriver.derive_from_raw(world.raw_store, PassType.FORWARD).activations_by_layer_index[1]
    with _torch().no_grad():
        mc.pieces["xf_layers.1.attn.out_proj.weight"].mul_(2.0)  # in place, as an ablation would
    after = deriver.derive_from_raw(world.raw_store, PassType.FORWARD).activations_by_layer_index[1]
    assert mc.get_weight_calls == 1
    np.testing.assert_allclose(after.numpy(), 2.0 * before.numpy(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("case", ALL_CASES)
def test_torch_fallback_is_the_original_formula(world, ntdb, case, monkeypatch):
    """The path used for non-CPU devices and other dtypes (forced here on the CPU) gives the
    original's output bit for bit, or its exception."""
    from neuron_explainer.models.model_component_registry import PassType

    from nodewrite.tdb import models

    def not_native(_t):
        raise models.NotNative

    monkeypatch.setattr(models, "cpu_float32", not_native)
    original_make = _original()
    original, original_error = _derive(original_make, world, case, "own")
    before = ntdb.stats["torch"]
    dropin, dropin_error = _derive(ntdb.make_node_write_scalar_deriver, world, case, "own")
    if original_error is None:
        assert dropin_error is None, repr(dropin_error)
        assert dropin.dtype == original.dtype and dropin.device == original.device
        assert _torch().equal(dropin, original)
        assert ntdb.stats["torch"] == before + 1
    elif case["autoencoders"] == "multi" and isinstance(original_error, AssertionError):
        if case.get("error") == "IndexError":
            assert isinstance(dropin_error, IndexError)
        else:
            assert dropin_error is None, repr(dropin_error)
            _check_same_output(case, _torch().from_numpy(world.expected(case)), dropin)
    else:
        assert isinstance(dropin_error, type(original_error)), (original_error, dropin_error)
        if isinstance(original_error, IndexError):
            assert str(dropin_error) == str(original_error)


def test_index_error_message_is_the_originals(world, ntdb):
    for case in (c for c in CASES if c.get("error") == "IndexError" and c["autoencoders"] != "multi"):
        dropin, error = _derive(ntdb.make_node_write_scalar_deriver, world, case, "own")
        assert isinstance(error, IndexError)
        assert str(error) == case["error_message"]


@pytest.mark.parametrize("node_type", ["attention_head", "mlp_neuron", "autoencoder_latent"])
def test_default_dtype_followed(world, ntdb, node_type):
    """The original's output is torch.zeros(...) of the default dtype: so is the drop-in's."""
    import torch

    case = next(c for c in CASES if c["node_type"] == node_type and "error" not in c)
    original_make = _original()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        original, e1 = _derive(original_make, world, case, "own")
        dropin, e2 = _derive(ntdb.make_node_write_scalar_deriver, world, case, "own")
    finally:
        torch.set_default_dtype(old)
    assert e1 is None and e2 is None, (e1, e2)
    assert original.dtype == dropin.dtype == torch.float64
    _check_same_output(case, original, dropin)


def test_lean_raw_scalar_source_gives_tdbs_result(world, ntdb):
    """The drop-in's RawScalarSource subclass returns what TDB's RawScalarSource returns (the
    same tensors, the same layers), with and without missing layers."""
    import torch
    from neuron_explainer.activations.derived_scalars.locations import (
        ConstantLayerIndexer,
        IdentityLayerIndexer,
    )
    from neuron_explainer.activations.derived_scalars.scalar_deriver import RawScalarSource
    from neuron_explainer.models.model_component_registry import ActivationLocationType, PassType

    from nodewrite.tdb.sources import lean_class

    LeanRawScalarSource = lean_class()

    def fresh_store():  # TDB fills missing layers into the store's own dict: one store per call
        acts = {}
        for k, v in world.tensors.items():
            if k.startswith("activations."):
                layer_s, name = k[len("activations.") :].split(".", 1)
                if name in tdb_support.FixtureWorld.ACTIVATION_KEYS:
                    acts[(name, int(layer_s))] = torch.from_numpy(v)
        return tdb_support.make_raw_store(acts)

    for alt in ("attn.qk_probs", "attn.v", "mlp.post_act"):
        for indexer in (IdentityLayerIndexer(), ConstantLayerIndexer(1)):
            for desired in (None, [0], [2, 1], [0, 5]):
                args = (ActivationLocationType(alt), PassType.FORWARD, indexer)
                a = RawScalarSource(*args).derive_from_raw(fresh_store(), desired)
                b = LeanRawScalarSource(*args).derive_from_raw(fresh_store(), desired)
                assert isinstance(LeanRawScalarSource(*args), RawScalarSource)
                assert (a.dst, a.pass_type) == (b.dst, b.pass_type)
                assert list(a.activations_by_layer_index) == list(b.activations_by_layer_index)
                for layer, t in a.activations_by_layer_index.items():
                    assert torch.equal(t, b.activations_by_layer_index[layer]), (alt, desired, layer)


def test_model_cache_lets_go_of_the_model_context(ntdb):
    """The cache is weak: dropping the model context drops its nodewrite.Model objects."""
    reason = tdb_support.tdb_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    import gc

    from neuron_explainer.models.model_component_registry import PassType

    world = tdb_support.FixtureWorld()
    case = next(c for c in CASES if c["node_type"] == "mlp_neuron" and "error" not in c)
    deriver = ntdb.make_node_write_scalar_deriver(world.dst_config(case))
    deriver.derive_from_raw(world.raw_store, PassType.FORWARD)
    from nodewrite.tdb.models import models

    assert models.get(world.model_context) is not None
    n = len(models)
    del deriver, world
    gc.collect()
    assert len(models) == n - 1


@pytest.mark.parametrize("case", ANSWERED_CASES)
def test_consumer_write_to_final_residual_grad(world, ntdb, case):
    """A TDB consumer of the node-write deriver (SINGLE_NODE_WRITE_TO_FINAL_RESIDUAL_GRAD, from
    the DST registry: edge attribution to the loss) gives the same result with the drop-in
    installed as with the original."""
    import torch
    from neuron_explainer.activations.derived_scalars import make_scalar_derivers
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import (
        DerivedScalarType,
    )
    from neuron_explainer.models.model_component_registry import PassType

    g = torch.Generator().manual_seed(0)
    acts = dict(world.activations)
    n_tokens, d_model = META["model"]["n_tokens"], META["model"]["d_model"]
    for layer in range(META["model"]["n_layers"]):  # a backward pass's residual gradients
        acts[("resid.post_mlp", layer, "backward")] = torch.randn(n_tokens, d_model, generator=g)
    store = tdb_support.make_raw_store(acts)
    dst = DerivedScalarType.SINGLE_NODE_WRITE_TO_FINAL_RESIDUAL_GRAD

    def run():
        deriver = make_scalar_derivers.make_scalar_deriver(dst, world.dst_config(case))
        out = deriver.derive_from_raw(store, PassType.FORWARD)
        return deriver, out.activations_by_layer_index

    original_deriver, original = run()
    ntdb.install()
    try:
        native_before = ntdb.stats["native"]
        dropin_deriver, dropin = run()
        assert ntdb.stats["native"] == native_before + 1  # the drop-in did the node write
    finally:
        ntdb.uninstall()
    assert (
        dropin_deriver.get_sub_activation_location_type_and_pass_types()
        == original_deriver.get_sub_activation_location_type_and_pass_types()
    )
    assert list(dropin) == list(original)
    for layer, a in original.items():
        b = dropin[layer]
        assert (b.shape, b.dtype, b.device) == (a.shape, a.dtype, a.device)
        tol = 1e-5 * max(1.0, float(a.abs().max()))
        assert float((a - b).abs().max()) <= tol


def _compare_on_store(ntdb, world, case, store, **config_changes):
    import dataclasses

    from neuron_explainer.models.model_component_registry import PassType

    cfg = dataclasses.replace(world.dst_config(case), **config_changes)
    results = []
    for make in (_original(), ntdb.make_node_write_scalar_deriver):
        try:
            deriver = make(cfg)
            results.append((deriver, deriver.derive_from_raw(store, PassType.FORWARD), None))
        except Exception as e:
            results.append((None, None, e))
    return results


def test_mlp_with_derive_gradients(world, ntdb):
    """derive_gradients=True: the MLP deriver also requires the backward mlp.post_act, as the
    original does, and writes the forward pass's node write."""
    import torch

    case = next(c for c in CASES if c["node_type"] == "mlp_neuron" and "error" not in c)
    acts = dict(world.activations)
    for layer in range(META["model"]["n_layers"]):
        acts[("mlp.post_act", layer, "backward")] = torch.randn_like(acts[("mlp.post_act", layer)])
    store = tdb_support.make_raw_store(acts)
    (od, o, oe), (dd, d, de) = _compare_on_store(ntdb, world, case, store, derive_gradients=True)
    assert oe is None and de is None, (oe, de)
    assert (
        dd.get_sub_activation_location_type_and_pass_types()
        == od.get_sub_activation_location_type_and_pass_types()
    )
    assert len(dd.get_sub_activation_location_type_and_pass_types()) == 2
    layer = case["layer"]
    _check_same_output(case, o.activations_by_layer_index[layer], d.activations_by_layer_index[layer])


@pytest.mark.parametrize("missing", ["attn.v", "attn.qk_probs", "mlp.post_act", "layer"])
def test_missing_activations_raise_the_originals_exception(world, ntdb, missing):
    """A raw store without a needed activation (or without the node's layer): the original's
    exception type."""
    node_type = "mlp_neuron" if missing == "mlp.post_act" else "attention_head"
    case = next(c for c in CASES if c["node_type"] == node_type and "error" not in c and c["layer"] == 1)
    if missing == "layer":
        acts = {k: v for k, v in world.activations.items() if k[1] != 1}
    else:
        acts = {k: v for k, v in world.activations.items() if k[0] != missing}
    store = tdb_support.make_raw_store(acts)
    (_, _, original_error), (_, _, dropin_error) = _compare_on_store(ntdb, world, case, store)
    assert original_error is not None
    assert type(dropin_error) is type(original_error), (original_error, dropin_error)


@pytest.mark.parametrize("node_type", ["attention_head", "mlp_neuron", "attention_autoencoder_latent"])
def test_non_cpu_device_keeps_the_originals_device(ntdb, node_type):
    """Tensors and model context on another device (torch's 'meta' device stands in for CUDA
    here: no values, but real device semantics): the drop-in answers on that device, with the
    original's shape and dtype, without touching the native library."""
    reason = tdb_support.tdb_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    import dataclasses

    import torch
    from neuron_explainer.models.autoencoder_context import MultiAutoencoderContext
    from neuron_explainer.models.model_component_registry import PassType

    meta = torch.device("meta")
    world = tdb_support.FixtureWorld()
    checkpoint = {k: v.to(meta) for k, v in world.model_context.pieces.items()}
    model_context = tdb_support.make_model_context(checkpoint, n_vocab=97, device=meta, **world.dims)
    states = {}
    for k, v in world.tensors.items():
        if k.startswith("autoencoders.attention.") and ".state." in k:
            layer_s, rest = k[len("autoencoders.attention.") :].split(".state.")
            states.setdefault(int(layer_s), {})[rest] = torch.from_numpy(v)
    ae = tdb_support.make_autoencoder_context("resid_delta_attn", states, device=meta)
    for a in ae._cached_autoencoders_by_path.values():
        a.to(meta)
    store = tdb_support.make_raw_store({k: v.to(meta) for k, v in world.activations.items()})
    case = next(c for c in CASES if c["node_type"] == node_type and "error" not in c)
    cfg = dataclasses.replace(
        world.dst_config(case, "none"),
        model_context=model_context,
        multi_autoencoder_context=MultiAutoencoderContext.from_autoencoder_context_list([ae])
        if "autoencoder" in node_type
        else None,
    )
    original = _original()(cfg)
    a = original.derive_from_raw(store, PassType.FORWARD).activations_by_layer_index[case["layer"]]
    native_before = ntdb.stats["native"]
    dropin = ntdb.make_node_write_scalar_deriver(cfg)
    b = dropin.derive_from_raw(store, PassType.FORWARD).activations_by_layer_index[case["layer"]]
    assert ntdb.stats["native"] == native_before
    assert (b.shape, b.dtype, b.device) == (a.shape, a.dtype, a.device)
    assert b.device.type == "meta"


def test_autoencoder_decoder_is_borrowed(ntdb):
    """The decoder is handed over as a view of the autoencoder's parameter, not a copy."""
    reason = tdb_support.tdb_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    import torch
    from neuron_explainer.models.model_component_registry import PassType

    world = tdb_support.FixtureWorld()
    case = next(c for c in CASES if c["node_type"] == "attention_autoencoder_latent" and "error" not in c)
    deriver = ntdb.make_node_write_scalar_deriver(world.dst_config(case, "multi"))
    layer = case["layer"]
    before = deriver.derive_from_raw(world.raw_store, PassType.FORWARD).activations_by_layer_index[layer]
    autoencoder = world.ae_contexts["attention"].get_autoencoder(layer)
    with torch.no_grad():
        autoencoder.decoder.weight.mul_(2.0)
    native_before = ntdb.stats["native"]
    after = deriver.derive_from_raw(world.raw_store, PassType.FORWARD).activations_by_layer_index[layer]
    assert ntdb.stats["native"] == native_before + 1
    np.testing.assert_array_equal(after.numpy(), 2.0 * before.numpy())
