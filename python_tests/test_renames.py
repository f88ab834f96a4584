"""Renamed entry points: the new names, and the old ones kept one release as aliases that warn
with DeprecationWarning and give the same result."""

import numpy as np
import pytest

import nodewrite as nw

T, D, H, DH, F, V = 4, 8, 2, 4, 6, 9


@pytest.fixture()
def setup():
    rng = np.random.default_rng(0)
    m = nw.Model(1, D, H, DH, F)
    m.set_weight("mlp.to_residual", 0, rng.standard_normal((F, D)).astype(np.float32))
    m.set_weight("unembedding", None, rng.standard_normal((D, V)).astype(np.float32))
    m.set_weight("layer_norm_gain.final", None, np.ones(D, np.float32))
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, rng.standard_normal((T, F)).astype(np.float32))
    return m, s, rng.standard_normal((T, D)).astype(np.float32)


def test_deriver_write_and_its_deprecated_aliases(setup):
    m, s, _ = setup
    d = nw.NodeWriteDeriver(m, nw.NodeIndex("mlp_neuron", 0, (2, 3)))
    with pytest.warns(DeprecationWarning, match="NodeWriteDeriver.write"):
        old = d.derive(s)
    assert np.array_equal(old, d.write(s))
    with pytest.warns(DeprecationWarning, match="write_vector"):
        old_v, old_row = d.derive_vector(s)
    new_v, new_row = d.write_vector(s)
    assert np.array_equal(old_v, new_v) and old_row == new_row == 2


def test_top_token_writes_and_the_deprecated_top_k(setup):
    m, s, _ = setup
    idx = nw.neurons_at_token(1, m)
    full = nw.token_writes(m, s, "mlp_neuron", 0, idx)
    assert isinstance(full, np.ndarray) and full.shape == (F, V)  # always an array
    top = nw.top_token_writes(m, s, "mlp_neuron", 0, idx, 3)
    assert isinstance(top, nw.TopTokenWrites) and top._fields == ("values", "token_ids")
    assert np.array_equal(top.values, -np.sort(-full, axis=1)[:, :3])
    low = nw.top_token_writes(m, s, "mlp_neuron", 0, idx, 2, largest=False)
    assert np.array_equal(low.values, np.sort(full, axis=1)[:, :2])
    with pytest.warns(DeprecationWarning, match="top_token_writes"):
        values, ids = nw.token_writes(m, s, "mlp_neuron", 0, idx, top_k=3)  # still unpacks
    assert np.array_equal(values, top.values) and np.array_equal(ids, top.token_ids)
    with pytest.raises(TypeError):
        nw.top_token_writes(m, s, "mlp_neuron", 0, idx, 3, True)  # largest is keyword-only
    with pytest.raises(nw.NodeWriteValueError, match="k"):
        nw.top_token_writes(m, s, "mlp_neuron", 0, idx, V + 1)


def test_direction_is_keyword_only_positional_warns(setup):
    m, s, g = setup
    node = nw.NodeIndex("mlp_neuron", 0, (2, 3))
    new = nw.node_write_to_direction(m, s, node, direction=g)
    with pytest.warns(DeprecationWarning, match="direction="):
        old = nw.node_write_to_direction(m, s, node, g)
    assert np.array_equal(old, new)
    with pytest.raises(TypeError):
        nw.node_write_to_direction(m, s, node, g, direction=g)


def test_node_writes_fills_token_rows(setup):
    m, s, _ = setup
    idx = np.array([[0, 1], [3, 2], [-1, 0]], np.int64)
    rows = np.full(3, -7, np.int64)
    out = nw.node_writes(m, s, "mlp_neuron", 0, idx, token_rows=rows)
    assert rows.tolist() == [0, 3, 3] and out.shape == (3, D)
    for bad, exc in ((np.zeros(2, np.int64), nw.NodeWriteValueError), (np.zeros(3, np.int32), nw.NodeWriteValueError),
                     (np.zeros(3, np.int64)[::-1], nw.NodeWriteValueError), ([0, 0, 0], nw.NodeWriteValueError)):
        with pytest.raises(exc):
            nw.node_writes(m, s, "mlp_neuron", 0, idx, token_rows=bad)
    with pytest.raises(TypeError):
        nw.node_writes(m, s, "mlp_neuron", 0, idx, None)  # out is keyword-only


def test_set_weight_takes_none_for_layerless_weights(setup):
    m, _, _ = setup
    m.set_weight("layer_norm_gain.final", None, np.ones(D, np.float32))
    with pytest.raises(nw.NodeWriteValueError, match="layer"):
        m.set_weight("mlp.to_residual", None, np.ones((F, D), np.float32))
