// Held tensors: see views.hpp.
#include "views.hpp"

#include <algorithm>
#include <cstring>

#include <pybind11/numpy.h>

#include "args.hpp"
#include "dlpack.hpp"
#include "errors.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

int64_t dlpack_device_type(py::handle device) {
    if (!PyTuple_Check(device.ptr()) || PyTuple_Size(device.ptr()) < 1) return -1;
    try {
        return to_int(PyTuple_GET_ITEM(device.ptr(), 0), "device type", INT32_MIN, INT32_MAX,
                      NW_ERR_INVALID_ARGUMENT);
    } catch (NwFailure &) {
        return -1;
    }
}

namespace {

PyObject *masked_array_type = nullptr;  // numpy.ma.MaskedArray, set at import
// Interned attribute names of torch tensors (check_not_moved), set at import.
PyObject *str_version = nullptr, *str_data_ptr = nullptr, *str_shape = nullptr, *str_stride = nullptr;

void set_contiguous_strides(Held &h) {
    h.strides.assign(h.shape.size(), 1);
    int64_t s = 1;
    for (size_t i = h.shape.size(); i-- > 0;) {
        h.strides[i] = s;
        int64_t d = h.shape[i] > 0 ? h.shape[i] : 1;
        if (s > INT64_MAX / d) s = INT64_MAX;  // the library refuses the overflowing view
        else s *= d;
    }
}

// The object torch's module dict holds under `torch`, borrowed, or nullptr (torch not loaded:
// then no torch tensor exists).
PyObject *loaded_torch() { return PyDict_GetItemString(PyImport_GetModuleDict(), "torch"); }

// torch.Tensor when torch is loaded and obj is one (any subclass), else null; never fails.
py::object torch_tensor_type_of(py::handle obj) {
    PyObject *torch = loaded_torch();
    if (torch == nullptr) return py::object();
    PyObject *type = PyObject_GetAttrString(torch, "Tensor");
    if (type == nullptr) { PyErr_Clear(); return py::object(); }
    py::object tensor_type = py::reinterpret_steal<py::object>(type);
    const int is_tensor = PyObject_IsInstance(obj.ptr(), type);
    if (is_tensor != 1) { PyErr_Clear(); return py::object(); }
    return tensor_type;
}

// A class's __torch_dispatch__ as defined (the function under the classmethod), or null.
py::object dispatch_impl(py::handle cls, const std::string &what) {
    py::object m = getattr_or_null(cls, "__torch_dispatch__", what);
    if (!m) return m;
    py::object f = getattr_or_null(m, "__func__", what);
    return f ? f : m;
}

}  // namespace

void refuse_values_outside_memory(py::handle obj, const std::string &what) {
    // torch's lazy flags: a tensor whose value is -memory (neg bit), conj(memory) (conj bit) or
    // zeros without memory (zero tensor). DLPack exports the raw memory, so refuse them.
    static const char *const flags[][2] = {
        {"is_neg", "has torch's negative bit set (a lazy negation such as torch._neg_view or "
                   "the imaginary part of a conjugate view): its memory holds -value; call "
                   ".resolve_neg() first"},
        {"is_conj", "has torch's conjugate bit set (a lazy .conj()); call .resolve_conj() first"},
        {"_is_zerotensor", "is a torch zero tensor (no memory behind it); pass "
                           "torch.zeros(...) instead"},
    };
    for (const auto &f : flags) {
        py::object fn = getattr_or_null(obj, f[0], what);
        if (!fn || !PyCallable_Check(fn.ptr())) continue;
        py::object r = call_checked(fn, what + ": ." + f[0] + "()");
        int t = PyObject_IsTrue(r.ptr());
        if (t < 0) take_python_error();
        if (t == 1) fail(NW_ERR_INVALID_ARGUMENT, what + ": the tensor " + f[1]);
    }
    // A subclass with its own __torch_dispatch__ (MaskedTensor, DTensor, fake, functional and
    // quantized wrapper tensors) is more than its memory, or has none of its own; its DLPack
    // export, when it has one, holds part of the value (MaskedTensor's drops the mask).
    py::object tensor_type = torch_tensor_type_of(obj);
    if (!tensor_type || reinterpret_cast<PyObject *>(Py_TYPE(obj.ptr())) == tensor_type.ptr()) return;
    py::object own = dispatch_impl(py::handle(reinterpret_cast<PyObject *>(Py_TYPE(obj.ptr()))), what);
    py::object base = dispatch_impl(tensor_type, what);
    if (own && base && !own.is(base))
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": a " + type_name(obj) + ", a torch tensor subclass with its own "
                    "__torch_dispatch__: its value is not just its memory; convert it to a "
                    "plain tensor first (a MaskedTensor: .to_tensor(fill_value))");
}

