// Node index arrays: see indices.hpp.
#include "indices.hpp"

#include <cctype>
#include <climits>
#include <cstring>
#include <type_traits>

#include "args.hpp"
#include "dlpack.hpp"
#include "info.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

PyObject *np_from_dlpack = nullptr;  // numpy.from_dlpack, set at import (no lazy init)

// "(token, neuron)" for messages, from the library's index names.
std::string index_names_text(int32_t node_type) {
    std::string out = "(";
    const auto &names = node_type_facts(node_type).index_names;
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
    return out + ")";
}

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
                                        " dimensions " + shape_text(shape));
    if (static_cast<size_t>(shape[1]) != k)
        fail(NW_ERR_SHAPE_MISMATCH, "indices: shape " + shape_text(shape) + ", but a " + type_name_ +
                                        " node has " + std::to_string(k) + " indices " +
                                        index_names_text(node_type) + ": expected (n, " +
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

}  // namespace

void read_indices(py::handle obj, int32_t node_type, Indices &ix) {
    const std::string &tn = node_type_facts(node_type).name;
    size_t k = static_cast<size_t>(node_type_facts(node_type).n_indices);
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
                                            " integers " + index_names_text(node_type) + ", got " +
                                            type_name(row));
        Py_ssize_t len = PySequence_Size(row.ptr());
        if (len < 0) fail(NW_ERR_INVALID_ARGUMENT, where + ": " + take_python_error());
        if (static_cast<size_t>(len) != k)
            fail(NW_ERR_SHAPE_MISMATCH, where + ": " + std::to_string(len) + " indices, but a " + tn +
                                            " node has " + std::to_string(k) + " " +
                                            index_names_text(node_type));
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


void init_index_types() {
    py::object np = py::module_::import("numpy");
    np_from_dlpack = py::object(np.attr("from_dlpack")).release().ptr();
}

NodeSetCall::NodeSetCall(const std::vector<py::object> &a)
    : m(model_arg(a[0])), s(store_arg(a[1])), node_type(node_type_arg(a[2])), layer(to_layer(a[3])) {
    read_indices(a[4], node_type, ix);
}

void NodeSetCall::run(const std::function<nw_status()> &c_call) {
    std::string msg;
    ReadLocks locks;
    locks.add(m.mu);
    locks.add(s.mu);
    check_reads(m, s, node_type_facts(node_type).activations, layer);
    nw_status st = locks.run(c_call, &msg);
    if (st != NW_OK) fail(st, msg);
}

}  // namespace nwpy
