// Python -> C arguments: integers, layers, names (str or str-valued Enum), enums by name,
// bools, and node indices. Every refusal is an NwFailure.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "errors.hpp"
#include "nodewrite.h"

namespace nwpy __attribute__((visibility("hidden"))) {

// An integer argument (int, numpy integer, anything with __index__).
// Non-integers -> NW_ERR_INVALID_ARGUMENT; values outside [lo, hi] -> range_status.
int64_t to_int(py::handle obj, const std::string &what, int64_t lo, int64_t hi,
               nw_status range_status);

int32_t to_layer(py::handle obj);

// Accepts a str, or an Enum whose value is a str (TDB's NodeType etc.).
std::string to_name(py::handle obj, const std::string &what);

// A name turned into a library enum by from_name (nw_*_from_name).
template <typename F>
int32_t name_to_enum(py::handle obj, const std::string &what, F from_name) {
    std::string name = to_name(obj, what);
    int32_t out = -1;
    nw_status st = from_name(name.c_str(), &out);
    if (st != NW_OK) {
        std::string msg = nw_last_error_message();
        fail(st, what + ": " + (msg.empty() ? "unknown name '" + name + "'" : msg));
    }
    return out;
}

bool to_bool(py::handle obj, const std::string &what);

// A NodeIndex (nodewrite's, TDB's, or anything with node_type, layer_index / layer and
// tensor_indices) -> nw_node_index.
nw_node_index node_from_py(py::handle node);

}  // namespace nwpy
