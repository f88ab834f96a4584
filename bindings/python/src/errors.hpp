// Failures of the binding and the one place that turns them into Python exceptions.
//
// Every refusal (a bad argument read by the binding, or a status returned by the library) is an
// NwFailure{status, message}. The translator registered here hands it to
// nodewrite.errors._raise_for, the single status -> exception mapping. Library messages are
// passed on as the library wrote them: they name what the caller passed.
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

[[noreturn]] void fail(nw_status status, std::string message);

// Right after a failed library call made with the GIL held, on the same thread: the status and
// the library's message of this thread.
inline void check(nw_status status) {
    if (status != NW_OK) fail(status, nw_last_error_message());
}

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
