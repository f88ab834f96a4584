"""Issue 8: hostile Python callers. One test per numbered defect of v1 (each failed, hung or
crashed on v1), plus the classes they belong to. Threaded and crash-prone bodies run in a child
process with a timeout (nw_child.run_in_child), so a hang or a crash fails the test."""

import textwrap

import numpy as np
import pytest

import nodewrite as nw
import nw_fixtures as F
from nw_child import run_in_child

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def small():
    m = nw.Model(n_layers=1, d_model=4, n_heads=2, d_head=3, d_ff=3)
    m.set_weight("mlp.to_residual", 0, np.arange(12, dtype=np.float32).reshape(3, 4))
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, np.ones((2, 3), np.float32))
    return m, s


# ------------------------------------------------------------- 1. first calls from threads


def test_1_first_calls_from_eight_threads_do_not_deadlock():
    """v1: 8 threads making their first node_write at once (behind a barrier) in a fresh
    process hung 20 times in 20 (numpy's C API set up lazily while the GIL was released)."""
    body = """
    import threading, numpy as np, nodewrite as nw
    m = nw.Model(n_layers=1, d_model=8, n_heads=2, d_head=4, d_ff=16)
    m.set_weight("mlp.to_residual", 0, np.ones((16, 8), np.float32))
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, np.ones((5, 16), np.float32))
    barrier = threading.Barrier(8)
    out = []
    def work(i):
        barrier.wait()
        out.append(nw.node_write(m, s, nw.NodeIndex("mlp_neuron", 0, (i % 5, i))).sum())
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert len(out) == 8 and all(v == 8.0 for v in out), out
    print("ok")
    """
    for _ in range(3):  # each run is a fresh process: the first calls happen once per process
        assert run_in_child(body, timeout=60).strip() == "ok"


# ------------------------------------------------- 2. use-after-free in one-shot node_write


def test_2_one_shot_node_write_never_reads_a_replaced_weight():
    """v1: 8 threads calling node_write on layer 0 while another replaced that layer's
    borrowed weight (set_weight(copy=False)) and dropped the old array read freed memory
    (96-125 NaN rows per 3 s run). Every result must be the answer of the old or the new
    weight (they are equal here), exactly."""
    body = """
    import threading, time, numpy as np, nodewrite as nw
    d_model, d_ff, T = 64, 64, 4
    m = nw.Model(n_layers=1, d_model=d_model, n_heads=1, d_head=1, d_ff=d_ff)
    w = np.full((d_ff, d_model), 0.5, np.float32)
    current = [w.copy()]
    m.set_weight("mlp.to_residual", 0, current[0], copy=False)
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, np.full((T, d_ff), 2.0, np.float32))
    node = nw.NodeIndex("mlp_neuron", 0, (1, 7))
    expected = nw.node_write(m, s, node)
    stop = time.monotonic() + 3.0
    bad = []
    def reader():
        while time.monotonic() < stop:
            out = nw.node_write(m, s, node)
            if not np.array_equal(out, expected):
                bad.append(out)
    def writer():
        while time.monotonic() < stop:
            old, new = current[0], w.copy()
            m.set_weight("mlp.to_residual", 0, new, copy=False)
            # Once set_weight has returned, nothing may read the old weight: poison it (what
            # freeing it would do), then drop it.
            old.fill(np.nan)
            current[0] = new
    ts = [threading.Thread(target=reader) for _ in range(8)] + [threading.Thread(target=writer)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not bad, f"{len(bad)} results read the replaced (freed) weight"
    print("ok")
    """
    assert run_in_child(body, timeout=120).strip() == "ok"


# -------------------------------------------------------------- 3. torch's negative bit


