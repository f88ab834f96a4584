// Python -> C arguments: see args.hpp.
#include "args.hpp"

#include <climits>
#include <cstring>

namespace nwpy __attribute__((visibility("hidden"))) {

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

bool to_bool(py::handle obj, const std::string &what) {
    int t = PyObject_IsTrue(obj.ptr());
    if (t < 0) fail(NW_ERR_INVALID_ARGUMENT, what + ": " + describe_python_error());
    return t == 1;
}

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

}  // namespace nwpy
