// Output sizes the binding can tell from what it holds (the store's entries, the model's set
// weights), so that a call sizes its output itself and crosses the C ABI once; the library
// still checks everything, and a wrong guess only costs a retry (NW_ERR_BUFFER_TOO_SMALL).
// Call with the GIL held (writers change what is read here only with the GIL held).
#pragma once

#include <cstdint>
#include <vector>

#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

// The activation whose first dimension is T for a node type (mlp.post_act, attn.qk_probs,
// the type's online_* latents), or -1.
int32_t token_activation_of(int32_t node_type);

// The shape of a stored activation, or an empty vector when it is not in the store.
std::vector<int64_t> stored_shape(const Store &s, int32_t activation, int32_t layer);

// T for node_type's nodes at layer (0 when the store cannot tell: the library then reports why).
int64_t guess_tokens(const Store &s, int32_t node_type, int32_t layer);

// node_write's (T, d_model) output with one call of nw_node_write_sized (a retry only on
// NW_ERR_BUFFER_TOO_SMALL, when the store could not tell T). Takes the model/store locks.
py::array_t<float> node_write_once(Model &m, Store &s, const nw_node_index &node);

}  // namespace nwpy
