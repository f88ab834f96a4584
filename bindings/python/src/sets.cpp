// Node sets and the write family (issues 9 and 11): nodewrite.node_writes, token_writes,
// derive, node_write_to_direction, set_num_threads / get_num_threads, and the one-crossing
// single-node write used by node_write (binding, docstrings, registration).
//
// Each call parses its arguments (running whatever Python code that takes: sequences,
// __index__, DLPack exports) *before* taking the model/store locks, sizes its outputs from
// what the binding holds (sizing.hpp), and makes one call into the C ABI inside
// ReadLocks::run; NW_ERR_BUFFER_TOO_SMALL (a size the binding could not tell) is the only
// retry. Locking: see objects.hpp.
#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <type_traits>

#include "args.hpp"
#include "dlpack.hpp"
#include "objects.hpp"
#include "sizing.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

int32_t token_activation_of(int32_t node_type) {
    switch (node_type) {
        case NW_NODE_MLP_NEURON: return NW_ACT_MLP_POST_ACT;
        case NW_NODE_ATTENTION_HEAD: return NW_ACT_ATTN_QK_PROBS;
        case NW_NODE_AUTOENCODER_LATENT: return NW_ACT_ONLINE_AUTOENCODER_LATENT;
        case NW_NODE_MLP_AUTOENCODER_LATENT: return NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT;
        case NW_NODE_ATTENTION_AUTOENCODER_LATENT: return NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT;
        default: return -1;
    }
}

std::vector<int64_t> stored_shape(const Store &s, int32_t activation, int32_t layer) {
    auto it = s.entries.find({activation, layer});
    if (it == s.entries.end() || !it->second) return {};
    return it->second->shape;
}

int64_t guess_tokens(const Store &s, int32_t node_type, int32_t layer) {
    std::vector<int64_t> sh = stored_shape(s, token_activation_of(node_type), layer);
    return sh.empty() ? 0 : sh[0];
}

namespace {

PyObject *np_from_dlpack = nullptr;  // numpy.from_dlpack, set at import (no lazy init)

void max_positional(const char *fn, const py::args &args, size_t n) {
    if (args.size() > n)
        throw py::type_error(std::string(fn) + "() takes " + std::to_string(n) +
                             " positional arguments but " + std::to_string(args.size()) +
                             " were given (the others are keyword-only)");
}

std::string shape_str(const std::vector<int64_t> &s) {
    std::string t = "(";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + (s.size() == 1 ? ",)" : ")");
}

size_t count_of(const std::vector<int64_t> &shape) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
}

// ------------------------------------------------------------------------------ indices

const char *index_names(int32_t node_type) {
    switch (node_type) {
        case NW_NODE_MLP_NEURON: return "(token, neuron)";
        case NW_NODE_ATTENTION_HEAD: return "(query token, key token, head)";
        default: return "(token, latent)";
    }
}

// An (n, k) int64 row-major array of node indices, copied (with the GIL held) from the
// caller's integers (any integer dtype, nested sequences). Never a float or bool array.
struct Indices {
    const int64_t *data = nullptr;
    size_t n = 0, k = 0;
    std::vector<int64_t> storage;
    py::object keep;  // the object whose memory data points into
    Py_buffer buf{};
    bool has_buf = false;

    Indices() = default;
    Indices(const Indices &) = delete;
    Indices &operator=(const Indices &) = delete;
    ~Indices() {
        if (has_buf) PyBuffer_Release(&buf);
    }
};

template <class T>
int64_t load_as_int64(const char *p, bool &overflow) {
    T v;
    std::memcpy(&v, p, sizeof v);
    if (!std::is_signed<T>::value && static_cast<uint64_t>(v) > static_cast<uint64_t>(INT64_MAX)) {
        overflow = true;
        return 0;
    }
    return static_cast<int64_t>(v);
}

void check_k(const std::vector<int64_t> &shape, size_t k, int32_t node_type,
             const std::string &type_name_) {
    if (shape.size() != 2)
        fail(NW_ERR_SHAPE_MISMATCH, "indices: expected an (n, " + std::to_string(k) +
                                        ") integer array, got " + std::to_string(shape.size()) +
                                        " dimensions " + shape_str(shape));
    if (static_cast<size_t>(shape[1]) != k)
        fail(NW_ERR_SHAPE_MISMATCH, "indices: shape " + shape_str(shape) + ", but a " + type_name_ +
                                        " node has " + std::to_string(k) + " indices " +
                                        index_names(node_type) + ": expected (n, " +
                                        std::to_string(k) + ")");
}

