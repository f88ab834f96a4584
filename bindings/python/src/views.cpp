// Held tensors: see views.hpp.
#include "views.hpp"

#include <cstring>

#include "args.hpp"
#include "dlpack.hpp"
#include "errors.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

void set_contiguous_strides(Held &h) {
    h.strides.assign(h.shape.size(), 1);
    int64_t s = 1;
    for (size_t i = h.shape.size(); i-- > 0;) {
        h.strides[i] = s;
        s *= (h.shape[i] > 0 ? h.shape[i] : 1);
    }
}

bool from_buffer(py::handle obj, Held &h, const std::string &what) {
    if (!PyObject_CheckBuffer(obj.ptr())) return false;
    if (PyObject_GetBuffer(obj.ptr(), &h.buffer, PyBUF_STRIDES | PyBUF_FORMAT) != 0)
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": cannot read the buffer of " + type_name(obj) + ": " +
                 describe_python_error());
    h.has_buffer = true;
    const Py_buffer &b = h.buffer;
    const char *fmt = b.format ? b.format : "B";
    std::string format = fmt;
    if (*fmt == '@' || *fmt == '=' || *fmt == '<') ++fmt;
    // Little-endian machines only (x86_64, aarch64): '>' / '!' are byte-swapped data.
    int32_t dtype = -1;
    if (std::strcmp(fmt, "f") == 0 && b.itemsize == 4) dtype = NW_DTYPE_F32;
    else if (std::strcmp(fmt, "e") == 0 && b.itemsize == 2) dtype = NW_DTYPE_F16;
    else if (std::strcmp(fmt, "d") == 0 && b.itemsize == 8) dtype = NW_DTYPE_F64;
    if (dtype < 0)
        fail(NW_ERR_UNSUPPORTED_DTYPE,
             what + ": unsupported element type (buffer format '" + format +
                 "'); expected float32, float16 or float64 (bfloat16 through a torch tensor); "
                 "nodewrite never converts inputs implicitly");
    h.dtype = dtype;
    h.data = b.buf;
    h.shape.resize(static_cast<size_t>(b.ndim));
    for (int i = 0; i < b.ndim; ++i) h.shape[i] = b.shape ? b.shape[i] : 0;
    if (b.ndim == 1 && b.shape == nullptr) h.shape[0] = b.len / b.itemsize;
    if (b.strides == nullptr) {
        set_contiguous_strides(h);
    } else {
        h.strides.resize(static_cast<size_t>(b.ndim));
        for (int i = 0; i < b.ndim; ++i) {
            if (b.strides[i] % b.itemsize != 0)
                fail(NW_ERR_INVALID_ARGUMENT,
                     what + ": byte stride " + std::to_string(b.strides[i]) + " of dimension " +
                         std::to_string(i) + " is not a multiple of the item size " +
                         std::to_string(b.itemsize));
            h.strides[i] = b.strides[i] / b.itemsize;
        }
    }
    return true;
}

