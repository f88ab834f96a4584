// Outputs: new result arrays, a caller's out= array, and the one sized-output protocol every
// call that writes a float32 result goes through (sized_call).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

// A new C-contiguous, 64-byte aligned float32 array; sizes that cannot be had ->
// NodeWriteMemoryError. With want_zeroed, memory known to be zero when that costs nothing
// (fresh pages); *zeroed (if given) says whether it is, i.e. whether a call may pass NW_OUT_ZEROED.
py::array_t<float> new_output(const std::vector<int64_t> &shape, bool want_zeroed = false, bool *zeroed = nullptr);

// A new int64 array.
py::array_t<int64_t> new_output_i64(const std::vector<int64_t> &shape);

// A caller's out= array: a writable, C-contiguous float32 numpy array or CPU torch tensor.
HeldPtr hold_out(py::handle obj, const char *what = "out");

// out's shape must be `shape` (NodeWriteValueError naming `what` otherwise).
void check_out_shape(const Held &h, const std::vector<int64_t> &shape, const char *what = "out");

inline float *out_ptr(const Held &h) { return static_cast<float *>(const_cast<void *>(h.data)); }

size_t element_count(const std::vector<int64_t> &shape);

// The size of a dimension of the tables' shape rules (enum nw_dim) that the model fixes (one,
// heads, d_head, d_model, d_ff, head_channels; vocab once the unembedding is set), or -1.
int64_t model_dim_size(const Model &m, int32_t dim);

// A shape rule of the library's tables (enum nw_dim values) evaluated for a call at `layer`: T
// (and the latent count) from the shapes of `activations` in the store, the other dimensions from
// the model. Empty when the store cannot tell (an activation missing: the library then says why).
std::vector<int64_t> predicted_shape(const Model &m, const Store &s, const std::vector<int32_t> &dims,
                                     const std::vector<int32_t> &activations, int32_t layer);

// What a library call that fills a float32 result reports: its status and the result's shape.
struct Reported {
    int64_t shape[3] = {0, 0, 0};
    int32_t ndim = 0;
};

// The one sized-output protocol. Under the model's and the store's read locks (taken with the GIL
// held), guess() predicts the result's shape from the library's tables and what the store holds
// (an empty vector: it cannot tell); the result is allocated for it (or is the caller's out=, whose
// shape must equal the prediction), and call(p, len, flags, &reported) makes the one library call
// without the GIL. Only when the library reports another shape (NW_ERR_BUFFER_TOO_SMALL: the store
// could not tell) is a new result allocated for the reported shape and the call made again; never
// with out= (a caller's array is written at most once, and only with its own shape).
// zeroable: the call accepts NW_OUT_ZEROED.
template <class Guess, class Call>
py::object sized_call(const Model &m, const Store &s, Guess guess, Call call, bool zeroable,
                      const HeldPtr &out = nullptr, py::handle out_obj = py::handle()) {
    std::vector<int64_t> shape;
    for (int attempt = 0;; ++attempt) {
        ReadLocks locks;  // the GIL is held: nothing read below changes until run()
        locks.add(m.mu);
        locks.add(s.mu);
        if (attempt == 0) shape = guess();
        py::object result;
        float *p = nullptr;
        bool zeroed = false;
        if (out) {
            if (!shape.empty() && out->shape != shape) {
                // The prediction read the first entries only: a refusal of the inputs themselves
                // (entries that disagree) names the argument at fault, before out is blamed. A
                // call of capacity 0 writes nothing; it is this Python call's one library call.
                static float none = 0;
                Reported probe;
                std::string why;
                const nw_status ps = locks.run([&] { return call(&none, 0, 0, &probe); }, &why);
                if (ps != NW_OK && ps != NW_ERR_BUFFER_TOO_SMALL) fail(ps, why);
                check_out_shape(*out, shape);
            }
            else shape = out->shape;  // the library refuses the call before writing (see above)
            p = out_ptr(*out);
            result = py::reinterpret_borrow<py::object>(out_obj);
        } else {
            py::array_t<float> a = new_output(shape, zeroable, &zeroed);
            p = a.mutable_data();
            result = std::move(a);
        }
        const size_t len = element_count(shape);
        static float no_float = 0;  // never written (capacity 0); NULL would mean "no buffer"
        if (p == nullptr || len == 0) p = &no_float;
        Reported r;
        std::string msg;
        const uint32_t flags = (zeroable && zeroed) ? NW_OUT_ZEROED : 0;
        nw_status st = locks.run([&] { return call(p, len, flags, &r); }, &msg);
        const bool same = static_cast<size_t>(r.ndim) == shape.size() &&
                          std::equal(shape.begin(), shape.end(), r.shape);
        if (st == NW_OK && out) mark_written(result);
        if (st == NW_OK && same) return result;
        if (st == NW_OK && out)
            fail(NW_ERR_SHAPE_MISMATCH, "out: the store changed during the call (out was written with "
                                        "shape " + shape_text(std::vector<int64_t>(r.shape, r.shape + r.ndim)) +
                                        "); do not change the store while a call reads it");
        if (st != NW_OK && (st != NW_ERR_BUFFER_TOO_SMALL || out || attempt >= 1)) fail(st, msg);
        if (st == NW_OK && attempt >= 1)
            fail(NW_ERR_SHAPE_MISMATCH, "the store changed during the call; do not change the store "
                                        "while a call reads it");
        shape.assign(r.shape, r.shape + r.ndim);  // the library knew the shape the store did not tell
    }
}

}  // namespace nwpy
