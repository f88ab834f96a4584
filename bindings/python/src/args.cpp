// Python -> C arguments: see args.hpp.
#include "args.hpp"

#include "info.hpp"

#include <climits>
#include <cstring>

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {
PyObject *numpy_bool_type = nullptr;  // numpy.bool_, set at import
}

void init_arg_types() {
    py::object np = py::module_::import("numpy");
    numpy_bool_type = py::object(np.attr("bool_")).release().ptr();
}

std::vector<py::object> parse_args(const char *fn, const py::args &args, const py::kwargs &kwargs,
                                   std::initializer_list<Param> params) {
    std::vector<Param> ps(params);
    std::vector<py::object> out(ps.size());
    size_t n_pos = args.size();
    if (n_pos > ps.size()) {
        throw py::type_error(std::string(fn) + "() takes " + std::to_string(ps.size()) +
                             " positional argument" + (ps.size() == 1 ? "" : "s") + " but " +
                             std::to_string(n_pos) + " were given");
    }
    for (size_t i = 0; i < n_pos; ++i) out[i] = args[i];
    for (auto item : kwargs) {
        std::string key = py::str(item.first);
        size_t j = 0;
        while (j < ps.size() && key != ps[j].name) ++j;
        if (j == ps.size()) {
            std::string expected;
            for (const auto &p : ps) expected += (expected.empty() ? "" : ", ") + std::string(p.name);
            throw py::type_error(std::string(fn) + "() got an unexpected keyword argument '" + key +
                                 "' (its arguments: " + expected + ")");
        }
        if (out[j]) {
            throw py::type_error(std::string(fn) + "() got multiple values for argument '" + key +
                                 "'");
        }
        out[j] = py::reinterpret_borrow<py::object>(item.second);
    }
    std::string missing;
    size_t n_missing = 0;
    for (size_t j = 0; j < ps.size(); ++j) {
        if (ps[j].required && !out[j]) {
            missing += (missing.empty() ? "'" : ", '") + std::string(ps[j].name) + "'";
            ++n_missing;
        }
    }
    if (n_missing > 0)
        throw py::type_error(std::string(fn) + "() missing " + std::to_string(n_missing) +
                             " required argument" + (n_missing == 1 ? "" : "s") + ": " + missing);
    return out;
}

std::vector<py::object> parse_args(const char *fn, const py::args &args, const py::kwargs &kwargs,
                                   std::initializer_list<Param> params, size_t n_positional) {
    if (args.size() > n_positional)
        throw py::type_error(std::string(fn) + "() takes " + std::to_string(n_positional) +
                             " positional argument" + (n_positional == 1 ? "" : "s") + " but " +
                             std::to_string(args.size()) + " were given (the others are keyword-only)");
    return parse_args(fn, args, kwargs, params);
}

int64_t to_int(py::handle obj, const std::string &what, int64_t lo, int64_t hi,
               nw_status range_status) {
    if (obj.is_none() || PyBool_Check(obj.ptr()) || PyFloat_Check(obj.ptr()) ||
        (numpy_bool_type != nullptr && PyObject_TypeCheck(obj.ptr(), (PyTypeObject *)numpy_bool_type)))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected an integer, got " + type_name(obj));
    PyObject *index = PyNumber_Index(obj.ptr());
    if (index == nullptr) {
        std::string text = take_python_error();  // KeyboardInterrupt etc. pass through
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected an integer, got " + type_name(obj));
    }
    py::object idx = py::reinterpret_steal<py::object>(index);
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(idx.ptr(), &overflow);
    if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        std::string text;
        PyObject *s = PyObject_Str(idx.ptr());
        if (s != nullptr) {
            const char *c = PyUnicode_AsUTF8(s);
            if (c != nullptr) text = c;
            Py_DECREF(s);
        }
        PyErr_Clear();
        fail(range_status, what + " " + text + " is out of range");
    }
    if (v < lo || v > hi)
        fail(range_status, what + " " + std::to_string(v) + " is out of range");
    return static_cast<int64_t>(v);
}

int32_t to_layer(py::handle obj) {
    return static_cast<int32_t>(
        to_int(obj, "layer", INT32_MIN, INT32_MAX, NW_ERR_INDEX_OUT_OF_RANGE));
}