bool from_dlpack(py::handle obj, Held &h, const std::string &what) {
    if (!py::hasattr(obj, "__dlpack__")) return false;
    py::object src = py::reinterpret_borrow<py::object>(obj);
    // Device first, without importing anything: __dlpack_device__() -> (type, id).
    if (py::hasattr(src, "__dlpack_device__")) {
        int32_t device_type = -1;
        try {
            py::tuple dev = src.attr("__dlpack_device__")();
            device_type = dev[0].cast<int32_t>();
        } catch (py::error_already_set &e) {
            fail(NW_ERR_INVALID_ARGUMENT, what + ": __dlpack_device__ failed: " + e.what());
        } catch (py::cast_error &) {
            fail(NW_ERR_INVALID_ARGUMENT, what + ": __dlpack_device__ returned no device type");
        }
        if (device_type != dl::kCPU) {
            std::string dev = "device type " + std::to_string(device_type);
            if (py::hasattr(src, "device")) {
                try { dev = py::str(src.attr("device")).cast<std::string>(); } catch (...) {}
            }
            fail(NW_ERR_INVALID_ARGUMENT,
                 what + ": tensor is on " + dev +
                     "; nodewrite reads CPU memory only (move it with .cpu() first)");
        }
    }
    // A tensor that requires grad refuses DLPack export; a detached view shares memory.
    if (py::hasattr(src, "requires_grad") && py::hasattr(src, "detach")) {
        try {
            if (to_bool(src.attr("requires_grad"), what)) src = src.attr("detach")();
        } catch (py::error_already_set &e) {
            fail(NW_ERR_INVALID_ARGUMENT, what + ": cannot detach: " + e.what());
        }
    }
    py::object capsule;
    try {
        capsule = src.attr("__dlpack__")();
    } catch (py::error_already_set &e) {
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": cannot export " + type_name(obj) + " through DLPack: " + e.what());
    }
    const dl::Tensor *t = nullptr;
    if (PyCapsule_IsValid(capsule.ptr(), "dltensor")) {
        auto *m = static_cast<dl::ManagedTensor *>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
        if (m != nullptr) t = &m->dl_tensor;
    } else if (PyCapsule_IsValid(capsule.ptr(), "dltensor_versioned")) {
        auto *m = static_cast<dl::ManagedTensorVersioned *>(
            PyCapsule_GetPointer(capsule.ptr(), "dltensor_versioned"));
        if (m != nullptr && m->version.major == 1) t = &m->dl_tensor;
    }
    PyErr_Clear();
    if (t == nullptr)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": __dlpack__ did not return a usable DLPack capsule");
    // The capsule is not renamed "used_dltensor": its own destructor frees the tensor
    // when we drop it.
    h.capsule = capsule;
    if (t->device.device_type != dl::kCPU)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": DLPack tensor is not in CPU memory");
    int32_t dtype = -1;
    if (t->dtype.lanes == 1) {
        if (t->dtype.code == dl::kFloat && t->dtype.bits == 32) dtype = NW_DTYPE_F32;
        else if (t->dtype.code == dl::kFloat && t->dtype.bits == 16) dtype = NW_DTYPE_F16;
        else if (t->dtype.code == dl::kFloat && t->dtype.bits == 64) dtype = NW_DTYPE_F64;
        else if (t->dtype.code == dl::kBfloat && t->dtype.bits == 16) dtype = NW_DTYPE_BF16;
    }
    if (dtype < 0)
        fail(NW_ERR_UNSUPPORTED_DTYPE,
             what + ": unsupported element type (DLPack code " + std::to_string(t->dtype.code) +
                 ", " + std::to_string(t->dtype.bits) + " bits, " +
                 std::to_string(t->dtype.lanes) +
                 " lanes); expected float32, float16, bfloat16 or float64; nodewrite never "
                 "converts inputs implicitly");
    if (t->ndim < 0 || (t->ndim > 0 && t->shape == nullptr))
        fail(NW_ERR_INVALID_ARGUMENT, what + ": DLPack tensor has an invalid shape");
    h.dtype = dtype;
    h.data = static_cast<const char *>(t->data) + t->byte_offset;
    h.shape.assign(t->shape, t->shape + t->ndim);
    if (t->strides == nullptr) set_contiguous_strides(h);
    else h.strides.assign(t->strides, t->strides + t->ndim);
    return true;
}

}  // namespace

HeldPtr hold_tensor(py::handle obj, const std::string &what) {
    auto h = std::make_shared<Held>();
    h->owner = py::reinterpret_borrow<py::object>(obj);
    if (obj.is_none())
        fail(NW_ERR_INVALID_ARGUMENT, what + ": expected a numpy array or a CPU tensor, got None");
    if (from_buffer(obj, *h, what)) return h;
    if (from_dlpack(obj, *h, what)) return h;
    fail(NW_ERR_INVALID_ARGUMENT, what + ": expected a numpy array or a CPU tensor "
                                         "(buffer protocol or DLPack), got " + type_name(obj));
}

}  // namespace nwpy
