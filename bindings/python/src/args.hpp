// Python -> C arguments: the call's argument list, integers, layers, names (str or str-valued
// Enum; info.hpp turns them into enums), bools, and node indices. Every refusal of a value is an NwFailure
// (ValueError / IndexError); a wrong argument list (count, unknown or repeated keyword) is a
// TypeError with Python's own wording, as for any Python function.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "errors.hpp"
#include "nodewrite.h"

namespace nwpy __attribute__((visibility("hidden"))) {

struct Param {
    const char *name;
    bool required;
};

// Matches (args, kwargs) to params as Python would for `def fn(p0, p1, ...)`: returns one object
// per parameter (a null object for an optional one not given). Raises TypeError otherwise.
std::vector<py::object> parse_args(const char *fn, const py::args &args, const py::kwargs &kwargs,
                                   std::initializer_list<Param> params);

// The same, with at most n_positional of them given by position (the rest keyword-only).
std::vector<py::object> parse_args(const char *fn, const py::args &args, const py::kwargs &kwargs,
                                   std::initializer_list<Param> params, size_t n_positional);

// An integer argument (int, numpy integer, anything with __index__; not bool or float).
// Non-integers -> NW_ERR_INVALID_ARGUMENT; values outside [lo, hi] -> range_status.
int64_t to_int(py::handle obj, const std::string &what, int64_t lo, int64_t hi,
               nw_status range_status);

int32_t to_layer(py::handle obj);

// Accepts a str, or an Enum whose value is a str (TDB's NodeType etc.).
std::string to_name(py::handle obj, const std::string &what);

// True or False (Python bool or numpy.bool_) only: "no", 0 and None are refused.
bool to_bool(py::handle obj, const std::string &what);

// A NodeIndex (nodewrite's, TDB's, or anything with node_type, layer_index / layer and
// tensor_indices) -> nw_node_index.
nw_node_index node_from_py(py::handle node);
// The same for the node argument of an edge DST (nw_derive_node): a None index is NW_INDEX_NONE
// (TDB's trace latent (None, latent)), and q_k_or_v ("attn.q" / "attn.k" / "attn.v", or TDB's
// ActivationLocationType) gives *subnode (enum nw_subnode; NW_SUBNODE_NONE without one).
nw_node_index node_from_py(py::handle node, int32_t *subnode);

// Module-import-time caches (numpy types): see module.cpp.
void init_arg_types();

}  // namespace nwpy
