// Failures of the binding and the one place that turns them into Python exceptions.
//
// Every refusal (a bad argument read by the binding, or a status returned by the library) is an
// NwFailure{status, message}. The translator registered here hands it to
// nodewrite.errors._raise_for, the single status -> exception mapping. Library messages name C
// parameters ("t.ndim = 1 but 2 dimensions are expected"); rewrite_library_message, called on
// every library failure, replaces them with what the caller passed (a Subject: "activation
// mlp.post_act at layer 5", its layout "(T, d_ff)").
//
// Python exceptions that are not errors (KeyboardInterrupt, SystemExit, GeneratorExit: any
// BaseException that is not an Exception) are never turned into an NwFailure: they propagate
// unchanged (py::error_already_set).
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

// What the caller passed, for messages: "activation mlp.post_act at layer 5", layout "(T, d_ff)".
struct Subject {
    std::string what;
    std::string layout;  // may be empty
    std::string hint;    // appended to ndim/shape messages, may be empty
};

[[noreturn]] void fail(nw_status status, std::string message);

// A failed library call: status and the message captured on the calling thread.
[[noreturn]] void fail_library(nw_status status, const std::string &message,
                               const Subject *subject = nullptr);

// Right after a failed library call made with the GIL held, on the same thread.
inline void check(nw_status status, const Subject *subject = nullptr) {
    if (status != NW_OK) fail_library(status, nw_last_error_message(), subject);
}

std::string rewrite_library_message(const std::string &message, const Subject *subject);

std::string type_name(py::handle obj);

// The pending Python exception as text, cleared. If it is not an Exception (KeyboardInterrupt,
// SystemExit, ...), it is re-raised unchanged instead (throws py::error_already_set).
std::string take_python_error();

// getattr(obj, name) or a null object when obj has no such attribute (AttributeError only);
// any other Exception -> NwFailure(INVALID_ARGUMENT, what: ...); BaseException passes through.
py::object getattr_or_null(py::handle obj, const char *name, const std::string &what);

// obj(...) with the same rules for exceptions.
py::object call_checked(py::handle fn, const std::string &what);

void register_error_translator(py::module_ &m);

}  // namespace nwpy
