"""nodewrite.tdb's one torch fallback: which library errors fall back to TDB's formula in torch
and which propagate, inside TDB's own pipeline.

Falls back: the refusals (nodewrite.tdb.torch_fallback.REFUSALS: an index out of range, a
shape, a dtype, an argument or layout the library does not take). Propagates as it would in
TDB: out of memory (NodeWriteMemoryError, a MemoryError) and a missing input
(NodeWriteKeyError, a KeyError). Each is forced once through the node-write deriver, a
write-family value and single_node_write_to_final_residual_grad: a missing input for real (the
model served to the library lacks its weight), out of memory and a refusal by making the
library call raise them. Needs NODEWRITE_TDB_SRC (see test_tdb_dropin.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tdb_support  # noqa: E402

REASON = tdb_support.tdb_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

import nodewrite as nw  # noqa: E402
from nodewrite import errors  # noqa: E402

LAYER = 1


@pytest.fixture()
def world():
    """A fresh fixture world per test: its own model context, so no cached model is reused."""
    return tdb_support.FixtureWorld()


@pytest.fixture()
def ntdb():
    import nodewrite.tdb as ntdb

    ntdb.uninstall()
    ntdb.clear_cache()
    yield ntdb
    ntdb.uninstall()
    ntdb.clear_cache()


def _mlp_case(world):
    return next(c for c in world.cases if c["node_type"] == "mlp_neuron" and "error" not in c and c["layer"] == LAYER)


def _with_final_grad(world):
    import torch

    acts = dict(world.activations)
    g = torch.Generator().manual_seed(5)
    n_tokens, d_model = world.meta["model"]["n_tokens"], world.dims["d_model"]
    acts[("resid.post_mlp", world.dims["n_layers"] - 1, "backward")] = torch.randn(n_tokens, d_model, generator=g)
    return tdb_support.make_raw_store(acts)


def _node_write(ntdb, world, case):
    from neuron_explainer.models.model_component_registry import PassType

    deriver = ntdb.make_node_write_scalar_deriver(world.dst_config(case))
    return deriver.derive_from_raw(world.raw_store, PassType.FORWARD).activations_by_layer_index[case["layer"]]


def _registry(ntdb, world, dst, node_case=None, store=None):
    """The DST through TDB's registry with the drop-in installed, {layer: tensor}."""
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.activations.derived_scalars.make_scalar_derivers import make_scalar_deriver
    from neuron_explainer.activations.derived_scalars.scalar_deriver import DstConfig
    from neuron_explainer.models.model_component_registry import PassType

    if node_case is None:
        cfg = DstConfig(model_context=world.model_context, layer_indices=[LAYER])
    else:
        cfg = world.dst_config(node_case)
    deriver = make_scalar_deriver(DerivedScalarType(dst), cfg)
    return dict(deriver.derive_from_raw(store or world.raw_store, PassType.FORWARD).activations_by_layer_index)


def _original_registry(ntdb, world, dst, node_case=None, store=None):
    ntdb.uninstall()
    return _registry(ntdb, world, dst, node_case, store)


def _raising(exc_type, status):
    def fail(*_args, **_kwargs):
        raise exc_type(f"forced by the test ({errors._STATUS_NAMES[status]})", status)

    return fail


class _FailingDeriver:
    """nodewrite.NodeWriteDeriver whose write raises the given error (its setup is real)."""

    error: Exception

    def __init__(self, model, node):
        self._real = _REAL_DERIVER(model, node)
        self.requirements = self._real.requirements
        self.model = self._real.model
        self.node = self._real.node

    def write(self, store):
        raise self.error

    derive = write


_REAL_DERIVER = nw.NodeWriteDeriver

OOM = (errors.NodeWriteMemoryError, errors.OUT_OF_MEMORY, MemoryError)
MISSING = (errors.NodeWriteKeyError, errors.MISSING_INPUT, KeyError)
REFUSAL = (errors.NodeWriteValueError, errors.UNSUPPORTED_DTYPE, None)


def test_refusals_are_the_documented_statuses():
    from nodewrite.tdb.torch_fallback import REFUSALS

    assert errors.OUT_OF_MEMORY not in REFUSALS and errors.MISSING_INPUT not in REFUSALS
    assert {errors.INDEX_OUT_OF_RANGE, errors.SHAPE_MISMATCH, errors.UNSUPPORTED_DTYPE} <= REFUSALS


