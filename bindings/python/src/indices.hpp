// Node index arrays: the (n, k) int64 array of a node set (indices= of node_writes,
// token_writes, top_token_writes), copied with the GIL held from any integer array or nested list.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

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
    // A pointer the library may read (never NULL, also for an empty set).
    const int64_t *ptr() const {
        static const int64_t none = 0;
        return data ? data : &none;
    }
};

// Reads obj as the indices of nodes of node_type (k = its index count, from the library's table).
void read_indices(py::handle obj, int32_t node_type, Indices &ix);

// The arguments every node-set call leads with (node_writes, token_writes, top_token_writes):
// model, store, node_type, layer, indices (a[0] ... a[4] of parse_args), read with the GIL held.
struct NodeSetCall {
    Model &m;
    Store &s;
    int32_t node_type, layer;
    Indices ix;

    explicit NodeSetCall(const std::vector<py::object> &a);
    // Checks what the layer's nodes read, then runs c_call() under the model's and store's read
    // locks without the GIL; a failure raises with the library's message.
    void run(const std::function<nw_status()> &c_call);
};

void init_index_types();

}  // namespace nwpy
