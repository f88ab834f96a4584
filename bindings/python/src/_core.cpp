// nodewrite._core: a thin pybind11 layer over the public C header include/nodewrite.h.
//
// Rules this file keeps (see shared CONVENTIONS, "The Python binding"):
// - It calls only functions declared in nodewrite.h.
// - Inputs are never copied or cast: a numpy array (buffer protocol) or a CPU tensor
//   (DLPack, e.g. torch) is passed to C as a view with ELEMENT strides, and the
//   Python object (plus its Py_buffer / DLPack capsule) is kept alive for as long as
//   C may read it.
// - Every failure becomes an NwFailure{status, message}; one translator hands it to
//   nodewrite.errors._raise_for, the single status -> exception mapping.
// - The GIL is released only in inner scopes around the C calls that do the work,
//   after everything has been read from Python objects.
//
// Locking (so that no sequence of Python calls, from any number of threads, can make
// the library read freed or changing memory):
// - Writers (Model.set_*, ActivationStore.put/remove/clear) hold the GIL for their
//   whole duration and take the object's mutex exclusively.
// - Readers that run without the GIL (derive, node_write, node_write_vectors) take the
//   mutexes shared, and never wait for the GIL while holding one. Readers that run
//   with the GIL held (deriver creation, output shape) need no mutex: no writer can
//   run while they hold the GIL.
// - A thread never waits for a mutex while holding the GIL unless it is a writer
//   waiting for readers, and readers do not need the GIL to finish: no deadlock.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "nodewrite.h"

namespace py = pybind11;

