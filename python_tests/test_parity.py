"""Every case of the parity fixtures through the Python API.

Tolerance (parity README): max |port - original| <= 1e-5 * max(1, max |original|), because the
port computes in float32 like the original but may sum in a different order; exactly zero in
every row other than the node's token row (the original writes zeros there).
"""

import numpy as np
import pytest

import nodewrite as nw
import nw_fixtures as F

CASES = F.cases()
OK_CASES = [c for c in CASES if "error" not in c]
ERROR_CASES = [c for c in CASES if "error" in c]

# The original's exception -> the exception nodewrite raises for it.
ERROR_MAP = {"IndexError": IndexError, "AssertionError": KeyError}


@pytest.fixture(scope="module")
def models():
    return {kind: F.make_model(kind) for kind in ("none", "single", "multi")}


@pytest.fixture(scope="module")
def store():
    return F.make_store()


def test_fixture_has_every_node_type_and_error_kind():
    kinds = {c["node_type"] for c in CASES}
    assert kinds == set(nw.NODE_TYPES)
    assert {c["error"] for c in ERROR_CASES} == {"IndexError", "AssertionError"}
    assert any("original_error_with_both_autoencoders" in c for c in OK_CASES)


@pytest.mark.parametrize("case", OK_CASES, ids=[c["id"] for c in OK_CASES])
def test_node_write_matches_original(case, models, store):
    expected = F.tensors()[case["expected"]]
    out = nw.node_write(models[case["autoencoders"]], store, F.node_of(case))
    F.assert_matches(out, expected, F.token_row(case))


@pytest.mark.parametrize("case", OK_CASES, ids=[c["id"] for c in OK_CASES])
def test_deriver_matches_original(case, models, store):
    expected = F.tensors()[case["expected"]]
    node = F.node_of(case)
    deriver = nw.NodeWriteDeriver(models[case["autoencoders"]], node)
    assert list(deriver.requirements) == [(a, case["layer"]) for a in case["sub_activations"]]
    F.assert_matches(deriver.derive(store), expected, F.token_row(case))
    vec, token = deriver.derive_vector(store)
    assert token == F.token_row(case)
    assert vec.shape == (F.dims()["d_model"],) and vec.dtype == np.float32
    assert vec.flags.c_contiguous and vec.strides == (4,)
    full = deriver.derive(store)
    assert np.array_equal(vec, full[token]), "derive_vector disagrees with derive"


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["id"] for c in ERROR_CASES])
def test_original_errors_are_raised(case, models, store):
    exc = ERROR_MAP[case["error"]]
    model = models[case["autoencoders"]]
    node = F.node_of(case)
    with pytest.raises(exc) as info:
        nw.node_write(model, store, node)
    assert isinstance(info.value, nw.NodeWriteError)
    assert str(info.value), "the error must explain itself"
    with pytest.raises(exc):
        nw.NodeWriteDeriver(model, node).derive(store)
    with pytest.raises(exc):
        nw.node_write_vectors(model, store, [node])


def test_index_error_message_names_the_dimension(models, store):
    c = next(c for c in ERROR_CASES if c["id"] == "c065")
    with pytest.raises(IndexError, match="7"):
        nw.node_write(models["none"], store, F.node_of(c))


@pytest.mark.parametrize("kind", ["none", "single", "multi"])
def test_batch_equals_loop(kind, models, store):
    cases = [c for c in OK_CASES if c["autoencoders"] == kind]
    nodes = [F.node_of(c) for c in cases]
    vectors, rows = nw.node_write_vectors(models[kind], store, nodes)
    assert vectors.shape == (len(nodes), F.dims()["d_model"]) and vectors.dtype == np.float32
    assert rows.dtype == np.int64 and rows.shape == (len(nodes),)
    assert vectors.flags.c_contiguous and rows.flags.c_contiguous and rows.strides == (8,)
    for i, c in enumerate(cases):
        vec, token = nw.NodeWriteDeriver(models[kind], nodes[i]).derive_vector(store)
        assert rows[i] == token == F.token_row(c)
        assert np.array_equal(vectors[i], vec)
        expected = F.tensors()[c["expected"]][token]
        assert np.max(np.abs(vectors[i] - expected)) <= F.REL_TOL * max(1.0, np.max(np.abs(F.tensors()[c["expected"]])))


def test_batch_with_a_bad_node_raises_naming_it(models, store):
    good = F.node_of(OK_CASES[0])
    bad = nw.NodeIndex("mlp_neuron", 0, (0, 192))
    with pytest.raises(IndexError, match=r"1|192"):
        nw.node_write_vectors(models["none"], store, [good, bad])
    empty_v, empty_r = nw.node_write_vectors(models["none"], store, [])
    assert empty_v.shape == (0, F.dims()["d_model"]) and empty_r.shape == (0,)


@pytest.mark.parametrize("kind", ["attention", "mlp"])
def test_whole_layer_sum_is_the_layer_output(kind, models, store):
    """Sum of every node write of a layer + output bias = the layer's residual delta (README)."""
    t = F.tensors()
    T, d = F.n_tokens(), F.dims()
    model = models["none"]
    for layer in range(d["n_layers"]):
        if kind == "attention":
            nodes = [nw.NodeIndex("attention_head", layer, (q, k, h))
                     for q in range(T) for k in range(q + 1) for h in range(d["n_heads"])]
            bias = t[f"checkpoint.xf_layers.{layer}.attn.out_proj.bias"]
            delta = t[f"activations.{layer}.resid.delta_attn"]
        else:
            nodes = [nw.NodeIndex("mlp_neuron", layer, (q, n)) for q in range(T) for n in range(d["d_ff"])]
            bias = t[f"checkpoint.xf_layers.{layer}.mlp.out_layer.bias"]
            delta = t[f"activations.{layer}.resid.delta_mlp"]
        vectors, rows = nw.node_write_vectors(model, store, nodes)
        total = np.zeros((T, d["d_model"]), np.float64)
        np.add.at(total, rows, vectors.astype(np.float64))
        total += bias
        # The original's own forward pass agrees with this identity to about 5e-6.
        assert np.max(np.abs(total - delta)) <= 2e-5 * max(1.0, float(np.max(np.abs(delta))))


def test_versions():
    assert nw.abi_version() == 1
    assert nw.library_version().count(".") == 2
    assert isinstance(nw.__version__, str)


def test_every_public_name_has_a_docstring():
    missing = []
    for name in nw.__all__:
        obj = getattr(nw, name)
        if isinstance(obj, (str, tuple)):
            continue
        if not (getattr(obj, "__doc__", None) or "").strip():
            missing.append(name)
        if isinstance(obj, type):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or attr in ("node_type", "layer_index", "tensor_indices", "q_k_or_v"):
                    continue
                if not (getattr(member, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_stubs_and_marker_are_installed():
    import os
    pkg = os.path.dirname(nw.__file__)
    for f in ("__init__.pyi", "py.typed", "libnodewrite.so"):
        assert os.path.isfile(os.path.join(pkg, f)), f
    stub = open(os.path.join(pkg, "__init__.pyi")).read()
    for name in nw.__all__:
        assert name in stub, f"{name} missing from __init__.pyi"
