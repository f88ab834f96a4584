// Helpers shared by the objects' files: see objects.hpp.
#include "objects.hpp"

#include "info.hpp"


namespace nwpy __attribute__((visibility("hidden"))) {

Model &model_arg(py::handle obj) {
    if (obj.is_none()) fail(NW_ERR_INVALID_ARGUMENT, "model: expected a nodewrite.Model, got None");
    try {
        return self_of<Model>(obj, "Model");
    } catch (NwFailure &f) {
        f.message = "model: " + f.message;
        throw;
    }
}

Store &store_arg(py::handle obj) {
    if (obj.is_none())
        fail(NW_ERR_INVALID_ARGUMENT, "store: expected a nodewrite.ActivationStore, got None");
    try {
        return self_of<Store>(obj, "ActivationStore");
    } catch (NwFailure &f) {
        f.message = "store: " + f.message;
        throw;
    }
}

std::vector<int64_t> stored_shape(const Store &s, int32_t activation, int32_t layer) {
    auto it = s.entries.find({activation, layer});
    if (it == s.entries.end() || !it->second) return {};
    return it->second->canonical_shape;
}

namespace {

void check_entry(const Model &m, int32_t activation, const Held &h) {
    check_not_moved(h);
    if (m.causal || h.layout_stated) return;
    const ActivationFacts &f = activation_facts(activation);
    int tokens = 0, heads = -1;
    for (size_t i = 0; i < f.dims.size(); ++i) {
        if (f.dims[i] == NW_DIM_TOKENS) ++tokens;
        if (f.dims[i] == NW_DIM_HEADS) heads = static_cast<int>(i);
    }
    const std::vector<int64_t> &shape = h.canonical_shape;
    if (tokens < 2 || heads < 0 || shape.size() != f.dims.size()) return;
    for (size_t i = 0; i < f.dims.size(); ++i) {
        if (f.dims[i] == NW_DIM_TOKENS && shape[i] == shape[static_cast<size_t>(heads)])
            fail(NW_ERR_INVALID_ARGUMENT,
                 h.what + ": T = " + std::to_string(shape[i]) + " equals n_heads, so the shape " +
                     shape_text(shape) + " cannot tell (head, query, key) from (query, key, head), "
                     "and the model is not causal (no diagonal to tell them apart): put it with "
                     "layout= (\"qkh\" for [query, key, head], \"hqk\" for TransformerLens's hook_pattern)");
    }
}

}  // namespace

void check_reads(const Model &m, const Store &s, const std::vector<int32_t> &activations, int32_t layer) {
    for (int32_t act : activations) {
        auto it = s.entries.find({act, layer});
        if (it != s.entries.end() && it->second) check_entry(m, act, *it->second);
    }
    for (const auto &kv : m.borrowed) {
        int32_t l = std::get<2>(kv.first);
        if ((l == layer || l == NW_NO_LAYER) && kv.second) check_not_moved(*kv.second);
    }
}

void check_everything(const Model &m, const Store &s) {
    for (const auto &kv : s.entries)
        if (kv.second) check_entry(m, kv.first.first, *kv.second);
    for (const auto &kv : s.backward)
        if (kv.second) check_not_moved(*kv.second);
    for (const auto &kv : m.borrowed)
        if (kv.second) check_not_moved(*kv.second);
}

void check_held(const std::vector<HeldPtr> &held) {
    for (const auto &h : held)
        if (h) check_not_moved(*h);
}

std::string shape_text(const std::vector<int64_t> &s) {
    std::string t = "(";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + (s.size() == 1 ? ",)" : ")");
}

}  // namespace nwpy