namespace {

// ------------------------------------------------------------------ errors

struct NwFailure {
    nw_status status;
    std::string message;
};

[[noreturn]] void fail(nw_status status, std::string message) {
    throw NwFailure{status, std::move(message)};
}

// Call right after a failed library call, on the same thread.
[[noreturn]] void fail_from_library(nw_status status) {
    throw NwFailure{status, std::string(nw_last_error_message())};
}

inline void check(nw_status status) {
    if (status != NW_OK) fail_from_library(status);
}

std::string type_name(py::handle obj) {
    if (obj.is_none()) return "None";
    return std::string(Py_TYPE(obj.ptr())->tp_name);
}

std::string describe_python_error() {
    // Turns the pending Python exception into text and clears it.
    py::error_already_set e;
    return std::string(e.what());
}

// -------------------------------------------------------- Python -> C scalars

// An integer argument (int, numpy integer, anything with __index__).
// Non-integers -> NW_ERR_INVALID_ARGUMENT; values outside [lo, hi] -> range_status.
int64_t to_int(py::handle obj, const std::string &what, int64_t lo, int64_t hi,
               nw_status range_status) {
    if (obj.is_none() || PyBool_Check(obj.ptr()) || PyFloat_Check(obj.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected an integer, got " + type_name(obj));
    PyObject *index = PyNumber_Index(obj.ptr());
    if (index == nullptr) {
        PyErr_Clear();
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected an integer, got " + type_name(obj));
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
    std::string text;
    if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        PyObject *s = PyObject_Str(index);
        if (s != nullptr) {
            const char *c = PyUnicode_AsUTF8(s);
            if (c != nullptr) text = c;
            Py_DECREF(s);
        }
        PyErr_Clear();
        Py_DECREF(index);
        fail(range_status, what + " " + text + " is out of range");
    }
    Py_DECREF(index);
    if (v < lo || v > hi)
        fail(range_status, what + " " + std::to_string(v) + " is out of range");
    return static_cast<int64_t>(v);
}

int32_t to_layer(py::handle obj) {
    return static_cast<int32_t>(
        to_int(obj, "layer", INT32_MIN, INT32_MAX, NW_ERR_INDEX_OUT_OF_RANGE));
}

std::string to_name(py::handle obj, const std::string &what) {
    // Accepts a str, or an Enum whose value is a str (TDB's NodeType etc.).
    py::handle h = obj;
    py::object value;
    if (!PyUnicode_Check(h.ptr()) && py::hasattr(h, "value")) {
        value = h.attr("value");
        h = value;
    }
    if (!PyUnicode_Check(h.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected a str, got " + type_name(obj));
    Py_ssize_t size = 0;
    const char *c = PyUnicode_AsUTF8AndSize(h.ptr(), &size);
    if (c == nullptr) {
        PyErr_Clear();
        fail(NW_ERR_INVALID_ARGUMENT, what + ": not a valid UTF-8 string");
    }
    if (static_cast<size_t>(size) != std::strlen(c))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": contains a NUL character");
    return std::string(c, static_cast<size_t>(size));
}

template <typename F>
int32_t name_to_enum(py::handle obj, const std::string &what, F from_name) {
    std::string name = to_name(obj, what);
    int32_t out = -1;
    nw_status st = from_name(name.c_str(), &out);
    if (st != NW_OK) {
        std::string msg = nw_last_error_message();
        fail(st, what + ": " + (msg.empty() ? "unknown name '" + name + "'" : msg));
    }
    return out;
}

bool to_bool(py::handle obj, const std::string &what) {
    int t = PyObject_IsTrue(obj.ptr());
    if (t < 0) fail(NW_ERR_INVALID_ARGUMENT, what + ": " + describe_python_error());
    return t == 1;
}

// ------------------------------------------------------------------ DLPack

// DLPack's ABI (dlpack.h, stable since v0.6; versioned capsules since v1.0).
namespace dl {
struct Device {
    int32_t device_type;
    int32_t device_id;
};
struct DataType {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
};
struct Tensor {
    void *data;
    Device device;
    int32_t ndim;
    DataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
};
struct ManagedTensor {
    Tensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(ManagedTensor *);
};
struct Version {
    uint32_t major;
    uint32_t minor;
};
struct ManagedTensorVersioned {
    Version version;
    void *manager_ctx;
    void (*deleter)(ManagedTensorVersioned *);
    uint64_t flags;
    Tensor dl_tensor;
};
constexpr int32_t kCPU = 1;
constexpr uint8_t kFloat = 2;
constexpr uint8_t kBfloat = 4;
}  // namespace dl

// ------------------------------------------------------------ tensor views

// A Python object C borrows from, kept alive (with its Py_buffer or DLPack capsule)
// as long as this exists. Destroy only with the GIL held.
struct Held {
    py::object owner;    // the object the caller passed
    py::object capsule;  // DLPack capsule (its destructor calls the producer's deleter)
    Py_buffer buffer{};
    bool has_buffer = false;
    const void *data = nullptr;
    int32_t dtype = NW_DTYPE_F32;
    std::vector<int64_t> shape, strides;

    Held() = default;
    Held(const Held &) = delete;
    Held &operator=(const Held &) = delete;
    ~Held() {
        if (has_buffer) PyBuffer_Release(&buffer);
    }

    nw_tensor_view view() const {
        nw_tensor_view v;
        v.data = data;
        v.dtype = dtype;
        v.ndim = static_cast<int32_t>(shape.size());
        v.shape = shape.empty() ? nullptr : shape.data();
        v.strides = strides.empty() ? nullptr : strides.data();
        return v;
    }
};
using HeldPtr = std::shared_ptr<Held>;

void set_contiguous_strides(Held &h) {
    h.strides.assign(h.shape.size(), 1);
    int64_t s = 1;
    for (size_t i = h.shape.size(); i-- > 0;) {
        h.strides[i] = s;
        s *= (h.shape[i] > 0 ? h.shape[i] : 1);
    }
}

bool from_buffer(py::handle obj, Held &h, const std::string &what) {
    if (!PyObject_CheckBuffer(obj.ptr())) return false;
    if (PyObject_GetBuffer(obj.ptr(), &h.buffer, PyBUF_STRIDES | PyBUF_FORMAT) != 0)
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": cannot read the buffer of " + type_name(obj) + ": " +
                 describe_python_error());
    h.has_buffer = true;
    const Py_buffer &b = h.buffer;
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

bool from_dlpack(py::handle obj, Held &h, const std::string &what) {
    if (!py::hasattr(obj, "__dlpack__")) return false;
    py::object src = py::reinterpret_borrow<py::object>(obj);
    // Device first, without importing anything: __dlpack_device__() -> (type, id).
    if (py::hasattr(src, "__dlpack_device__")) {
        int32_t device_type = -1;
        try {
            py::tuple dev = src.attr("__dlpack_device__")();
            device_type = dev[0].cast<int32_t>();
        } catch (py::error_already_set &e) {
            fail(NW_ERR_INVALID_ARGUMENT, what + ": __dlpack_device__ failed: " + e.what());
        } catch (py::cast_error &) {
            fail(NW_ERR_INVALID_ARGUMENT, what + ": __dlpack_device__ returned no device type");
        }
        if (device_type != dl::kCPU) {
            std::string dev = "device type " + std::to_string(device_type);
            if (py::hasattr(src, "device")) {
                try { dev = py::str(src.attr("device")).cast<std::string>(); } catch (...) {}
            }
            fail(NW_ERR_INVALID_ARGUMENT,
                 what + ": tensor is on " + dev +
                     "; nodewrite reads CPU memory only (move it with .cpu() first)");
        }
    }
    // A tensor that requires grad refuses DLPack export; a detached view shares memory.
    if (py::hasattr(src, "requires_grad") && py::hasattr(src, "detach")) {
        try {
            if (to_bool(src.attr("requires_grad"), what)) src = src.attr("detach")();
        } catch (py::error_already_set &e) {
            fail(NW_ERR_INVALID_ARGUMENT, what + ": cannot detach: " + e.what());
        }
    }
    py::object capsule;
    try {
        capsule = src.attr("__dlpack__")();
    } catch (py::error_already_set &e) {
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": cannot export " + type_name(obj) + " through DLPack: " + e.what());
    }
    const dl::Tensor *t = nullptr;
    if (PyCapsule_IsValid(capsule.ptr(), "dltensor")) {
        auto *m = static_cast<dl::ManagedTensor *>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
        if (m != nullptr) t = &m->dl_tensor;
    } else if (PyCapsule_IsValid(capsule.ptr(), "dltensor_versioned")) {
        auto *m = static_cast<dl::ManagedTensorVersioned *>(
            PyCapsule_GetPointer(capsule.ptr(), "dltensor_versioned"));
        if (m != nullptr && m->version.major == 1) t = &m->dl_tensor;
    }
    PyErr_Clear();
    if (t == nullptr)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": __dlpack__ did not return a usable DLPack capsule");
    // The capsule is not renamed "used_dltensor": its own destructor frees the tensor
    // when we drop it.
    h.capsule = capsule;
    if (t->device.device_type != dl::kCPU)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": DLPack tensor is not in CPU memory");
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
    if (t->ndim < 0 || (t->ndim > 0 && t->shape == nullptr))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": DLPack tensor has an invalid shape");
    h.dtype = dtype;
    h.data = static_cast<const char *>(t->data) + t->byte_offset;
    h.shape.assign(t->shape, t->shape + t->ndim);
    if (t->strides == nullptr) set_contiguous_strides(h);
    else h.strides.assign(t->strides, t->strides + t->ndim);
    return true;
}