namespace {

bool from_buffer(py::handle obj, Held &h, const std::string &what, bool writing) {
    if (!PyObject_CheckBuffer(obj.ptr())) return false;
    if (masked_array_type != nullptr &&
        PyObject_TypeCheck(obj.ptr(), (PyTypeObject *)masked_array_type))
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": a numpy masked array; its mask lives outside the memory nodewrite reads. "
                    "Pass .filled(0) (or .data if the mask is meant to be ignored)");
    if (PyObject_GetBuffer(obj.ptr(), &h.buffer,
                           PyBUF_STRIDES | PyBUF_FORMAT | (writing ? PyBUF_WRITABLE : 0)) != 0) {
        std::string text = take_python_error();
        if (writing) fail(NW_ERR_INVALID_ARGUMENT, what + ": not writable (" + text + ")");
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": cannot read the buffer of " + type_name(obj) + ": " + text);
    }
    h.has_buffer = true;
    const Py_buffer &b = h.buffer;
    if (b.ndim < 0 || b.ndim > kMaxNdim)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": the buffer claims " + std::to_string(b.ndim) +
                                          " dimensions");
    if (b.suboffsets != nullptr)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": indirect buffers (suboffsets) are not supported");
    if (b.itemsize <= 0 || (b.ndim > 1 && b.shape == nullptr) || (b.buf == nullptr && b.len > 0))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": the buffer of " + type_name(obj) + " is malformed");
    const char *fmt = b.format ? b.format : "B";
    std::string format = fmt;
    if (*fmt == '@' || *fmt == '=' || *fmt == '<') ++fmt;
    // Little-endian machines only (x86_64, aarch64): '>' / '!' are byte-swapped data.
    int32_t dtype = -1;
    if (std::strcmp(fmt, "f") == 0 && b.itemsize == 4) dtype = NW_DTYPE_F32;
    else if (std::strcmp(fmt, "e") == 0 && b.itemsize == 2) dtype = NW_DTYPE_F16;
    else if (std::strcmp(fmt, "d") == 0 && b.itemsize == 8) dtype = NW_DTYPE_F64;
    if (dtype < 0)
        fail(NW_ERR_UNSUPPORTED_DTYPE,
             what + ": unsupported element type (buffer format '" + format +
                 "'); expected float32, float16 or float64 (bfloat16 through a torch tensor); "
                 "nodewrite never converts inputs implicitly");
    h.dtype = dtype;
    h.data = b.buf;
    h.shape.resize(static_cast<size_t>(b.ndim));
    for (int i = 0; i < b.ndim; ++i) h.shape[i] = b.shape ? b.shape[i] : 0;
    if (b.ndim == 1 && b.shape == nullptr) h.shape[0] = b.len / b.itemsize;
    if (b.strides == nullptr) {
        set_contiguous_strides(h);
    } else {
        h.strides.resize(static_cast<size_t>(b.ndim));
        for (int i = 0; i < b.ndim; ++i) {
            if (b.strides[i] % b.itemsize != 0)
                fail(NW_ERR_INVALID_ARGUMENT,
                     what + ": byte stride " + std::to_string(b.strides[i]) + " of dimension " +
                         std::to_string(i) + " is not a multiple of the item size " +
                         std::to_string(b.itemsize));
            h.strides[i] = b.strides[i] / b.itemsize;
        }
    }
    return true;
}

