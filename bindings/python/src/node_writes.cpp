// One node's write: nodewrite.node_write, node_write_vectors and node_write_to_direction
// (binding, docstrings, registration). Each makes one library call (sized_call, outputs.hpp).
#include "args.hpp"
#include "info.hpp"
#include "objects.hpp"
#include "outputs.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

// (T, width) of a node's per-token output: T from the activation holding the node's scalar.
std::vector<int64_t> node_output_shape(const Model &m, const Store &s, const nw_node_index &node,
                                       int32_t width_dim) {
    if (node.node_type < 0 || static_cast<size_t>(node.node_type) >= facts().node_types.size()) return {};
    const NodeTypeFacts &nt = node_type_facts(node.node_type);
    if (nt.activations.empty()) return {};
    return predicted_shape(m, s, {NW_DIM_TOKENS, width_dim}, {nt.activations[0]}, node.layer);
}

py::object node_write(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("node_write", args, kwargs, {{"model", true}, {"store", true}, {"node", true}});
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    nw_node_index node = node_from_py(a[2]);
    return sized_call(
        m, s, [&] { return node_output_shape(m, s, node, NW_DIM_D_MODEL); },
        [&](float *p, size_t len, uint32_t flags, Reported *r) {
            r->ndim = 2;
            return nw_node_write_sized(m.model, s.store, &node, flags, p, len, r->shape);
        },
        /*zeroable=*/true);
}

py::tuple node_write_vectors(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("node_write_vectors", args, kwargs,
                        {{"model", true}, {"store", true}, {"nodes", true}});
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    py::handle nodes = a[2];
    if (nodes.is_none() || !PySequence_Check(nodes.ptr()) || PyUnicode_Check(nodes.ptr()) ||
        PyBytes_Check(nodes.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT,
             "nodes: expected a sequence of NodeIndex, got " + type_name(nodes));
    Py_ssize_t len = PySequence_Size(nodes.ptr());
    if (len < 0) fail(NW_ERR_INVALID_ARGUMENT, "nodes: " + take_python_error());
    // Outputs first: a sequence claiming 2**40 nodes is a NodeWriteMemoryError before any
    // node is read.
    py::array_t<float> out = new_output({static_cast<int64_t>(len), m.dims.d_model});
    py::array_t<int64_t> rows = new_output_i64({static_cast<int64_t>(len)});
    std::vector<nw_node_index> c(static_cast<size_t>(len));  // bad_alloc -> NodeWriteMemoryError
    for (Py_ssize_t i = 0; i < len; ++i) {
        PyObject *item = PySequence_GetItem(nodes.ptr(), i);
        if (item == nullptr)
            fail(NW_ERR_INVALID_ARGUMENT, "nodes[" + std::to_string(i) + "]: " + take_python_error());
        py::object it = py::reinterpret_steal<py::object>(item);
        try {
            c[static_cast<size_t>(i)] = node_from_py(it);
        } catch (NwFailure &f) {
            f.message = "nodes[" + std::to_string(i) + "]: " + f.message;
            throw;
        }
    }
    float *p = out.mutable_data();
    int64_t *r = rows.mutable_data();
    size_t out_len = static_cast<size_t>(len) * static_cast<size_t>(m.dims.d_model);
    std::string msg;
    ReadLocks locks;
    locks.add(m.mu);
    locks.add(s.mu);
    nw_status st = locks.run([&] {
        return nw_node_write_vectors(m.model, s.store, c.data(), c.size(), p, out_len, r);
    }, &msg);
    if (st != NW_OK) fail(st, msg);
    return py::make_tuple(std::move(out), std::move(rows));
}

py::object node_write_to_direction(const py::args &args, const py::kwargs &kwargs) {
    // direction is keyword-only; by position it is accepted one release more, with a warning.
    py::args rest = args;
    py::kwargs kw = kwargs;
    if (args.size() == 4 && !kwargs.contains("direction")) {
        if (PyErr_WarnEx(PyExc_DeprecationWarning,
                         "node_write_to_direction(model, store, node, direction): pass direction= "
                         "by keyword; the positional form will be removed", 1) != 0)
            throw py::error_already_set();
        rest = py::args(py::make_tuple(args[0], args[1], args[2]));
        kw = py::kwargs(py::dict(kwargs));
        kw["direction"] = args[3];
    }
    auto a = parse_args("node_write_to_direction", rest, kw,
                        {{"model", true}, {"store", true}, {"node", true}, {"direction", true}}, 3);
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    nw_node_index node = node_from_py(a[2]);
    HeldPtr dir = hold_tensor(a[3], "direction");
    nw_tensor_view dv = dir->view();
    return sized_call(
        m, s, [&] { return node_output_shape(m, s, node, NW_DIM_ONE); },
        [&](float *p, size_t len, uint32_t, Reported *r) {
            r->ndim = 2;
            return nw_node_write_to_direction(m.model, s.store, &node, &dv, p, len, r->shape);
        },
        /*zeroable=*/false);
}

}  // namespace

void init_node_writes(py::module_ &mod) {
    mod.def("node_write", &node_write, R"doc(node_write(model: Model, store: ActivationStore, node: NodeIndex) -> numpy.ndarray

One-shot: the (T, d_model) float32 output of the node-write deriver of node (as
NodeWriteDeriver(model, node).write(store)), zero except the node's token row. One library
call (nw_node_write_sized).
)doc");
    mod.def("node_write_vectors", &node_write_vectors, R"doc(node_write_vectors(model: Model, store: ActivationStore, nodes: Sequence[NodeIndex]) -> tuple[numpy.ndarray, numpy.ndarray]

Write vectors of many nodes in one call: (vectors float32 (n, d_model), token_rows int64 (n,)).
All nodes are validated before anything is computed; the error names the first failing node.
)doc");
    mod.def("node_write_to_direction", &node_write_to_direction, R"doc(node_write_to_direction(model: Model, store: ActivationStore, node: NodeIndex, *, direction: numpy.ndarray | torch.Tensor) -> numpy.ndarray

TDB's single_node_write_to_final_residual_grad: a (T, 1) float32 column, w . g[t] in the row t
the node's write lands on (the query token for attention), 0 elsewhere. direction: (T, d_model)
or (d_model,), as in derive; keyword-only (by position: deprecated, DeprecationWarning).
)doc");
}

}  // namespace nwpy