bool indices_from_buffer(py::handle obj, size_t k, int32_t node_type, const std::string &tn,
                         Indices &ix) {
    if (!PyObject_CheckBuffer(obj.ptr())) return false;
    if (PyObject_GetBuffer(obj.ptr(), &ix.buf, PyBUF_STRIDES | PyBUF_FORMAT) != 0) {
        std::string text = take_python_error();
        fail(NW_ERR_INVALID_ARGUMENT, "indices: cannot read the buffer of " + type_name(obj) + ": " + text);
    }
    ix.has_buf = true;
    const Py_buffer &b = ix.buf;
    if (b.suboffsets != nullptr || b.ndim < 0 || b.ndim > kMaxNdim || (b.ndim > 0 && b.shape == nullptr))
        fail(NW_ERR_INVALID_ARGUMENT, "indices: the buffer of " + type_name(obj) + " is not a plain strided array");
    const char *fmt = b.format ? b.format : "B";
    std::string format = fmt;
    if (*fmt == '@' || *fmt == '=' || *fmt == '<') ++fmt;
    char code = (fmt[0] != '\0' && fmt[1] == '\0') ? fmt[0] : '\0';
    bool is_int = std::strchr("bBhHiIlLqQnN", code) != nullptr && code != '\0' &&
                  (b.itemsize == 1 || b.itemsize == 2 || b.itemsize == 4 || b.itemsize == 8);
    if (!is_int)
        fail(NW_ERR_UNSUPPORTED_DTYPE,
             "indices: element type '" + format + "' is not an integer type; node indices are "
             "integers (int64 or int32 arrays, or nested lists of int); nodewrite never "
             "converts floats or bools to indices");
    bool is_signed = std::islower(static_cast<unsigned char>(code)) != 0;
    std::vector<int64_t> shape(b.shape, b.shape + b.ndim);
    check_k(shape, k, node_type, tn);
    ix.n = static_cast<size_t>(shape[0]);
    ix.k = k;
    int64_t s0 = b.strides ? b.strides[0] : static_cast<int64_t>(k) * b.itemsize;
    int64_t s1 = b.strides ? b.strides[1] : b.itemsize;
    bool contiguous = (ix.n <= 1 || s0 == static_cast<int64_t>(k) * 8) && (k <= 1 || s1 == 8);
    // Always our own copy (n*k int64, small next to the (n, d_model) output): the library
    // validates every index and then reads them without the GIL, while another thread could
    // write into the caller's array; a copy taken with the GIL held cannot change in between.
    ix.storage.resize(ix.n * k);  // bad_alloc -> NodeWriteMemoryError
    if (is_signed && b.itemsize == 8 && contiguous) {
        if (!ix.storage.empty()) std::memcpy(ix.storage.data(), b.buf, ix.storage.size() * sizeof(int64_t));
        ix.data = ix.storage.data();
        return true;
    }
    const char *base = static_cast<const char *>(b.buf);
    for (size_t i = 0; i < ix.n; ++i) {
        for (size_t j = 0; j < k; ++j) {
            const char *p = base + static_cast<int64_t>(i) * s0 + static_cast<int64_t>(j) * s1;
            bool overflow = false;
            int64_t v = 0;
            switch (b.itemsize) {
                case 1: v = is_signed ? load_as_int64<int8_t>(p, overflow) : load_as_int64<uint8_t>(p, overflow); break;
                case 2: v = is_signed ? load_as_int64<int16_t>(p, overflow) : load_as_int64<uint16_t>(p, overflow); break;
                case 4: v = is_signed ? load_as_int64<int32_t>(p, overflow) : load_as_int64<uint32_t>(p, overflow); break;
                default: v = is_signed ? load_as_int64<int64_t>(p, overflow) : load_as_int64<uint64_t>(p, overflow); break;
            }
            if (overflow)
                fail(NW_ERR_INDEX_OUT_OF_RANGE, "indices[" + std::to_string(i) + ", " +
                                                    std::to_string(j) + "] is out of range");
            ix.storage[i * k + j] = v;
        }
    }
    ix.data = ix.storage.data();
    return true;
}

