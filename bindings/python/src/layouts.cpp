// ActivationStore.put(..., layout=, batch=): see layouts.hpp.
#include "layouts.hpp"

#include <algorithm>

#include "args.hpp"
#include "errors.hpp"
#include "info.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

nw_tensor_view view_in_layout(const Held &h, int32_t activation_value, py::handle layout,
                              py::handle batch, const std::string &what,
                              std::vector<int64_t> &shape, std::vector<int64_t> &strides) {
    const std::string canon = layout_letters(activation_value);
    const std::string &activation = activation_facts(activation_value).name;
    std::string lay = canon;
    if (layout && !layout.is_none()) {
        lay = to_name(layout, "layout");
        std::transform(lay.begin(), lay.end(), lay.begin(), [](unsigned char c) { return std::tolower(c); });
    }
    const bool has_batch = batch && !batch.is_none();
    // Valid letters: a permutation of canon, plus at most one 'b'.
    std::string letters = lay;
    size_t nb = std::count(letters.begin(), letters.end(), 'b');
    letters.erase(std::remove(letters.begin(), letters.end(), 'b'), letters.end());
    std::string sorted_l = letters, sorted_c = canon;
    std::sort(sorted_l.begin(), sorted_l.end());
    std::sort(sorted_c.begin(), sorted_c.end());
    if (nb > 1 || sorted_l != sorted_c)
        fail(NW_ERR_INVALID_ARGUMENT,
             what + ": layout '" + lay + "' is not a permutation of '" + canon +
                 "' (with at most one 'b' for a batch dimension); " + activation +
                 " is read as '" + canon + "'");
    if (static_cast<int64_t>(lay.size()) != static_cast<int64_t>(h.shape.size()))
        fail(NW_ERR_SHAPE_MISMATCH, what + ": layout '" + lay + "' has " +
                                        std::to_string(lay.size()) + " letters, the tensor " +
                                        std::to_string(h.shape.size()) + " dimensions");
    if (nb == 1 && !has_batch)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": layout '" + lay + "' has a batch dimension 'b'; pass batch=<index>");
    if (nb == 0 && has_batch)
        fail(NW_ERR_INVALID_ARGUMENT, what + ": batch= given, but layout '" + lay +
                                          "' has no batch dimension 'b' (e.g. layout='b" + canon + "')");
    const char *data = static_cast<const char *>(h.data);
    if (nb == 1) {
        size_t bi = lay.find('b');
        int64_t n = h.shape[bi];
        int64_t i = to_int(batch, "batch", INT64_MIN, INT64_MAX, NW_ERR_INDEX_OUT_OF_RANGE);
        if (i < -n || i >= n)
            fail(NW_ERR_INDEX_OUT_OF_RANGE, what + ": batch " + std::to_string(i) +
                                                " is out of range for a batch of " + std::to_string(n));
        if (i < 0) i += n;
        data += i * h.strides[bi] * item_size(h.dtype);
    }
    shape.assign(canon.size(), 0);
    strides.assign(canon.size(), 0);
    for (size_t c = 0; c < canon.size(); ++c) {
        size_t src = lay.find(canon[c]);
        shape[c] = h.shape[src];
        strides[c] = h.strides[src];
    }
    nw_tensor_view v;
    v.data = data;
    v.dtype = h.dtype;
    v.ndim = static_cast<int32_t>(canon.size());
    v.shape = shape.data();
    v.strides = strides.data();
    return v;
}

}  // namespace nwpy
