// Failures of the binding: see errors.hpp.
#include "errors.hpp"

#include <exception>
#include <new>
#include <regex>
#include <stdexcept>
#include <utility>

namespace nwpy __attribute__((visibility("hidden"))) {

[[noreturn]] void fail(nw_status status, std::string message) {
    throw NwFailure{status, std::move(message)};
}

std::string rewrite_library_message(const std::string &message, const Subject *subject) {
    if (subject == nullptr) return message;
    // messages about an output ("out: ...", "values and token_ids share memory ...") name it already
    static const std::regex output_re(R"(^(out|out_shape|out_ndim|values|token_ids|token_rows?)(:| and ).*$)");
    if (std::regex_match(message, output_re)) return message;
    // "<param>.ndim = N but M dimensions are expected" (the C view's parameter name)
    static const std::regex ndim_re(R"(^[A-Za-z_.]+\.ndim = (-?\d+) but (\d+) dimensions are expected$)");
    // "<param>: rest" or "<param>.field: rest" where <param> is a C parameter name
    static const std::regex param_re(R"(^(t|w|decoder|view|input|weight|layer)(\.[a-z_]+)?(\[\d+\])?: (.*)$)");
    std::smatch m;
    std::string out;
    if (std::regex_match(message, m, ndim_re)) {
        std::string n = m[1].str();
        out = subject->what + ": " + n + (n == "1" ? " dimension" : " dimensions") + ", expected " +
              m[2].str();
        if (!subject->layout.empty()) out += " " + subject->layout;
        if (!subject->hint.empty()) out += "; " + subject->hint;
        return out;
    }
    if (std::regex_match(message, m, param_re)) {
        out = subject->what + ": " + m[4].str();
    } else if (message.rfind(subject->what, 0) == 0) {
        out = message;  // already names it
    } else {
        out = subject->what + ": " + message;
    }
    if (!subject->layout.empty() && out.find("shape") != std::string::npos &&
        out.find(subject->layout) == std::string::npos)
        out += " (expected " + subject->layout + ")";
    return out;
}

[[noreturn]] void fail_library(nw_status status, const std::string &message,
                               const Subject *subject) {
    throw NwFailure{status, rewrite_library_message(message, subject)};
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