@needs_torch
def test_3_torch_negative_and_conjugate_bits_are_never_misread():
    """v1: store.put("mlp.post_act", 0, torch._neg_view(torch.ones(1, 2))) gave +1 where the
    answer is -1 (DLPack exports the raw memory). Refused now, with what to do; resolved
    tensors give the right sign."""
    m = nw.Model(n_layers=1, d_model=2, n_heads=1, d_head=1, d_ff=2)
    m.set_weight("mlp.to_residual", 0, np.eye(2, dtype=np.float32))
    s = nw.ActivationStore()
    neg = torch._neg_view(torch.ones(1, 2))
    assert neg.is_neg()
    with pytest.raises(nw.NodeWriteValueError, match="negative bit.*resolve_neg"):
        s.put("mlp.post_act", 0, neg)
    for copy in (True, False):
        with pytest.raises(nw.NodeWriteValueError, match="negative bit"):
            m.set_weight("mlp.to_residual", 0, torch._neg_view(torch.eye(2)), copy=copy)
        with pytest.raises(nw.NodeWriteValueError, match="negative bit"):
            m.set_autoencoder("mlp_autoencoder_latent", 0, torch._neg_view(torch.eye(2)),
                              input="mlp_post_act", copy=copy)
    s.put("mlp.post_act", 0, neg.resolve_neg())
    out = nw.node_write(m, s, nw.NodeIndex("mlp_neuron", 0, (0, 0)))
    assert out[0, 0] == -1.0
    # the conjugate bit (complex tensors are refused for their dtype, and never misread)
    with pytest.raises(nw.NodeWriteValueError):
        s.put("mlp.post_act", 0, torch.ones(1, 2, dtype=torch.complex64).conj())
    # zero tensors have no memory behind them
    if hasattr(torch, "_efficientzerotensor"):
        with pytest.raises(nw.NodeWriteValueError, match="zero tensor"):
            s.put("mlp.post_act", 0, torch._efficientzerotensor((1, 2)))


@needs_torch
def test_3b_torch_dispatch_subclasses_are_refused_plain_subclasses_read():
    """A MaskedTensor's DLPack export is its data without the mask: read, masked-out values
    would count. Every tensor subclass with its own __torch_dispatch__ (MaskedTensor, fake,
    DTensor, quantized wrappers) is refused, as input, index array or out=; plain subclasses
    (nn.Parameter, as_subclass) are read as the tensors they are."""
    import warnings

    m = nw.Model(n_layers=1, d_model=2, n_heads=1, d_head=1, d_ff=2)
    m.set_weight("mlp.to_residual", 0, np.eye(2, dtype=np.float32))
    s = nw.ActivationStore()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MaskedTensor is a prototype
        from torch.masked import masked_tensor

        masked = masked_tensor(torch.full((1, 2), 5.0), torch.tensor([[True, False]]))
        idx = masked_tensor(torch.zeros((1, 2), dtype=torch.int64), torch.ones((1, 2), dtype=torch.bool))
        with pytest.raises(nw.NodeWriteValueError, match="MaskedTensor.*__torch_dispatch__"):
            s.put("mlp.post_act", 0, masked)
        with pytest.raises(nw.NodeWriteValueError, match="__torch_dispatch__"):
            m.set_weight("mlp.to_residual", 0, masked_tensor(torch.eye(2), torch.eye(2) > 0))
        s.put("mlp.post_act", 0, torch.ones(1, 2))
        with pytest.raises(nw.NodeWriteValueError, match="indices: .*__torch_dispatch__"):
            nw.node_writes(m, s, "mlp_neuron", 0, idx)
        out = masked_tensor(torch.full((1, 2), 7.0), torch.ones((1, 2), dtype=torch.bool))
        with pytest.raises(nw.NodeWriteValueError, match="out: .*__torch_dispatch__"):
            nw.node_writes(m, s, "mlp_neuron", 0, [[0, 0]], out=out)
        assert torch.all(out.get_data() == 7.0)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        fake = torch.ones(1, 2)
    with pytest.raises(nw.NodeWriteValueError, match="FakeTensor"):
        s.put("mlp.post_act", 0, fake)
    sub = type("Plain", (torch.Tensor,), {})
    for t in (torch.nn.Parameter(torch.full((1, 2), 3.0)), torch.full((1, 2), 3.0).as_subclass(sub)):
        s.put("mlp.post_act", 0, t)
        assert nw.node_write(m, s, nw.NodeIndex("mlp_neuron", 0, (0, 1)))[0, 1] == 3.0


