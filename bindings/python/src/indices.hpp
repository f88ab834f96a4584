// Node index arrays: the (n, k) int64 array of a node set (indices= of node_writes,
// token_writes, top_token_writes), copied with the GIL held from any integer array or nested list.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
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

void init_index_types();

}  // namespace nwpy
