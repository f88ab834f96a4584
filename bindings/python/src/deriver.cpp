// nodewrite.NodeWriteDeriver (nw_deriver) and the one-shot functions node_write and
// node_write_vectors (binding, docstrings, registration). Locking: see objects.hpp.
#include <climits>

#include "args.hpp"
#include "objects.hpp"
#include "sizing.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

Deriver &deriver_self(py::handle self) { return self_of<Deriver>(self, "NodeWriteDeriver"); }

struct DeriverGuard {
    nw_deriver *d = nullptr;
    ~DeriverGuard() { nw_deriver_destroy(d); }
};

// The (T, d_model) output of a deriver. Everything under the locks (taken with the GIL held):
// the temporary deriver of a one-shot call (it captures the model's weights), the output
// shape, the allocation of the output (which runs no Python code), and the derive.
py::array_t<float> derive_full(Model &m, Store &s, const nw_deriver *deriver,
                               const nw_node_index *node) {
    ReadLocks locks;
    locks.add(m.mu);
    locks.add(s.mu);
    DeriverGuard temp;
    if (deriver == nullptr) {
        check(nw_node_write_deriver_create(m.model, node, &temp.d));
        deriver = temp.d;
    }
    int64_t shape[2] = {0, 0};
    check(nw_deriver_output_shape(deriver, s.store, shape));
    py::array_t<float> out = new_output({shape[0], shape[1]});
    float *p = out.mutable_data();
    size_t n = static_cast<size_t>(shape[0]) * static_cast<size_t>(shape[1]);
    std::string msg;
    nw_status st = locks.run([&] { return nw_deriver_derive(deriver, s.store, p, n); }, &msg);
    if (st != NW_OK) fail_library(st, msg);
    return out;
}

std::unique_ptr<Deriver> deriver_new(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("NodeWriteDeriver", args, kwargs, {{"model", true}, {"node", true}});
    Model &m = model_arg(a[0]);
    nw_node_index n = node_from_py(a[1]);
    auto d = std::make_unique<Deriver>();
    std::vector<nw_requirement> req(8);
    size_t count = 0;
    {
        ReadLocks locks;  // the same lock set_weight takes: the captured weights stay put
        locks.add(m.mu);
        check(nw_node_write_deriver_create(m.model, &n, &d->deriver));
        d->keep = m.borrowed();
        d->d_model = m.dims.d_model;
        nw_status st = nw_deriver_requirements(d->deriver, req.data(), req.size(), &count);
        if (st == NW_ERR_BUFFER_TOO_SMALL && count > req.size()) {
            req.resize(count);
            st = nw_deriver_requirements(d->deriver, req.data(), req.size(), &count);
        }
        check(st);
    }
    d->model_obj = a[0];
    d->node_obj = a[1];
    py::list r;
    for (size_t i = 0; i < count && i < req.size(); ++i) {
        const char *name = nw_activation_name(req[i].activation);
        r.append(py::make_tuple(py::str(name ? name : "?"), req[i].layer));
    }
    d->requirements = py::tuple(r);
    return d;
}

py::array_t<float> deriver_derive(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Deriver &d = deriver_self(self);
    auto a = parse_args("derive", args, kwargs, {{"store", true}});
    Store &s = store_arg(a[0]);
    return derive_full(model_arg(d.model_obj), s, d.deriver, nullptr);
}

py::tuple deriver_derive_vector(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Deriver &d = deriver_self(self);
    auto a = parse_args("derive_vector", args, kwargs, {{"store", true}});
    Store &s = store_arg(a[0]);
    Model &m = model_arg(d.model_obj);
    py::array_t<float> out = new_output({d.d_model});
    float *p = out.mutable_data();
    int64_t token = -1;
    std::string msg;
    ReadLocks locks;
    locks.add(m.mu);
    locks.add(s.mu);
    nw_status st = locks.run([&] {
        return nw_deriver_derive_vector(d.deriver, s.store, p, static_cast<size_t>(d.d_model),
                                        &token);
    }, &msg);
    if (st != NW_OK) fail_library(st, msg);
    return py::make_tuple(std::move(out), token);
}

py::array_t<float> node_write(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("node_write", args, kwargs,
                        {{"model", true}, {"store", true}, {"node", true}});
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    nw_node_index n = node_from_py(a[2]);
    return node_write_once(m, s, n);  // one crossing: nw_node_write_sized
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
    py::array_t<int64_t> rows(std::vector<py::ssize_t>{static_cast<py::ssize_t>(len)});
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
    if (st != NW_OK) fail_library(st, msg);
    return py::make_tuple(std::move(out), std::move(rows));
}

}  // namespace

void init_deriver(py::module_ &mod) {
    py::class_<Deriver> cls(mod, "NodeWriteDeriver", R"doc(NodeWriteDeriver(model: Model, node: NodeIndex)

The node-write deriver of one node (TDB's ScalarDeriver for SINGLE_NODE_WRITE),
wrapping nw_deriver.

Validates the node against the model (layer, non-token indices, weights and autoencoder
present) and captures the model's current weights. Immutable; share it between threads freely.
)doc");
    def_init(cls, &deriver_new, "NodeWriteDeriver", "__init__(self, model: Model, node: NodeIndex) -> None");
    cls.def_property_readonly("requirements", [](py::handle self) { return deriver_self(self).requirements; },
            "requirements: tuple[tuple[str, int], ...] -- the raw activations it reads, "
            "((ActivationLocationType value, layer), ...); a tuple, so it cannot be changed.")
        .def_property_readonly("model", [](py::handle self) { return deriver_self(self).model_obj; },
                               "model: Model -- the Model it was created from.")
        .def_property_readonly("node", [](py::handle self) { return deriver_self(self).node_obj; },
                               "node: NodeIndex -- the node it derives the write of.")
        .def("derive", &deriver_derive, R"doc(derive(self, store: ActivationStore) -> numpy.ndarray

TDB's output: a new float32 numpy array (T, d_model), zero except the node's token row
(the query token for attention nodes). Releases the GIL during the computation.
)doc")
        .def("derive_vector", &deriver_derive_vector, R"doc(derive_vector(self, store: ActivationStore) -> tuple[numpy.ndarray, int]

The write vector alone: (float32 numpy array (d_model,), token_row: int).
)doc")
        .def("__repr__", [](py::handle self) {
            return "nodewrite.NodeWriteDeriver(" +
                   py::repr(deriver_self(self).node_obj).cast<std::string>() + ")";
        }, "__repr__(self) -> str");

    mod.def("node_write", &node_write, R"doc(node_write(model: Model, store: ActivationStore, node: NodeIndex) -> numpy.ndarray

One-shot: the (T, d_model) float32 output of the node-write deriver of node (as
NodeWriteDeriver(model, node).derive(store)).
)doc");
    mod.def("node_write_vectors", &node_write_vectors, R"doc(node_write_vectors(model: Model, store: ActivationStore, nodes: Sequence[NodeIndex]) -> tuple[numpy.ndarray, numpy.ndarray]

Write vectors of many nodes in one call: (vectors float32 (n, d_model), token_rows int64 (n,)).
All nodes are validated before anything is computed; the error names the first failing node.
)doc");
}

}  // namespace nwpy
