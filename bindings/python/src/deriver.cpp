// nodewrite.NodeWriteDeriver (nw_deriver): one library call to create it (its requirements are
// the node type's activations in the library's table), one per write / write_vector
// (binding, docstrings, registration). Locking: see objects.hpp.
#include "args.hpp"
#include "info.hpp"
#include "objects.hpp"
#include "outputs.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

Deriver &deriver_self(py::handle self) { return self_of<Deriver>(self, "NodeWriteDeriver"); }

void warn_renamed(const char *old_name, const char *new_name) {
    std::string text = std::string("NodeWriteDeriver.") + old_name + " is deprecated: call NodeWriteDeriver." +
                       new_name + " (the same result; 'derive' is nodewrite.derive's verb)";
    if (PyErr_WarnEx(PyExc_DeprecationWarning, text.c_str(), 2) != 0) throw py::error_already_set();
}

std::unique_ptr<Deriver> deriver_new(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("NodeWriteDeriver", args, kwargs, {{"model", true}, {"node", true}});
    Model &m = model_arg(a[0]);
    nw_node_index n = node_from_py(a[1]);
    auto d = std::make_unique<Deriver>();
    {
        ReadLocks locks;  // the same lock set_weight takes: the captured weights stay put
        locks.add(m.mu);
        check(nw_node_write_deriver_create(m.model, &n, &d->deriver));
        d->keep = m.borrowed_objects();
        d->d_model = m.dims.d_model;
    }
    d->model_obj = a[0];
    d->node_obj = a[1];
    d->node = n;
    const NodeTypeFacts &f = node_type_facts(n.node_type);
    py::tuple r(f.activations.size());
    for (size_t i = 0; i < f.activations.size(); ++i)
        r[i] = py::make_tuple(py::str(activation_facts(f.activations[i]).name), n.layer);
    d->requirements = r;
    return d;
}

py::object deriver_write(const Deriver &d, py::handle store) {
    Store &s = store_arg(store);
    Model &m = model_arg(d.model_obj);
    const NodeTypeFacts &f = node_type_facts(d.node.node_type);
    return sized_call(
        m, s,
        [&] { return predicted_shape(m, s, {NW_DIM_TOKENS, NW_DIM_D_MODEL}, {f.activations[0]}, d.node.layer); },
        [&](float *p, size_t len, uint32_t, Reported *r) {
            nw_status st = nw_deriver_derive(d.deriver, s.store, p, len);
            if (st == NW_ERR_BUFFER_TOO_SMALL) {  // the store could not tell T: ask (rare)
                nw_status sh = nw_deriver_output_shape(d.deriver, s.store, r->shape);
                if (sh != NW_OK) return sh;
                r->ndim = 2;
            } else if (st == NW_OK) {
                // nw_deriver_derive wrote the predicted (T, d_model): say so
                r->ndim = 2;
                r->shape[0] = d.d_model > 0 ? static_cast<int64_t>(len) / d.d_model : 0;
                r->shape[1] = d.d_model;
            }
            return st;
        },
        /*zeroable=*/false);
}

py::object deriver_write_method(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Deriver &d = deriver_self(self);
    auto a = parse_args("write", args, kwargs, {{"store", true}});
    return deriver_write(d, a[0]);
}

py::object deriver_derive_method(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Deriver &d = deriver_self(self);
    auto a = parse_args("derive", args, kwargs, {{"store", true}});
    warn_renamed("derive", "write");
    return deriver_write(d, a[0]);
}

py::tuple deriver_write_vector(const Deriver &d, py::handle store) {
    Store &s = store_arg(store);
    Model &m = model_arg(d.model_obj);
    py::array_t<float> out = new_output({d.d_model});
    float *p = out.mutable_data();
    int64_t token = -1;
    std::string msg;
    ReadLocks locks;
    locks.add(m.mu);
    locks.add(s.mu);
    nw_status st = locks.run([&] {
        return nw_deriver_derive_vector(d.deriver, s.store, p, static_cast<size_t>(d.d_model), &token);
    }, &msg);
    if (st != NW_OK) fail(st, msg);
    return py::make_tuple(std::move(out), token);
}

py::tuple deriver_write_vector_method(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Deriver &d = deriver_self(self);
    auto a = parse_args("write_vector", args, kwargs, {{"store", true}});
    return deriver_write_vector(d, a[0]);
}

py::tuple deriver_derive_vector_method(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Deriver &d = deriver_self(self);
    auto a = parse_args("derive_vector", args, kwargs, {{"store", true}});
    warn_renamed("derive_vector", "write_vector");
    return deriver_write_vector(d, a[0]);
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
        .def("write", &deriver_write_method, R"doc(write(self, store: ActivationStore) -> numpy.ndarray

TDB's output: a new float32 numpy array (T, d_model), zero except the node's token row
(the query token for attention nodes). One library call; releases the GIL during it.
)doc")
        .def("write_vector", &deriver_write_vector_method, R"doc(write_vector(self, store: ActivationStore) -> tuple[numpy.ndarray, int]

The write vector alone: (float32 numpy array (d_model,), token_row: int). One library call.
)doc")
        .def("derive", &deriver_derive_method, R"doc(derive(self, store: ActivationStore) -> numpy.ndarray

Deprecated alias of write (DeprecationWarning): the same (T, d_model) float32 array.
)doc")
        .def("derive_vector", &deriver_derive_vector_method, R"doc(derive_vector(self, store: ActivationStore) -> tuple[numpy.ndarray, int]

Deprecated alias of write_vector (DeprecationWarning).
)doc")
        .def("__repr__", [](py::handle self) {
            return "nodewrite.NodeWriteDeriver(" +
                   py::repr(deriver_self(self).node_obj).cast<std::string>() + ")";
        }, "__repr__(self) -> str");
}

}  // namespace nwpy
