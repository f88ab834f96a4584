// The objects and their methods: see objects.hpp; locking: see module.cpp.
#include "objects.hpp"

#include <climits>
#include <mutex>
#include <string>

#include "args.hpp"
#include "errors.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

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

}  // namespace

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

std::unique_ptr<Store> store_new() {
    auto s = std::make_unique<Store>();
    check(nw_store_create(&s->store));
    return s;
}

namespace {

std::pair<int32_t, int32_t> activation_key(py::object name, py::object layer) {
    int32_t act = name_to_enum(name, "activation", nw_activation_from_name);
    int32_t l = to_layer(layer);
    return {act, l};
}

}  // namespace

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

namespace {

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

}  // namespace

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

namespace {

struct DeriverGuard {
    nw_deriver *d = nullptr;
    ~DeriverGuard() { nw_deriver_destroy(d); }
};

}  // namespace

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

}  // namespace nwpy