# ----------------------------------------------- 4. objects made without __init__


def test_4_objects_made_without_init_raise_on_every_method():
    """v1: nw.Model.__new__(nw.Model).d_model returned garbage, node_write with it segfaulted,
    set_weight hung; the same for ActivationStore and NodeWriteDeriver."""
    body = """
    import numpy as np, nodewrite as nw
    class SubModel(nw.Model): pass
    class SubStore(nw.ActivationStore): pass
    class SubDeriver(nw.NodeWriteDeriver): pass
    good_m = nw.Model(1, 4, 2, 3, 3)
    good_m.set_weight("mlp.to_residual", 0, np.ones((3, 4), np.float32))
    good_s = nw.ActivationStore()
    good_s.put("mlp.post_act", 0, np.ones((2, 3), np.float32))
    node = nw.NodeIndex("mlp_neuron", 0, (0, 0))
    w = np.ones((3, 4), np.float32)
    calls = {
        "Model": [lambda m: m.d_model, lambda m: m.n_layers, lambda m: m.n_heads, lambda m: m.d_head,
                  lambda m: m.d_ff, lambda m: repr(m), lambda m: m.weights(), lambda m: m.autoencoders(),
                  lambda m: m.set_weight("mlp.to_residual", 0, w),
                  lambda m: m.set_weight("mlp.to_residual", 0, w, copy=False),
                  lambda m: m.set_autoencoder("mlp_autoencoder_latent", 0, np.ones((2, 3), np.float32), input="mlp_post_act"),
                  lambda m: nw.node_write(m, good_s, node), lambda m: nw.node_write_vectors(m, good_s, [node]),
                  lambda m: nw.NodeWriteDeriver(m, node)],
        "ActivationStore": [lambda s: s.put("mlp.post_act", 0, w), lambda s: s.remove("mlp.post_act", 0),
                            lambda s: s.clear(), lambda s: s.keys(), lambda s: s.get("mlp.post_act", 0),
                            lambda s: len(s), lambda s: ("mlp.post_act", 0) in s, lambda s: repr(s),
                            lambda s: nw.node_write(good_m, s, node), lambda s: nw.node_write_vectors(good_m, s, [node]),
                            lambda s: nw.NodeWriteDeriver(good_m, node).derive(s),
                            lambda s: nw.NodeWriteDeriver(good_m, node).derive_vector(s)],
        "NodeWriteDeriver": [lambda d: d.requirements, lambda d: d.model, lambda d: d.node, lambda d: repr(d),
                             lambda d: d.derive(good_s), lambda d: d.derive_vector(good_s)],
    }
    classes = {"Model": (nw.Model, SubModel), "ActivationStore": (nw.ActivationStore, SubStore),
               "NodeWriteDeriver": (nw.NodeWriteDeriver, SubDeriver)}
    n = 0
    for name, fns in calls.items():
        for cls in classes[name]:
            obj = cls.__new__(cls)
            for fn in fns:
                try:
                    fn(obj)
                except nw.NodeWriteValueError as e:
                    assert "not initialised" in str(e), str(e)
                    n += 1
                else:
                    raise AssertionError(f"{cls.__name__}: no error")
    print(n)
    """
    assert int(run_in_child(body, timeout=60).strip()) == 2 * (14 + 12 + 6)


# ------------------------------------------------------------ 5. malformed DLPack capsules


