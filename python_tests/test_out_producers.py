"""``out=`` arrays as their producers account for them.

What is checked: an array exported through DLPack for writing is the producer's own memory by
the producer's word (DLPack 1.x flags: READ_ONLY and IS_COPIED are refused, ``copy=False`` is
asked for and a producer that cannot honour it is refused; legacy producers without those
keywords still work); every refusal leaves the array unchanged; a torch tensor written into has
its version counter advanced, as by torch's own ``out=`` operations, so that autograd refuses a
backward pass through values nodewrite overwrote (and a fresh tensor's gradient is unaffected).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import nodewrite as nw

torch = pytest.importorskip("torch")

T, D_MODEL, HEADS, D_HEAD, D_FF = 5, 8, 2, 4, 6
DST = "mlp_write_to_final_residual_grad"

# DLManagedTensorVersioned: version (8 bytes), manager_ctx, deleter, then flags.
FLAGS_OFFSET = 8 + 2 * ctypes.sizeof(ctypes.c_void_p)
READ_ONLY, IS_COPIED = 1, 2

_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def layer():
    rng = np.random.default_rng(11)
    model = nw.Model(n_layers=1, d_model=D_MODEL, n_heads=HEADS, d_head=D_HEAD, d_ff=D_FF)
    model.set_weight("mlp.to_residual", 0, rng.standard_normal((D_FF, D_MODEL), dtype=np.float32))
    store = nw.ActivationStore()
    store.put("mlp.post_act", 0, rng.standard_normal((T, D_FF), dtype=np.float32))
    return model, store, rng.standard_normal((T, D_MODEL), dtype=np.float32)


MODEL, STORE, G = layer()
EXPECTED = nw.derive(MODEL, STORE, DST, 0, direction=G)


class Flagged:
    """A tensor exported through versioned DLPack with extra flags set (what a producer whose
    array is immutable, or which exports copies, reports)."""

    def __init__(self, t, flags):
        self.t, self.flags, self.calls = t, flags, []

    def __dlpack_device__(self):
        return self.t.__dlpack_device__()

    def __dlpack__(self, **kw):
        self.calls.append(kw)
        cap = self.t.__dlpack__(max_version=(1, 0))
        ptr = _get_pointer(cap, b"dltensor_versioned")
        ctypes.c_uint64.from_address(ptr + FLAGS_OFFSET).value |= self.flags
        return cap


class Legacy:
    """A producer from before DLPack 1.0: __dlpack__ takes no keywords."""

    def __init__(self, t):
        self.t = t

    def __dlpack_device__(self):
        return self.t.__dlpack_device__()

    def __dlpack__(self):
        return self.t.__dlpack__()


class CopiesOnly:
    """A producer that can only export copies: copy=False is a BufferError (the array API's rule)."""

    def __init__(self, t):
        self.t = t

    def __dlpack_device__(self):
        return self.t.__dlpack_device__()

    def __dlpack__(self, *, max_version=None, copy=None, **kw):
        if copy is False:
            raise BufferError("this producer always copies")
        return self.t.clone().__dlpack__()


@pytest.mark.parametrize("flags", [READ_ONLY, IS_COPIED, READ_ONLY | IS_COPIED])
def test_flagged_exports_are_refused_and_untouched(flags):
    out = torch.full(EXPECTED.shape, 7.0)
    wrapped = Flagged(out, flags)
    with pytest.raises(nw.NodeWriteValueError, match="READ_ONLY" if flags & READ_ONLY else "IS_COPIED"):
        nw.derive(MODEL, STORE, DST, 0, direction=G, out=wrapped)
    with pytest.raises(nw.NodeWriteValueError):
        nw.node_writes(MODEL, STORE, "mlp_neuron", 0, [[0, 0]], out=Flagged(torch.full((1, D_MODEL), 7.0), flags))
    assert torch.all(out == 7.0)
    assert wrapped.calls[0] == {"max_version": (1, 0), "copy": False}


def test_unflagged_versioned_export_is_written():
    out = torch.full(EXPECTED.shape, 7.0)
    nw.derive(MODEL, STORE, DST, 0, direction=G, out=Flagged(out, 0))
    np.testing.assert_array_equal(out.numpy(), EXPECTED)


def test_read_only_numpy_array_behind_dlpack_is_refused():
    # numpy (>= 2.1) flags a non-writeable array READ_ONLY when asked for a versioned capsule.
    arr = np.full(EXPECTED.shape, 7.0, np.float32)
    arr.setflags(write=False)
    if not hasattr(arr, "__dlpack__"):
        pytest.skip("numpy without __dlpack__")
    try:
        arr.__dlpack__(max_version=(1, 0))
    except TypeError:
        pytest.skip("numpy without versioned DLPack")

    class OnlyDLPack:
        def __dlpack_device__(self):
            return arr.__dlpack_device__()

        def __dlpack__(self, **kw):
            return arr.__dlpack__(**kw)

    with pytest.raises(nw.NodeWriteValueError, match="read-only"):
        nw.derive(MODEL, STORE, DST, 0, direction=G, out=OnlyDLPack())
    assert np.all(arr == 7.0)


def test_legacy_producer_is_written():
    out = torch.full(EXPECTED.shape, 7.0)
    nw.derive(MODEL, STORE, DST, 0, direction=G, out=Legacy(out))
    np.testing.assert_array_equal(out.numpy(), EXPECTED)


def test_producer_that_only_copies_is_refused():
    out = torch.full(EXPECTED.shape, 7.0)
    with pytest.raises(nw.NodeWriteValueError, match="copy=False"):
        nw.derive(MODEL, STORE, DST, 0, direction=G, out=CopiesOnly(out))
    assert torch.all(out == 7.0)


def test_inputs_are_not_asked_for_writable_memory():
    # A read-only export is a fine input: direction, weights and activations are only read.
    g = Flagged(torch.from_numpy(G.copy()), READ_ONLY | IS_COPIED)
    np.testing.assert_array_equal(nw.derive(MODEL, STORE, DST, 0, direction=g), EXPECTED)
    assert g.calls == [{}]


def test_writing_advances_the_version_counter():
    out = torch.zeros(EXPECTED.shape)
    v0 = out._version
    nw.derive(MODEL, STORE, DST, 0, direction=G, out=out)
    assert out._version == v0 + 1
    rows = torch.zeros((2, D_MODEL))
    v0 = rows._version
    nw.node_writes(MODEL, STORE, "mlp_neuron", 0, [[0, 0], [1, 1]], out=rows)
    assert rows._version == v0 + 1
    # a refused call writes nothing and leaves the counter alone
    v1 = out._version
    with pytest.raises(nw.NodeWriteError):
        nw.derive(MODEL, STORE, DST, 0, direction=G[:, :3], out=out)
    assert out._version == v1


def test_autograd_refuses_values_nodewrite_overwrote():
    # torch saved `z` for the gradient of w; overwriting it must not give a silently wrong gradient.
    w = torch.ones(EXPECTED.shape, requires_grad=True)
    z = torch.zeros(EXPECTED.shape)
    y = (w * z).sum()
    nw.derive(MODEL, STORE, DST, 0, direction=G, out=z)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    # written before the graph is built: the gradient is the new values
    w2 = torch.ones(EXPECTED.shape, requires_grad=True)
    z2 = torch.zeros(EXPECTED.shape)
    nw.derive(MODEL, STORE, DST, 0, direction=G, out=z2)
    (w2 * z2).sum().backward()
    np.testing.assert_array_equal(w2.grad.numpy(), EXPECTED)


def test_inference_tensors_are_written():
    with torch.inference_mode():
        out = torch.zeros(EXPECTED.shape)
    nw.derive(MODEL, STORE, DST, 0, direction=G, out=out)
    np.testing.assert_array_equal(out.numpy(), EXPECTED)