[[noreturn]] void fail_device(py::handle obj, const std::string &what, const std::string &fallback) {
    std::string dev = fallback;
    try {
        py::object d = getattr_or_null(obj, "device", what);
        if (d) {
            PyObject *s = PyObject_Str(d.ptr());
            if (s != nullptr) {
                const char *c = PyUnicode_AsUTF8(s);
                if (c != nullptr) dev = std::string("device '") + c + "'";
                Py_DECREF(s);
            }
            if (PyErr_Occurred()) take_python_error();
        }
    } catch (NwFailure &) {
    }
    fail(NW_ERR_INVALID_ARGUMENT,
         what + ": the tensor is on " + dev +
             "; nodewrite reads CPU memory only (move it with .cpu() first)");
}

// A CPU tensor whose memory is not strided elements (torch's mkldnn layout): say so, not "device".
static void refuse_unstrided_layout(py::handle obj, const std::string &what, const std::string &error) {
    py::object layout = getattr_or_null(obj, "layout", what);
    if (!layout) return;
    PyObject *s = PyObject_Str(layout.ptr());
    if (s == nullptr) { take_python_error(); return; }
    const char *c = PyUnicode_AsUTF8(s);
    std::string name = c != nullptr ? c : "";
    Py_DECREF(s);
    if (PyErr_Occurred()) take_python_error();
    if (name.empty() || name == "torch.strided") return;
    fail(NW_ERR_INVALID_ARGUMENT, what + ": the tensor's layout is " + name +
                                      ", not strided memory (convert it with .to_dense() first): " + error);
}

