// Held tensors: a numpy array / buffer (buffer protocol) or a CPU tensor (DLPack) read as
// an nw_tensor_view with ELEMENT strides, no copy and no cast, its Python object kept alive.
// Producers that keep part of the value outside memory are refused, never misread: torch's
// negative and conjugate bits and zero tensors, numpy masked arrays. An array to be written
// (out=) must also be writable by its producer's account: not marked read-only, not an exported
// copy (DLPack 1.x flags); a torch tensor written into has its version counter advanced.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nodewrite.h"

namespace py = pybind11;

namespace nwpy __attribute__((visibility("hidden"))) {

// A Python object C borrows from, kept alive (with its Py_buffer or DLPack capsule)
// as long as this exists. Destroy only with the GIL held.
struct Held {
    py::object owner;    // the object the caller passed
    py::object capsule;  // DLPack capsule (its destructor calls the producer's deleter)
    Py_buffer buffer{};
    bool has_buffer = false;
    const void *data = nullptr;
    int32_t dtype = NW_DTYPE_F32;
    std::vector<int64_t> shape, strides;

    // What the producer's object looked like when it was held, to tell whether it moved since
    // (check_moved): a numpy array's data pointer, shape and byte strides (read from the array
    // struct: a few nanoseconds), or a torch tensor's version counter, data_ptr(), shape and
    // stride() (read through Python only when its version changed).
    enum class Producer { other, numpy, torch } producer = Producer::other;
    std::string what;                            // for messages: "activation mlp.post_act at layer 0"
    // A store entry's put: whether layout= said the order of its dimensions, and the batch
    // element it reads (-1: no batch=).
    bool layout_stated = false;
    int64_t batch = -1;
    std::vector<int64_t> canonical_shape;  // the shape the library was given (after layout=/batch=)
    // ... and that view's data pointer and strides (elements): what pickling a store reads.
    const void *canonical_data = nullptr;
    std::vector<int64_t> canonical_strides;
    const void *np_data = nullptr;
    std::vector<Py_ssize_t> np_dims, np_strides;
    mutable int64_t torch_version = -1;          // updated when the version moves but nothing else
    int64_t torch_ptr = 0;
    std::vector<int64_t> torch_shape, torch_strides;

    Held() = default;
    Held(const Held &) = delete;
    Held &operator=(const Held &) = delete;
    ~Held() {
        if (has_buffer) PyBuffer_Release(&buffer);
    }

    nw_tensor_view view() const {
        nw_tensor_view v;
        v.data = data;
        v.dtype = dtype;
        v.ndim = static_cast<int32_t>(shape.size());
        v.shape = shape.empty() ? nullptr : shape.data();
        v.strides = strides.empty() ? nullptr : strides.data();
        return v;
    }
};
using HeldPtr = std::shared_ptr<Held>;

// The largest ndim accepted from a producer (numpy's own limit is 64; the library uses 2 or 3).
constexpr int32_t kMaxNdim = 64;

// Reads a view of obj (numpy array, buffer, or DLPack CPU tensor). No copy, no cast.
HeldPtr hold_tensor(py::handle obj, const std::string &what);

// A borrowed object whose producer moved or freed its storage since it was held (numpy's
// resize(refcheck=False), torch's set_ / resize_): NodeWriteStaleInputError naming it, before
// anything reads it. Call with the GIL held.
void check_not_moved(const Held &h);

// The same for an array nodewrite will write into: a buffer must be writable; a DLPack
// producer is asked for its memory itself (max_version 1.0, copy=False) and refused if it
// flags the export read-only or a copy.
HeldPtr hold_writable_tensor(py::handle obj, const std::string &what);

// After writing into obj: a torch tensor's version counter is advanced, as torch's own out=
// operations do, so that autograd refuses a graph that saved the old values. Never fails.
void mark_written(py::handle obj);

// Module-import-time caches (numpy.ma.MaskedArray): see module.cpp.
void init_view_types();

// Refuses (NwFailure) a tensor whose value is not the memory DLPack would export: torch's
// negative and conjugate bits, zero tensors, and subclasses with their own __torch_dispatch__.
void refuse_values_outside_memory(py::handle obj, const std::string &what);

// The device type of a __dlpack_device__() result (a tuple), or -1 if it is not one.
int64_t dlpack_device_type(py::handle device);

}  // namespace nwpy
