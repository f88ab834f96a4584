// Failures of the binding: see errors.hpp.
#include "errors.hpp"

#include <exception>
#include <utility>

namespace nwpy __attribute__((visibility("hidden"))) {

[[noreturn]] void fail(nw_status status, std::string message) {
    throw NwFailure{status, std::move(message)};
}

[[noreturn]] void fail_from_library(nw_status status) {
    throw NwFailure{status, std::string(nw_last_error_message())};
}

std::string type_name(py::handle obj) {
    if (obj.is_none()) return "None";
    return std::string(Py_TYPE(obj.ptr())->tp_name);
}

std::string describe_python_error() {
    // Turns the pending Python exception into text and clears it.
    py::error_already_set e;
    return std::string(e.what());
}

void register_error_translator() {
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const NwFailure &f) {
            try {
                py::module_::import("nodewrite.errors").attr("_raise_for")(f.status, f.message);
                PyErr_SetString(PyExc_RuntimeError, f.message.c_str());
            } catch (py::error_already_set &e) {
                e.restore();
            }
        }
    });
}

}  // namespace nwpy
