// Explicit layouts for ActivationStore.put(..., layout=, batch=): a tensor in another
// dimension order (or with a leading batch dimension) is viewed in the library's canonical
// order by strides alone, never copied.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nodewrite.h"
#include "views.hpp"

namespace py = pybind11;

namespace nwpy __attribute__((visibility("hidden"))) {

// The view of h in the canonical layout of `activation` (layout_letters, info.hpp), given the
// caller's layout (letters, one per dimension; null object = canonical) and batch index (null
// object = none; required when the layout has a 'b'). shape/strides are storage for the view's
// arrays (read by the library during the put only). Refuses (ValueError / IndexError) a layout
// that is not a permutation of the canonical letters plus at most one 'b', a layout whose length
// is not the tensor's ndim, a batch without 'b' or a 'b' without batch, a batch out of range.
nw_tensor_view view_in_layout(const Held &h, int32_t activation, py::handle layout,
                              py::handle batch, const std::string &what,
                              std::vector<int64_t> &shape, std::vector<int64_t> &strides);

}  // namespace nwpy
