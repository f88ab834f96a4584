// Failures of the binding: see errors.hpp.
#include "errors.hpp"

#include <exception>
#include <new>
#include <stdexcept>
#include <utility>

namespace nwpy __attribute__((visibility("hidden"))) {

[[noreturn]] void fail(nw_status status, std::string message) {
    throw NwFailure{status, std::move(message)};
}

std::string type_name(py::handle obj) {
    if (obj.is_none()) return "None";
    return std::string(Py_TYPE(obj.ptr())->tp_name);
}

std::string take_python_error() {
    if (!PyErr_Occurred()) return "unknown error";
    if (!PyErr_ExceptionMatches(PyExc_Exception)) throw py::error_already_set();
    py::error_already_set e;  // fetches and clears
    std::string text = e.what();
    // pybind11 appends the traceback ("\n\nAt:\n  file(line): function"): keep the message only
    size_t at = text.find("\n\nAt:");
    if (at != std::string::npos) text.resize(at);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

py::object getattr_or_null(py::handle obj, const char *name, const std::string &what) {
    PyObject *r = PyObject_GetAttrString(obj.ptr(), name);
    if (r != nullptr) return py::reinterpret_steal<py::object>(r);
    if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return py::object();
    }
    std::string text = take_python_error();
    fail(NW_ERR_INVALID_ARGUMENT, what + ": reading ." + name + " failed: " + text);
}

py::object call_checked(py::handle fn, const std::string &what) {
    PyObject *r = PyObject_CallNoArgs(fn.ptr());
    if (r != nullptr) return py::reinterpret_steal<py::object>(r);
    std::string text = take_python_error();
    fail(NW_ERR_INVALID_ARGUMENT, what + ": " + text);
}

namespace {
py::object *raise_for = nullptr;  // nodewrite.errors._raise_for, set by _set_error_handler
}

void register_error_translator(py::module_ &m) {
    m.def(
        "_set_error_handler",
        [](py::object fn) {
            if (raise_for == nullptr) raise_for = new py::object();  // never freed (module lifetime)
            *raise_for = std::move(fn);
        },
        "Used by nodewrite.errors at import: the function that raises the exception of a status.");
    py::register_exception_translator([](std::exception_ptr p) {
        nw_status status = NW_OK;
        std::string message;
        try {
            if (p) std::rethrow_exception(p);
            return;
        } catch (const NwFailure &f) {
            status = f.status;
            message = f.message;
        } catch (const std::bad_alloc &) {
            status = NW_ERR_OUT_OF_MEMORY;
            message = "out of memory";
        } catch (const std::length_error &e) {
            status = NW_ERR_OUT_OF_MEMORY;
            message = std::string("allocation too large (") + e.what() + ")";
        }
        if (raise_for == nullptr || !*raise_for) {
            PyErr_SetString(PyExc_RuntimeError, message.c_str());
            return;
        }
        try {
            (*raise_for)(status, message);
            PyErr_SetString(PyExc_RuntimeError, message.c_str());
        } catch (py::error_already_set &e) {
            e.restore();
        }
    });
}

}  // namespace nwpy