bool from_dlpack(py::handle obj, Held &h, const std::string &what, bool writing) {
    py::object dlpack = getattr_or_null(obj, "__dlpack__", what);
    if (!dlpack) return false;
    py::object src = py::reinterpret_borrow<py::object>(obj);
    refuse_values_outside_memory(src, what);
    // Then the device, without importing anything: __dlpack_device__() -> (type, id).
    py::object dev_fn = getattr_or_null(src, "__dlpack_device__", what);
    if (dev_fn) {
        int64_t device_type = -1;
        PyObject *r = PyObject_CallNoArgs(dev_fn.ptr());
        if (r == nullptr) {
            std::string text = take_python_error();  // e.g. torch's meta device, an mkldnn tensor
            refuse_unstrided_layout(src, what, text);
            fail_device(src, what, "a device DLPack cannot export");
        }
        py::object dev = py::reinterpret_steal<py::object>(r);
        device_type = dlpack_device_type(dev);
        if (device_type != dl::kCPU)
            fail_device(src, what, "DLPack device type " + std::to_string(device_type));
    }
    // A tensor that requires grad refuses DLPack export; a detached view shares memory.
    py::object rg = getattr_or_null(src, "requires_grad", what);
    py::object detach = getattr_or_null(src, "detach", what);
    if (rg && detach && PyBool_Check(rg.ptr()) && rg.ptr() == Py_True)
        src = call_checked(detach, what + ": cannot detach");
    py::object export_fn = getattr_or_null(src, "__dlpack__", what);
    PyObject *cap = nullptr;
    if (writing) {
        // The producer's own memory, with its flags: DLPack 1.0 and copy=False. A producer
        // without these keywords (TypeError) is asked again the legacy way.
        py::dict kw;
        kw["max_version"] = py::make_tuple(1, 0);
        kw["copy"] = py::bool_(false);
        cap = PyObject_Call(export_fn.ptr(), py::tuple().ptr(), kw.ptr());
        if (cap == nullptr && PyErr_ExceptionMatches(PyExc_TypeError)) PyErr_Clear();
        else if (cap == nullptr) {
            std::string text = take_python_error();
            fail(NW_ERR_INVALID_ARGUMENT, what + ": " + type_name(obj) +
                                              " cannot export its own memory through DLPack "
                                              "(copy=False): " + text);
        }
    }
    if (cap == nullptr) cap = PyObject_CallNoArgs(export_fn.ptr());
    if (cap == nullptr) {
        std::string text = take_python_error();
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": cannot export " + type_name(obj) + " through DLPack: " + text);
    }
    py::object capsule = py::reinterpret_steal<py::object>(cap);
    const dl::Tensor *t = nullptr;
    uint64_t flags = 0;
    if (PyCapsule_IsValid(capsule.ptr(), "dltensor")) {
        auto *m = static_cast<dl::ManagedTensor *>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
        if (m != nullptr) t = &m->dl_tensor;
    } else if (PyCapsule_IsValid(capsule.ptr(), "dltensor_versioned")) {
        auto *m = static_cast<dl::ManagedTensorVersioned *>(
            PyCapsule_GetPointer(capsule.ptr(), "dltensor_versioned"));
        if (m != nullptr && m->version.major == 1) {
            t = &m->dl_tensor;
            flags = m->flags;
        }
    }
    PyErr_Clear();
    if (t == nullptr)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": __dlpack__ did not return a usable DLPack capsule "
                                             "(a 'dltensor' capsule, or 'dltensor_versioned' 1.x)");
    // The capsule is not renamed "used_dltensor": its own destructor frees the tensor
    // when we drop it.
    h.capsule = capsule;
    if (writing && (flags & dl::kFlagReadOnly))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": " + type_name(obj) +
                                          " exports its memory read-only (DLPack flag READ_ONLY); "
                                          "pass an array nodewrite may write into");
    if (writing && (flags & dl::kFlagIsCopied))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": " + type_name(obj) +
                                          " exports a copy of its memory (DLPack flag IS_COPIED): "
                                          "results written there would not reach it");
    // Every field checked before anything is read through it.
    if (t->device.device_type != dl::kCPU)
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": the DLPack tensor is on device type " +
                 std::to_string(t->device.device_type) +
                 "; nodewrite reads CPU memory only (move it with .cpu() first)");
    if (t->ndim < 0 || t->ndim > kMaxNdim)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": the DLPack tensor claims " +
                                          std::to_string(t->ndim) + " dimensions (0 to " +
                                          std::to_string(kMaxNdim) + " accepted)");
    if (t->ndim > 0 && t->shape == nullptr)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": the DLPack tensor has no shape array");
    int32_t dtype = -1;
    if (t->dtype.lanes == 1) {
        if (t->dtype.code == dl::kFloat && t->dtype.bits == 32) dtype = NW_DTYPE_F32;
        else if (t->dtype.code == dl::kFloat && t->dtype.bits == 16) dtype = NW_DTYPE_F16;
        else if (t->dtype.code == dl::kFloat && t->dtype.bits == 64) dtype = NW_DTYPE_F64;
        else if (t->dtype.code == dl::kBfloat && t->dtype.bits == 16) dtype = NW_DTYPE_BF16;
    }
    if (dtype < 0)
        fail(NW_ERR_UNSUPPORTED_DTYPE,
             what + ": unsupported element type (DLPack code " + std::to_string(t->dtype.code) +
                 ", " + std::to_string(t->dtype.bits) + " bits, " +
                 std::to_string(t->dtype.lanes) +
                 " lanes); expected float32, float16, bfloat16 or float64; nodewrite never "
                 "converts inputs implicitly");
    h.shape.assign(t->shape, t->shape + t->ndim);
    bool empty = false;
    for (int64_t d : h.shape) {
        if (d < 0)
            fail(NW_ERR_INVALID_ARGUMENT, what + ": the DLPack tensor has a negative dimension");
        if (d == 0) empty = true;
    }
    if (t->data == nullptr) {
        if (t->byte_offset != 0)
            fail(NW_ERR_INVALID_ARGUMENT,
                 what + ": the DLPack tensor has no data pointer but a byte offset of " +
                     std::to_string(t->byte_offset));
        if (!empty)
            fail(NW_ERR_INVALID_ARGUMENT,
                 what + ": the DLPack tensor has no data pointer but holds elements");
        h.data = nullptr;
    } else {
        uintptr_t base = reinterpret_cast<uintptr_t>(t->data);
        if (t->byte_offset > UINTPTR_MAX - base)
            fail(NW_ERR_INVALID_ARGUMENT, what + ": the DLPack tensor's byte offset overflows");
        h.data = reinterpret_cast<const void *>(base + t->byte_offset);
    }
    h.dtype = dtype;
    if (t->strides == nullptr) set_contiguous_strides(h);
    else h.strides.assign(t->strides, t->strides + t->ndim);
    return true;
}

}  // namespace