void read_indices(py::handle obj, int32_t node_type, const std::string &tn, Indices &ix) {
    size_t k = static_cast<size_t>(nw_node_type_index_count(node_type));
    if (obj.is_none())
        fail(NW_ERR_INVALID_ARGUMENT, "indices: expected an (n, " + std::to_string(k) +
                                          ") integer array, got None");
    if (indices_from_buffer(obj, k, node_type, tn, ix)) return;
    py::object dlpack = getattr_or_null(obj, "__dlpack__", "indices");
    if (dlpack) {  // a CPU tensor (torch ...): numpy reads it through DLPack, without a copy
        py::object src = py::reinterpret_borrow<py::object>(obj);
        refuse_values_outside_memory(src, "indices");
        py::object dev = getattr_or_null(src, "__dlpack_device__", "indices");
        if (dev) {
            py::object d = call_checked(dev, "indices: __dlpack_device__()");
            if (dlpack_device_type(d) != dl::kCPU)
                fail(NW_ERR_INVALID_ARGUMENT,
                     "indices: the tensor is not in CPU memory; move it with .cpu() first");
        }
        py::object rg = getattr_or_null(src, "requires_grad", "indices");
        py::object detach = getattr_or_null(src, "detach", "indices");
        if (rg && detach && rg.ptr() == Py_True) src = call_checked(detach, "indices: cannot detach");
        PyObject *arr = PyObject_CallOneArg(np_from_dlpack, src.ptr());
        if (arr == nullptr) {
            std::string text = take_python_error();
            fail(NW_ERR_UNSUPPORTED_DTYPE, "indices: cannot read " + type_name(obj) +
                                               " as an integer array through DLPack: " + text);
        }
        py::object a = py::reinterpret_steal<py::object>(arr);
        if (indices_from_buffer(a, k, node_type, tn, ix)) {
            ix.keep = std::move(a);
            return;
        }
        fail(NW_ERR_INVALID_ARGUMENT, "indices: cannot read " + type_name(obj));
    }
    if (!PySequence_Check(obj.ptr()) || PyUnicode_Check(obj.ptr()) || PyBytes_Check(obj.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT, "indices: expected an (n, " + std::to_string(k) +
                                          ") integer array (numpy, CPU torch tensor or nested "
                                          "list), got " + type_name(obj));
    Py_ssize_t n = PySequence_Size(obj.ptr());
    if (n < 0) fail(NW_ERR_INVALID_ARGUMENT, "indices: " + take_python_error());
    ix.n = static_cast<size_t>(n);
    ix.k = k;
    ix.storage.resize(ix.n * k);
    for (Py_ssize_t i = 0; i < n; ++i) {
        std::string where = "indices[" + std::to_string(i) + "]";
        PyObject *row_p = PySequence_GetItem(obj.ptr(), i);
        if (row_p == nullptr) fail(NW_ERR_INVALID_ARGUMENT, where + ": " + take_python_error());
        py::object row = py::reinterpret_steal<py::object>(row_p);
        if (!PySequence_Check(row.ptr()) || PyUnicode_Check(row.ptr()) || PyBytes_Check(row.ptr()))
            fail(NW_ERR_SHAPE_MISMATCH, where + ": expected a row of " + std::to_string(k) +
                                            " integers " + index_names(node_type) + ", got " +
                                            type_name(row));
        Py_ssize_t len = PySequence_Size(row.ptr());
        if (len < 0) fail(NW_ERR_INVALID_ARGUMENT, where + ": " + take_python_error());
        if (static_cast<size_t>(len) != k)
            fail(NW_ERR_SHAPE_MISMATCH, where + ": " + std::to_string(len) + " indices, but a " + tn +
                                            " node has " + std::to_string(k) + " " +
                                            index_names(node_type));
        for (Py_ssize_t j = 0; j < len; ++j) {
            PyObject *it_p = PySequence_GetItem(row.ptr(), j);
            if (it_p == nullptr)
                fail(NW_ERR_INVALID_ARGUMENT, where + "[" + std::to_string(j) + "]: " + take_python_error());
            py::object it = py::reinterpret_steal<py::object>(it_p);
            ix.storage[static_cast<size_t>(i) * k + static_cast<size_t>(j)] =
                to_int(it, where + "[" + std::to_string(j) + "]", INT64_MIN, INT64_MAX,
                       NW_ERR_INDEX_OUT_OF_RANGE);
        }
    }
    ix.data = ix.storage.data();
}

// ------------------------------------------------------------------------------ outputs

// A caller's out= array: a writable, C-contiguous float32 numpy array or CPU torch tensor.
// Its shape is checked separately (check_out_shape), under the locks.
HeldPtr hold_out(py::handle obj) {
    if (!PyObject_CheckBuffer(obj.ptr())) {
        py::object rg = getattr_or_null(obj, "requires_grad", "out");
        if (rg && rg.ptr() == Py_True)
            fail(NW_ERR_INVALID_ARGUMENT,
                 "out: the tensor requires grad; nodewrite writes outside autograd (pass a "
                 "tensor without requires_grad)");
    }
    HeldPtr h = hold_writable_tensor(obj, "out");
    if (h->dtype != NW_DTYPE_F32) {
        const char *dn = nw_dtype_name(h->dtype);
        fail(NW_ERR_UNSUPPORTED_DTYPE, std::string("out: dtype ") + (dn ? dn : "?") +
                                           ", expected float32");
    }
    int64_t expect = 1;
    for (size_t i = h->shape.size(); i-- > 0;) {
        if (h->shape[i] > 1 && h->strides[i] != expect)
            fail(NW_ERR_INVALID_ARGUMENT,
                 "out: not C-contiguous (strides in elements " + shape_str(h->strides) +
                     " for shape " + shape_str(h->shape) + "); pass a C-contiguous float32 array");
        expect *= h->shape[i] > 0 ? h->shape[i] : 1;
    }
    return h;
}

void check_out_shape(const Held &h, const std::vector<int64_t> &shape) {
    if (h.shape != shape)
        fail(NW_ERR_SHAPE_MISMATCH, "out: shape " + shape_str(h.shape) + ", expected " + shape_str(shape));
}

float *out_ptr(const Held &h) { return static_cast<float *>(const_cast<void *>(h.data)); }

py::array_t<int64_t> new_output_i64(const std::vector<int64_t> &shape) {
    int64_t count = 1;
    for (int64_t d : shape) {
        if (d < 0 || (d > 0 && count > (PY_SSIZE_T_MAX / 8) / d))
            fail(NW_ERR_OUT_OF_MEMORY, "an output of shape " + shape_str(shape) + " is too large");
        count *= d;
    }
    try {
        std::vector<py::ssize_t> s(shape.begin(), shape.end());
        return py::array_t<int64_t>(s);
    } catch (py::error_already_set &e) {
        if (e.matches(PyExc_MemoryError) || e.matches(PyExc_ValueError))
            fail(NW_ERR_OUT_OF_MEMORY, "cannot allocate an output of shape " + shape_str(shape));
        throw;
    }
}

int32_t node_type_arg(py::handle obj, std::string &name) {
    name = to_name(obj, "node_type");
    return name_to_enum(name, "node_type", nw_node_type_from_name);
}

// ------------------------------------------------------------------------------ node sets

py::object node_writes(const py::args &args, const py::kwargs &kwargs) {
    max_positional("node_writes", args, 5);
    auto a = parse_args("node_writes", args, kwargs,
                        {{"model", true}, {"store", true}, {"node_type", true}, {"layer", true},
                         {"indices", true}, {"out", false}});
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    std::string tn;
    int32_t nt = node_type_arg(a[2], tn);
    int32_t layer = to_layer(a[3]);
    Indices ix;
    read_indices(a[4], nt, tn, ix);
    std::vector<int64_t> shape{static_cast<int64_t>(ix.n), m.dims.d_model};
    HeldPtr out_held;
    py::object result;
    float *p = nullptr;
    if (a[5] && !a[5].is_none()) {
        out_held = hold_out(a[5]);
        check_out_shape(*out_held, shape);
        p = out_ptr(*out_held);
        result = a[5];
    } else {
        py::array_t<float> out = new_output(shape);
        p = out.mutable_data();
        result = std::move(out);
    }
    static int64_t no_index = 0;
    static float no_float = 0;
    const int64_t *idx = ix.data ? ix.data : &no_index;
    if (p == nullptr) p = &no_float;
    size_t len = ix.n * static_cast<size_t>(m.dims.d_model);
    std::string msg;
    ReadLocks locks;
    locks.add(m.mu);
    locks.add(s.mu);
    nw_status st = locks.run([&] {
        return nw_node_writes(m.model, s.store, nt, layer, idx, ix.n, ix.k, p, len, nullptr);
    }, &msg);
    if (st != NW_OK) fail_library(st, msg);
    if (out_held) mark_written(result);
    return result;
}

py::object token_writes(const py::args &args, const py::kwargs &kwargs) {
    max_positional("token_writes", args, 5);
    auto a = parse_args("token_writes", args, kwargs,
                        {{"model", true}, {"store", true}, {"node_type", true}, {"layer", true},
                         {"indices", true}, {"top_k", false}, {"largest", false}});
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    std::string tn;
    int32_t nt = node_type_arg(a[2], tn);
    int32_t layer = to_layer(a[3]);
    bool has_k = a[5] && !a[5].is_none();
    int64_t top_k = has_k ? to_int(a[5], "top_k", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT) : 0;
    bool largest = a[6] ? to_bool(a[6], "largest") : true;
    Indices ix;
    read_indices(a[4], nt, tn, ix);
    static int64_t no_index = 0;
    const int64_t *idx = ix.data ? ix.data : &no_index;
    int64_t n_vocab = 0;
    {
        auto it = m.set.find(std::make_tuple(0, static_cast<int32_t>(NW_WEIGHT_UNEMBEDDING),
                                             static_cast<int32_t>(NW_NO_LAYER)));
        if (it != m.set.end() && it->second.shape.size() == 2) n_vocab = it->second.shape[1];
    }
    if (n_vocab <= 0)
        fail(NW_ERR_MISSING_INPUT,
             "weight unembedding is not set; set it with model.set_weight(\"unembedding\", None, w) "
             "(d_model, n_vocab), and \"layer_norm_gain.final\" (d_model,)");
    if (has_k && (top_k < 1 || top_k > n_vocab))
        fail(NW_ERR_INVALID_ARGUMENT, "top_k: " + std::to_string(top_k) + " is outside 1 .. n_vocab = " +
                                          std::to_string(n_vocab));
    int64_t n = static_cast<int64_t>(ix.n);
    std::string msg;
    if (!has_k) {
        py::array_t<float> out = new_output({n, n_vocab});
        float *p = out.mutable_data();
        static float no_float = 0;
        if (p == nullptr) p = &no_float;
        size_t len = ix.n * static_cast<size_t>(n_vocab);
        ReadLocks locks;
        locks.add(m.mu);
        locks.add(s.mu);
        nw_status st = locks.run([&] {
            return nw_token_writes(m.model, s.store, nt, layer, idx, ix.n, ix.k, p, len);
        }, &msg);
        if (st != NW_OK) fail_library(st, msg);
        return std::move(out);
    }
    py::array_t<float> values = new_output({n, top_k});
    py::array_t<int64_t> ids = new_output_i64({n, top_k});
    float *pv = values.mutable_data();
    int64_t *pi = ids.mutable_data();
    static float no_float = 0;
    static int64_t no_id = 0;
    if (pv == nullptr) pv = &no_float;
    if (pi == nullptr) pi = &no_id;
    size_t cap = ix.n * static_cast<size_t>(top_k);
    ReadLocks locks;
    locks.add(m.mu);
    locks.add(s.mu);
    nw_status st = locks.run([&] {
        return nw_token_writes_top_k(m.model, s.store, nt, layer, idx, ix.n, ix.k, top_k,
                                     largest ? 1 : 0, pv, pi, cap);
    }, &msg);
    if (st != NW_OK) fail_library(st, msg);
    return py::make_tuple(std::move(values), std::move(ids));
}

// ------------------------------------------------------------------------------ write family

std::string supported_dsts() {
    std::string out;
    for (int32_t i = 0; i < 1024; ++i) {
        const char *n = nw_dst_name(i);
        if (n == nullptr) break;
        out += (out.empty() ? "" : ", ") + std::string(n);
    }
    return out;
}

int32_t dst_arg(py::handle obj) {
    std::string name = to_name(obj, "dst");
    int32_t out = -1;
    if (nw_dst_from_name(name.c_str(), &out) != NW_OK)
        fail(NW_ERR_INVALID_ARGUMENT,
             "dst: unsupported derived scalar type '" + name + "'; supported: " + supported_dsts());
    return out;
}

// TDB's output shape of a DST, from the stored activations' shapes (empty: cannot tell).
std::vector<int64_t> guess_dst_shape(const Model &m, const Store &s, int32_t dst, int32_t layer) {
    auto sh = [&](int32_t act) { return stored_shape(s, act, layer); };
    switch (dst) {
        case NW_DST_MLP_WRITE_NORM:
        case NW_DST_MLP_WRITE_TO_FINAL_RESIDUAL_GRAD: {
            auto a = sh(NW_ACT_MLP_POST_ACT);
            if (a.size() != 2) return {};
            return {a[0], m.dims.d_ff};
        }
        case NW_DST_UNFLATTENED_ATTN_WRITE_NORM:
        case NW_DST_UNFLATTENED_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD: {
            auto p = sh(NW_ACT_ATTN_QK_PROBS);
            if (p.size() != 3) return {};
            return p;
        }
        case NW_DST_ATTN_WRITE_NORM:
        case NW_DST_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD: {
            auto p = sh(NW_ACT_ATTN_QK_PROBS);
            if (p.size() != 3 || p[0] != p[1]) return {};
            return {p[0] * (p[0] + 1) / 2, p[2]};
        }
        case NW_DST_ATTN_WRITE_NORM_PER_SEQUENCE_TOKEN:
        case NW_DST_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD_PER_SEQUENCE_TOKEN: {
            auto p = sh(NW_ACT_ATTN_QK_PROBS);
            if (p.size() != 3) return {};
            return {p[0], p[2]};
        }
        case NW_DST_ONLINE_AUTOENCODER_WRITE_NORM:
        case NW_DST_ONLINE_AUTOENCODER_WRITE_TO_FINAL_RESIDUAL_GRAD:
        case NW_DST_ONLINE_MLP_AUTOENCODER_WRITE_NORM:
        case NW_DST_ONLINE_MLP_AUTOENCODER_WRITE_TO_FINAL_RESIDUAL_GRAD:
        case NW_DST_ONLINE_ATTENTION_AUTOENCODER_WRITE_NORM:
        case NW_DST_ONLINE_ATTENTION_AUTOENCODER_WRITE_TO_FINAL_RESIDUAL_GRAD: {
            int32_t act = NW_ACT_ONLINE_AUTOENCODER_LATENT;
            if (dst == NW_DST_ONLINE_MLP_AUTOENCODER_WRITE_NORM ||
                dst == NW_DST_ONLINE_MLP_AUTOENCODER_WRITE_TO_FINAL_RESIDUAL_GRAD)
                act = NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT;
            if (dst == NW_DST_ONLINE_ATTENTION_AUTOENCODER_WRITE_NORM ||
                dst == NW_DST_ONLINE_ATTENTION_AUTOENCODER_WRITE_TO_FINAL_RESIDUAL_GRAD)
                act = NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT;
            auto z = sh(act);
            if (z.size() != 2) return {};
            return z;
        }
        case NW_DST_MLP_LAYER_WRITE_NORM:
        case NW_DST_MLP_LAYER_WRITE_TO_FINAL_RESIDUAL_GRAD:
        case NW_DST_ATTN_LAYER_WRITE_NORM:
        case NW_DST_ATTN_LAYER_WRITE_TO_FINAL_RESIDUAL_GRAD: {
            bool mlp = dst == NW_DST_MLP_LAYER_WRITE_NORM || dst == NW_DST_MLP_LAYER_WRITE_TO_FINAL_RESIDUAL_GRAD;
            auto d = sh(mlp ? NW_ACT_RESID_DELTA_MLP : NW_ACT_RESID_DELTA_ATTN);
            if (d.size() != 2) return {};
            return {d[0], 1};
        }
        default:
            return {};
    }
}

py::object derive(const py::args &args, const py::kwargs &kwargs) {
    max_positional("derive", args, 4);
    auto a = parse_args("derive", args, kwargs,
                        {{"model", true}, {"store", true}, {"dst", true}, {"layer", true},
                         {"direction", false}, {"out", false}});
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    int32_t dst = dst_arg(a[2]);
    int32_t layer = to_layer(a[3]);
    HeldPtr dir;
    nw_tensor_view dir_view{};
    const nw_tensor_view *dirp = nullptr;
    if (a[4] && !a[4].is_none()) {
        dir = hold_tensor(a[4], "direction");
        dir_view = dir->view();
        dirp = &dir_view;
    }
    HeldPtr out_held;
    if (a[5] && !a[5].is_none()) out_held = hold_out(a[5]);
    Subject subject{"direction", "(T, d_model) or (d_model,)", ""};
    for (int attempt = 0;; ++attempt) {
        ReadLocks locks;  // the GIL is held: nothing read below changes until run()
        locks.add(m.mu);
        locks.add(s.mu);
        std::vector<int64_t> shape = guess_dst_shape(m, s, dst, layer);
        int64_t osh[3] = {0, 0, 0};
        int32_t ond = 0;
        if (out_held || shape.empty() || attempt > 0) {
            // The exact shape from the library (a call that computes nothing): needed before
            // writing into a caller's array, or when the store cannot tell it.
            nw_status st = nw_derive(m.model, s.store, dst, layer, dirp, 0, nullptr, 0, osh, &ond);
            if (st != NW_OK && st != NW_ERR_BUFFER_TOO_SMALL) check(st, dirp ? &subject : nullptr);
            shape.assign(osh, osh + ond);
        }
        py::object result;
        float *p = nullptr;
        bool zeroed = false;
        if (out_held) {
            check_out_shape(*out_held, shape);
            p = out_ptr(*out_held);
            result = a[5];
        } else {
            py::array_t<float> out = new_output(shape, /*want_zeroed=*/true, &zeroed);
            p = out.mutable_data();
            result = std::move(out);
        }
        size_t len = count_of(shape);
        uint32_t flags = zeroed ? NW_OUT_ZEROED : 0;
        std::string msg;
        nw_status st = locks.run([&] {
            static float no_float = 0;
            return nw_derive(m.model, s.store, dst, layer, dirp, flags, len ? p : &no_float, len, osh, &ond);
        }, &msg);
        bool same = static_cast<size_t>(ond) == shape.size() &&
                    std::equal(shape.begin(), shape.end(), osh);
        if (st == NW_OK && same) {
            if (out_held) mark_written(result);
            return result;
        }
        if (st == NW_OK && out_held) {
            mark_written(result);
            fail(NW_ERR_SHAPE_MISMATCH, "the store changed during derive (out was written with "
                                        "another shape); do not change it while deriving");
        }
        if (st != NW_OK && (st != NW_ERR_BUFFER_TOO_SMALL || out_held || attempt >= 2))
            fail_library(st, msg, dirp ? &subject : nullptr);
        // a guess the library disagreed with: ask it, allocate again
    }
}

py::array_t<float> node_write_to_direction(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("node_write_to_direction", args, kwargs,
                        {{"model", true}, {"store", true}, {"node", true}, {"direction", true}});
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    nw_node_index node = node_from_py(a[2]);
    HeldPtr dir = hold_tensor(a[3], "direction");
    nw_tensor_view dv = dir->view();
    Subject subject{"direction", "(T, d_model) or (d_model,)", ""};
    int64_t T = -1;
    for (int attempt = 0;; ++attempt) {
        ReadLocks locks;
        locks.add(m.mu);
        locks.add(s.mu);
        if (T < 0) T = guess_tokens(s, node.node_type, node.layer);
        py::array_t<float> out = new_output({T, 1});
        static float no_float = 0;
        float *p = T > 0 ? out.mutable_data() : &no_float;
        int64_t shape[2] = {0, 0};
        std::string msg;
        nw_status st = locks.run([&] {
            return nw_node_write_to_direction(m.model, s.store, &node, &dv, p, static_cast<size_t>(T), shape);
        }, &msg);
        if (st == NW_OK && shape[0] == T) return out;
        if ((st != NW_OK && st != NW_ERR_BUFFER_TOO_SMALL) || attempt >= 2)
            fail_library(st == NW_OK ? NW_ERR_SHAPE_MISMATCH : st, msg, &subject);
        T = shape[0];
    }
}

}  // namespace

