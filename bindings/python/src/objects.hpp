// The objects: Model, Store (ActivationStore) and Deriver (NodeWriteDeriver) over nw_model,
// nw_store and nw_deriver, their methods, and the one-shot node_write / node_write_vectors.
// Locking: see the header comment of module.cpp.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "nodewrite.h"
#include "views.hpp"

namespace py = pybind11;

namespace nwpy __attribute__((visibility("hidden"))) {

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

// Model
std::unique_ptr<Model> model_new(py::object n_layers, py::object d_model, py::object n_heads,
                                 py::object d_head, py::object d_ff);
void model_set_weight(Model &m, py::object name, py::object layer, py::object w,
                      py::object copy);
void model_set_autoencoder(Model &m, py::object node_type, py::object layer, py::object decoder,
                           py::object input, py::object copy);

// Store
std::unique_ptr<Store> store_new();
void store_put(Store &s, py::object name, py::object layer, py::object t);
void store_remove(Store &s, py::object name, py::object layer);
void store_clear(Store &s);
py::list store_keys(const Store &s);
py::object store_get(const Store &s, py::object name, py::object layer);
bool store_contains(const Store &s, py::object key);

// Deriver
std::unique_ptr<Deriver> deriver_new(py::object model, py::object node);
py::array_t<float> deriver_derive(Deriver &d, py::object store);
py::tuple deriver_derive_vector(Deriver &d, py::object store);

// One-shot functions
py::array_t<float> node_write(py::object model, py::object store, py::object node);
py::tuple node_write_vectors(py::object model, py::object store, py::object nodes);

}  // namespace nwpy