void init_view_types() {
    str_version = PyUnicode_InternFromString("_version");
    str_data_ptr = PyUnicode_InternFromString("data_ptr");
    str_shape = PyUnicode_InternFromString("shape");
    str_stride = PyUnicode_InternFromString("stride");
    py::object ma = py::module_::import("numpy.ma");
    masked_array_type = py::object(ma.attr("MaskedArray")).release().ptr();
}

namespace {

HeldPtr hold(py::handle obj, const std::string &what, bool writing) {
    if (obj.is_none())
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected a numpy array or a CPU tensor, got None");
    auto h = std::make_shared<Held>();
    h->owner = py::reinterpret_borrow<py::object>(obj);
    if (from_buffer(obj, *h, what, writing)) return h;
    if (from_dlpack(obj, *h, what, writing)) return h;
    fail(NW_ERR_INVALID_ARGUMENT, what + ": expected a numpy array or a CPU tensor "
                                         "(buffer protocol or DLPack), got " + type_name(obj));
}

// torch.autograd.graph.increment_version (torch >= 2.1), else torch._C._increment_version.
py::object version_bump(py::handle torch) {
    PyObject *graph = PyObject_GetAttrString(torch.ptr(), "autograd");
    if (graph != nullptr) {
        PyObject *g = PyObject_GetAttrString(graph, "graph");
        Py_DECREF(graph);
        if (g != nullptr) {
            PyObject *f = PyObject_GetAttrString(g, "increment_version");
            Py_DECREF(g);
            if (f != nullptr) return py::reinterpret_steal<py::object>(f);
        }
    }
    PyErr_Clear();
    PyObject *c = PyObject_GetAttrString(torch.ptr(), "_C");
    if (c != nullptr) {
        PyObject *f = PyObject_GetAttrString(c, "_increment_version");
        Py_DECREF(c);
        if (f != nullptr) return py::reinterpret_steal<py::object>(f);
    }
    PyErr_Clear();
    return py::object();
}

}  // namespace