DLPACK_PRODUCER = """
import ctypes, numpy as np, nodewrite as nw
class Device(ctypes.Structure): _fields_ = [("type", ctypes.c_int32), ("id", ctypes.c_int32)]
class DType(ctypes.Structure): _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]
class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", Device), ("ndim", ctypes.c_int32), ("dtype", DType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]
class Managed(ctypes.Structure):
    _fields_ = [("t", Tensor), ("ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]
new_capsule = ctypes.pythonapi.PyCapsule_New
new_capsule.restype = ctypes.py_object
new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
class Producer:
    # A DLPack producer whose capsule says whatever the test wants.
    def __init__(self, data, ndim, shape, strides=None, offset=0, code=2, bits=32, lanes=1, device=1):
        self.shape = (ctypes.c_int64 * max(len(shape), 1))(*shape) if shape is not None else None
        self.strides = (ctypes.c_int64 * len(strides))(*strides) if strides is not None else None
        self.m = Managed()
        t = self.m.t
        t.data, t.ndim, t.byte_offset = data, ndim, offset
        t.device.type, t.dtype.code, t.dtype.bits, t.dtype.lanes = device, code, bits, lanes
        t.shape = ctypes.cast(self.shape, ctypes.POINTER(ctypes.c_int64)) if self.shape is not None else None
        t.strides = ctypes.cast(self.strides, ctypes.POINTER(ctypes.c_int64)) if self.strides is not None else None
    def __dlpack__(self, **kwargs):
        return new_capsule(ctypes.addressof(self.m), b"dltensor", None)
    def __dlpack_device__(self):
        return (1, 0)
"""


def test_5_malformed_dlpack_capsules_are_refused_before_reading_through_them():
    """v1: data = NULL with a non-zero byte_offset was accepted by put and crashed the derive;
    ndim = 2**31 - 1 with a two-entry shape array made put read far past it."""
    body = DLPACK_PRODUCER + textwrap.dedent("""
    m = nw.Model(1, 4, 2, 3, 3)
    m.set_weight("mlp.to_residual", 0, np.ones((3, 4), np.float32))
    buf = np.ones((2, 3), np.float32)
    ptr = buf.ctypes.data
    bad = [
        Producer(None, 2, [2, 3], offset=4096),          # NULL data with an offset
        Producer(None, 2, [2, 3]),                        # NULL data with elements
        Producer(ptr, 2**31 - 1, [2, 3]),                # absurd ndim
        Producer(ptr, -1, [2, 3]),                       # negative ndim
        Producer(ptr, 2, None),                          # NULL shape
        Producer(ptr, 2, [2, -3]),                       # negative dimension
        Producer(ptr, 2, [2, 3], offset=2**64 - 8),      # offset wrapping the address space
        Producer(ptr, 2, [2, 3], device=2),              # not CPU memory
        Producer(ptr, 2, [2, 3], code=0),                # an int dtype
        Producer(ptr, 2, [2, 3], lanes=4),               # vector lanes
    ]
    for p in bad:
        s = nw.ActivationStore()
        try:
            s.put("mlp.post_act", 0, p)
        except nw.NodeWriteValueError as e:
            assert str(e).startswith("activation mlp.post_act at layer 0: "), str(e)
        else:
            raise AssertionError("accepted a malformed capsule")
        for copy in (True, False):
            try:
                m.set_weight("mlp.to_residual", 0, p, copy=copy)
            except nw.NodeWriteValueError:
                pass
            else:
                raise AssertionError("accepted a malformed capsule as a weight")
    # a well-formed one (strided, through byte_offset) is read correctly
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, Producer(ptr, 2, [2, 3], strides=[3, 1]))
    assert nw.node_write(m, s, nw.NodeIndex("mlp_neuron", 0, (1, 2)))[1, 0] == 1.0
    s.put("mlp.post_act", 0, Producer(ptr - 12, 2, [2, 3], offset=12))
    # an empty tensor may have no data pointer
    s.put("mlp.post_act", 0, Producer(None, 2, [0, 3]))
    print("ok")
    """)
    assert run_in_child(body, timeout=60).strip() == "ok"


# ------------------------------------------------------- 6. errors that escaped the contract