// Reads a view of obj (numpy array, buffer, or DLPack CPU tensor). No copy, no cast.
HeldPtr hold_tensor(py::handle obj, const std::string &what) {
    auto h = std::make_shared<Held>();
    h->owner = py::reinterpret_borrow<py::object>(obj);
    if (obj.is_none())
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected a numpy array or a CPU tensor, got None");
    if (from_buffer(obj, *h, what)) return h;
    if (from_dlpack(obj, *h, what)) return h;
    fail(NW_ERR_INVALID_ARGUMENT, what + ": expected a numpy array or a CPU tensor "
                                         "(buffer protocol or DLPack), got " + type_name(obj));
}

// ------------------------------------------------------------------- nodes

nw_node_index node_from_py(py::handle node) {
    if (node.is_none()) fail(NW_ERR_INVALID_ARGUMENT, "node: expected a NodeIndex, got None");
    // One attribute lookup each (NodeIndex, TDB's NodeIndex, or anything alike).
    py::object none = py::none();
    py::object node_type = py::getattr(node, "node_type", none);
    py::object layer = py::getattr(node, "layer_index", none);
    if (layer.is_none()) layer = py::getattr(node, "layer", none);
    py::object idx = py::getattr(node, "tensor_indices", none);
    if (node_type.is_none() || layer.is_none() || idx.is_none())
        fail(NW_ERR_INVALID_ARGUMENT,
             "node: expected a NodeIndex (node_type, layer_index, tensor_indices), got " +
                 type_name(node));
    nw_node_index n;
    std::memset(&n, 0, sizeof n);
    n.node_type = name_to_enum(node_type, "node_type", nw_node_type_from_name);
    n.layer = to_layer(layer);
    if (!PySequence_Check(idx.ptr()) || PyUnicode_Check(idx.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT,
             "tensor_indices: expected a sequence of integers, got " + type_name(idx));
    Py_ssize_t len = PySequence_Size(idx.ptr());
    if (len < 0) fail(NW_ERR_INVALID_ARGUMENT, "tensor_indices: " + describe_python_error());
    if (len > 4)
        fail(NW_ERR_INVALID_ARGUMENT,
             "tensor_indices: " + std::to_string(len) + " indices; a node has 2 or 3");
    n.n_indices = static_cast<int32_t>(len);
    for (Py_ssize_t i = 0; i < len; ++i) {
        PyObject *item = PySequence_GetItem(idx.ptr(), i);
        if (item == nullptr)
            fail(NW_ERR_INVALID_ARGUMENT, "tensor_indices: " + describe_python_error());
        py::object it = py::reinterpret_steal<py::object>(item);
        n.indices[i] = to_int(it, "tensor_indices[" + std::to_string(i) + "]", INT64_MIN,
                              INT64_MAX, NW_ERR_INDEX_OUT_OF_RANGE);
    }
    return n;
}

// ------------------------------------------------------------------ objects

struct Model {
    nw_model *model = nullptr;
    nw_model_dims dims{};
    mutable std::shared_mutex mu;
    // Borrowed weights currently set: (kind 0 = weight / 1 = autoencoder, enum, layer).
    std::map<std::tuple<int, int32_t, int32_t>, HeldPtr> borrowed;

    ~Model() { nw_model_destroy(model); }

    std::vector<HeldPtr> snapshot() const {
        std::vector<HeldPtr> v;
        v.reserve(borrowed.size());
        for (const auto &kv : borrowed) v.push_back(kv.second);
        return v;
    }
};

struct Store {
    nw_store *store = nullptr;
    mutable std::shared_mutex mu;
    std::map<std::pair<int32_t, int32_t>, HeldPtr> entries;

    ~Store() { nw_store_destroy(store); }
};

struct Deriver {
    nw_deriver *deriver = nullptr;
    py::object model_obj;
    py::object node_obj;
    std::vector<HeldPtr> keep;  // borrowed weights the deriver captured
    int64_t d_model = 0;
    py::list requirements;

    ~Deriver() { nw_deriver_destroy(deriver); }
};

Model &as_model(py::handle obj) {
    if (!py::isinstance<Model>(obj))
        fail(NW_ERR_INVALID_ARGUMENT, "model: expected a nodewrite.Model, got " + type_name(obj));
    return obj.cast<Model &>();
}

Store &as_store(py::handle obj) {
    if (!py::isinstance<Store>(obj))
        fail(NW_ERR_INVALID_ARGUMENT,
             "store: expected a nodewrite.ActivationStore, got " + type_name(obj));
    return obj.cast<Store &>();
}

// Allocates a C-contiguous float32 array; absurd sizes are an error, not a crash.
py::array_t<float> new_output(int64_t rows, int64_t cols) {
    if (rows < 0 || cols < 0 || (cols > 0 && rows > INT64_MAX / 4 / cols))
        fail(NW_ERR_OUT_OF_MEMORY, "output of shape (" + std::to_string(rows) + ", " +
                                       std::to_string(cols) + ") is too large");
    try {
        return py::array_t<float>(std::vector<py::ssize_t>{static_cast<py::ssize_t>(rows),
                                                           static_cast<py::ssize_t>(cols)});
    } catch (py::error_already_set &e) {
        if (e.matches(PyExc_MemoryError))
            fail(NW_ERR_OUT_OF_MEMORY, "cannot allocate an output of shape (" +
                                           std::to_string(rows) + ", " + std::to_string(cols) +
                                           ")");
        throw;
    }
}

constexpr const char *kStoreChanged =
    "the ActivationStore kept changing shape in another thread during the call";

// ------------------------------------------------------------ Model methods

std::unique_ptr<Model> model_new(py::object n_layers, py::object d_model, py::object n_heads,
                                 py::object d_head, py::object d_ff) {
    auto m = std::make_unique<Model>();
    nw_model_dims d;
    d.n_layers = to_int(n_layers, "n_layers", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_model = to_int(d_model, "d_model", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.n_heads = to_int(n_heads, "n_heads", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_head = to_int(d_head, "d_head", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_ff = to_int(d_ff, "d_ff", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    check(nw_model_create(&d, &m->model));
    check(nw_model_dims_get(m->model, &m->dims));
    return m;
}

void model_set_weight(Model &m, py::object name, py::object layer, py::object w,
                      py::object copy) {
    int32_t weight = name_to_enum(name, "weight", nw_weight_from_name);
    int32_t l = to_layer(layer);
    bool do_copy = to_bool(copy, "copy");
    HeldPtr h = hold_tensor(w, "weight " + to_name(name, "weight"));
    nw_tensor_view v = h->view();
    std::unique_lock<std::shared_mutex> lock(m.mu);  // waits for GIL-free readers only
    nw_status st = nw_model_set_weight(m.model, weight, l, &v, do_copy ? NW_COPY : NW_BORROW);
    if (st != NW_OK) fail_from_library(st);
    auto key = std::make_tuple(0, weight, l);
    if (do_copy) m.borrowed.erase(key);
    else m.borrowed[key] = h;
}

void model_set_autoencoder(Model &m, py::object node_type, py::object layer, py::object decoder,
                           py::object input, py::object copy) {
    int32_t nt = name_to_enum(node_type, "node_type", nw_node_type_from_name);
    int32_t l = to_layer(layer);
    int32_t in = name_to_enum(input, "input", nw_autoencoder_input_from_name);
    bool do_copy = to_bool(copy, "copy");
    HeldPtr h = hold_tensor(decoder, "decoder");
    nw_tensor_view v = h->view();
    std::unique_lock<std::shared_mutex> lock(m.mu);
    nw_status st =
        nw_model_set_autoencoder(m.model, nt, l, in, &v, do_copy ? NW_COPY : NW_BORROW);
    if (st != NW_OK) fail_from_library(st);
    auto key = std::make_tuple(1, nt, l);
    if (do_copy) m.borrowed.erase(key);
    else m.borrowed[key] = h;
}

// ------------------------------------------------------------ Store methods

std::pair<int32_t, int32_t> activation_key(py::object name, py::object layer) {
    int32_t act = name_to_enum(name, "activation", nw_activation_from_name);
    int32_t l = to_layer(layer);
    return {act, l};
}

void store_put(Store &s, py::object name, py::object layer, py::object t) {
    auto key = activation_key(name, layer);
    HeldPtr h = hold_tensor(t, "activation " + to_name(name, "activation"));
    nw_tensor_view v = h->view();
    std::unique_lock<std::shared_mutex> lock(s.mu);
    nw_status st = nw_store_put(s.store, key.first, key.second, &v);
    if (st != NW_OK) fail_from_library(st);
    s.entries[key] = h;
}

void store_remove(Store &s, py::object name, py::object layer) {
    auto key = activation_key(name, layer);
    std::unique_lock<std::shared_mutex> lock(s.mu);
    nw_status st = nw_store_remove(s.store, key.first, key.second);
    if (st != NW_OK) fail_from_library(st);
    s.entries.erase(key);
}

void store_clear(Store &s) {
    std::unique_lock<std::shared_mutex> lock(s.mu);
    nw_store_clear(s.store);
    s.entries.clear();
}

py::list store_keys(const Store &s) {
    py::list out;
    for (const auto &kv : s.entries) {
        const char *n = nw_activation_name(kv.first.first);
        out.append(py::make_tuple(py::str(n ? n : "?"), kv.first.second));
    }
    return out;
}

py::object store_get(const Store &s, py::object name, py::object layer) {
    auto key = activation_key(name, layer);
    auto it = s.entries.find(key);
    if (it == s.entries.end())
        fail(NW_ERR_MISSING_INPUT, "activation " + to_name(name, "activation") + " at layer " +
                                       std::to_string(key.second) + " is not in the store");
    return it->second->owner;
}

bool store_contains(const Store &s, py::object key) {
    if (!PyTuple_Check(key.ptr()) || PyTuple_Size(key.ptr()) != 2) return false;
    py::tuple t = py::reinterpret_borrow<py::tuple>(key);
    try {
        auto k = activation_key(t[0], t[1]);
        return s.entries.count(k) != 0;
    } catch (NwFailure &) {
        return false;
    }
}

// ---------------------------------------------------------- Deriver methods

std::unique_ptr<Deriver> deriver_new(py::object model, py::object node) {
    Model &m = as_model(model);
    nw_node_index n = node_from_py(node);
    auto d = std::make_unique<Deriver>();
    // GIL held: no writer runs; concurrent GIL-free readers only read the model.
    check(nw_node_write_deriver_create(m.model, &n, &d->deriver));
    d->keep = m.snapshot();
    d->model_obj = model;
    d->node_obj = node;
    d->d_model = m.dims.d_model;
    // Asking with a small buffer first: a too-small capacity is NW_ERR_BUFFER_TOO_SMALL
    // with *count set to the number needed.
    std::vector<nw_requirement> req(4);
    size_t count = 0;
    nw_status st = nw_deriver_requirements(d->deriver, req.data(), req.size(), &count);
    if (st == NW_ERR_BUFFER_TOO_SMALL && count > req.size()) {
        req.resize(count);
        st = nw_deriver_requirements(d->deriver, req.data(), req.size(), &count);
    }
    check(st);
    for (size_t i = 0; i < count && i < req.size(); ++i) {
        const char *name = nw_activation_name(req[i].activation);
        d->requirements.append(py::make_tuple(py::str(name ? name : "?"), req[i].layer));
    }
    return d;
}

// The (T, d_model) output of a deriver into a new array. The shape is read with the GIL held
// (no writer can run), the array allocated, and the shape read again under the store's lock
// without the GIL: if a writer changed the store in between, try again with the new shape.
// model_mu (for one-shot calls) keeps borrowed weights from being replaced during the call.
py::array_t<float> derive_full(const nw_deriver *deriver, Store &s,
                               std::shared_mutex *model_mu) {
    for (int attempt = 0;; ++attempt) {
        int64_t shape[2] = {0, 0};
        check(nw_deriver_output_shape(deriver, s.store, shape));
        py::array_t<float> out = new_output(shape[0], shape[1]);
        float *p = out.mutable_data();
        size_t n = static_cast<size_t>(shape[0]) * static_cast<size_t>(shape[1]);
        nw_status st = NW_OK;
        bool changed = false;
        std::string msg;
        {
            py::gil_scoped_release nogil;
            std::shared_lock<std::shared_mutex> mlock;
            if (model_mu != nullptr) mlock = std::shared_lock<std::shared_mutex>(*model_mu);
            std::shared_lock<std::shared_mutex> slock(s.mu);
            int64_t now[2] = {0, 0};
            st = nw_deriver_output_shape(deriver, s.store, now);
            if (st == NW_OK && (now[0] != shape[0] || now[1] != shape[1])) changed = true;
            else if (st == NW_OK) st = nw_deriver_derive(deriver, s.store, p, n);
            if (st != NW_OK) msg = nw_last_error_message();
        }
        if (changed) {
            if (attempt < 16) continue;
            fail(NW_ERR_INVALID_ARGUMENT, kStoreChanged);
        }
        if (st != NW_OK) fail(st, msg);
        return out;
    }
}

py::array_t<float> deriver_derive(Deriver &d, py::object store) {
    Store &s = as_store(store);
    return derive_full(d.deriver, s, nullptr);
}

py::tuple deriver_derive_vector(Deriver &d, py::object store) {
    Store &s = as_store(store);
    // (Shape given as a vector: pybind11 2.10's array_t(count) constructor leaves a zero stride.)
    py::array_t<float> out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(d.d_model)});
    float *p = out.mutable_data();
    int64_t token = -1;
    nw_status st = NW_OK;
    std::string msg;
    {
        py::gil_scoped_release nogil;
        std::shared_lock<std::shared_mutex> lock(s.mu);
        st = nw_deriver_derive_vector(d.deriver, s.store, p, static_cast<size_t>(d.d_model),
                                      &token);
        if (st != NW_OK) msg = nw_last_error_message();
    }
    if (st != NW_OK) fail(st, msg);
    return py::make_tuple(std::move(out), token);
}

// ------------------------------------------------------------ functions

struct DeriverGuard {
    nw_deriver *d = nullptr;
    ~DeriverGuard() { nw_deriver_destroy(d); }
};

py::array_t<float> node_write(py::object model, py::object store, py::object node) {
    Model &m = as_model(model);
    Store &s = as_store(store);
    nw_node_index n = node_from_py(node);
    DeriverGuard g;
    check(nw_node_write_deriver_create(m.model, &n, &g.d));
    // The model lock keeps borrowed weights (which the temporary deriver reads) from
    // being replaced and freed during the call.
    return derive_full(g.d, s, &m.mu);
}

py::tuple node_write_vectors(py::object model, py::object store, py::object nodes) {
    Model &m = as_model(model);
    Store &s = as_store(store);
    if (nodes.is_none() || !PySequence_Check(nodes.ptr()) || PyUnicode_Check(nodes.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT,
             "nodes: expected a sequence of NodeIndex, got " + type_name(nodes));
    Py_ssize_t len = PySequence_Size(nodes.ptr());
    if (len < 0) fail(NW_ERR_INVALID_ARGUMENT, "nodes: " + describe_python_error());
    std::vector<nw_node_index> c(static_cast<size_t>(len));
    for (Py_ssize_t i = 0; i < len; ++i) {
        PyObject *item = PySequence_GetItem(nodes.ptr(), i);
        if (item == nullptr) fail(NW_ERR_INVALID_ARGUMENT, "nodes: " + describe_python_error());
        py::object it = py::reinterpret_steal<py::object>(item);
        try {
            c[static_cast<size_t>(i)] = node_from_py(it);
        } catch (NwFailure &f) {
            f.message = "nodes[" + std::to_string(i) + "]: " + f.message;
            throw;
        }
    }
    py::array_t<float> out = new_output(static_cast<int64_t>(len), m.dims.d_model);
    py::array_t<int64_t> rows(std::vector<py::ssize_t>{static_cast<py::ssize_t>(len)});
    float *p = out.mutable_data();
    int64_t *r = rows.mutable_data();
    size_t out_len = static_cast<size_t>(len) * static_cast<size_t>(m.dims.d_model);
    nw_status st = NW_OK;
    std::string msg;
    {
        py::gil_scoped_release nogil;
        std::shared_lock<std::shared_mutex> mlock(m.mu);
        std::shared_lock<std::shared_mutex> slock(s.mu);
        st = nw_node_write_vectors(m.model, s.store, c.data(), c.size(), p, out_len, r);
        if (st != NW_OK) msg = nw_last_error_message();
    }
    if (st != NW_OK) fail(st, msg);
    return py::make_tuple(std::move(out), std::move(rows));
}

template <typename F>
py::tuple names(F name_of) {
    py::list out;
    for (int32_t i = 0; i < 64; ++i) {
        const char *n = name_of(i);
        if (n == nullptr) break;
        out.append(py::str(n));
    }
    return py::tuple(out);
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
    mod.doc() = "nodewrite._core: pybind11 layer over the C ABI of libnodewrite (nodewrite.h). "
                "Use the nodewrite package, not this module.";

    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const NwFailure &f) {
            try {
                py::module_::import("nodewrite.errors").attr("_raise_for")(f.status, f.message);
                PyErr_SetString(PyExc_RuntimeError, f.message.c_str());
            } catch (py::error_already_set &e) {
                e.restore();
            }
        }
    });

    mod.attr("HEADER_ABI_VERSION") = static_cast<uint32_t>(NW_ABI_VERSION);
    mod.attr("HEADER_VERSION") = NW_VERSION_STRING;
    mod.def("abi_version", &nw_abi_version, "NW_ABI_VERSION of the loaded libnodewrite.");
    mod.def("version_string", [] { return std::string(nw_version_string()); },
            "Version of the loaded libnodewrite, 'MAJOR.MINOR.PATCH'.");
    mod.def("status_string", [](int32_t s) { return std::string(nw_status_string(s)); },
            py::arg("status"), "Name of a status code ('NW_OK', 'NW_ERR_...').");
    mod.def("last_error_message", [] { return std::string(nw_last_error_message()); },
            "The library's last error message on this thread.");
    mod.def("node_type_names", [] { return names(nw_node_type_name); },
            "TDB NodeType values, in nw_node_type order.");
    mod.def("activation_names", [] { return names(nw_activation_name); },
            "TDB ActivationLocationType values, in nw_activation order.");
    mod.def("weight_names", [] { return names(nw_weight_name); },
            "TDB WeightLocationType values, in nw_weight order.");
    mod.def("dtype_names", [] { return names(nw_dtype_name); }, "dtype names, in nw_dtype order.");

    py::class_<Model>(mod, "Model", R"doc(
A transformer's dimensions and output weights (TDB's ModelContext, reduced to what
node writes need), wrapping nw_model.

Model(n_layers, d_model, n_heads, d_head, d_ff); all dimensions >= 1.
Configure it (set_weight, set_autoencoder) before sharing it between threads; derives
may then run from any number of threads.
)doc")
        .def(py::init(&model_new), py::arg("n_layers"), py::arg("d_model"), py::arg("n_heads"),
             py::arg("d_head"), py::arg("d_ff"))
        .def("set_weight", &model_set_weight, py::arg("name"), py::arg("layer"),
             py::arg("weight"), py::arg("copy") = true, R"doc(
Set an output weight of one layer, replacing any earlier one.

name: TDB's WeightLocationType value, "mlp.to_residual" (d_ff, d_model) or
"attn.to_residual" (n_heads, d_head, d_model). weight: numpy array (float32, float16,
float64) or CPU torch tensor (float32, float16, bfloat16), any strides (transposed and
negative-stride views work). copy=True (default): the library converts and copies it now.
copy=False: borrowed in place; the model (and every deriver created while it is set)
keeps a reference to the object; do not change its values while in use.
Raises IndexError (layer), ValueError (name, dtype, shape), all NodeWriteError.
)doc")
        .def("set_autoencoder", &model_set_autoencoder, py::arg("node_type"), py::arg("layer"),
             py::arg("decoder"), py::arg("input"), py::arg("copy") = true, R"doc(
Set the decoder of the autoencoder used by latent nodes of node_type at one layer.

node_type: "autoencoder_latent", "mlp_autoencoder_latent" or "attention_autoencoder_latent".
decoder: (n_latents, n_inputs), TDB's decoder.weight.T. input: TDB's DerivedScalarType
value of what the autoencoder was trained on: "mlp_post_act" (n_inputs = d_ff; the decoded
vector goes through mlp.to_residual) or a residual-stream type ("resid_delta_mlp",
"resid_delta_attn", "resid_post_mlp", "resid_post_attn", "resid_post_embedding";
n_inputs = d_model; the decoded vector is the write). copy: as in set_weight.
)doc")
        .def_property_readonly("n_layers", [](const Model &m) { return m.dims.n_layers; }, "Number of layers.")
        .def_property_readonly("d_model", [](const Model &m) { return m.dims.d_model; }, "Width of the residual stream.")
        .def_property_readonly("n_heads", [](const Model &m) { return m.dims.n_heads; }, "Attention heads per layer.")
        .def_property_readonly("d_head", [](const Model &m) { return m.dims.d_head; }, "Width of one attention head.")
        .def_property_readonly("d_ff", [](const Model &m) { return m.dims.d_ff; }, "Width of the MLP (neurons per layer).")
        .def("__repr__", [](const Model &m) {
            return "nodewrite.Model(n_layers=" + std::to_string(m.dims.n_layers) +
                   ", d_model=" + std::to_string(m.dims.d_model) +
                   ", n_heads=" + std::to_string(m.dims.n_heads) +
                   ", d_head=" + std::to_string(m.dims.d_head) +
                   ", d_ff=" + std::to_string(m.dims.d_ff) + ")";
        });

    py::class_<Store>(mod, "ActivationStore", R"doc(
Raw activations keyed by (TDB ActivationLocationType value, layer), wrapping nw_store.

Entries are borrowed, never copied: the store keeps a reference to each array or tensor
put into it, and derives read its current values in place.
)doc")
        .def(py::init([] {
            auto s = std::make_unique<Store>();
            check(nw_store_create(&s->store));
            return s;
        }))
        .def("put", &store_put, py::arg("name"), py::arg("layer"), py::arg("tensor"), R"doc(
Put a raw activation, replacing any earlier one at (name, layer).

name: "mlp.post_act" (T, d_ff), "attn.qk_probs" (T, T_k, n_heads), "attn.v"
(T_k, n_heads, d_head), "online_autoencoder_latent", "online_mlp_autoencoder_latent",
"online_attention_autoencoder_latent" (T, n_latents). tensor: numpy array or CPU torch
tensor as in Model.set_weight; read in place (zero-copy) by every later derive.
Shapes are checked against the model when a derive reads them.
)doc")
        .def("remove", &store_remove, py::arg("name"), py::arg("layer"),
             "Remove (name, layer) if present.")
        .def("clear", &store_clear, "Remove every entry.")
        .def("get", &store_get, py::arg("name"), py::arg("layer"),
             "The object put at (name, layer); KeyError if there is none.")
        .def("keys", &store_keys, "The (name, layer) pairs in the store.")
        .def("__len__", [](const Store &s) { return s.entries.size(); }, "Number of entries.")
        .def("__contains__", &store_contains, "Whether (name, layer) is in the store.")
        .def("__repr__", [](const Store &s) {
            return "nodewrite.ActivationStore(" + std::to_string(s.entries.size()) +
                   " entries)";
        });

    py::class_<Deriver>(mod, "NodeWriteDeriver", R"doc(
The node-write deriver of one node (TDB's ScalarDeriver for SINGLE_NODE_WRITE),
wrapping nw_deriver.

NodeWriteDeriver(model, node) validates the node against the model (layer, non-token
indices, weights and autoencoder present) and captures the model's current weights.
Immutable; share it between threads freely.
)doc")
        .def(py::init(&deriver_new), py::arg("model"), py::arg("node"))
        .def_property_readonly(
            "requirements", [](const Deriver &d) { return py::list(d.requirements); },
            "The raw activations it reads, as [(ActivationLocationType value, layer), ...].")
        .def_property_readonly("model", [](const Deriver &d) { return d.model_obj; },
                               "The Model it was created from.")
        .def_property_readonly("node", [](const Deriver &d) { return d.node_obj; },
                               "The node it derives the write of.")
        .def("derive", &deriver_derive, py::arg("store"), R"doc(
TDB's output: a new float32 numpy array (T, d_model), zero except the node's token row
(the query token for attention nodes). Releases the GIL during the computation.
)doc")
        .def("derive_vector", &deriver_derive_vector, py::arg("store"), R"doc(
The write vector alone: (float32 numpy array (d_model,), token_row: int).
)doc")
        .def("__repr__", [](const Deriver &d) {
            return "nodewrite.NodeWriteDeriver(" + py::repr(d.node_obj).cast<std::string>() + ")";
        });

    mod.def("node_write", &node_write, py::arg("model"), py::arg("store"), py::arg("node"),
            R"doc(
One-shot: the (T, d_model) float32 output of the node-write deriver of node (as
NodeWriteDeriver(model, node).derive(store)).
)doc");
    mod.def("node_write_vectors", &node_write_vectors, py::arg("model"), py::arg("store"),
            py::arg("nodes"), R"doc(
Write vectors of many nodes in one call: (vectors float32 (n, d_model), token_rows int64 (n,)).
All nodes are validated before anything is computed; the error names the first failing node.
)doc");
}
