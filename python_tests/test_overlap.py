"""An out= that shares memory with what the call reads (activations, borrowed weights, the
direction) is refused before anything is written: the kernels read inputs while the output
fills, so an overlap used to give silently wrong values (up to 1e19 off at T = 256)."""

import numpy as np
import pytest

import nodewrite as nw

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

T, D, F = 64, 48, 96


def setup(arena):
    """Model and store borrowing every input from one arena: W (F, D), post (T, F), G (T, D);
    the rest of the arena is free."""
    w = arena[: F * D].reshape(F, D)
    post = arena[F * D: F * D + T * F].reshape(T, F)
    g = arena[F * D + T * F: F * D + T * F + T * D].reshape(T, D)
    m = nw.Model(n_layers=1, d_model=D, n_heads=1, d_head=1, d_ff=F)
    m.set_weight("mlp.to_residual", 0, w, copy=False)
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, post)
    return m, s, w, post, g, arena[F * D + T * F + T * D:]


def make_arena(lib):
    rng = np.random.default_rng(3)
    a = rng.standard_normal(F * D + T * F + T * D + 2 * T * F).astype(np.float32)
    return torch.from_numpy(a) if lib == "torch" else a


LIBS = ["numpy"] + (["torch"] if torch is not None else [])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("where", ["post", "direction", "weight", "straddles"])
def test_derive_into_an_input_is_refused_and_writes_nothing(lib, where):
    arena = make_arena(lib)
    m, s, w, post, g, free = setup(arena)
    flat = arena
    start = {"post": F * D, "direction": F * D + T * F + 5, "weight": 7,
             "straddles": F * D + T * F + T * D - 3}[where]
    out = flat[start: start + T * F].reshape(T, F)
    before = np.asarray(arena).copy()
    with pytest.raises(nw.NodeWriteValueError, match="out: shares memory with"):
        nw.derive(m, s, "mlp_write_to_final_residual_grad", 0, direction=g, out=out)
    assert np.array_equal(np.asarray(arena), before)


@pytest.mark.parametrize("lib", LIBS)
def test_derive_next_to_its_inputs_is_right(lib):
    arena = make_arena(lib)
    m, s, w, post, g, free = setup(arena)
    out = free[: T * F].reshape(T, F)
    want = nw.derive(m, s, "mlp_write_to_final_residual_grad", 0, direction=np.array(np.asarray(g)))
    got = nw.derive(m, s, "mlp_write_to_final_residual_grad", 0, direction=g, out=out)
    assert got is out
    assert np.array_equal(np.asarray(out), want)


def test_norm_into_its_activation_is_refused():
    arena = make_arena("numpy")
    m, s, w, post, g, free = setup(arena)
    with pytest.raises(nw.NodeWriteValueError, match="activation mlp.post_act"):
        nw.derive(m, s, "mlp_write_norm", 0, out=post)


def test_node_writes_into_the_weight_is_refused():
    arena = make_arena("numpy")
    m, s, w, post, g, free = setup(arena)
    before = arena.copy()
    out = arena[100: 100 + 2 * D].reshape(2, D)
    with pytest.raises(nw.NodeWriteValueError, match="output weight"):
        nw.node_writes(m, s, "mlp_neuron", 0, np.array([[0, 1], [3, 2]]), out=out)
    assert np.array_equal(arena, before)