def test_6a_huge_outputs_are_node_write_memory_errors():
    """v1: derive_vector with d_model = 2**40 raised numpy's own MemoryError;
    node_write_vectors with 2**40 or 2**62 nodes a plain MemoryError (std::bad_alloc) or
    ValueError ("cannot create std::vector ...")."""
    big = nw.Model(n_layers=1, d_model=2**40, n_heads=1, d_head=1, d_ff=1)
    big.set_weight("mlp.to_residual", 0, np.broadcast_to(np.float32(1), (1, 2**40)), copy=False)
    s = nw.ActivationStore()
    s.put("mlp.post_act", 0, np.ones((1, 1), np.float32))
    d = nw.NodeWriteDeriver(big, nw.NodeIndex("mlp_neuron", 0, (0, 0)))
    with pytest.raises(nw.NodeWriteMemoryError):
        d.derive_vector(s)
    with pytest.raises(nw.NodeWriteMemoryError):
        d.derive(s)
    m, s = small()

    class Claims:
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return nw.NodeIndex("mlp_neuron", 0, (0, 0))

    for n in (2**40, 2**62, 2**63 - 1):
        with pytest.raises(nw.NodeWriteMemoryError):
            nw.node_write_vectors(m, s, Claims(n))


class Interrupting:
    """Raises KeyboardInterrupt from whatever the binding may ask of it (an index, an item, a
    name's str or Enum value, a DLPack export)."""

    def __index__(self):
        raise KeyboardInterrupt

    def __getitem__(self, i):
        raise KeyboardInterrupt

    def __len__(self):
        return 2

    def __str__(self):
        raise KeyboardInterrupt

    @property
    def value(self):
        raise KeyboardInterrupt

    def __dlpack__(self, **kwargs):
        raise KeyboardInterrupt

    def __dlpack_device__(self):
        return (1, 0)


def test_6b_keyboard_interrupt_and_system_exit_pass_through_unchanged():
    """v1: a KeyboardInterrupt raised in a sequence's __getitem__, an index's __index__ or a
    __dlpack__ came back as NodeWriteValueError. Anything that is not an Exception passes."""
    m, s = small()
    k = Interrupting()

    class Node:
        node_type, layer_index = "mlp_neuron", 0

        def __init__(self, idx):
            self.tensor_indices = idx

    cases = [
        lambda: nw.node_write_vectors(m, s, k),
        lambda: nw.node_write(m, s, Node((k, 0))),
        lambda: nw.node_write(m, s, Node(k)),
        lambda: nw.NodeIndex("mlp_neuron", 0, (k, 0)),
        lambda: nw.NodeIndex("mlp_neuron", k, (0, 0)),
        lambda: s.put("mlp.post_act", 0, k),
        lambda: s.put("mlp.post_act", k, np.ones((2, 3), np.float32)),
        lambda: m.set_weight("mlp.to_residual", 0, k),
        lambda: m.set_weight("mlp.to_residual", k, np.ones((3, 4), np.float32)),
        lambda: nw.Model(k, 4, 2, 3, 3),
    ]
    for fn in cases:
        with pytest.raises(KeyboardInterrupt):
            fn()

    class Exiting:
        def __index__(self):
            raise SystemExit(3)

    with pytest.raises(SystemExit):
        nw.node_write(m, s, Node((Exiting(), 0)))


def test_6c_copy_accepts_only_a_bool():
    """v1: copy="no" is truthy and copied."""
    m, _ = small()
    w = np.ones((3, 4), np.float32)
    for bad in ("no", "False", 0, 1, None, [], 0.0):
        with pytest.raises(nw.NodeWriteValueError, match="copy: expected True or False"):
            m.set_weight("mlp.to_residual", 0, w, copy=bad)
        with pytest.raises(nw.NodeWriteValueError, match="copy: expected True or False"):
            m.set_autoencoder("mlp_autoencoder_latent", 0, np.ones((2, 3), np.float32),
                              input="mlp_post_act", copy=bad)
    m.set_weight("mlp.to_residual", 0, w, copy=np.bool_(False))
    assert m.weights()[("mlp.to_residual", 0)]["copied"] is False


def test_6d_masked_arrays_are_refused():
    """v1: a numpy masked array was read as its raw data, the mask ignored."""
    m, s = small()
    a = np.ma.masked_array(np.ones((2, 3), np.float32), mask=[[0, 1, 0], [0, 0, 0]])
    with pytest.raises(nw.NodeWriteValueError, match="masked array"):
        s.put("mlp.post_act", 0, a)
    with pytest.raises(nw.NodeWriteValueError, match="masked array"):
        m.set_weight("mlp.to_residual", 0, np.ma.masked_array(np.ones((3, 4), np.float32)))
    s.put("mlp.post_act", 0, a.filled(0))