py::array_t<float> node_write_once(Model &m, Store &s, const nw_node_index &node) {
    int64_t T = -1;
    for (int attempt = 0;; ++attempt) {
        ReadLocks locks;
        locks.add(m.mu);
        locks.add(s.mu);
        if (T < 0) T = guess_tokens(s, node.node_type, node.layer);
        bool zeroed = false;
        py::array_t<float> out = new_output({T, m.dims.d_model}, /*want_zeroed=*/true, &zeroed);
        size_t len = static_cast<size_t>(T) * static_cast<size_t>(m.dims.d_model);
        static float no_float = 0;  // never written (capacity 0); NULL is read as "no buffer"
        float *p = len ? out.mutable_data() : &no_float;
        int64_t shape[2] = {0, 0};
        std::string msg;
        nw_status st = locks.run([&] {
            return nw_node_write_sized(m.model, s.store, &node, zeroed ? NW_OUT_ZEROED : 0, p, len, shape);
        }, &msg);
        if (st == NW_OK && shape[0] == T) return out;
        if ((st != NW_OK && st != NW_ERR_BUFFER_TOO_SMALL) || attempt >= 2)
            fail_library(st == NW_OK ? NW_ERR_SHAPE_MISMATCH : st, msg);
        T = shape[0];  // the store could not tell T: the library did, allocate again
    }
}