namespace {

bool is_numpy_array(py::handle obj) {
    return py::detail::npy_api::get().PyArray_Check_(obj.ptr());
}

void record_numpy(Held &h) {
    const auto *a = py::detail::array_proxy(h.owner.ptr());
    h.producer = Held::Producer::numpy;
    h.np_data = a->data;
    h.np_dims.assign(a->dimensions, a->dimensions + a->nd);
    h.np_strides.assign(a->strides, a->strides + a->nd);
}

// An int attribute or method result of a torch tensor; -1 (and no Python error) when unreadable.
int64_t torch_int(py::handle t, PyObject *name, bool call) {
    PyObject *r = call ? PyObject_CallMethodNoArgs(t.ptr(), name) : PyObject_GetAttr(t.ptr(), name);
    if (r == nullptr) { PyErr_Clear(); return -1; }
    long long v = PyLong_AsLongLong(r);
    Py_DECREF(r);
    if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    return static_cast<int64_t>(v);
}

// A tuple of ints (torch.Size, stride()) as a vector; false when unreadable.
bool torch_ints(py::handle t, PyObject *name, bool call, std::vector<int64_t> &out) {
    PyObject *r = call ? PyObject_CallMethodNoArgs(t.ptr(), name) : PyObject_GetAttr(t.ptr(), name);
    if (r == nullptr) { PyErr_Clear(); return false; }
    bool ok = PyTuple_Check(r);
    out.clear();
    for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(r); ++i) {
        long long v = PyLong_AsLongLong(PyTuple_GET_ITEM(r, i));
        if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); ok = false; }
        out.push_back(static_cast<int64_t>(v));
    }
    Py_DECREF(r);
    return ok;
}

void record_torch(Held &h) {
    py::handle t = h.owner;
    int64_t version = torch_int(t, str_version, false), ptr = torch_int(t, str_data_ptr, true);
    if (version < 0 || ptr < 0 || !torch_ints(t, str_shape, false, h.torch_shape) ||
        !torch_ints(t, str_stride, true, h.torch_strides))
        return;  // not a tensor we can watch (the DLPack export is what is read)
    h.producer = Held::Producer::torch;
    h.torch_version = version;
    h.torch_ptr = ptr;
}

[[noreturn]] void fail_moved(const Held &h, const char *producer, const char *how) {
    fail(NW_ERR_STALE_INPUT,
         h.what + ": the " + producer + " it borrows moved or was resized since it was handed over (" +
             how + "); nothing was read. Hand it over again (ActivationStore.put / Model.set_weight), "
                   "or keep its storage in place while nodewrite borrows it");
}

}  // namespace

void check_not_moved(const Held &h) {
    if (h.producer == Held::Producer::numpy) {
        const auto *a = py::detail::array_proxy(h.owner.ptr());
        if (a->data != h.np_data || a->nd != static_cast<int>(h.np_dims.size()) ||
            !std::equal(h.np_dims.begin(), h.np_dims.end(), a->dimensions) ||
            !std::equal(h.np_strides.begin(), h.np_strides.end(), a->strides))
            fail_moved(h, "numpy array", "its data pointer, shape or strides changed: resize(refcheck=False)?");
        return;
    }
    if (h.producer != Held::Producer::torch) return;
    py::handle t = h.owner;
    int64_t version = torch_int(t, str_version, false);
    if (version == h.torch_version) return;  // nothing was done to it in place
    std::vector<int64_t> shape, strides;
    if (torch_int(t, str_data_ptr, true) != h.torch_ptr || !torch_ints(t, str_shape, false, shape) ||
        !torch_ints(t, str_stride, true, strides) || shape != h.torch_shape || strides != h.torch_strides)
        fail_moved(h, "torch tensor", "its data_ptr(), shape or stride() changed: set_ or resize_?");
    h.torch_version = version;  // written in place only: its values are read, as always
}

HeldPtr hold_tensor(py::handle obj, const std::string &what) {
    HeldPtr h = hold(obj, what, false);
    h->what = what;
    if (is_numpy_array(obj)) record_numpy(*h);
    else if (h->capsule && torch_tensor_type_of(obj)) record_torch(*h);
    return h;
}

HeldPtr hold_writable_tensor(py::handle obj, const std::string &what) { return hold(obj, what, true); }

void mark_written(py::handle obj) {
    if (!torch_tensor_type_of(obj)) return;
    py::object bump = version_bump(py::handle(loaded_torch()));
    if (!bump) return;
    PyObject *r = PyObject_CallOneArg(bump.ptr(), obj.ptr());
    if (r == nullptr) PyErr_Clear();  // e.g. an inference tensor: it has no version counter
    else Py_DECREF(r);
}

}  // namespace nwpy