def test_6e_argument_list_mistakes_are_type_errors_with_python_wording():
    """Decided: a wrong argument list (unknown or repeated keyword, missing or extra argument)
    is a TypeError worded as Python words it; a wrong value (type, range, name) is a
    NodeWriteError (ValueError / IndexError / KeyError). The README says exactly this."""
    m, s = small()
    node = nw.NodeIndex("mlp_neuron", 0, (0, 0))
    cases = [
        (lambda: nw.Model(n_layers=1, d_models=4, n_heads=1, d_head=1, d_ff=1), "unexpected keyword argument 'd_models'"),
        (lambda: nw.Model(1, 4, 1, 1), "missing 1 required argument: 'd_ff'"),
        (lambda: nw.Model(1, 4, 1, 1, 1, 1), "takes 5 positional arguments but 6 were given"),
        (lambda: m.set_weight("mlp.to_residual", 0, np.ones((3, 4), np.float32), copyy=False), "unexpected keyword argument 'copyy'"),
        (lambda: m.set_weight("mlp.to_residual", 0, name="x"), "multiple values for argument 'name'"),
        (lambda: s.put("mlp.post_act", 0), "missing 1 required argument: 'tensor'"),
        (lambda: nw.node_write(m, s), "missing 1 required argument: 'node'"),
        (lambda: nw.node_write_vectors(m, s, [node], 1), "takes 3 positional arguments"),
        (lambda: nw.NodeWriteDeriver(model=m, nod=node), "unexpected keyword argument 'nod'"),
        (lambda: nw.NodeWriteDeriver(m, node).derive(), "missing 1 required argument: 'store'"),
    ]
    for fn, text in cases:
        with pytest.raises(TypeError) as info:
            fn()
        assert not isinstance(info.value, nw.NodeWriteError)
        assert text in str(info.value), str(info.value)
        assert "incompatible" not in str(info.value)
    for fn in (lambda: nw.Model(1, 4.0, 1, 1, 1), lambda: nw.node_write(m, s, None),
               lambda: s.put(3, 0, np.ones((2, 3), np.float32)), lambda: m.set_weight("mlp.to_residual", "0", np.ones((3, 4), np.float32))):
        with pytest.raises(nw.NodeWriteValueError):
            fn()


# ----------------------------------------------------------- 7. requirements is immutable


def test_7_requirements_cannot_change_what_the_deriver_reports():
    """v1: deriver.requirements returned the deriver's own list; appending to it changed
    what the deriver reported."""
    m, s = small()
    d = nw.NodeWriteDeriver(m, nw.NodeIndex("mlp_neuron", 0, (0, 0)))
    r = d.requirements
    assert r == (("mlp.post_act", 0),)
    with pytest.raises(AttributeError):
        r.append(("attn.v", 0))  # type: ignore[attr-defined]
    as_list = list(r)
    as_list.append(("attn.v", 0))
    assert d.requirements == (("mlp.post_act", 0),)


# ------------------------------------------------------------- the classes around them


def test_lifetimes_a_finaliser_that_calls_back_does_not_deadlock():
    """A borrowed object whose finaliser runs nodewrite code on the same model and store when
    it is replaced: the binding drops replaced objects after unlocking."""
    body = """
    import numpy as np, nodewrite as nw
    m = nw.Model(1, 4, 2, 3, 3)
    s = nw.ActivationStore()
    calls = []
    class W(np.ndarray):
        def __del__(self):
            m.set_weight("mlp.to_residual", 0, np.ones((3, 4), np.float32))
            s.put("mlp.post_act", 0, np.ones((2, 3), np.float32))
            calls.append(nw.node_write(m, s, nw.NodeIndex("mlp_neuron", 0, (0, 0)))[0, 0])
    m.set_weight("mlp.to_residual", 0, np.ones((3, 4), np.float32).view(W), copy=False)
    s.put("mlp.post_act", 0, np.ones((2, 3), np.float32).view(W))
    m.set_weight("mlp.to_residual", 0, np.ones((3, 4), np.float32), copy=False)
    s.put("mlp.post_act", 0, np.ones((2, 3), np.float32))
    s.clear()
    print(len(calls))
    """
    assert int(run_in_child(body, timeout=60).strip()) >= 2