std::string to_name(py::handle obj, const std::string &what) {
    py::handle h = obj;
    py::object value;
    if (!PyUnicode_Check(h.ptr()) && !obj.is_none()) {
        value = getattr_or_null(h, "value", what);  // a str-valued Enum (TDB's NodeType, ...)
        if (value) h = value;
    }
    if (!PyUnicode_Check(h.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected a str, got " + type_name(obj));
    Py_ssize_t size = 0;
    const char *c = PyUnicode_AsUTF8AndSize(h.ptr(), &size);
    if (c == nullptr) {
        take_python_error();
        fail(NW_ERR_INVALID_ARGUMENT, what + ": not a valid UTF-8 string");
    }
    if (static_cast<size_t>(size) != std::strlen(c))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": contains a NUL character");
    return std::string(c, static_cast<size_t>(size));
}

bool to_bool(py::handle obj, const std::string &what) {
    if (obj.ptr() == Py_True) return true;
    if (obj.ptr() == Py_False) return false;
    if (numpy_bool_type != nullptr &&
        PyObject_TypeCheck(obj.ptr(), (PyTypeObject *)numpy_bool_type)) {
        int t = PyObject_IsTrue(obj.ptr());
        if (t < 0) take_python_error();
        return t == 1;
    }
    fail(NW_ERR_INVALID_ARGUMENT, what + ": expected True or False, got " + type_name(obj));
}

nw_node_index node_from_py(py::handle node) { return node_from_py(node, nullptr); }

nw_node_index node_from_py(py::handle node, int32_t *subnode) {
    const bool edge = subnode != nullptr;
    if (node.is_none()) fail(NW_ERR_INVALID_ARGUMENT, "node: expected a NodeIndex, got None");
    // One attribute lookup each (NodeIndex, TDB's NodeIndex, or anything alike).
    py::object node_type = getattr_or_null(node, "node_type", "node");
    py::object layer = getattr_or_null(node, "layer_index", "node");
    if (!layer || layer.is_none()) layer = getattr_or_null(node, "layer", "node");
    py::object idx = getattr_or_null(node, "tensor_indices", "node");
    if (!node_type || !layer || !idx || node_type.is_none() || layer.is_none() || idx.is_none())
        fail(NW_ERR_INVALID_ARGUMENT,
             "node: expected a NodeIndex (node_type, layer_index, tensor_indices), got " +
                 type_name(node));
    nw_node_index n;
    std::memset(&n, 0, sizeof n);
    n.node_type = node_type_arg(node_type, "node_type");
    n.layer = to_layer(layer);
    if (!PySequence_Check(idx.ptr()) || PyUnicode_Check(idx.ptr()) || PyBytes_Check(idx.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT,
             "tensor_indices: expected a sequence of integers, got " + type_name(idx));
    Py_ssize_t len = PySequence_Size(idx.ptr());
    if (len < 0) fail(NW_ERR_INVALID_ARGUMENT, "tensor_indices: " + take_python_error());
    if (len > 4)
        fail(NW_ERR_INVALID_ARGUMENT,
             "tensor_indices: " + std::to_string(len) + " indices; a node has 2 or 3");
    n.n_indices = static_cast<int32_t>(len);
    for (Py_ssize_t i = 0; i < len; ++i) {
        PyObject *item = PySequence_GetItem(idx.ptr(), i);
        if (item == nullptr)
            fail(NW_ERR_INVALID_ARGUMENT, "tensor_indices: " + take_python_error());
        py::object it = py::reinterpret_steal<py::object>(item);
        if (edge && it.is_none()) {  // TDB's None: a trace latent's token (the library says where it may be)
            n.indices[i] = NW_INDEX_NONE;
            continue;
        }
        n.indices[i] = to_int(it, "tensor_indices[" + std::to_string(i) + "]", edge ? INT64_MIN + 1 : INT64_MIN,
                              INT64_MAX, NW_ERR_INDEX_OUT_OF_RANGE);
    }
    if (edge) {
        *subnode = NW_SUBNODE_NONE;
        // q_k_or_v (TDB's AttnSubNodeIndex, nodewrite's NodeIndex(..., q_k_or_v=)): "attn.q",
        // "attn.k", "attn.v" or a str-valued Enum such as TDB's ActivationLocationType; None or absent:
        // no subnode.
        py::object qkv = getattr_or_null(node, "q_k_or_v", "node");
        if (qkv && !qkv.is_none()) {
            std::string v = to_name(qkv, "q_k_or_v");
            if (v == "attn.q") *subnode = NW_SUBNODE_Q;
            else if (v == "attn.k") *subnode = NW_SUBNODE_K;
            else if (v == "attn.v") *subnode = NW_SUBNODE_V;
            else
                fail(NW_ERR_INVALID_ARGUMENT, "q_k_or_v: '" + v + "' is not a part of an attention head; expected "
                                              "'attn.q', 'attn.k' or 'attn.v' (TDB's ActivationLocationType)");
        }
    }
    return n;
}

}  // namespace nwpy