void init_sets(py::module_ &mod) {
    py::object np = py::module_::import("numpy");
    np_from_dlpack = py::object(np.attr("from_dlpack")).release().ptr();

    mod.def("node_writes", &node_writes, R"doc(node_writes(model: Model, store: ActivationStore, node_type: str, layer: int, indices: numpy.ndarray | torch.Tensor | Sequence[Sequence[int]], *, out: numpy.ndarray | torch.Tensor | None = None) -> numpy.ndarray | torch.Tensor

Write vectors of a node set: n nodes of one node type at one layer, in one call.

indices: an (n, k) integer array in TDB's index order for node_type (k = 2, or 3 for
"attention_head": (query token, key token, head)); numpy int64/int32 (any integer dtype),
a CPU torch integer tensor, or a nested list. Negative indices count from the end. A
float or bool array is a NodeWriteValueError (the indices are copied, with the GIL held, so another
thread writing into them cannot race the library).
out: optional C-contiguous, writable float32 (n, d_model) numpy array or CPU torch tensor,
written in place and returned. Without it, a new float32 numpy array (n, d_model).

Row i is the write vector of node i (bit-identical to node_write's row). Every index is
validated before anything is written: on any error (NodeWriteIndexError for an index out of
range anywhere, NodeWriteValueError for a wrong k / dtype / out) out is untouched. An empty
set is valid. Releases the GIL; uses get_num_threads() threads.
)doc");
    mod.def("token_writes", &token_writes, R"doc(token_writes(model: Model, store: ActivationStore, node_type: str, layer: int, indices: numpy.ndarray | torch.Tensor | Sequence[Sequence[int]], *, top_k: int | None = None, largest: bool = True) -> numpy.ndarray | tuple[numpy.ndarray, numpy.ndarray]

Token-space writes of a node set (TDB's TokenWriteConverter): row i is u - mean(u),
u = w_i @ (unembedding * layer_norm_gain.final[:, None]), w_i the write vector of node i.
Needs model.set_weight("unembedding", None, W_U) (d_model, n_vocab) and
model.set_weight("layer_norm_gain.final", None, g) (d_model,).

indices: as in node_writes. Returns float32 (n, n_vocab); with top_k (1 <= top_k <=
n_vocab): (values float32 (n, top_k), token_ids int64 (n, top_k)), the top_k largest per
node in descending order (largest=False: the smallest, ascending; ties: lower token id).
)doc");
    mod.def("derive", &derive, R"doc(derive(model: Model, store: ActivationStore, dst: str, layer: int, *, direction: numpy.ndarray | torch.Tensor | None = None, out: numpy.ndarray | torch.Tensor | None = None) -> numpy.ndarray | torch.Tensor

One of TDB's write-family derived scalars for every node of one layer, in TDB's shape.

dst: TDB's DerivedScalarType value (see nodewrite.DSTS): "mlp_write_norm" (T, d_ff),
"unflattened_attn_write_to_final_residual_grad" (T, T, n_heads), "attn_write_norm"
(T(T+1)/2, n_heads), ..., "mlp_layer_write_norm" (T, 1). Any other string is a
NodeWriteValueError (a ValueError) listing the supported ones.
direction: for the "..._to_final_residual_grad" values (required there, refused for the
norms): a (T, d_model) array (row t for writes landing on token t; TDB's final residual
grad) or one (d_model,) vector for every token; numpy or CPU torch, any float dtype and
strides, read in place. Rows that are all zero cost nothing.
out: optional C-contiguous writable float32 array of the output's shape, written in place
and returned. Reads the layer's activations (mlp.post_act; attn.qk_probs and attn.v; the
autoencoder's online_* latents; resid.delta_mlp / resid.delta_attn) and the weights.
Releases the GIL; uses get_num_threads() threads; bit-identical for every thread count.
)doc");
    mod.def("node_write_to_direction", &node_write_to_direction, R"doc(node_write_to_direction(model: Model, store: ActivationStore, node: NodeIndex, direction: numpy.ndarray | torch.Tensor) -> numpy.ndarray

TDB's single_node_write_to_final_residual_grad: a (T, 1) float32 column, w . g[t] in the row t
the node's write lands on (the query token for attention), 0 elsewhere. direction: (T, d_model)
or (d_model,), as in derive.
)doc");
    mod.def("set_num_threads", [](py::handle n) {
        int64_t v = to_int(n, "n", INT32_MIN, INT32_MAX, NW_ERR_INVALID_ARGUMENT);
        check(nw_set_num_threads(static_cast<int32_t>(v)));
    }, R"doc(set_num_threads(n: int) -> None

Threads used by node sets and the layer-wide derived scalars (process-wide). n >= 1 sets it;
0 restores the default (NODEWRITE_NUM_THREADS, else the CPUs this process may use).
Results do not depend on it.
)doc");
    mod.def("get_num_threads", [] { return nw_get_num_threads(); },
            "get_num_threads() -> int\n\nThe number of threads in use (>= 1).");
    mod.def("node_type_index_count", [](py::handle node_type) {
        std::string tn;
        return nw_node_type_index_count(node_type_arg(node_type, tn));
    }, "node_type_index_count(node_type: str) -> int\n\nThe number of tensor indices of a node type (2, or 3 for attention heads).");
    mod.def("dst_names", [] {
        py::list out;
        for (int32_t i = 0; i < 1024; ++i) {
            const char *n = nw_dst_name(i);
            if (n == nullptr) break;
            out.append(py::str(n));
        }
        return py::tuple(out);
    }, "dst_names() -> tuple[str, ...]\n\nThe derived scalars derive() supports (TDB DerivedScalarType values), in nw_dst order.");
}

}  // namespace nwpy
