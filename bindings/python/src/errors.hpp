// Failures of the binding: NwFailure{status, message}, the helpers that throw it, and the
// translator that hands it to nodewrite.errors._raise_for.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "nodewrite.h"

namespace py = pybind11;

// Symbols shared between the binding's files live in nwpy, hidden like pybind11's own
// namespace (only PyInit__core is exported); file-local ones stay in an anonymous namespace.
namespace nwpy __attribute__((visibility("hidden"))) {

struct NwFailure {
    nw_status status;
    std::string message;
};

[[noreturn]] void fail(nw_status status, std::string message);

// Call right after a failed library call, on the same thread.
[[noreturn]] void fail_from_library(nw_status status);

inline void check(nw_status status) {
    if (status != NW_OK) fail_from_library(status);
}

std::string type_name(py::handle obj);

// Turns the pending Python exception into text and clears it.
std::string describe_python_error();

// Registers the translator NwFailure -> nodewrite.errors._raise_for (the single
// status -> exception mapping).
void register_error_translator();

}  // namespace nwpy