@pytest.mark.parametrize("failure", [OOM, MISSING, REFUSAL], ids=["out_of_memory", "missing_input", "refusal"])
def test_node_write(ntdb, world, failure, monkeypatch):
    exc_type, status, raised_as = failure
    case = _mlp_case(world)
    want = _node_write(ntdb, world, case)  # native, before anything is forced
    ntdb.clear_cache()

    class Failing(_FailingDeriver):
        error = exc_type("forced by the test", status)

    monkeypatch.setattr(nw, "NodeWriteDeriver", Failing)
    before = dict(ntdb.stats)
    if raised_as is None:  # a refusal: TDB's formula in torch, the same answer
        import torch

        got = _node_write(ntdb, world, case)
        assert ntdb.stats["torch"] == before["torch"] + 1 and ntdb.stats["native"] == before["native"]
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    else:
        with pytest.raises(raised_as) as info:
            _node_write(ntdb, world, case)
        assert isinstance(info.value, exc_type)
        assert ntdb.stats["torch"] == before["torch"]


@pytest.mark.parametrize("failure", [OOM, MISSING, REFUSAL], ids=["out_of_memory", "missing_input", "refusal"])
@pytest.mark.parametrize("dst", ["mlp_write_norm", "unflattened_attn_write_norm"])
def test_write_family(ntdb, world, failure, dst, monkeypatch):
    import torch

    exc_type, status, raised_as = failure
    want = _original_registry(ntdb, world, dst)
    ntdb.install()
    monkeypatch.setattr(nw, "derive", _raising(exc_type, status))
    before = dict(ntdb.stats)
    if raised_as is None:
        got = _registry(ntdb, world, dst)
        assert ntdb.stats["torch"] == before["torch"] + 1 and ntdb.stats["native"] == before["native"]
        torch.testing.assert_close(got[LAYER], want[LAYER], rtol=1e-5, atol=1e-6)
    else:
        with pytest.raises(raised_as) as info:
            _registry(ntdb, world, dst)
        assert isinstance(info.value, exc_type)
        assert ntdb.stats["torch"] == before["torch"]


@pytest.mark.parametrize("failure", [OOM, MISSING, REFUSAL], ids=["out_of_memory", "missing_input", "refusal"])
def test_node_write_to_final_residual_grad(ntdb, world, failure, monkeypatch):
    import torch

    exc_type, status, raised_as = failure
    case = _mlp_case(world)
    store = _with_final_grad(world)
    dst = "single_node_write_to_final_residual_grad"
    want = _original_registry(ntdb, world, dst, case, store)
    ntdb.install()
    monkeypatch.setattr(nw, "node_write_to_direction", _raising(exc_type, status))
    before = dict(ntdb.stats)
    if raised_as is None:
        got = _registry(ntdb, world, dst, case, store)
        assert ntdb.stats["torch"] == before["torch"] + 1
        torch.testing.assert_close(got[LAYER], want[LAYER], rtol=1e-5, atol=1e-6)
    else:
        with pytest.raises(raised_as):
            _registry(ntdb, world, dst, case, store)
        assert ntdb.stats["torch"] == before["torch"]


@pytest.mark.parametrize("dst", ["mlp_write_norm", "single_node_write", "single_node_write_to_final_residual_grad"])
def test_a_real_missing_weight_propagates(ntdb, world, dst, monkeypatch):
    """Nothing forced in the library: the model handed to it lacks the MLP output weight, so the
    library itself answers NW_ERR_MISSING_INPUT, and that KeyError reaches the caller (no
    silent torch answer)."""
    from nodewrite.tdb import models

    monkeypatch.setattr(models, "_set_weight", lambda *args: None)
    case = _mlp_case(world)
    ntdb.install()
    before = dict(ntdb.stats)
    with pytest.raises(KeyError) as info:
        if dst == "single_node_write":
            _node_write(ntdb, world, case)
        else:
            store = _with_final_grad(world)
            _registry(ntdb, world, dst, None if dst == "mlp_write_norm" else case, store)
    assert isinstance(info.value, errors.NodeWriteKeyError)
    assert info.value.status == errors.MISSING_INPUT
    assert "mlp.to_residual" in str(info.value)
    assert ntdb.stats["torch"] == before["torch"]


def test_a_real_refusal_falls_back(ntdb, world):
    """Nothing forced: a token index past T is refused by the library (NW_ERR_INDEX_OUT_OF_RANGE),
    and TDB's formula in torch raises TDB's own IndexError with TDB's message."""
    case = _mlp_case(world)
    n_tokens = world.meta["model"]["n_tokens"]
    bad = dict(case, tensor_indices=[n_tokens, *case["tensor_indices"][1:]])
    from neuron_explainer.models.model_component_registry import PassType
    from nodewrite.tdb.namespace import tdb

    with pytest.raises(IndexError) as want:
        original = tdb().original["make_node_write_scalar_deriver"](world.dst_config(bad))
        original.derive_from_raw(world.raw_store, PassType.FORWARD)
    before = dict(ntdb.stats)
    with pytest.raises(IndexError) as got:
        _node_write(ntdb, world, bad)
    assert not isinstance(got.value, errors.NodeWriteError)  # TDB's exception, not the library's
    assert str(got.value) == str(want.value)
    assert ntdb.stats["torch"] == before["torch"] + 1