def test_layouts_and_buffers_that_lie_are_refused():
    m, s = small()
    for bad in (np.ones((2, 3), ">f4"), np.ones((2, 3), np.int32), np.ones((2, 3), np.complex64),
                np.ones((2, 3), np.float32).view([("a", np.float32)]).reshape(2, 3) if False else np.ones((2, 3), object),
                memoryview(b"abcdefghijkl").cast("B", (2, 6)), "abc", 3.0, None):
        with pytest.raises(nw.NodeWriteValueError):
            s.put("mlp.post_act", 0, bad)
    # unaligned float32 data is read correctly
    raw = np.zeros(2 * 3 * 4 + 1, np.uint8)
    un = raw[1:].view(np.float32).reshape(2, 3)
    un[:] = 2.0
    s.put("mlp.post_act", 0, un)
    assert nw.node_write(m, s, nw.NodeIndex("mlp_neuron", 0, (1, 1)))[1, 0] == 2.0 * 4.0


@needs_torch
def test_every_non_cpu_device_gets_the_move_it_message():
    s = nw.ActivationStore()
    with pytest.raises(nw.NodeWriteValueError) as info:
        s.put("mlp.post_act", 0, torch.ones(2, 3, device="meta"))
    text = str(info.value)
    assert "device 'meta'" in text and ".cpu()" in text and "Traceback" not in text and "\n" not in text

    class FakeCuda:
        device = "cuda:0"

        def __dlpack__(self, **kwargs):
            raise AssertionError("must not be exported")

        def __dlpack_device__(self):
            return (2, 0)

    with pytest.raises(nw.NodeWriteValueError, match=r"cuda:0.*\.cpu\(\)"):
        s.put("mlp.post_act", 0, FakeCuda())


def test_api_misuse_reinit_copy_and_foreign_self():
    m, s = small()
    m.__init__(1, 8, 2, 3, 3)  # pybind11 ignores a second __init__: the object is unchanged
    assert m.d_model == 4 and ("mlp.to_residual", 0) in m.weights()
    import copy
    import pickle

    # Models pickle by value (protocol 5, nodewrite.pickling); a copy is a new model that holds the same.
    for fn in (copy.copy, copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x, protocol=5))):
        c = fn(m)
        assert isinstance(c, nw.Model) and c is not m and c.d_model == 4
        assert c.weights().keys() == m.weights().keys()
    with pytest.raises(nw.NodeWriteValueError, match="expected a nodewrite.Model"):
        nw.Model.set_weight(s, "mlp.to_residual", 0, np.ones((3, 4), np.float32))
    with pytest.raises(nw.NodeWriteValueError, match="store: expected a nodewrite.ActivationStore"):
        nw.node_write(m, m, nw.NodeIndex("mlp_neuron", 0, (0, 0)))


@needs_torch
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_unstrided_and_unexportable_tensors_name_the_cause_on_one_line():
    s = nw.ActivationStore()
    cases = [(torch.ones(2, 3).to_mkldnn(), r"layout is torch\._mkldnn.*to_dense\(\)"),
             (torch.ones(2, 3).to_sparse(), r"cannot export .*strided"),
             (torch.quantize_per_tensor(torch.ones(2, 3), 0.1, 0, torch.qint8), r"cannot export .*QInt")]
    for tensor, pattern in cases:
        with pytest.raises(nw.NodeWriteValueError, match=pattern) as info:
            s.put("mlp.post_act", 0, tensor)
        text = str(info.value)
        assert "\n" not in text and "At:" not in text, text
        assert "mlp.post_act" in text
    with pytest.raises(nw.NodeWriteKeyError):
        s.get("mlp.post_act", 0)  # nothing was stored
